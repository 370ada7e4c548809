//! The workspace's documents (users, rooms, messages, uploads) and how they
//! render as Rocket.Chat JSON.

use crate::time::{Format, Millis};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A user's presence, as Rocket.Chat's `status` field and the numeric code on `user-status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Presence {
    /// `offline` (0).
    Offline,
    /// `online` (1).
    Online,
    /// `away` (2).
    Away,
    /// `busy` (3).
    Busy,
}

impl Presence {
    /// The status named by a `status` string.
    pub fn parse(status: &str) -> Option<Self> {
        match status {
            "offline" => Some(Presence::Offline),
            "online" => Some(Presence::Online),
            "away" => Some(Presence::Away),
            "busy" => Some(Presence::Busy),
            _ => None,
        }
    }

    /// The `status` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Offline => "offline",
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Busy => "busy",
        }
    }

    /// The number `stream-notify-logged` `user-status` carries.
    pub fn code(self) -> u8 {
        match self {
            Presence::Offline => 0,
            Presence::Online => 1,
            Presence::Away => 2,
            Presence::Busy => 3,
        }
    }
}

/// A room's type letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoomType {
    /// Public channel (`c`).
    Channel,
    /// Private group (`p`).
    Group,
    /// Direct message (`d`).
    Direct,
}

impl RoomType {
    /// `c`, `p` or `d`.
    pub fn letter(self) -> &'static str {
        match self {
            RoomType::Channel => "c",
            RoomType::Group => "p",
            RoomType::Direct => "d",
        }
    }
}

/// A Rocket.Chat user account.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct User {
    /// `_id`.
    pub id: String,
    /// `username`.
    pub username: String,
    /// Display `name`.
    pub name: String,
    /// Roles such as `admin`, `user`, `bot`.
    pub roles: Vec<String>,
    /// Valid login (resume) and personal access tokens.
    pub tokens: Vec<String>,
    /// Presence.
    pub status: Presence,
    /// Custom status text.
    pub status_text: String,
    /// Email address given at creation.
    pub email: String,
    /// Password, for `POST /api/v1/login`.
    pub password: String,
    /// Permissions granted on top of the roles.
    pub granted: BTreeSet<String>,
    /// Permissions taken away from the roles.
    pub revoked: BTreeSet<String>,
    /// Creation time.
    pub created_at: Millis,
}

impl User {
    /// Whether the user holds `permission`, from its roles and explicit grants.
    pub fn can(&self, permission: &str) -> bool {
        if self.revoked.contains(permission) {
            return false;
        }
        self.granted.contains(permission) || self.roles.iter().any(|r| role_grants(r, permission))
    }

    /// `{_id, username, name}` as messages embed it in `u`.
    pub fn reference(&self) -> Value {
        json!({ "_id": self.id, "username": self.username, "name": self.name })
    }

    /// The public profile (`users.info`, `users.create`).
    pub fn render(&self, fmt: Format) -> Value {
        json!({
            "_id": self.id,
            "username": self.username,
            "name": self.name,
            "type": if self.roles.iter().any(|r| r == "bot") { "bot" } else { "user" },
            "status": self.status.as_str(),
            "statusText": self.status_text,
            "active": true,
            "roles": self.roles,
            "emails": [{ "address": self.email, "verified": true }],
            "createdAt": fmt.date(self.created_at),
            "_updatedAt": fmt.date(self.created_at),
            "utcOffset": 0,
        })
    }
}

/// Rocket.Chat's default role permissions, for the permissions the double checks.
fn role_grants(role: &str, permission: &str) -> bool {
    match permission {
        // Default roles of `message-impersonate` are bot and app, not admin.
        "message-impersonate" => matches!(role, "bot" | "app"),
        "create-user" | "user-generate-access-token" | "edit-other-user-info" | "view-full-other-user-info" => {
            role == "admin"
        }
        "edit-message"
        | "delete-message"
        | "force-delete-message"
        | "add-user-to-any-c-room"
        | "add-user-to-any-p-room" => role == "admin",
        "view-d-room" | "create-d" | "view-c-room" => matches!(role, "admin" | "user" | "bot" | "app"),
        _ => false,
    }
}

/// A channel, private group or direct-message room.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Room {
    /// `_id` (the `rid` of its messages).
    pub id: String,
    /// Type.
    pub kind: RoomType,
    /// `name` (channels and groups).
    pub name: Option<String>,
    /// The creator's user id.
    pub creator: String,
    /// Member user ids, in joining order.
    pub members: Vec<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// A file received through `rooms.media`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Upload {
    /// `_id` of the file.
    pub id: String,
    /// Room it was uploaded to.
    pub rid: String,
    /// Uploader's user id.
    pub user_id: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Contents.
    pub bytes: Vec<u8>,
    /// Whether `rooms.mediaConfirm` turned it into a message.
    pub confirmed: bool,
    /// Upload time.
    pub uploaded_at: Millis,
}

impl Upload {
    /// The download path, `/file-upload/{id}/{name}`.
    pub fn url(&self) -> String {
        format!("/file-upload/{}/{}", self.id, encode_path_segment(&self.name))
    }
}

/// Percent-encodes a path segment the way `encodeURI` leaves file names readable.
fn encode_path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A chat message or system message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Message {
    /// `_id`.
    pub id: String,
    /// Room id.
    pub rid: String,
    /// Text.
    pub msg: String,
    /// Sent time.
    pub ts: Millis,
    /// Sender `{_id, username, name}`.
    pub u: Value,
    /// Last change.
    pub updated_at: Millis,
    /// Edit time and editor `{_id, username}`.
    pub edited: Option<(Millis, Value)>,
    /// Thread root id.
    pub tmid: Option<String>,
    /// System message type (`uj`, `ul`, `au`, ...).
    pub t: Option<String>,
    /// Impersonation alias.
    pub alias: Option<String>,
    /// Impersonation avatar URL.
    pub avatar: Option<String>,
    /// Emoji avatar.
    pub emoji: Option<String>,
    /// Reactions: `:shortcode:` to usernames.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// Attachments, as sent or as built for files.
    pub attachments: Vec<Value>,
    /// Files `{_id, name, type, size, format}`.
    pub files: Vec<Value>,
    /// Mentioned users `{_id, username, name, type}`.
    pub mentions: Vec<Value>,
    /// Thread replies: count, last reply time, repliers' ids.
    pub thread: Option<(u64, Millis, Vec<String>)>,
    /// Extra fields the sender set (`customFields`, `tshow`, `groupable`).
    pub extra: Map<String, Value>,
}

impl Message {
    /// The sender's user id.
    pub fn sender_id(&self) -> &str {
        self.u["_id"].as_str().unwrap_or_default()
    }

    /// The sender's username.
    pub fn sender_username(&self) -> &str {
        self.u["username"].as_str().unwrap_or_default()
    }

    /// Renders the message document in REST or DDP form.
    pub fn render(&self, fmt: Format) -> Value {
        let mut doc = Map::new();
        doc.insert("_id".into(), json!(self.id));
        doc.insert("rid".into(), json!(self.rid));
        doc.insert("msg".into(), json!(self.msg));
        doc.insert("ts".into(), fmt.date(self.ts));
        doc.insert("u".into(), self.u.clone());
        doc.insert("_updatedAt".into(), fmt.date(self.updated_at));
        doc.insert("urls".into(), json!([]));
        doc.insert("mentions".into(), json!(self.mentions));
        doc.insert("channels".into(), json!([]));
        let optional = [
            ("tmid", &self.tmid),
            ("t", &self.t),
            ("alias", &self.alias),
            ("avatar", &self.avatar),
            ("emoji", &self.emoji),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                doc.insert(key.into(), json!(v));
            }
        }
        if let Some((at, by)) = &self.edited {
            doc.insert("editedAt".into(), fmt.date(*at));
            doc.insert("editedBy".into(), by.clone());
        }
        if !self.reactions.is_empty() {
            let map: Map<String, Value> =
                self.reactions.iter().map(|(k, users)| (k.clone(), json!({ "usernames": users }))).collect();
            doc.insert("reactions".into(), Value::Object(map));
        }
        if !self.attachments.is_empty() {
            doc.insert("attachments".into(), json!(self.attachments));
        }
        if let Some(first) = self.files.first() {
            doc.insert("file".into(), first.clone());
            doc.insert("files".into(), json!(self.files));
        }
        if let Some((count, last, repliers)) = &self.thread {
            doc.insert("tcount".into(), json!(count));
            doc.insert("tlm".into(), fmt.date(*last));
            doc.insert("replies".into(), json!(repliers));
        }
        for (k, v) in &self.extra {
            doc.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(doc)
    }
}
