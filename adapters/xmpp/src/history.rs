//! What the listener remembers of each room across reconnects, so it can
//! catch up from the room's archive (XEP-0313) after a gap, in order,
//! without bridging anything twice or echoing its own puppets.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_xmpp::jid::BareJid;

use crate::stanza::GroupMessage;

/// How often a room's catch-up point is written to the adapter state.
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// How many of our own delivered message ids are remembered per process.
const DELIVERED_CAP: usize = 10_000;
/// Overlap of a catch-up with what was already seen, against clock skew;
/// duplicates in the overlap are dropped by the bridge's dedupe.
const OVERLAP: Duration = Duration::from_secs(10);

/// A catch-up in progress for one room.
struct CatchUp {
    /// The archive query's id (also its `queryid`).
    query: String,
    /// Where the archive query starts.
    since: SystemTime,
    /// Live messages that arrived meanwhile, bridged after the archive's.
    held: Vec<GroupMessage>,
}

/// Per-room memory that outlives a connection.
#[derive(Default)]
pub(crate) struct History {
    /// Up to when the listener is known to have seen everything.
    seen_until: HashMap<BareJid, SystemTime>,
    /// When each room's catch-up point was last written to the adapter state.
    saved: HashMap<BareJid, SystemTime>,
    /// Since when messages were dropped (a flooded queue), for the next catch-up.
    gaps: HashMap<BareJid, SystemTime>,
    /// Nicks our puppets have used, to recognise their archived messages.
    our_nicks: HashMap<BareJid, HashSet<String>>,
    /// Our messages the room is known to have, by (room, id).
    delivered: HashSet<(BareJid, String)>,
    delivered_order: VecDeque<(BareJid, String)>,
    catching_up: HashMap<BareJid, CatchUp>,
}

