//! Rooms, membership (Rocket.Chat's subscriptions) and history queries.

use super::{SendRequest, Workspace};
use crate::error::ApiError;
use crate::events::StreamEvent;
use crate::ids;
use crate::model::{Message, Room, RoomType};
use crate::time::{Format, Millis, now_ms};
use serde_json::{Value, json};

/// A history query (`channels.history` and friends).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Only messages after (or at, when inclusive) this time.
    pub oldest: Option<Millis>,
    /// Only messages before (or at, when inclusive) this time; default now.
    pub latest: Option<Millis>,
    /// Whether the bounds are inclusive.
    pub inclusive: bool,
    /// Page size.
    pub count: usize,
    /// Messages to skip, newest first.
    pub offset: usize,
    /// Whether thread replies are included.
    pub show_thread_messages: bool,
}

impl Workspace {
    /// Creates a channel or group named `name`, with `creator` and `members` subscribed.
    pub fn create_room(
        &mut self,
        kind: RoomType,
        name: &str,
        creator: &str,
        members: &[String],
    ) -> Result<String, ApiError> {
        if self.rooms.values().any(|r| r.name.as_deref() == Some(name)) {
            return Err(ApiError::meteor(
                "error-duplicate-channel-name",
                &format!("A channel with name '{name}' exists"),
            ));
        }
        let id = ids::random_id();
        self.insert_room(id.clone(), kind, Some(name.to_owned()), creator, members);
        Ok(id)
    }

    /// The direct-message room of two users, created on first use; its id is
    /// both user ids sorted and concatenated, as Rocket.Chat makes it.
    pub fn direct_room(&mut self, a: &str, b: &str) -> String {
        let mut pair = [a.to_owned(), b.to_owned()];
        pair.sort();
        let id = pair.concat();
        if !self.rooms.contains_key(&id) {
            let members: Vec<String> = if a == b { vec![a.to_owned()] } else { pair.to_vec() };
            self.insert_room(id.clone(), RoomType::Direct, None, a, &members);
        }
        id
    }

