//! What the adapter knows about each bridged group chat: which of our JIDs
//! sit in it under which nick, who else is there, and who waits for what.
//!
//! Everything here belongs to one connection: a new link generation starts
//! from nothing, because the server forgets a component's occupants when
//! the component goes away.

use std::collections::HashMap;

use tokio::sync::oneshot;
use tokio_xmpp::jid::{BareJid, FullJid};

/// Result of a join: the nick the room gave us, or the error condition.
pub(crate) type JoinResult = Result<String, String>;

/// One room's state.
#[derive(Default)]
struct Room {
    /// Our JIDs that are in, with their nicks.
    seats: HashMap<FullJid, String>,
    /// Joins in progress: the nick asked for, and the waiters.
    joining: HashMap<FullJid, (Option<String>, Vec<oneshot::Sender<JoinResult>>)>,
    /// Other occupants by nick.
    occupants: HashMap<String, Occupant>,
    /// The room stamps trustworthy XEP-0421 occupant ids.
    occupant_ids: Option<bool>,
}

/// Someone in the room who is not us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Occupant {
    /// Who they are across nick changes: real JID, room-scoped occupant id,
    /// or (when the room shows neither) their occupant JID.
    pub(crate) identity: String,
    /// The name last bridged for them (their nick).
    pub(crate) name: String,
    /// Their `show` and status text.
    pub(crate) presence: (Option<String>, Option<String>),
    /// Their avatar's hash, when they announced one.
    pub(crate) avatar: Option<String>,
}

/// All rooms of one connection generation.
#[derive(Default)]
pub(crate) struct Rooms {
    generation: u64,
    rooms: HashMap<BareJid, Room>,
    /// Our messages waiting for the room to reflect them: (room, id) -> stanza id.
    reflections: HashMap<(BareJid, String), oneshot::Sender<Option<String>>>,
    /// Occupants who went away and may come back before their leave is bridged,
    /// by (room, identity), with the token of the timer that will bridge it.
    pending_leaves: HashMap<(BareJid, String), u64>,
    next_token: u64,
}

/// What a caller must do to get a seat.
pub(crate) enum Seat {
    /// Already in, under this nick.
    Taken(String),
    /// Wait for the join someone else started.
    Wait(oneshot::Receiver<JoinResult>),
    /// Send the join presence, then wait.
    Join(oneshot::Receiver<JoinResult>),
}

impl Rooms {
    /// Forgets everything when the link reconnected.
    pub(crate) fn sync_generation(&mut self, generation: u64) {
        if self.generation != generation {
            self.generation = generation;
            self.rooms.clear();
            self.reflections.clear();
            self.pending_leaves.clear();
        }
    }

    /// Starts or joins the wait for `jid`'s seat in `room`.
    pub(crate) fn seat(&mut self, room: &BareJid, jid: &FullJid) -> Seat {
        let state = self.rooms.entry(room.clone()).or_default();
        if let Some(nick) = state.seats.get(jid) {
            return Seat::Taken(nick.clone());
        }
        let (tx, rx) = oneshot::channel();
        match state.joining.get_mut(jid) {
            Some((_, waiters)) => {
                waiters.push(tx);
                Seat::Wait(rx)
            }
            None => {
                state.joining.insert(jid.clone(), (None, vec![tx]));
                Seat::Join(rx)
            }
        }
    }

    /// Notes the nick a join asks for: the room announces the new occupant
    /// to the others (our listener) before it confirms the join to us.
    pub(crate) fn joining_as(&mut self, room: &BareJid, jid: &FullJid, nick: &str) {
        if let Some((asked, _)) = self.rooms.get_mut(room).and_then(|r| r.joining.get_mut(jid)) {
            *asked = Some(nick.to_owned());
        }
    }

    /// Whether `jid` sits in `room` or is joining it.
    pub(crate) fn is_present(&self, room: &BareJid, jid: &FullJid) -> bool {
        self.rooms.get(room).is_some_and(|r| r.seats.contains_key(jid) || r.joining.contains_key(jid))
    }

    /// Our JID's self-presence (status 110) arrived: the join is complete.
    pub(crate) fn joined(&mut self, room: &BareJid, jid: &FullJid, nick: &str) {
        let state = self.rooms.entry(room.clone()).or_default();
        state.seats.insert(jid.clone(), nick.to_owned());
        for waiter in state.joining.remove(jid).map(|(_, w)| w).unwrap_or_default() {
            let _ = waiter.send(Ok(nick.to_owned()));
        }
    }

