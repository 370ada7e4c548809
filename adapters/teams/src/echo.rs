//! Changes the bridge made itself, so their notifications are not bridged
//! back. New messages need no entry here (the router knows their ids from the
//! message map); an edit or a reaction made from Matrix comes back as a
//! change of the message and is expected once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// Expectations kept before the oldest are dropped.
const CAPACITY: usize = 4096;

/// Expected echoes, by key (an inbound event id without its timestamp), and
/// the event ids already recognised as echoes: Graph shows the same state
/// again on every later read of the message, and it must stay swallowed.
#[derive(Default)]
pub(crate) struct Echoes {
    inner: Mutex<(HashMap<String, u32>, VecDeque<String>)>,
    swallowed: Mutex<(HashSet<String>, VecDeque<String>)>,
}

/// The key of an inbound event id: edits and reactions lose their `@{time}`.
pub(crate) fn echo_key(event_id: &str) -> &str {
    if event_id.contains("#edit@") || event_id.contains("#react:") || event_id.contains("#unreact:") {
        event_id.rsplit_once('@').map_or(event_id, |(key, _)| key)
    } else {
        event_id
    }
}

impl Echoes {
    /// Expects one echo with `key` (e.g. `100#edit`, `100#react:{aad}:👍`).
    pub(crate) fn expect(&self, key: String) {
        let mut inner = self.inner.lock().expect("echoes poisoned");
        let (counts, order) = &mut *inner;
        *counts.entry(key.clone()).or_default() += 1;
        order.push_back(key);
        while order.len() > CAPACITY {
            if let Some(old) = order.pop_front()
                && let Some(n) = counts.get_mut(&old)
            {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&old);
                }
            }
        }
    }

    /// Takes back an expectation whose change failed.
    pub(crate) fn forget(&self, key: &str) {
        let mut inner = self.inner.lock().expect("echoes poisoned");
        let (counts, order) = &mut *inner;
        if let Some(n) = counts.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(key);
            }
            if let Some(pos) = order.iter().position(|k| k == key) {
                order.remove(pos);
            }
        }
    }

    /// Whether an inbound event is an echo: one recognised before, or an
    /// expected one (consuming the expectation).
    pub(crate) fn take(&self, event_id: &str) -> bool {
        if self.swallowed.lock().expect("echoes poisoned").0.contains(event_id) {
            return true;
        }
        if !self.expected(event_id) {
            return false;
        }
        let mut swallowed = self.swallowed.lock().expect("echoes poisoned");
        let (ids, order) = &mut *swallowed;
        if ids.insert(event_id.to_owned()) {
            order.push_back(event_id.to_owned());
            if order.len() > CAPACITY
                && let Some(old) = order.pop_front()
            {
                ids.remove(&old);
            }
        }
        true
    }

    fn expected(&self, event_id: &str) -> bool {
        let key = echo_key(event_id);
        let mut inner = self.inner.lock().expect("echoes poisoned");
        let (counts, order) = &mut *inner;
        let Some(n) = counts.get_mut(key) else { return false };
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
        if let Some(pos) = order.iter().position(|k| k == key) {
            order.remove(pos);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_expected_echo_is_swallowed_once() {
        let echoes = Echoes::default();
        echoes.expect("100#edit".into());
        echoes.expect("100#react:aad-a:👍".into());
        assert!(!echoes.take("100"));
        assert!(echoes.take("100#edit@2026-01-01T10:00:00Z"));
        assert!(!echoes.take("100#edit@2026-01-01T10:05:00Z"));
        assert!(echoes.take("100#react:aad-a:👍@t1"));
        assert!(echoes.take("100#react:aad-a:👍@t1"), "a re-read of the same state stays swallowed");
        assert!(!echoes.take("100#react:aad-a:👍@t2"));
        assert!(!echoes.take("100#react:aad-b:👍@t1"));
        echoes.expect("7#deleted".into());
        echoes.forget("7#deleted");
        assert!(!echoes.take("7#deleted"));
    }

    #[test]
    fn old_expectations_are_dropped() {
        let echoes = Echoes::default();
        for n in 0..CAPACITY + 10 {
            echoes.expect(format!("{n}#edit"));
        }
        assert!(!echoes.take("0#edit@x"));
        assert!(echoes.take(&format!("{}#edit@x", CAPACITY + 9)));
    }
}
