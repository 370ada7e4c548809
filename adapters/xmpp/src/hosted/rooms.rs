//! Who is in each hosted group chat: XMPP occupants (one per bare JID, with
//! one or more sessions under one nick) and the Matrix users who appear there.
//!
//! XMPP occupants belong to one connection: a new link generation starts
//! with none (clients notice, e.g. by XEP-0410 self-pings, and rejoin).
//! Matrix occupants, bans and pending leaves outlive it, and the room's
//! record (`record.rs`) keeps them across restarts.

use std::collections::{BTreeMap, HashMap, HashSet};

use brygga_core::MatrixUserId;
use serde::{Deserialize, Serialize};
use tokio_xmpp::jid::{BareJid, FullJid};

use super::record::Record;

/// Sessions one bare JID may have in one room.
pub(crate) const MAX_SESSIONS: usize = 16;
/// Occupants (XMPP and Matrix) one room may have.
pub(crate) const MAX_OCCUPANTS: usize = 1_000;
/// Longest nick accepted, in characters.
pub(crate) const MAX_NICK_CHARS: usize = 64;

/// `show` and status text of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) show: Option<String>,
    pub(crate) status: Option<String>,
}

/// An XMPP user in a room: their sessions (full JIDs) under one nick.
#[derive(Clone, Debug)]
pub(crate) struct XmppOccupant {
    pub(crate) bare: BareJid,
    /// Sessions in join order, with what each shows.
    pub(crate) sessions: Vec<(FullJid, Shown)>,
}

impl XmppOccupant {
    fn has(&self, session: &FullJid) -> bool {
        self.sessions.iter().any(|(s, _)| s == session)
    }

    fn show(&mut self, session: &FullJid, shown: Shown) {
        if let Some(entry) = self.sessions.iter_mut().find(|(s, _)| s == session) {
            entry.1 = shown;
        }
    }
}

/// A room's name and subject, as Matrix last set them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Details {
    pub(crate) name: Option<String>,
    pub(crate) subject: Option<String>,
}

/// Someone another joiner sees in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) nick: String,
    /// The real JID shown (the room is non-anonymous): a session, or a puppet.
    pub(crate) jid: String,
    pub(crate) shown: Shown,
}

/// What a join presence did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Join {
    /// Refused with this stanza error condition.
    Refused(&'static str),
    /// The session is in now; `new_nick` when the occupant is new to the room.
    Joined { new_nick: bool },
    /// A session already in sent presence again (a show/status change).
    Updated,
    /// A session already in asked for another nick, which all the person's sessions now hold.
    Renamed { from: String },
}

/// One room's occupants, and what Matrix calls it.
#[derive(Default)]
struct Room {
    /// The Matrix room's name and topic (the group chat's subject).
    details: Details,
    xmpp: BTreeMap<String, XmppOccupant>,
    /// Matrix users by nick.
    matrix: BTreeMap<String, MatrixUserId>,
    /// Bare JIDs banned from Matrix.
    banned: HashSet<BareJid>,
}

/// Every hosted room's occupants.
#[derive(Default)]
pub(crate) struct Occupants {
    generation: u64,
    rooms: HashMap<BareJid, Room>,
    /// Rooms whose record was read.
    restored: HashSet<BareJid>,
    /// Leaves waiting out their grace period, by (room, bare JID), with a token.
    pending_leaves: HashMap<(BareJid, BareJid), u64>,
    next_token: u64,
}

impl Occupants {
    /// Forgets the XMPP occupants of an older connection; returns who they were
    /// (room, bare JID, nick), so their leaves can be bridged.
    pub(crate) fn sync_generation(&mut self, generation: u64) -> Vec<(BareJid, BareJid, String)> {
        if self.generation == generation {
            return Vec::new();
        }
        self.generation = generation;
        let mut gone = Vec::new();
        for (room, state) in &mut self.rooms {
            for (nick, occupant) in std::mem::take(&mut state.xmpp) {
                gone.push((room.clone(), occupant.bare, nick));
            }
        }
        gone
    }

    /// Whether the room's record was read.
    pub(crate) fn is_restored(&self, room: &BareJid) -> bool {
        self.restored.contains(room)
    }