impl History {
    /// The listener saw the room live at this moment.
    pub(crate) fn seen(&mut self, room: &BareJid, at: SystemTime) {
        let entry = self.seen_until.entry(room.clone()).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// The catch-up point to write to the adapter state, at most every few
    /// seconds per room: a restarted bridge catches up from there.
    pub(crate) fn save_due(&mut self, room: &BareJid, now: SystemTime) -> Option<SystemTime> {
        let seen = *self.seen_until.get(room)?;
        let last = self.saved.get(room).copied();
        if last.is_some_and(|last| now.duration_since(last).unwrap_or_default() < SAVE_EVERY) {
            return None;
        }
        self.saved.insert(room.clone(), now);
        Some(seen)
    }

    /// Where a catch-up after a (re)join starts; `None` on the first join,
    /// which bridges only what comes after it.
    pub(crate) fn catch_up_from(&self, room: &BareJid) -> Option<SystemTime> {
        let seen = self.seen_until.get(room).copied();
        let from = match (seen, self.gaps.get(room).copied()) {
            (Some(seen), Some(gap)) => seen.min(gap),
            (seen, gap) => seen.or(gap)?,
        };
        Some(from - OVERLAP)
    }

    /// Messages of `room` are being dropped from `at` on; returns whether this starts a gap.
    pub(crate) fn gap(&mut self, room: &BareJid, at: SystemTime) -> bool {
        match self.gaps.get(room) {
            Some(_) => false,
            None => {
                self.gaps.insert(room.clone(), at);
                true
            }
        }
    }

    /// Starts holding live messages of `room` until the archive query `query` ends.
    /// Returns what an earlier, unfinished catch-up of the room held.
    pub(crate) fn start_catch_up(&mut self, room: &BareJid, query: &str, since: SystemTime) -> Vec<GroupMessage> {
        self.gaps.remove(room);
        let earlier = self.finish(room);
        self.catching_up.insert(room.clone(), CatchUp { query: query.to_owned(), since, held: Vec::new() });
        earlier
    }

    /// Holds a live message while its room catches up; gives it back otherwise.
    pub(crate) fn hold(&mut self, message: GroupMessage) -> Option<GroupMessage> {
        match self.catching_up.get_mut(&message.room) {
            Some(catch_up) => {
                catch_up.held.push(message);
                None
            }
            None => Some(message),
        }
    }

    /// The room whose catch-up uses archive query `query`.
    pub(crate) fn room_of_query(&self, query: &str) -> Option<BareJid> {
        self.catching_up.iter().find(|(_, c)| c.query == query).map(|(room, _)| room.clone())
    }

    /// Moves a room's catch-up to its next page's query id; returns where it started.
    pub(crate) fn next_page(&mut self, room: &BareJid, query: &str) -> Option<SystemTime> {
        let catch_up = self.catching_up.get_mut(room)?;
        catch_up.query = query.to_owned();
        Some(catch_up.since)
    }

    /// Ends a catch-up; returns the live messages held meanwhile, in order.
    pub(crate) fn finish(&mut self, room: &BareJid) -> Vec<GroupMessage> {
        self.catching_up.remove(room).map(|c| c.held).unwrap_or_default()
    }

    /// Remembers a nick one of our puppets sits under.
    pub(crate) fn our_nick(&mut self, room: &BareJid, nick: &str) {
        self.our_nicks.entry(room.clone()).or_default().insert(nick.to_owned());
    }

    /// Whether an archived message from `nick` with this id is one of ours.
    pub(crate) fn was_ours(&self, room: &BareJid, nick: &str, id: Option<&str>) -> bool {
        id.is_some_and(|id| id.starts_with("brygga."))
            && self.our_nicks.get(room).is_some_and(|nicks| nicks.contains(nick))
    }

    /// Records that the room has our message `id`.
    pub(crate) fn delivered(&mut self, room: &BareJid, id: &str) {
        let key = (room.clone(), id.to_owned());
        if self.delivered.insert(key.clone()) {
            self.delivered_order.push_back(key);
            if self.delivered_order.len() > DELIVERED_CAP
                && let Some(old) = self.delivered_order.pop_front()
            {
                self.delivered.remove(&old);
            }
        }
    }

    /// Whether the room is known to have our message `id` (a retry after a lost confirmation).
    pub(crate) fn was_delivered(&self, room: &BareJid, id: &str) -> bool {
        self.delivered.contains(&(room.clone(), id.to_owned()))
    }
}

/// An XMPP date-time (XEP-0082) in UTC, e.g. `2026-11-23T15:04:05Z`.
pub(crate) fn xmpp_datetime(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_utc_xep_0082() {
        assert_eq!(xmpp_datetime(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(xmpp_datetime(UNIX_EPOCH + Duration::from_secs(1_795_446_245)), "2026-11-23T15:04:05Z");
        assert_eq!(xmpp_datetime(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn our_archived_messages_need_our_nick_and_our_id_form() {
        let mut history = History::default();
        let room = BareJid::new("r@c.example").unwrap();
        history.our_nick(&room, "Alice");
        assert!(history.was_ours(&room, "Alice", Some("brygga.abc")));
        assert!(!history.was_ours(&room, "Alice", Some("abc")));
        assert!(!history.was_ours(&room, "Mallory", Some("brygga.abc")));
    }

    #[test]
    fn a_gap_moves_the_catch_up_back() {
        let mut history = History::default();
        let room = BareJid::new("r@c.example").unwrap();
        assert_eq!(history.catch_up_from(&room), None);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        history.seen(&room, t0 + Duration::from_secs(100));
        assert!(history.gap(&room, t0));
        assert!(!history.gap(&room, t0 + Duration::from_secs(50)));
        assert_eq!(history.catch_up_from(&room), Some(t0 - OVERLAP));
        history.start_catch_up(&room, "q", t0);
        assert_eq!(history.catch_up_from(&room), Some(t0 + Duration::from_secs(100) - OVERLAP));
    }

    #[test]
    fn catch_up_points_are_saved_at_most_every_few_seconds() {
        let mut history = History::default();
        let room = BareJid::new("r@c.example").unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(history.save_due(&room, t0), None, "nothing seen yet");
        history.seen(&room, t0);
        assert_eq!(history.save_due(&room, t0), Some(t0));
        history.seen(&room, t0 + Duration::from_secs(1));
        assert_eq!(history.save_due(&room, t0 + Duration::from_secs(1)), None);
        assert_eq!(history.save_due(&room, t0 + SAVE_EVERY), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn delivered_ids_are_bounded() {
        let mut history = History::default();
        let room = BareJid::new("r@c.example").unwrap();
        for i in 0..=DELIVERED_CAP {
            history.delivered(&room, &i.to_string());
        }
        assert!(!history.was_delivered(&room, "0"));
        assert!(history.was_delivered(&room, &DELIVERED_CAP.to_string()));
    }
}
