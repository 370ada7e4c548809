//! Sending, editing, deleting and reacting to messages, and turning uploads
//! into file messages; the checks follow Rocket.Chat's `sendMessage`,
//! `updateMessage`, `deleteMessage` and `setReaction`.

use super::Workspace;
use crate::error::ApiError;
use crate::events::StreamEvent;
use crate::ids;
use crate::model::Message;
use crate::time::{Format, now_ms};
use serde_json::{Map, Value, json};

/// A message to send, as `chat.sendMessage`'s `message` object carries it.
#[derive(Clone, Debug, Default)]
pub struct SendRequest {
    /// Client-chosen `_id`.
    pub id: Option<String>,
    /// Room.
    pub rid: String,
    /// Text.
    pub msg: String,
    /// Thread root.
    pub tmid: Option<String>,
    /// System message type (only the server posts these).
    pub t: Option<String>,
    /// Impersonation alias.
    pub alias: Option<String>,
    /// Impersonation avatar.
    pub avatar: Option<String>,
    /// Emoji avatar.
    pub emoji: Option<String>,
    /// Attachments.
    pub attachments: Vec<Value>,
    /// Other accepted fields (`tshow`, `customFields`, ...).
    pub extra: Map<String, Value>,
}

/// What `sendMessage` returns for a second send of an existing `_id`: the
/// server's insert is skipped and the REST handler then fails normalising the
/// missing message, answering this 400.
const DUPLICATE_ID_ERROR: &str = "Cannot read properties of undefined (reading 'starred')";

impl Workspace {
    /// Sends as `sender` with all of `chat.sendMessage`'s checks.
    pub fn send(&mut self, sender: &str, mut request: SendRequest, files: Vec<Value>) -> Result<Message, ApiError> {
        if request.extra.get("tshow") == Some(&json!(true)) && request.tmid.is_none() {
            return Err(ApiError::meteor("invalid-params", "tshow provided but missing tmid"));
        }
        if request.msg.chars().count() > self.max_message_size {
            return Err(ApiError::meteor("error-message-size-exceeded", "Message size exceeds Message_MaxAllowedSize"));
        }
        let user = self.user(sender).ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?.clone();
        // No nested threads: a reply to a reply goes to the root; the root's room wins.
        if let Some(parent) = request.tmid.as_deref().and_then(|id| self.message(id)) {
            request.rid = parent.rid.clone();
            request.tmid = Some(parent.tmid.clone().unwrap_or_else(|| parent.id.clone()));
        }
        if self.room(&request.rid).is_none() {
            return Err(ApiError::meteor("error-invalid-room", "Invalid room"));
        }
        if !self.is_member(&request.rid, sender) {
            return Err(ApiError::failure("error-not-allowed"));
        }
        if (request.alias.is_some() || request.avatar.is_some()) && !user.can("message-impersonate") {
            return Err(ApiError::failure("Not enough permission"));
        }
        if request.id.as_deref().is_some_and(|id| self.messages.contains_key(id)) {
            return Err(ApiError::failure(DUPLICATE_ID_ERROR));
        }
        self.insert_message(sender, request, files)
    }

    /// Stores and publishes a message without permission checks (system messages).
    pub(super) fn insert_message(
        &mut self,
        sender: &str,
        request: SendRequest,
        files: Vec<Value>,
    ) -> Result<Message, ApiError> {
        let user = self.user(sender).ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?;
        let now = now_ms();
        let message = Message {
            id: request.id.unwrap_or_else(ids::random_id),
            rid: request.rid,
            mentions: if request.t.is_some() { Vec::new() } else { self.mentions_in(&request.msg) },
            msg: request.msg,
            ts: now,
            u: user.reference(),
            updated_at: now,
            edited: None,
            tmid: request.tmid,
            t: request.t,
            alias: request.alias,
            avatar: request.avatar,
            emoji: request.emoji,
            reactions: Default::default(),
            attachments: request.attachments,
            files,
            thread: None,
            extra: request.extra,
        };
        self.messages.insert(message.id.clone(), message.clone());
        self.room_log.entry(message.rid.clone()).or_default().push(message.id.clone());
        self.publish(&message.id);
        if let Some(root) = message.tmid.as_deref() {
            self.count_reply(root, sender, now);
        }
        Ok(message)
    }

    fn count_reply(&mut self, root: &str, replier: &str, at: i64) {
        let Some(parent) = self.messages.get_mut(root) else { return };
        let (count, _, repliers) = parent.thread.get_or_insert((0, at, Vec::new()));
        *count += 1;
        if !repliers.iter().any(|r| r == replier) {
            repliers.push(replier.to_owned());
        }
        parent.thread.as_mut().expect("just set").1 = at;
        parent.updated_at = at;
        self.publish(root);
    }

    /// Edits as `editor` with `chat.update`'s checks.
    pub fn update(&mut self, editor: &str, rid: &str, msg_id: &str, text: &str) -> Result<Message, ApiError> {
        let message = self
            .message(msg_id)
            .ok_or_else(|| ApiError::failure(format!("No message found with the id of \"{msg_id}\".")))?;
        if message.rid != rid {
            return Err(ApiError::failure("The room id provided does not match where the message is from."));
        }
        let user = self.user(editor).ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?.clone();
        if message.sender_id() != editor && !user.can("edit-message") {
            return Err(ApiError::meteor("error-action-not-allowed", "Message editing not allowed"));
        }
        if text.chars().count() > self.max_message_size {
            return Err(ApiError::meteor("error-message-size-exceeded", "Message size exceeds Message_MaxAllowedSize"));
        }
        let mentions = self.mentions_in(text);
        let now = now_ms();
        let message = self.messages.get_mut(msg_id).expect("checked above");
        message.msg = text.to_owned();
        message.mentions = mentions;
        message.edited = Some((now, json!({ "_id": user.id, "username": user.username })));
        message.updated_at = now;
        let updated = message.clone();
        self.publish(msg_id);
        Ok(updated)
    }