    /// Takes in the room's kept state (once; later calls change nothing);
    /// returns the XMPP occupants it names (bare JID, nick) who are not in now.
    pub(crate) fn restore(&mut self, room: &BareJid, record: Record) -> Vec<(BareJid, String)> {
        if !self.restored.insert(room.clone()) {
            return Vec::new();
        }
        let state = self.rooms.entry(room.clone()).or_default();
        for (nick, user) in record.matrix {
            if !state.xmpp.contains_key(&nick) && !state.matrix.values().any(|u| *u == user) {
                state.matrix.insert(nick, user);
            }
        }
        state.banned.extend(record.banned.iter().filter_map(|b| BareJid::new(b).ok()));
        state.details = record.details;
        let present = |bare: &BareJid| state.xmpp.values().any(|o| o.bare == *bare);
        record
            .xmpp
            .iter()
            .filter_map(|(bare, nick)| Some((BareJid::new(bare).ok()?, nick.clone())))
            .filter(|(bare, _)| !present(bare))
            .collect()
    }

    /// The room's name and subject.
    pub(crate) fn details(&self, room: &BareJid) -> Details {
        self.rooms.get(room).map(|state| state.details.clone()).unwrap_or_default()
    }

    /// Takes in a new name and/or subject (an empty one clears it); returns
    /// the subject when it changed.
    pub(crate) fn set_details(&mut self, room: &BareJid, name: Option<&str>, subject: Option<&str>) -> Option<String> {
        let details = &mut self.rooms.entry(room.clone()).or_default().details;
        let given = |value: &str| Some(value.to_owned()).filter(|v| !v.is_empty());
        if let Some(name) = name {
            details.name = given(name);
        }
        let subject = subject.map(given)?;
        if subject == details.subject {
            return None;
        }
        details.subject = subject;
        Some(details.subject.clone().unwrap_or_default())
    }

    /// The room's state worth keeping.
    pub(crate) fn record(&self, room: &BareJid) -> Record {
        let Some(state) = self.rooms.get(room) else { return Record::default() };
        let mut banned: Vec<String> = state.banned.iter().map(|b| b.to_string()).collect();
        banned.sort();
        let xmpp = state.xmpp.iter().map(|(nick, o)| (o.bare.to_string(), nick.clone())).collect();
        Record { matrix: state.matrix.clone(), banned, details: state.details.clone(), xmpp }
    }

    /// A session's join (or presence update) under `nick`.
    pub(crate) fn join(&mut self, room: &BareJid, session: &FullJid, nick: &str, shown: Shown) -> Join {
        let bare = session.to_bare();
        let state = self.rooms.entry(room.clone()).or_default();
        if state.banned.contains(&bare) {
            return Join::Refused("forbidden");
        }
        let held = state.xmpp.iter().find(|(_, o)| o.bare == bare).map(|(n, o)| (n.clone(), o.has(session)));
        if let Some((held, in_room)) = held
            && held != nick
        {
            // A session already in changes the nick of all the person's
            // sessions; a new session must join under the nick they hold.
            if !in_room {
                return Join::Refused("not-acceptable");
            }
            if state.xmpp.contains_key(nick) || state.matrix.contains_key(nick) {
                return Join::Refused("conflict");
            }
            let mut occupant = state.xmpp.remove(&held).expect("the held nick is in the room");
            occupant.show(session, shown);
            state.xmpp.insert(nick.to_owned(), occupant);
            return Join::Renamed { from: held };
        }
        if let Some(occupant) = state.xmpp.get_mut(nick).filter(|o| o.bare == bare) {
            if let Some(entry) = occupant.sessions.iter_mut().find(|(s, _)| s == session) {
                entry.1 = shown;
                return Join::Updated;
            }
            if occupant.sessions.len() >= MAX_SESSIONS {
                return Join::Refused("resource-constraint");
            }
            occupant.sessions.push((session.clone(), shown));
            return Join::Joined { new_nick: false };
        }
        if state.xmpp.contains_key(nick) || state.matrix.contains_key(nick) {
            return Join::Refused("conflict");
        }
        if state.xmpp.len() + state.matrix.len() >= MAX_OCCUPANTS {
            return Join::Refused("service-unavailable");
        }
        state.xmpp.insert(nick.to_owned(), XmppOccupant { bare, sessions: vec![(session.clone(), shown)] });
        Join::Joined { new_nick: true }
    }

    /// A session left; returns its nick and whether it was the occupant's last.
    pub(crate) fn leave(&mut self, room: &BareJid, session: &FullJid) -> Option<(String, bool)> {
        let state = self.rooms.get_mut(room)?;
        let (nick, occupant) = state.xmpp.iter_mut().find(|(_, o)| o.sessions.iter().any(|(s, _)| s == session))?;
        let nick = nick.clone();
        occupant.sessions.retain(|(s, _)| s != session);
        let last = occupant.sessions.is_empty();
        if last {
            state.xmpp.remove(&nick);
        }
        Some((nick, last))
    }