    /// A join failed, or our JID left or was removed.
    pub(crate) fn left(&mut self, room: &BareJid, jid: &FullJid, error: Option<&str>) {
        let Some(state) = self.rooms.get_mut(room) else { return };
        state.seats.remove(jid);
        let why = error.unwrap_or("left the room").to_owned();
        for waiter in state.joining.remove(jid).map(|(_, w)| w).unwrap_or_default() {
            let _ = waiter.send(Err(why.clone()));
        }
    }

    /// Whether `nick` is one of our own seats in `room`, or being joined as
    /// one (its presences and messages are ours, not an occupant's).
    pub(crate) fn is_ours(&self, room: &BareJid, nick: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| {
            r.seats.values().any(|n| n == nick) || r.joining.values().any(|(asked, _)| asked.as_deref() == Some(nick))
        })
    }

    /// The nick `jid` sits under in `room`.
    pub(crate) fn nick_of(&self, room: &BareJid, jid: &FullJid) -> Option<String> {
        self.rooms.get(room)?.seats.get(jid).cloned()
    }

    /// The rooms `jid` sits in, with its nick there.
    pub(crate) fn seats_of(&self, jid: &FullJid) -> Vec<(BareJid, String)> {
        self.rooms.iter().filter_map(|(room, r)| Some((room.clone(), r.seats.get(jid)?.clone()))).collect()
    }

    /// The nick an occupant with this identity has in `room` now.
    pub(crate) fn nick_of_identity(&self, room: &BareJid, identity: &str) -> Option<String> {
        self.rooms.get(room)?.occupants.iter().find(|(_, o)| o.identity == identity).map(|(nick, _)| nick.clone())
    }

    /// Records another occupant's presence; returns what we knew of them
    /// under that nick before. A pending leave of the same person is called off.
    pub(crate) fn occupant_present(&mut self, room: &BareJid, nick: &str, occupant: Occupant) -> Option<Occupant> {
        let came_back = self.pending_leaves.remove(&(room.clone(), occupant.identity.clone())).is_some();
        let state = self.rooms.entry(room.clone()).or_default();
        let before = state.occupants.insert(nick.to_owned(), occupant.clone());
        // Back within the grace period: as if they had never left.
        before.or_else(|| came_back.then_some(Occupant { presence: (None, None), ..occupant }))
    }

    /// Moves an occupant to a new nick (status 303), keeping who they are.
    pub(crate) fn occupant_renamed(&mut self, room: &BareJid, old: &str, new: &str) -> Option<Occupant> {
        let state = self.rooms.get_mut(room)?;
        let occupant = state.occupants.remove(old)?;
        state.occupants.insert(new.to_owned(), occupant.clone());
        Some(occupant)
    }

    /// Starts the grace period of someone who left; returns the timer's token.
    pub(crate) fn leave_pending(&mut self, room: &BareJid, identity: &str) -> u64 {
        self.next_token += 1;
        self.pending_leaves.insert((room.clone(), identity.to_owned()), self.next_token);
        self.next_token
    }

    /// Whether the leave with this token still stands (they did not come back).
    pub(crate) fn leave_due(&mut self, room: &BareJid, identity: &str, token: u64) -> bool {
        let key = (room.clone(), identity.to_owned());
        if self.pending_leaves.get(&key) == Some(&token) {
            self.pending_leaves.remove(&key);
            return true;
        }
        false
    }

    /// Records whether the room stamps occupant ids.
    pub(crate) fn set_occupant_ids(&mut self, room: &BareJid, supported: bool) {
        self.rooms.entry(room.clone()).or_default().occupant_ids = Some(supported);
    }

    /// Whether the room's occupant ids are known (`Some`) and trustworthy (`true`).
    pub(crate) fn occupant_ids(&self, room: &BareJid) -> Option<bool> {
        self.rooms.get(room)?.occupant_ids
    }

    /// Records an occupant leaving; returns what we knew of them.
    pub(crate) fn occupant_gone(&mut self, room: &BareJid, nick: &str) -> Option<Occupant> {
        self.rooms.get_mut(room)?.occupants.remove(nick)
    }

    /// What we know of an occupant.
    pub(crate) fn occupant(&self, room: &BareJid, nick: &str) -> Option<&Occupant> {
        self.rooms.get(room)?.occupants.get(nick)
    }

    /// Waits for the room to reflect our message with this id.
    pub(crate) fn expect_reflection(&mut self, room: &BareJid, id: &str) -> oneshot::Receiver<Option<String>> {
        let (tx, rx) = oneshot::channel();
        self.reflections.insert((room.clone(), id.to_owned()), tx);
        rx
    }

    /// The room reflected one of our messages; returns whether someone waited.
    pub(crate) fn reflected(&mut self, room: &BareJid, id: &str, stanza_id: Option<String>) -> bool {
        match self.reflections.remove(&(room.clone(), id.to_owned())) {
            Some(waiter) => waiter.send(stanza_id).is_ok(),
            None => false,
        }
    }

    /// Stops waiting for a reflection (after a timeout).
    pub(crate) fn forget_reflection(&mut self, room: &BareJid, id: &str) {
        self.reflections.remove(&(room.clone(), id.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> BareJid {
        BareJid::new("room@conference.localhost").unwrap()
    }

    fn me() -> FullJid {
        FullJid::new("al@matrix.localhost/matrix").unwrap()
    }

    #[test]
    fn one_join_serves_every_waiter() {
        let mut rooms = Rooms::default();
        let Seat::Join(mut first) = rooms.seat(&room(), &me()) else { panic!("first caller must join") };
        let Seat::Wait(mut second) = rooms.seat(&room(), &me()) else { panic!("second caller must wait") };
        rooms.joined(&room(), &me(), "Al");
        assert_eq!(first.try_recv().unwrap(), Ok("Al".to_owned()));
        assert_eq!(second.try_recv().unwrap(), Ok("Al".to_owned()));
        assert!(matches!(rooms.seat(&room(), &me()), Seat::Taken(n) if n == "Al"));
        assert!(rooms.is_ours(&room(), "Al"));
    }

    #[test]
    fn a_nick_being_joined_is_already_ours() {
        let mut rooms = Rooms::default();
        let Seat::Join(_rx) = rooms.seat(&room(), &me()) else { panic!() };
        assert!(!rooms.is_ours(&room(), "Al"));
        rooms.joining_as(&room(), &me(), "Al");
        assert!(rooms.is_ours(&room(), "Al") && rooms.is_present(&room(), &me()));
        rooms.left(&room(), &me(), Some("conflict"));
        assert!(!rooms.is_ours(&room(), "Al") && !rooms.is_present(&room(), &me()));
    }

    #[test]
    fn failed_joins_and_new_generations_forget_seats() {
        let mut rooms = Rooms::default();
        let Seat::Join(mut rx) = rooms.seat(&room(), &me()) else { panic!() };
        rooms.left(&room(), &me(), Some("conflict"));
        assert_eq!(rx.try_recv().unwrap(), Err("conflict".to_owned()));
        rooms.joined(&room(), &me(), "Al");
        rooms.sync_generation(2);
        assert!(!rooms.is_ours(&room(), "Al"));
        assert!(matches!(rooms.seat(&room(), &me()), Seat::Join(_)));
    }

    fn someone(identity: &str) -> Occupant {
        Occupant { identity: identity.into(), name: "Bob".into(), presence: (None, None), avatar: None }
    }

    #[test]
    fn a_quick_return_calls_off_the_leave() {
        let mut rooms = Rooms::default();
        assert_eq!(rooms.occupant_present(&room(), "Bob", someone("bob@localhost")), None);
        rooms.occupant_gone(&room(), "Bob");
        let token = rooms.leave_pending(&room(), "bob@localhost");
        assert!(rooms.occupant_present(&room(), "Bob", someone("bob@localhost")).is_some(), "known again");
        assert!(!rooms.leave_due(&room(), "bob@localhost", token));
        rooms.occupant_gone(&room(), "Bob");
        let token = rooms.leave_pending(&room(), "bob@localhost");
        assert!(rooms.leave_due(&room(), "bob@localhost", token));
    }

    #[test]
    fn renames_keep_the_identity() {
        let mut rooms = Rooms::default();
        rooms.occupant_present(&room(), "Bob", someone("room#x1"));
        assert_eq!(rooms.occupant_renamed(&room(), "Bob", "Robert").unwrap().identity, "room#x1");
        assert_eq!(rooms.occupant(&room(), "Robert").unwrap().identity, "room#x1");
        assert!(rooms.occupant(&room(), "Bob").is_none());
    }

    #[test]
    fn reflections_reach_their_waiter_once() {
        let mut rooms = Rooms::default();
        let mut rx = rooms.expect_reflection(&room(), "m1");
        assert!(rooms.reflected(&room(), "m1", Some("s1".into())));
        assert_eq!(rx.try_recv().unwrap(), Some("s1".into()));
        assert!(!rooms.reflected(&room(), "m1", None));
    }
}
