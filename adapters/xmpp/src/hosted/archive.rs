//! The archive of a hosted room, kept in the adapter state (the bridge's own
//! store): the last [`PAGES`] pages of [`PAGE`] messages (up to 500), each
//! page one JSON value under its own key, plus a head with the next
//! sequence number. Appending rewrites only the newest page; the oldest page
//! falls off as a new one starts. It serves the history sent on join and
//! MAM (XEP-0313) queries.

use std::collections::{BTreeSet, VecDeque};

use brygga_core::{AdapterState, BridgeError};
use serde::{Deserialize, Serialize};
use tokio_xmpp::jid::BareJid;

/// Messages per stored page.
pub(crate) const PAGE: u64 = 50;
/// Pages kept per room.
pub(crate) const PAGES: u64 = 10;
/// Largest page a MAM query gets.
pub(crate) const MAX_RESULTS: usize = 100;

/// One archived message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Position in the room's archive.
    pub(crate) seq: u64,
    /// The stanza id we gave it (XEP-0359, `by` the room).
    pub(crate) id: String,
    /// When it was said, in seconds since the Unix epoch.
    pub(crate) at: u64,
    /// Who said it: a bare JID, or a Matrix user id.
    pub(crate) sender: String,
    /// The sender's own id for it (origin id or stanza `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<String>,
    /// The message as reflected (from `room/nick`, no `to`), in `jabber:client`.
    pub(crate) xml: String,
    /// Whether it may be shown as history (not a retraction tombstone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) retracted: bool,
}

#[derive(Serialize, Deserialize)]
struct Head {
    next_seq: u64,
}

/// A MAM request's paging (XEP-0059) and filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) max: Option<usize>,
    pub(crate) after: Option<String>,
    /// `Some("")` asks for the last page.
    pub(crate) before: Option<String>,
    /// Seconds since the epoch, inclusive.
    pub(crate) start: Option<u64>,
    pub(crate) end: Option<u64>,
}

/// One page of results.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    pub(crate) items: Vec<&'a Entry>,
    pub(crate) complete: bool,
    /// Index of the first item among all matching ones.
    pub(crate) first_index: usize,
    pub(crate) count: usize,
}

/// One room's archive, loaded on first use.
#[derive(Default)]
pub(crate) struct Archive {
    loaded: bool,
    entries: VecDeque<Entry>,
    next_seq: u64,
    dirty: BTreeSet<u64>,
    /// A flush is scheduled.
    pub(crate) flushing: bool,
}

fn head_key(room: &BareJid) -> String {
    format!("hosted/{room}/head")
}

fn page_key(room: &BareJid, page: u64) -> String {
    format!("hosted/{room}/page/{page}")
}

impl Archive {
    /// Reads the archive from the state once.
    pub(crate) async fn load(&mut self, state: &dyn AdapterState, room: &BareJid) -> Result<(), BridgeError> {
        if self.loaded {
            return Ok(());
        }
        let head: Option<Head> = state.get(&head_key(room)).await?.and_then(|v| serde_json::from_str(&v).ok());
        let next_seq = head.map_or(0, |h| h.next_seq);
        let mut entries = VecDeque::new();
        if next_seq > 0 {
            let last = (next_seq - 1) / PAGE;
            for page in last.saturating_sub(PAGES - 1)..=last {
                let Some(value) = state.get(&page_key(room, page)).await? else { continue };
                let page: Vec<Entry> = serde_json::from_str(&value).unwrap_or_default();
                entries.extend(page);
            }
        }
        self.entries = entries;
        self.next_seq = next_seq;
        self.loaded = true;
        Ok(())
    }

    /// The sequence number the next message gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Adds a message (its `seq` is set here) and drops the oldest page when a new one starts.
    pub(crate) fn append(&mut self, mut entry: Entry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        let page = entry.seq / PAGE;
        self.entries.push_back(entry);
        self.dirty.insert(page);
        let oldest = page.saturating_sub(PAGES - 1);
        while self.entries.front().is_some_and(|e| e.seq / PAGE < oldest) {
            self.entries.pop_front();
        }
    }

    /// Replaces a message by a tombstone (a retraction); returns whether it was there.
    pub(crate) fn retract(&mut self, id: &str, tombstone: String) -> bool {
        let Some(entry) = self.entries.iter_mut().find(|e| e.id == id) else { return false };
        entry.xml = tombstone;
        entry.retracted = true;
        self.dirty.insert(entry.seq / PAGE);
        true
    }

