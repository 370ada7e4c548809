//! The test-side control API: direct Rust calls that act on the workspace
//! through the same code paths as REST, so realtime clients see them exactly
//! as they would see real activity.

use crate::error::DoubleError;
use crate::hub::RealtimeSubscription;
use crate::limits::RateLimit;
use crate::model::{Message, Presence, RoomType, Upload};
use crate::rest::chat::send_request;
use crate::workspace::{NewUser, SendRequest};
use crate::{RocketChatDouble, ids, time};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A user created by the test, with a valid token (personal access token style).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestUser {
    /// `_id`, the `X-User-Id`.
    pub id: String,
    /// `username`.
    pub username: String,
    /// A valid `X-Auth-Token` / DDP resume token.
    pub token: String,
}

impl RocketChatDouble {
    fn add(&self, username: &str, roles: &[&str]) -> TestUser {
        let new = NewUser {
            username: username.to_owned(),
            name: username.to_owned(),
            email: format!("{username}@example.invalid"),
            password: format!("{username}-password"),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        let user = self
            .shared
            .with(|ws| ws.add_user(new))
            .unwrap_or_else(|e| panic!("creating user {username}: {}", e.message()));
        TestUser { id: user.id, username: user.username, token: user.tokens[0].clone() }
    }

    /// Creates a normal user (role `user`). Its password is `<username>-password`.
    pub fn create_user(&self, username: &str) -> TestUser {
        self.add(username, &["user"])
    }

    /// Creates an administrator (roles `admin` and `user`).
    pub fn create_admin(&self, username: &str) -> TestUser {
        self.add(username, &["admin", "user"])
    }

    /// Creates a user with the given roles (`bot` holds `message-impersonate`).
    pub fn create_user_with_roles(&self, username: &str, roles: &[&str]) -> TestUser {
        self.add(username, roles)
    }

    /// Grants (`true`) or takes away (`false`) one permission, e.g. `message-impersonate`.
    pub fn set_permission(&self, user: &TestUser, permission: &str, granted: bool) {
        self.shared.with(|ws| {
            if let Some(u) = ws.user_mut(&user.id) {
                let (add, remove) =
                    if granted { (&mut u.granted, &mut u.revoked) } else { (&mut u.revoked, &mut u.granted) };
                remove.remove(permission);
                add.insert(permission.to_owned());
            }
        });
    }

    /// Creates a public channel `name` with `creator` and `members` subscribed; returns its id.
    pub fn create_channel(&self, name: &str, creator: &TestUser, members: &[&TestUser]) -> String {
        self.create_room(RoomType::Channel, name, creator, members)
    }

    /// Creates a private group; returns its id.
    pub fn create_group(&self, name: &str, creator: &TestUser, members: &[&TestUser]) -> String {
        self.create_room(RoomType::Group, name, creator, members)
    }

    fn create_room(&self, kind: RoomType, name: &str, creator: &TestUser, members: &[&TestUser]) -> String {
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        self.shared
            .with(|ws| ws.create_room(kind, name, &creator.id, &ids))
            .unwrap_or_else(|e| panic!("creating room {name}: {}", e.message()))
    }

    /// The direct-message room of `a` and `b`, created if needed; returns its id.
    pub fn create_dm(&self, a: &TestUser, b: &TestUser) -> String {
        self.shared.with(|ws| ws.direct_room(&a.id, &b.id))
    }

    /// Posts `text` as `user`, exactly as `chat.sendMessage` would.
    pub fn post_message(&self, user: &TestUser, rid: &str, text: &str) -> Result<Message, DoubleError> {
        self.post(user, SendRequest { rid: rid.into(), msg: text.into(), ..SendRequest::default() })
    }

    /// Posts a thread reply to `tmid`.
    pub fn post_reply(&self, user: &TestUser, rid: &str, tmid: &str, text: &str) -> Result<Message, DoubleError> {
        self.post(
            user,
            SendRequest { rid: rid.into(), msg: text.into(), tmid: Some(tmid.into()), ..SendRequest::default() },
        )
    }

    /// Posts a `chat.sendMessage` `message` object (`_id`, `rid`, `msg`, `tmid`, `attachments`, ...) as `user`.
    pub fn post_raw(&self, user: &TestUser, message: &Value) -> Result<Message, DoubleError> {
        self.post(user, send_request(message))
    }

    fn post(&self, user: &TestUser, request: SendRequest) -> Result<Message, DoubleError> {
        Ok(self.shared.with(|ws| ws.send(&user.id, request, Vec::new()))?)
    }

    /// Edits a message as `user` (`chat.update`).
    pub fn edit_message(&self, user: &TestUser, msg_id: &str, text: &str) -> Result<Message, DoubleError> {
        let rid = self.message(msg_id).map(|m| m.rid).unwrap_or_default();
        Ok(self.shared.with(|ws| ws.update(&user.id, &rid, msg_id, text))?)
    }

    /// Deletes a message as `user` (`chat.delete`).
    pub fn delete_message(&self, user: &TestUser, msg_id: &str) -> Result<(), DoubleError> {
        let rid = self.message(msg_id).map(|m| m.rid).unwrap_or_default();
        self.shared.with(|ws| ws.delete(&user.id, &rid, msg_id))?;
        Ok(())
    }

    /// Reacts as `user` (`chat.react`): `Some(true)` adds, `Some(false)` removes, `None` toggles.
    pub fn react(
        &self,
        user: &TestUser,
        msg_id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> Result<Message, DoubleError> {
        Ok(self.shared.with(|ws| ws.react(&user.id, msg_id, emoji, should_react))?)
    }

    /// Uploads and confirms a file as `user` (`rooms.media` then `rooms.mediaConfirm`).
    pub fn post_file(
        &self,
        user: &TestUser,
        rid: &str,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        text: &str,
    ) -> Result<Message, DoubleError> {
        let upload = Upload {
            id: ids::random_id(),
            rid: rid.into(),
            user_id: user.id.clone(),
            name: name.into(),
            content_type: content_type.into(),
            bytes: bytes.to_vec(),
            confirmed: false,
            uploaded_at: time::now_ms(),
        };
        let file_id = upload.id.clone();
        let request = SendRequest { rid: rid.into(), msg: text.into(), ..SendRequest::default() };
        Ok(self.shared.with(|ws| {
            ws.add_upload(upload);
            ws.confirm_upload(&user.id, &file_id, request, None)
        })?)
    }

    /// `user` joins `rid`, posting a `uj` system message.
    pub fn join(&self, user: &TestUser, rid: &str) -> Result<(), DoubleError> {
        Ok(self.shared.with(|ws| ws.add_member(rid, &user.id, None))?)
    }

    /// `user` leaves `rid`, posting a `ul` system message.
    pub fn leave(&self, user: &TestUser, rid: &str) -> Result<(), DoubleError> {
        Ok(self.shared.with(|ws| ws.remove_member(rid, &user.id))?)
    }

    /// Sets `user`'s presence, published as `user-status`.
    pub fn set_presence(&self, user: &TestUser, presence: Presence) -> Result<(), DoubleError> {
        Ok(self.shared.with(|ws| ws.set_presence(&user.id, presence))?)
    }

    /// Publishes `user` typing (or not) in `rid`, on `<rid>/user-activity` and `<rid>/typing`.
    pub fn set_typing(&self, user: &TestUser, rid: &str, typing: bool) -> Result<(), DoubleError> {
        Ok(self.shared.with(|ws| ws.set_typing(&user.id, rid, typing))?)
    }

    /// Messages of `rid`, oldest first (edits applied, deletions gone).
    pub fn messages(&self, rid: &str) -> Vec<Message> {
        self.shared.with(|ws| ws.room_messages(rid).into_iter().cloned().collect())
    }

    /// The message `id`.
    pub fn message(&self, id: &str) -> Option<Message> {
        self.shared.with(|ws| ws.message(id).cloned())
    }

    /// Member user ids of `rid`.
    pub fn members(&self, rid: &str) -> Vec<String> {
        self.shared.with(|ws| ws.room(rid).map(|r| r.members.clone()).unwrap_or_default())
    }

    /// The id of the user called `username`.
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.shared.with(|ws| ws.user_by_username(username).map(|u| u.id.clone()))
    }

    /// The status and status text of the user called `username`.
    pub fn status_of(&self, username: &str) -> Option<(Presence, String)> {
        self.shared.with(|ws| ws.user_by_username(username).map(|u| (u.status, u.status_text.clone())))
    }

    /// Usernames of all users.
    pub fn usernames(&self) -> Vec<String> {
        self.shared.with(|ws| ws.users().map(|u| u.username.clone()).collect())
    }

    /// All uploads, confirmed or not.
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.with(|ws| ws.uploads().cloned().collect())
    }

