//! What the adapter knows of its rooms across reconnects: which Rocket.Chat
//! room (`rid`) belongs to which portal, which rooms are catching up (their
//! live messages held meanwhile), how far each room was surely seen, and
//! the ids of messages the bridge sent itself.

use std::collections::{HashMap, HashSet, VecDeque};

use brygga_core::RemoteRoomId;

use crate::api::RoomKind;
use crate::message::RcMessage;

/// How many of our own message ids are remembered.
const OURS_CAP: usize = 20_000;

/// A room being watched.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    /// The portal room it belongs to (the rid itself, or a direct-chat notation).
    pub(crate) portal: RemoteRoomId,
    /// Its kind, once asked.
    pub(crate) kind: Option<RoomKind>,
    /// Its name, once asked.
    pub(crate) name: Option<String>,
}

/// What a catch-up does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Read history again: the connection dropped again meanwhile.
    Again,
    /// Bridge these held live messages.
    Bridge(Vec<RcMessage>),
    /// Done; live messages flow directly again.
    Done,
}

/// Room state shared by the sessions.
#[derive(Default)]
pub(crate) struct Rooms {
    watched: HashMap<String, Watch>,
    /// Live messages held while a room catches up, by rid.
    held: HashMap<String, Vec<RcMessage>>,
    /// Rooms with a catch-up running, and whether another was asked for meanwhile.
    catching_up: HashMap<String, bool>,
    /// People seen in bridged rooms (their presence is bridged).
    people: HashSet<String>,
    /// Newest message time surely stored, by rid (ms).
    seen: HashMap<String, i64>,
    /// Rooms whose seen point changed since it was last saved.
    dirty: HashSet<String>,
    ours: HashSet<String>,
    ours_order: VecDeque<String>,
}

impl Rooms {
    /// Starts watching `rid` for `portal`; false if it already was.
    pub(crate) fn watch(&mut self, rid: &str, portal: RemoteRoomId) -> bool {
        if self.watched.contains_key(rid) {
            return false;
        }
        self.watched.insert(rid.to_owned(), Watch { portal, kind: None, name: None });
        true
    }

    /// The watch of a room, if watched.
    pub(crate) fn get(&self, rid: &str) -> Option<&Watch> {
        self.watched.get(rid)
    }