    fn insert_room(&mut self, id: String, kind: RoomType, name: Option<String>, creator: &str, members: &[String]) {
        let now = now_ms();
        let mut all = vec![creator.to_owned()];
        all.extend(members.iter().filter(|m| *m != creator).cloned());
        let room = Room {
            id: id.clone(),
            kind,
            name,
            creator: creator.to_owned(),
            members: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.rooms.insert(id.clone(), room);
        self.room_log.insert(id.clone(), Vec::new());
        for member in all {
            self.subscribe(&id, &member);
        }
    }

    /// Adds a subscription without a system message (room creation).
    fn subscribe(&mut self, rid: &str, user_id: &str) {
        let Some(room) = self.rooms.get_mut(rid) else { return };
        if room.members.iter().any(|m| m == user_id) {
            return;
        }
        room.members.push(user_id.to_owned());
        room.updated_at = now_ms();
        let sub = self.render_subscription(rid, user_id, Format::Ddp);
        self.events.push(StreamEvent::NotifyUser {
            uid: user_id.into(),
            event: "subscriptions-changed".into(),
            args: vec![json!("inserted"), sub],
        });
    }

    /// `user_id` joins `rid` (or is added by `by`), posting `uj` (or `au`) like the real server.
    pub fn add_member(&mut self, rid: &str, user_id: &str, by: Option<&str>) -> Result<(), ApiError> {
        let room = self.rooms.get(rid).ok_or_else(|| ApiError::meteor("error-invalid-room", "Invalid room"))?;
        if room.kind == RoomType::Direct {
            return Err(ApiError::meteor("error-cant-invite-for-direct-room", "Can't invite user to direct rooms"));
        }
        let user = self.user(user_id).ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?.clone();
        if self.is_member(rid, user_id) {
            return Ok(());
        }
        self.subscribe(rid, user_id);
        let (kind, actor) = match by {
            Some(inviter) if inviter != user_id => ("au", inviter.to_owned()),
            _ => ("uj", user_id.to_owned()),
        };
        self.system_message(rid, kind, &actor, &user.username)
    }

    /// `user_id` leaves `rid`, posting `ul` first (so members still subscribed see it).
    pub fn remove_member(&mut self, rid: &str, user_id: &str) -> Result<(), ApiError> {
        if !self.is_member(rid, user_id) {
            return Err(ApiError::meteor("error-user-not-in-room", "You are not in this room"));
        }
        let username = self.user(user_id).map(|u| u.username.clone()).unwrap_or_default();
        self.system_message(rid, "ul", user_id, &username)?;
        let sub = self.render_subscription(rid, user_id, Format::Ddp);
        if let Some(room) = self.rooms.get_mut(rid) {
            room.members.retain(|m| m != user_id);
            room.updated_at = now_ms();
        }
        self.events.push(StreamEvent::NotifyUser {
            uid: user_id.into(),
            event: "subscriptions-changed".into(),
            args: vec![json!("removed"), sub],
        });
        Ok(())
    }

    fn system_message(&mut self, rid: &str, kind: &str, actor: &str, text: &str) -> Result<(), ApiError> {
        let request = SendRequest { rid: rid.into(), msg: text.into(), t: Some(kind.into()), ..SendRequest::default() };
        self.insert_message(actor, request, Vec::new()).map(drop)
    }

    /// Messages of `rid` matching `query`, newest first, as the history endpoints return them.
    pub fn history(&self, rid: &str, query: &HistoryQuery) -> Vec<&Message> {
        let latest = query.latest.unwrap_or(i64::MAX);
        let in_range = |ts: Millis| {
            let above = query.oldest.is_none_or(|o| if query.inclusive { ts >= o } else { ts > o });
            let below = if query.inclusive { ts <= latest } else { ts < latest };
            above && below
        };
        let visible =
            |m: &&Message| query.show_thread_messages || m.tmid.is_none() || m.extra.get("tshow") == Some(&json!(true));
        let mut found: Vec<&Message> =
            self.room_messages(rid).into_iter().filter(|m| in_range(m.ts)).filter(visible).collect();
        found.reverse();
        found.into_iter().skip(query.offset).take(query.count).collect()
    }

    /// The room document (`rooms.info`, `im.create`, ...).
    pub fn render_room(&self, room: &Room, fmt: Format) -> Value {
        let creator =
            self.user(&room.creator).map(|u| json!({ "_id": u.id, "username": u.username })).unwrap_or(Value::Null);
        let msgs = self.room_log.get(&room.id).map_or(0, Vec::len);
        let mut doc = json!({
            "_id": room.id,
            "t": room.kind.letter(),
            "usersCount": room.members.len(),
            "msgs": msgs,
            "ts": fmt.date(room.created_at),
            "_updatedAt": fmt.date(room.updated_at),
            "u": creator,
            "ro": false,
            "default": false,
            "sysMes": true,
        });
        if let Some(name) = &room.name {
            doc["name"] = json!(name);
            doc["fname"] = json!(name);
        } else {
            let usernames: Vec<&str> =
                room.members.iter().filter_map(|m| self.user(m)).map(|u| u.username.as_str()).collect();
            doc["usernames"] = json!(usernames);
            doc["uids"] = json!(room.members);
        }
        doc
    }

    /// `user_id`'s subscription document for `rid`.
    pub fn render_subscription(&self, rid: &str, user_id: &str, fmt: Format) -> Value {
        let Some(room) = self.rooms.get(rid) else { return Value::Null };
        let user = self.user(user_id);
        let other = room.members.iter().find(|m| *m != user_id).and_then(|m| self.user(m));
        let name = room.name.clone().or_else(|| other.map(|u| u.username.clone())).unwrap_or_default();
        json!({
            "_id": format!("{rid}{user_id}"),
            "rid": rid,
            "name": name,
            "fname": name,
            "t": room.kind.letter(),
            "u": user.map(|u| json!({ "_id": u.id, "username": u.username, "name": u.name })),
            "open": true,
            "alert": false,
            "unread": 0,
            "userMentions": 0,
            "groupMentions": 0,
            "ts": fmt.date(room.created_at),
            "ls": fmt.date(room.updated_at),
            "_updatedAt": fmt.date(room.updated_at),
        })
    }
}