    /// Removes an XMPP occupant with all their sessions (a kick or ban from
    /// Matrix); returns their nick and sessions.
    pub(crate) fn remove(&mut self, room: &BareJid, bare: &BareJid, ban: bool) -> Option<(String, Vec<FullJid>)> {
        let state = self.rooms.entry(room.clone()).or_default();
        if ban {
            state.banned.insert(bare.clone());
        }
        let nick = state.xmpp.iter().find(|(_, o)| &o.bare == bare).map(|(n, _)| n.clone())?;
        let occupant = state.xmpp.remove(&nick)?;
        Some((nick, occupant.sessions.into_iter().map(|(s, _)| s).collect()))
    }

    /// The nick a session sits under.
    pub(crate) fn nick_of(&self, room: &BareJid, session: &FullJid) -> Option<String> {
        let state = self.rooms.get(room)?;
        state.xmpp.iter().find(|(_, o)| o.sessions.iter().any(|(s, _)| s == session)).map(|(n, _)| n.clone())
    }

    /// Every session in the room.
    pub(crate) fn sessions(&self, room: &BareJid) -> Vec<FullJid> {
        let Some(state) = self.rooms.get(room) else { return Vec::new() };
        state.xmpp.values().flat_map(|o| o.sessions.iter().map(|(s, _)| s.clone())).collect()
    }

    /// The Matrix user who appears under `nick`.
    pub(crate) fn matrix_user(&self, room: &BareJid, nick: &str) -> Option<MatrixUserId> {
        self.rooms.get(room)?.matrix.get(nick).cloned()
    }

    /// The sessions of the occupant under `nick`.
    pub(crate) fn sessions_of(&self, room: &BareJid, nick: &str) -> Vec<FullJid> {
        let occupant = self.rooms.get(room).and_then(|state| state.xmpp.get(nick));
        occupant.map(|o| o.sessions.iter().map(|(s, _)| s.clone()).collect()).unwrap_or_default()
    }

    /// How an occupant appears to others: their first session's JID and show.
    pub(crate) fn seen(&self, room: &BareJid, nick: &str) -> Option<Seen> {
        let state = self.rooms.get(room)?;
        if let Some(occupant) = state.xmpp.get(nick) {
            let (jid, shown) = occupant.sessions.first()?;
            return Some(Seen { nick: nick.to_owned(), jid: jid.to_string(), shown: shown.clone() });
        }
        None
    }

    /// Everyone in the room but `nick`, XMPP occupants first.
    pub(crate) fn others(&self, room: &BareJid, nick: &str) -> Vec<(Seen, Option<MatrixUserId>)> {
        let Some(state) = self.rooms.get(room) else { return Vec::new() };
        let xmpp = state.xmpp.keys().filter(|n| *n != nick).filter_map(|n| self.seen(room, n)).map(|s| (s, None));
        let matrix = state.matrix.iter().filter(|(n, _)| *n != nick).map(|(n, user)| {
            (Seen { nick: n.clone(), jid: String::new(), shown: Shown::default() }, Some(user.clone()))
        });
        xmpp.chain(matrix).collect()
    }

    /// The nick of a Matrix user in the room, giving them one (their
    /// `wanted` name, else with a suffix) when they have none yet. Returns
    /// the nick and, when it changed, the one they had before (`Some("")`
    /// when they are new).
    pub(crate) fn matrix_nick(
        &mut self,
        room: &BareJid,
        user: &MatrixUserId,
        wanted: Option<&str>,
    ) -> (String, Option<String>) {
        let state = self.rooms.entry(room.clone()).or_default();
        let current = state.matrix.iter().find(|(_, u)| *u == user).map(|(n, _)| n.clone());
        match (current, wanted) {
            (Some(nick), None) => return (nick, None),
            (Some(nick), Some(w)) if nick == w || nick.starts_with(&format!("{w} (Matrix")) => return (nick, None),
            _ => {}
        }
        let wanted = wanted.map(str::to_owned).unwrap_or_else(|| user.localpart().to_owned());
        let before = state.matrix.iter().find(|(_, u)| *u == user).map(|(n, _)| n.clone());
        if let Some(old) = &before {
            state.matrix.remove(old);
        }
        let taken = |n: &str| state.xmpp.contains_key(n) || state.matrix.contains_key(n);
        let nick = std::iter::once(wanted.clone())
            .chain((1..).map(|i| if i == 1 { format!("{wanted} (Matrix)") } else { format!("{wanted} (Matrix {i})") }))
            .find(|n| !taken(n))
            .expect("an unbounded sequence has a free nick");
        state.matrix.insert(nick.clone(), user.clone());
        (nick, Some(before.unwrap_or_default()))
    }

