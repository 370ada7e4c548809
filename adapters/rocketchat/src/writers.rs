//! The open realtime sessions, by username, for sending frames on them
//! (typing notices go over DDP, not REST).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

/// Each user's current session: its registration number and frame sender.
type ByUser = Arc<Mutex<HashMap<String, (u64, UnboundedSender<String>)>>>;

/// Sessions that take frames.
#[derive(Default)]
pub(crate) struct Writers {
    by_user: ByUser,
    next: AtomicU64,
}

/// Unregisters a session's writer when the session ends.
pub(crate) struct Registration {
    by_user: ByUser,
    username: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.by_user.lock().expect("writers poisoned");
        // A newer session of the same user may have replaced this one.
        if map.get(&self.username).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.username);
        }
    }
}

impl Writers {
    /// Registers the session of `username` until the registration drops.
    pub(crate) fn register(&self, username: &str, tx: UnboundedSender<String>) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.by_user.lock().expect("writers poisoned").insert(username.to_owned(), (id, tx));
        Registration { by_user: self.by_user.clone(), username: username.to_owned(), id }
    }

    /// Sends a frame on the session of `username`; false if it has none.
    pub(crate) fn send(&self, username: &str, frame: String) -> bool {
        let map = self.by_user.lock().expect("writers poisoned");
        map.get(username).is_some_and(|(_, tx)| tx.send(frame).is_ok())
    }

    /// A fresh frame id.
    pub(crate) fn fresh_id(&self) -> String {
        format!("w-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_lasts_as_long_as_its_registration() {
        let writers = Writers::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let registration = writers.register("bob", tx);
        assert!(writers.send("bob", "x".into()));
        assert_eq!(rx.try_recv().unwrap(), "x");
        let (tx2, _rx2) = tokio::sync::mpsc::unbounded_channel();
        let newer = writers.register("bob", tx2);
        drop(registration);
        assert!(writers.send("bob", "y".into()), "the older registration does not remove the newer one");
        drop(newer);
        assert!(!writers.send("bob", "z".into()));
    }
}