    /// A message by its stanza id.
    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// A message by its sender and their own id for it.
    pub(crate) fn by_origin(&self, sender: &str, origin: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.sender == sender && e.origin.as_deref() == Some(origin))
    }

    /// The last `n` messages worth showing, oldest first.
    pub(crate) fn recent(&self, n: usize) -> Vec<&Entry> {
        let shown: Vec<&Entry> = self.entries.iter().filter(|e| !e.retracted).collect();
        shown[shown.len().saturating_sub(n)..].to_vec()
    }

    /// One page of a MAM query; `Err` with a stanza error condition.
    pub(crate) fn query(&self, query: &Query) -> Result<Page<'_>, &'static str> {
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| query.start.is_none_or(|s| e.at >= s) && query.end.is_none_or(|end| e.at <= end))
            .collect();
        let max = query.max.unwrap_or(50).min(MAX_RESULTS);
        let position = |id: &str| matching.iter().position(|e| e.id == id).ok_or("item-not-found");
        let (from, to, complete) = match (&query.after, &query.before) {
            (Some(after), _) => {
                let start = position(after)? + 1;
                let end = (start + max).min(matching.len());
                (start, end, end == matching.len())
            }
            (None, Some(before)) => {
                let end = if before.is_empty() { matching.len() } else { position(before)? };
                let start = end.saturating_sub(max);
                (start, end, start == 0)
            }
            (None, None) => {
                let end = max.min(matching.len());
                (0, end, end == matching.len())
            }
        };
        Ok(Page { items: matching[from..to].to_vec(), complete, first_index: from, count: matching.len() })
    }

    /// Writes the pages changed since the last flush, the head, and forgets
    /// the page that fell off.
    pub(crate) async fn flush(&mut self, state: &dyn AdapterState, room: &BareJid) -> Result<(), BridgeError> {
        let dirty = std::mem::take(&mut self.dirty);
        let last = self.next_seq.saturating_sub(1) / PAGE;
        let oldest = last.saturating_sub(PAGES - 1);
        for page in dirty.iter().copied().filter(|p| *p >= oldest) {
            let entries: Vec<&Entry> = self.entries.iter().filter(|e| e.seq / PAGE == page).collect();
            let value = serde_json::to_string(&entries).map_err(|e| BridgeError::permanent(e.to_string()))?;
            if let Err(err) = state.put(&page_key(room, page), Some(&value)).await {
                self.dirty.extend(dirty);
                return Err(err);
            }
        }
        let head = serde_json::to_string(&Head { next_seq: self.next_seq }).expect("a head serializes");
        state.put(&head_key(room), Some(&head)).await?;
        if oldest > 0 {
            state.put(&page_key(room, oldest - 1), None).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brygga_core::MemoryState;

    fn entry(id: &str, at: u64) -> Entry {
        Entry {
            seq: 0,
            id: id.into(),
            at,
            sender: "bob@localhost".into(),
            origin: Some(format!("o-{id}")),
            xml: String::new(),
            retracted: false,
        }
    }

    fn ids(page: &Page<'_>) -> Vec<String> {
        page.items.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn pages_forward_and_backward() {
        let mut a = Archive { loaded: true, ..Default::default() };
        for i in 0..5 {
            a.append(entry(&format!("m{i}"), 100 + i));
        }
        let q = |max, after: Option<&str>, before: Option<&str>| Query {
            max: Some(max),
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
            ..Default::default()
        };
        let page = a.query(&q(2, None, None)).unwrap();
        assert_eq!((ids(&page), page.complete), (vec!["m0".into(), "m1".into()], false));
        let page = a.query(&q(2, Some("m1"), None)).unwrap();
        assert_eq!((ids(&page), page.complete, page.first_index), (vec!["m2".into(), "m3".into()], false, 2));
        let page = a.query(&q(2, Some("m3"), None)).unwrap();
        assert_eq!((ids(&page), page.complete), (vec!["m4".into()], true));
        let page = a.query(&q(2, None, Some(""))).unwrap();
        assert_eq!((ids(&page), page.complete), (vec!["m3".into(), "m4".into()], false));
        let page = a.query(&q(5, None, Some("m2"))).unwrap();
        assert_eq!((ids(&page), page.complete), (vec!["m0".into(), "m1".into()], true));
        assert_eq!(a.query(&q(2, Some("nope"), None)).unwrap_err(), "item-not-found");
        let window = Query { start: Some(101), end: Some(102), ..Default::default() };
        assert_eq!(ids(&a.query(&window).unwrap()), vec!["m1".to_owned(), "m2".to_owned()]);
        assert_eq!(a.by_origin("bob@localhost", "o-m3").unwrap().id, "m3");
    }

    #[test]
    fn the_archive_is_bounded_and_survives_a_reload() {
        let state = MemoryState::default();
        let room = BareJid::new("town@matrix.localhost").unwrap();
        let mut a = Archive { loaded: true, ..Default::default() };
        let total = PAGE * PAGES + 75;
        for i in 0..total {
            a.append(entry(&format!("m{i}"), i));
            if i % 7 == 0 {
                futures::executor::block_on(a.flush(&state, &room)).unwrap();
            }
        }
        assert!(a.retract("m560", "<tombstone/>".into()));
        futures::executor::block_on(a.flush(&state, &room)).unwrap();
        assert_eq!(a.entries.len() as u64, PAGE * (PAGES - 1) + 25);
        assert!(a.get("m0").is_none());
        let mut b = Archive::default();
        futures::executor::block_on(b.load(&state, &room)).unwrap();
        assert_eq!(b.entries, a.entries);
        assert_eq!(b.next_seq(), total);
        assert!(b.get("m560").unwrap().retracted);
        assert_eq!(b.recent(2).iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["m573", "m574"]);
    }
}