    /// Deletes as `actor` with `chat.delete`'s checks; publishes `<rid>/deleteMessage`.
    pub fn delete(&mut self, actor: &str, rid: &str, msg_id: &str) -> Result<Message, ApiError> {
        let message = self
            .message(msg_id)
            .ok_or_else(|| ApiError::failure(format!("No message found with the id of \"{msg_id}\".")))?;
        if message.rid != rid {
            return Err(ApiError::failure("The room id provided does not match where the message is from."));
        }
        let user = self.user(actor).ok_or_else(|| ApiError::failure("User not found"))?;
        if message.sender_id() != actor && !user.can("delete-message") && !user.can("force-delete-message") {
            return Err(ApiError::meteor("error-action-not-allowed", "Not allowed"));
        }
        let removed = self.messages.remove(msg_id).expect("checked above");
        self.deletions.entry(rid.to_owned()).or_default().push((msg_id.to_owned(), now_ms()));
        if let Some(log) = self.room_log.get_mut(rid) {
            log.retain(|id| id != msg_id);
        }
        self.events.push(StreamEvent::NotifyRoom {
            rid: rid.into(),
            event: "deleteMessage".into(),
            args: vec![json!({ "_id": msg_id })],
        });
        Ok(removed)
    }

    /// Reacts as `actor` (`chat.react`): `should_react` true adds, false removes, none toggles.
    pub fn react(
        &mut self,
        actor: &str,
        msg_id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> Result<Message, ApiError> {
        let not_found = || {
            ApiError::meteor(
                "error-message-not-found",
                "The provided \"messageId\" does not match any existing message.",
            )
        };
        let rid = self.message(msg_id).ok_or_else(not_found)?.rid.clone();
        let username = self
            .user(actor)
            .map(|u| u.username.clone())
            .ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?;
        if !self.is_member(&rid, actor) {
            return Err(ApiError::meteor("error-not-allowed", "Not allowed"));
        }
        let key = format!(":{}:", emoji.replace(':', ""));
        let valid =
            key.len() > 2 && key[1..key.len() - 1].chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c));
        if !valid {
            return Err(ApiError::meteor("error-not-allowed", "Invalid emoji provided."));
        }
        let message = self.messages.get_mut(msg_id).expect("checked above");
        let users = message.reactions.entry(key.clone()).or_default();
        let has = users.contains(&username);
        match (should_react.unwrap_or(!has), has) {
            (true, false) => users.push(username),
            (false, true) => users.retain(|u| *u != username),
            _ => {}
        }
        message.reactions.retain(|_, users| !users.is_empty());
        message.updated_at = now_ms();
        let changed = message.clone();
        self.publish(msg_id);
        Ok(changed)
    }

    /// Turns an upload into a file message (`rooms.mediaConfirm`).
    pub fn confirm_upload(
        &mut self,
        actor: &str,
        file_id: &str,
        mut request: SendRequest,
        description: Option<String>,
    ) -> Result<Message, ApiError> {
        let upload = self.upload(file_id).filter(|u| u.rid == request.rid && u.user_id == actor && !u.confirmed);
        let upload = upload.ok_or_else(|| ApiError::meteor("invalid-file", "Invalid file"))?.clone();
        let format = upload.name.rsplit_once('.').map(|(_, ext)| ext.to_lowercase()).unwrap_or_default();
        let file = json!({ "_id": upload.id, "name": upload.name, "type": upload.content_type, "size": upload.bytes.len(), "format": format });
        let mut attachment =
            json!({ "title": upload.name, "title_link": upload.url(), "title_link_download": true, "type": "file" });
        if let Some(d) = description {
            attachment["description"] = json!(d);
        }
        let kind = upload.content_type.split('/').next().unwrap_or_default();
        match kind {
            "image" | "audio" | "video" => {
                attachment[format!("{kind}_url")] = json!(upload.url());
                attachment[format!("{kind}_type")] = json!(upload.content_type);
                attachment[format!("{kind}_size")] = json!(upload.bytes.len());
            }
            _ => {
                attachment["format"] = json!(format);
                attachment["size"] = json!(upload.bytes.len());
            }
        }
        request.attachments = vec![attachment];
        let message = self.send(actor, request, vec![file])?;
        if let Some(u) = self.uploads.get_mut(file_id) {
            u.confirmed = true;
        }
        Ok(message)
    }

    /// Users mentioned as `@username`, plus `@all` and `@here`.
    fn mentions_in(&self, text: &str) -> Vec<Value> {
        let mut found: Vec<Value> = Vec::new();
        for word in text.split(|c: char| c.is_whitespace()) {
            let Some(name) = word.strip_prefix('@') else { continue };
            let name = name.trim_end_matches(|c: char| !(c.is_alphanumeric() || "._-".contains(c)));
            let mention = match name {
                "all" | "here" => json!({ "_id": name, "username": name, "type": "user" }),
                _ => match self.user_by_username(name) {
                    Some(u) => json!({ "_id": u.id, "username": u.username, "name": u.name, "type": "user" }),
                    None => continue,
                },
            };
            if !found.contains(&mention) {
                found.push(mention);
            }
        }
        found
    }

    /// Queues the current state of message `id` for `stream-room-messages`.
    fn publish(&mut self, id: &str) {
        if let Some(message) = self.messages.get(id) {
            let event = StreamEvent::RoomMessage { rid: message.rid.clone(), message: message.render(Format::Ddp) };
            self.events.push(event);
        }
    }
}
