//! The open devices, by user: opened on first use, closed again after a
//! while unused, so a bridge with many ghosts does not keep every ghost's
//! Olm machine and store connection in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk_common::ruma::OwnedUserId;
use tokio::sync::OnceCell;

/// One user's device, opened at most once at a time.
struct Slot<T> {
    cell: Arc<OnceCell<Arc<T>>>,
    used: Instant,
}

impl<T> Slot<T> {
    /// Unused for `idle` and held by nobody else: not opening, not in use.
    /// Dropping it cannot leave a second machine on the same store, since
    /// new holders only come from the map, under its lock.
    fn closable(&self, idle: Duration, now: Instant) -> bool {
        now.duration_since(self.used) >= idle
            && Arc::strong_count(&self.cell) == 1
            && self.cell.get().is_none_or(|device| Arc::strong_count(device) == 1)
    }
}

/// Open devices by user.
pub(crate) struct Devices<T> {
    slots: Mutex<HashMap<OwnedUserId, Slot<T>>>,
}

impl<T> Default for Devices<T> {
    fn default() -> Self {
        Self { slots: Mutex::default() }
    }
}

impl<T> Devices<T> {
    /// The user's slot, marked as used now.
    pub(crate) fn slot(&self, user: &OwnedUserId) -> Arc<OnceCell<Arc<T>>> {
        let mut slots = self.slots.lock().expect("devices poisoned");
        let slot = slots.entry(user.clone()).or_insert_with(|| Slot { cell: Arc::default(), used: Instant::now() });
        slot.used = Instant::now();
        slot.cell.clone()
    }

    /// The devices open now.
    pub(crate) fn open(&self) -> Vec<Arc<T>> {
        let slots = self.slots.lock().expect("devices poisoned");
        slots.values().filter_map(|slot| slot.cell.get().cloned()).collect()
    }

    /// Closes the devices unused for `idle`, except `keep`'s; returns how many.
    pub(crate) fn close_idle(&self, idle: Duration, keep: &str) -> usize {
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("devices poisoned");
        let before = slots.len();
        slots.retain(|user, slot| user.as_str() == keep || !slot.closable(idle, now));
        before - slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> OwnedUserId {
        format!("@{name}:hs").try_into().unwrap()
    }

    #[tokio::test]
    async fn idle_devices_close_unless_in_use_or_kept() {
        let devices: Devices<u8> = Devices::default();
        for name in ["bot", "idle", "busy", "opening"] {
            let cell = devices.slot(&user(name));
            if name != "opening" {
                cell.get_or_init(|| async { Arc::new(1) }).await;
            }
        }
        let busy = devices.slot(&user("busy")).get().cloned();
        let opening = devices.slot(&user("opening"));
        assert_eq!(devices.close_idle(Duration::from_secs(60), "@bot:hs"), 0, "nothing idle for a minute yet");
        assert_eq!(devices.close_idle(Duration::ZERO, "@bot:hs"), 1, "only the idle ghost closes");
        assert_eq!(devices.open().len(), 2, "bot and busy stay open");
        drop((busy, opening));
        assert_eq!(devices.close_idle(Duration::ZERO, "@bot:hs"), 2, "busy and opening close once let go");
        assert_eq!(devices.open().len(), 1);
    }
}