    /// The Matrix user left the room; returns the nick they had.
    pub(crate) fn matrix_left(&mut self, room: &BareJid, user: &MatrixUserId) -> Option<String> {
        let state = self.rooms.get_mut(room)?;
        let nick = state.matrix.iter().find(|(_, u)| *u == user).map(|(n, _)| n.clone())?;
        state.matrix.remove(&nick);
        Some(nick)
    }

    /// Starts the grace period of someone's leave; returns the timer's token.
    pub(crate) fn leave_pending(&mut self, room: &BareJid, bare: &BareJid) -> u64 {
        self.next_token += 1;
        self.pending_leaves.insert((room.clone(), bare.clone()), self.next_token);
        self.next_token
    }

    /// Calls off a pending leave; returns whether there was one (they came back in time).
    pub(crate) fn came_back(&mut self, room: &BareJid, bare: &BareJid) -> bool {
        self.pending_leaves.remove(&(room.clone(), bare.clone())).is_some()
    }

    /// Whether the leave with this token still stands.
    pub(crate) fn leave_due(&mut self, room: &BareJid, bare: &BareJid, token: u64) -> bool {
        let key = (room.clone(), bare.clone());
        if self.pending_leaves.get(&key) == Some(&token) {
            self.pending_leaves.remove(&key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> BareJid {
        BareJid::new("town@matrix.localhost").unwrap()
    }

    fn jid(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    #[test]
    fn sessions_of_one_nick_are_one_occupant() {
        let mut o = Occupants::default();
        let (phone, laptop) = (jid("bob@localhost/phone"), jid("bob@localhost/laptop"));
        assert_eq!(o.join(&room(), &phone, "Bob", Shown::default()), Join::Joined { new_nick: true });
        assert_eq!(o.join(&room(), &laptop, "Bob", Shown::default()), Join::Joined { new_nick: false });
        assert_eq!(o.join(&room(), &laptop, "Bob", Shown::default()), Join::Updated);
        assert_eq!(
            o.join(&room(), &jid("bob@localhost/tablet"), "Robert", Shown::default()),
            Join::Refused("not-acceptable")
        );
        assert_eq!(o.join(&room(), &jid("eve@localhost/x"), "Bob", Shown::default()), Join::Refused("conflict"));
        assert_eq!(o.sessions(&room()).len(), 2);
        assert_eq!(o.leave(&room(), &phone), Some(("Bob".into(), false)));
        assert_eq!(o.leave(&room(), &laptop), Some(("Bob".into(), true)));
        assert_eq!(o.leave(&room(), &laptop), None);
        assert!(o.sessions(&room()).is_empty());
    }

    #[test]
    fn a_nick_change_moves_every_session() {
        let mut o = Occupants::default();
        let (phone, laptop) = (jid("bob@localhost/phone"), jid("bob@localhost/laptop"));
        o.join(&room(), &phone, "Bob", Shown::default());
        o.join(&room(), &laptop, "Bob", Shown::default());
        o.join(&room(), &jid("eve@localhost/x"), "Eve", Shown::default());
        assert_eq!(o.join(&room(), &laptop, "Eve", Shown::default()), Join::Refused("conflict"));
        assert_eq!(o.join(&room(), &laptop, "Robert", Shown::default()), Join::Renamed { from: "Bob".into() });
        assert_eq!(o.nick_of(&room(), &phone).as_deref(), Some("Robert"));
        assert_eq!(o.join(&room(), &phone, "Robert", Shown::default()), Join::Updated);
        assert_eq!(o.join(&room(), &jid("x@localhost/x"), "Bob", Shown::default()), Join::Joined { new_nick: true });
    }

    #[test]
    fn sessions_are_bounded_and_generations_forget_them() {
        let mut o = Occupants::default();
        o.sync_generation(1);
        for i in 0..MAX_SESSIONS {
            assert!(matches!(
                o.join(&room(), &jid(&format!("bob@localhost/{i}")), "Bob", Shown::default()),
                Join::Joined { .. }
            ));
        }
        assert_eq!(
            o.join(&room(), &jid("bob@localhost/more"), "Bob", Shown::default()),
            Join::Refused("resource-constraint")
        );
        let gone = o.sync_generation(2);
        assert_eq!(gone.len(), 1);
        assert!(o.sessions(&room()).is_empty());
    }

    #[test]
    fn matrix_users_get_free_nicks() {
        let mut o = Occupants::default();
        o.join(&room(), &jid("al@localhost/x"), "Alice", Shown::default());
        let alice = MatrixUserId::new("@alice:localhost").unwrap();
        assert_eq!(o.matrix_nick(&room(), &alice, Some("Alice")), ("Alice (Matrix)".into(), Some(String::new())));
        assert_eq!(o.matrix_nick(&room(), &alice, Some("Alice")), ("Alice (Matrix)".into(), None));
        assert_eq!(o.matrix_nick(&room(), &alice, None), ("Alice (Matrix)".into(), None));
        assert_eq!(o.matrix_nick(&room(), &alice, Some("Al")), ("Al".into(), Some("Alice (Matrix)".into())));
        assert_eq!(o.join(&room(), &jid("x@localhost/x"), "Al", Shown::default()), Join::Refused("conflict"));
        assert_eq!(o.others(&room(), "Bob").len(), 2);
        assert_eq!(o.matrix_left(&room(), &alice), Some("Al".into()));
    }

    #[test]
    fn matrix_occupants_and_bans_are_kept() {
        let mut o = Occupants::default();
        let alice = MatrixUserId::new("@alice:localhost").unwrap();
        o.matrix_nick(&room(), &alice, Some("Alice"));
        o.remove(&room(), &BareJid::new("eve@localhost").unwrap(), true);
        o.set_details(&room(), Some("Town hall"), Some("Budget"));
        o.join(&room(), &jid("bob@localhost/laptop"), "Bob", Shown::default());
        o.join(&room(), &jid("carol@localhost/x"), "Carol", Shown::default());
        let record = o.record(&room());
        let mut restarted = Occupants::default();
        assert!(!restarted.is_restored(&room()));
        let back = jid("bob@localhost/phone");
        restarted.join(&room(), &back, "Bob", Shown::default());
        let gone = restarted.restore(&room(), record.clone());
        assert_eq!(gone, vec![(BareJid::new("carol@localhost").unwrap(), "Carol".to_owned())]);
        assert!(restarted.is_restored(&room()));
        restarted.leave(&room(), &back);
        assert_eq!(restarted.record(&room()), Record { xmpp: Vec::new(), ..record.clone() });
        assert_eq!(
            restarted.join(&room(), &jid("eve@localhost/x"), "Eve", Shown::default()),
            Join::Refused("forbidden")
        );
        assert_eq!(
            restarted.join(&room(), &jid("al@localhost/x"), "Alice", Shown::default()),
            Join::Refused("conflict")
        );
        assert!(restarted.restore(&room(), Record::default()).is_empty());
        assert_eq!(restarted.record(&room()).banned, record.banned, "a second restore changes nothing");
    }

    #[test]
    fn names_and_subjects_change_apart() {
        let mut o = Occupants::default();
        assert_eq!(o.set_details(&room(), Some("Town hall"), None), None);
        assert_eq!(o.set_details(&room(), None, Some("Budget")), Some("Budget".into()));
        assert_eq!(o.set_details(&room(), None, Some("Budget")), None, "the same subject is no change");
        assert_eq!(o.details(&room()), Details { name: Some("Town hall".into()), subject: Some("Budget".into()) });
        assert_eq!(o.set_details(&room(), Some(""), Some("")), Some(String::new()));
        assert_eq!(o.details(&room()), Details::default());
    }

    #[test]
    fn bans_and_kicks_remove_every_session() {
        let mut o = Occupants::default();
        let bob = BareJid::new("bob@localhost").unwrap();
        o.join(&room(), &jid("bob@localhost/a"), "Bob", Shown::default());
        o.join(&room(), &jid("bob@localhost/b"), "Bob", Shown::default());
        let (nick, sessions) = o.remove(&room(), &bob, true).unwrap();
        assert_eq!((nick.as_str(), sessions.len()), ("Bob", 2));
        assert_eq!(o.join(&room(), &jid("bob@localhost/a"), "Bob", Shown::default()), Join::Refused("forbidden"));
    }

    #[test]
    fn a_quick_return_calls_off_the_leave() {
        let mut o = Occupants::default();
        let bob = BareJid::new("bob@localhost").unwrap();
        let token = o.leave_pending(&room(), &bob);
        assert!(o.came_back(&room(), &bob));
        assert!(!o.leave_due(&room(), &bob, token));
        let token = o.leave_pending(&room(), &bob);
        assert!(o.leave_due(&room(), &bob, token));
    }
}