    /// Revokes one token of `user` and drops realtime sessions logged in with it.
    pub fn revoke_token(&self, user: &TestUser, token: &str) {
        self.shared.with(|ws| ws.user_mut(&user.id).map(|u| u.tokens.retain(|t| t != token)));
        self.shared.hub.drop_logins(&user.id, Some(token));
    }

    /// Revokes every token of `user`.
    pub fn revoke_all_tokens(&self, user: &TestUser) {
        self.shared.with(|ws| ws.user_mut(&user.id).map(|u| u.tokens.clear()));
        self.shared.hub.drop_logins(&user.id, None);
    }

    /// Makes the workspace unavailable (503s, refused websocket upgrades, dropped sessions) or available again.
    pub fn set_available(&self, available: bool) {
        self.shared.available.store(available, Ordering::SeqCst);
        if !available {
            self.shared.hub.drop_all();
        }
    }

    /// Drops every realtime connection abruptly; returns how many there were.
    pub fn drop_realtime_connections(&self) -> usize {
        self.shared.hub.drop_all()
    }

    /// Sends `text` verbatim as a websocket text frame to every realtime session (malformed input tests).
    pub fn send_raw_realtime(&self, text: &str) -> usize {
        self.shared.hub.send_raw(text)
    }

    /// Connected realtime sessions.
    pub fn realtime_connections(&self) -> usize {
        self.shared.hub.len()
    }