    /// Every watched room.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&String, &Watch)> {
        self.watched.iter()
    }

    /// Records what `rooms.info` said.
    pub(crate) fn describe(&mut self, rid: &str, kind: RoomKind, name: Option<String>) {
        if let Some(watch) = self.watched.get_mut(rid) {
            watch.kind = Some(kind);
            watch.name = name;
        }
    }

    /// The rid of a portal room, when watched.
    pub(crate) fn rid_of(&self, portal: &RemoteRoomId) -> Option<String> {
        self.watched.iter().find(|(_, w)| &w.portal == portal).map(|(rid, _)| rid.clone())
    }

    /// Starts holding live messages of a room for a catch-up; false when one
    /// runs already (it then runs once more before it lets go).
    pub(crate) fn begin_catch_up(&mut self, rid: &str) -> bool {
        self.held.entry(rid.to_owned()).or_default();
        match self.catching_up.get_mut(rid) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                self.catching_up.insert(rid.to_owned(), false);
                true
            }
        }
    }

    /// The next step of a catch-up that read its history: run again, bridge
    /// what was held, or (when neither) end the hold in the same step, so no
    /// message and no new request slips between.
    pub(crate) fn next_step(&mut self, rid: &str) -> Step {
        if let Some(again) = self.catching_up.get_mut(rid)
            && *again
        {
            *again = false;
            return Step::Again;
        }
        match self.held.get_mut(rid) {
            Some(held) if !held.is_empty() => Step::Bridge(std::mem::take(held)),
            _ => {
                self.held.remove(rid);
                self.catching_up.remove(rid);
                Step::Done
            }
        }
    }

    /// Remembers someone seen in a bridged room.
    pub(crate) fn saw_person(&mut self, username: &str) {
        if !self.people.contains(username) {
            self.people.insert(username.to_owned());
        }
    }

    /// Whether someone was seen in a bridged room.
    pub(crate) fn knows_person(&self, username: &str) -> bool {
        self.people.contains(username)
    }

    /// Holds a live message if its room catches up; gives it back otherwise.
    pub(crate) fn held_or(&mut self, message: RcMessage) -> Option<RcMessage> {
        match self.held.get_mut(&message.rid) {
            Some(held) => {
                held.push(message);
                None
            }
            None => Some(message),
        }
    }

    /// The newest surely stored message time of a room.
    pub(crate) fn seen(&self, rid: &str) -> Option<i64> {
        self.seen.get(rid).copied()
    }

    /// Moves a room's seen point forward (never back).
    pub(crate) fn mark_seen(&mut self, rid: &str, ts: i64) {
        let entry = self.seen.entry(rid.to_owned()).or_insert(ts);
        if ts >= *entry {
            *entry = ts;
            self.dirty.insert(rid.to_owned());
        }
    }

    /// Seen points changed since the last call, to save.
    pub(crate) fn take_dirty(&mut self) -> Vec<(String, i64)> {
        let dirty: Vec<String> = self.dirty.drain().collect();
        dirty.into_iter().filter_map(|rid| self.seen.get(&rid).map(|ts| (rid, *ts))).collect()
    }

    /// Records a message id the bridge sent.
    pub(crate) fn ours(&mut self, id: &str) {
        if self.ours.insert(id.to_owned()) {
            self.ours_order.push_back(id.to_owned());
            if self.ours_order.len() > OURS_CAP
                && let Some(old) = self.ours_order.pop_front()
            {
                self.ours.remove(&old);
            }
        }
    }

    /// Whether the bridge sent this message.
    pub(crate) fn is_ours(&self, id: &str) -> bool {
        self.ours.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> RcMessage {
        RcMessage { id: id.into(), rid: "r".into(), ..Default::default() }
    }

    #[test]
    fn held_messages_come_back_in_order_and_a_second_request_reruns() {
        let mut rooms = Rooms::default();
        assert!(rooms.held_or(message("a")).is_some());
        assert!(rooms.begin_catch_up("r"));
        assert!(rooms.held_or(message("b")).is_none());
        assert!(!rooms.begin_catch_up("r"), "one catch-up at a time");
        assert!(rooms.held_or(message("c")).is_none());
        assert_eq!(rooms.next_step("r"), Step::Again);
        let Step::Bridge(held) = rooms.next_step("r") else { panic!("held messages") };
        assert_eq!(held.into_iter().map(|m| m.id).collect::<Vec<_>>(), ["b", "c"]);
        assert!(rooms.held_or(message("d")).is_none(), "still held until a step finds nothing");
        assert!(matches!(rooms.next_step("r"), Step::Bridge(held) if held.len() == 1));
        assert_eq!(rooms.next_step("r"), Step::Done);
        assert!(rooms.held_or(message("e")).is_some());
        assert!(rooms.begin_catch_up("r"), "a new catch-up may start");
    }

    #[test]
    fn seen_points_only_move_forward_and_are_saved_once() {
        let mut rooms = Rooms::default();
        rooms.mark_seen("r", 10);
        rooms.mark_seen("r", 5);
        assert_eq!(rooms.seen("r"), Some(10));
        assert_eq!(rooms.take_dirty(), vec![("r".to_owned(), 10)]);
        assert!(rooms.take_dirty().is_empty());
    }

    #[test]
    fn watches_map_rids_to_portals() {
        let mut rooms = Rooms::default();
        let portal = RemoteRoomId::new("bob @a:hs").unwrap();
        assert!(rooms.watch("u1u2", portal.clone()));
        assert!(!rooms.watch("u1u2", portal.clone()));
        assert_eq!(rooms.rid_of(&portal).as_deref(), Some("u1u2"));
        assert_eq!(rooms.get("u1u2").unwrap().portal, portal);
    }
}
