//! The workspace's state: users, rooms with their members (subscriptions),
//! messages and uploads. Every mutation queues the stream events a real
//! server would publish; the caller emits them while still holding the lock,
//! so realtime order always matches state order.

mod messages;
mod rooms;

pub use messages::SendRequest;
pub use rooms::HistoryQuery;

use crate::error::ApiError;
use crate::events::StreamEvent;
use crate::ids;
use crate::model::{Message, Presence, Room, Upload, User};
use crate::time::{Millis, now_ms};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `Message_MaxAllowedSize`'s default.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 5000;

/// What a new account gets.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub password: String,
    pub roles: Vec<String>,
}

/// All state of one workspace.
#[derive(Debug)]
pub struct Workspace {
    users: BTreeMap<String, User>,
    rooms: BTreeMap<String, Room>,
    messages: HashMap<String, Message>,
    /// Message ids of each room in `ts` order.
    room_log: HashMap<String, Vec<String>>,
    uploads: HashMap<String, Upload>,
    /// Deleted message ids of each room, with when (for `chat.syncMessages`).
    deletions: HashMap<String, Vec<(String, Millis)>>,
    /// Events not yet published.
    pub(crate) events: Vec<StreamEvent>,
    /// `Message_MaxAllowedSize`.
    pub max_message_size: usize,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            rooms: BTreeMap::new(),
            messages: HashMap::new(),
            room_log: HashMap::new(),
            uploads: HashMap::new(),
            deletions: HashMap::new(),
            events: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl Workspace {
    /// Creates an account with one fresh token; fails like `users.create` on a taken username.
    pub fn add_user(&mut self, new: NewUser) -> Result<User, ApiError> {
        if self.user_by_username(&new.username).is_some() {
            let reason = format!("{} is already in use :(", new.username);
            return Err(ApiError::meteor("error-field-unavailable", &reason));
        }
        let user = User {
            id: ids::random_id(),
            username: new.username,
            name: new.name,
            roles: new.roles,
            tokens: vec![ids::random_token()],
            status: Presence::Offline,
            status_text: String::new(),
            email: new.email,
            password: new.password,
            granted: BTreeSet::new(),
            revoked: BTreeSet::new(),
            created_at: now_ms(),
        };
        self.users.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    /// The user with `id`.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    /// Mutable access to the user with `id`.
    pub fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.get_mut(id)
    }

    /// The user called `username` (Rocket.Chat usernames are unique, case-insensitively).
    pub fn user_by_username(&self, username: &str) -> Option<&User> {
        self.users.values().find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// All users, by id.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The user `user_id` if `token` is one of its tokens.
    pub fn authenticate(&self, user_id: &str, token: &str) -> Option<&User> {
        self.users.get(user_id).filter(|u| u.tokens.iter().any(|t| t == token))
    }

    /// Mints a new token for `user_id`.
    pub fn issue_token(&mut self, user_id: &str) -> Option<String> {
        let token = ids::random_token();
        self.users.get_mut(user_id)?.tokens.push(token.clone());
        Some(token)
    }

    /// Sets presence and publishes `user-status` to logged-in sessions.
    pub fn set_presence(&mut self, user_id: &str, presence: Presence) -> Result<(), ApiError> {
        self.set_status(user_id, Some(presence), None)
    }

    /// Sets a user's status and/or status text, as `users.setStatus` does, and publishes it.
    pub fn set_status(
        &mut self,
        user_id: &str,
        presence: Option<Presence>,
        text: Option<&str>,
    ) -> Result<(), ApiError> {
        let user = self.users.get_mut(user_id).ok_or_else(|| ApiError::failure("User not found."))?;
        if let Some(presence) = presence {
            user.status = presence;
        }
        if let Some(text) = text {
            user.status_text = text.to_owned();
        }
        let presence = user.status;
        let args = json!([user.id, user.username, presence.code(), user.status_text, user.name, user.roles]);
        self.events.push(StreamEvent::NotifyLogged { event: "user-status".into(), args: vec![args] });
        Ok(())
    }

    /// The room with `id`.
    pub fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// All rooms.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    /// Whether `user_id` is a member of `rid`.
    pub fn is_member(&self, rid: &str, user_id: &str) -> bool {
        self.rooms.get(rid).is_some_and(|r| r.members.iter().any(|m| m == user_id))
    }

    /// The message with `id`.
    pub fn message(&self, id: &str) -> Option<&Message> {
        self.messages.get(id)
    }

    /// Messages of `rid`, oldest first.
    pub fn room_messages(&self, rid: &str) -> Vec<&Message> {
        self.room_log
            .get(rid)
            .map(|ids| ids.iter().filter_map(|id| self.messages.get(id)).collect())
            .unwrap_or_default()
    }

    /// What changed in `rid` after `since`: messages updated (oldest change
    /// first) and ids deleted, with when.
    pub fn sync(&self, rid: &str, since: Millis) -> (Vec<&Message>, Vec<(String, Millis)>) {
        let mut updated: Vec<&Message> = self.room_messages(rid).into_iter().filter(|m| m.updated_at > since).collect();
        updated.sort_by_key(|m| m.updated_at);
        let deleted = self.deletions.get(rid).into_iter().flatten().filter(|(_, at)| *at > since).cloned().collect();
        (updated, deleted)
    }

    /// The upload with `id`.
    pub fn upload(&self, id: &str) -> Option<&Upload> {
        self.uploads.get(id)
    }

    /// All uploads.
    pub fn uploads(&self) -> impl Iterator<Item = &Upload> {
        self.uploads.values()
    }

    /// Stores a temporary upload (`rooms.media`).
    pub fn add_upload(&mut self, upload: Upload) {
        self.uploads.insert(upload.id.clone(), upload);
    }

    /// Publishes typing on `<rid>/user-activity` (8.x clients) and the legacy `<rid>/typing`.
    pub fn set_typing(&mut self, user_id: &str, rid: &str, typing: bool) -> Result<(), ApiError> {
        let user = self.users.get(user_id).ok_or_else(|| ApiError::failure("User not found."))?;
        if !self.is_member(rid, user_id) {
            return Err(ApiError::failure("error-not-allowed"));
        }
        let activity = if typing { json!(["user-typing"]) } else { json!([]) };
        let username = Value::String(user.username.clone());
        self.events.push(StreamEvent::NotifyRoom {
            rid: rid.into(),
            event: "user-activity".into(),
            args: vec![username.clone(), activity, json!({})],
        });
        self.events.push(StreamEvent::NotifyRoom {
            rid: rid.into(),
            event: "typing".into(),
            args: vec![username, json!(typing)],
        });
        Ok(())
    }
}