    /// All stream subscriptions of connected sessions.
    pub fn realtime_subscriptions(&self) -> Vec<RealtimeSubscription> {
        self.shared.hub.subscriptions()
    }

    /// Waits until `user_id` has subscribed to stream `name` with `param`; false on timeout.
    pub async fn wait_for_subscription(&self, user_id: &str, name: &str, param: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .realtime_subscriptions()
                .iter()
                .any(|s| s.user_id.as_deref() == Some(user_id) && s.name == name && s.param == param);
            if found {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Rate-limits every REST route to `limit` (`None` turns limiting off, the default).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.limiter().limit = limit;
    }

    /// Answers the next `count` REST requests with 429, whatever the limit.
    pub fn force_rate_limited(&self, count: u32) {
        self.shared.limiter().forced = count;
    }

    /// How many requests were refused with 429.
    pub fn rate_limited_responses(&self) -> u64 {
        self.shared.limiter().refused
    }

    /// REST requests seen per route, keyed `METHOD name` (e.g. `POST chat.sendMessage`).
    pub fn request_counts(&self) -> HashMap<String, u64> {
        self.shared.request_counts()
    }

    /// Sets `Message_MaxAllowedSize` (default 5000 characters).
    pub fn set_max_message_size(&self, chars: usize) {
        self.shared.with(|ws| ws.max_message_size = chars);
    }
}
