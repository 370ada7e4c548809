//! The data the double holds: tenants with their users, teams, channels and
//! chats, the messages of each conversation, and the public records tests read.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A user of an Entra tenant, as the test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestUser {
    /// The tenant (directory) id.
    pub tenant: String,
    /// The user's object id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// `alice@<tenant>.example`.
    pub user_principal_name: String,
}

/// A channel or chat: where messages live.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Conversation {
    /// A channel of a team.
    Channel {
        /// Tenant id.
        tenant: String,
        /// Team id.
        team: String,
        /// Channel id.
        channel: String,
    },
    /// A chat (one-on-one or group).
    Chat {
        /// Tenant id.
        tenant: String,
        /// Chat id.
        chat: String,
    },
}

impl Conversation {
    /// The tenant the conversation belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            Conversation::Channel { tenant, .. } | Conversation::Chat { tenant, .. } => tenant,
        }
    }

    /// The subscription resource for its messages, e.g. `/teams/{t}/channels/{c}/messages`.
    pub fn resource(&self) -> String {
        match self {
            Conversation::Channel { team, channel, .. } => format!("/teams/{team}/channels/{channel}/messages"),
            Conversation::Chat { chat, .. } => format!("/chats/{chat}/messages"),
        }
    }

    /// The OData path of one message, as notifications name it.
    pub fn odata_message(&self, id: &str, reply_to: Option<&str>) -> String {
        let base = match self {
            Conversation::Channel { team, channel, .. } => format!("teams('{team}')/channels('{channel}')"),
            Conversation::Chat { chat, .. } => format!("chats('{chat}')"),
        };
        match reply_to {
            Some(parent) => format!("{base}/messages('{parent}')/replies('{id}')"),
            None => format!("{base}/messages('{id}')"),
        }
    }
}

/// How a message (or change) reached the double.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SentVia {
    /// Over REST with a delegated token of `user` (a linked user, or the relay identity).
    Delegated {
        /// The signed-in user's id.
        user: String,
    },
    /// Over REST with an app-only token (only PATCH of policy fields is possible that way).
    App,
    /// Through the test control API, as a person acting in Teams would.
    Control,
}

/// One reaction on a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reaction {
    /// The reacting user's id.
    pub user: String,
    /// The reacting user's display name.
    pub display_name: String,
    /// The emoji (or legacy name such as `like`).
    pub reaction_type: String,
    /// When it was added.
    pub created: DateTime<Utc>,
}

/// Inline content (an image) hosted with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostedContent {
    /// The hosted content id.
    pub id: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A message as the double stores it (soft-deleted ones included).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MessageRecord {
    /// Message id.
    pub id: String,
    /// The root message for a channel reply.
    pub reply_to: Option<String>,
    /// `message` or `systemEventMessage`.
    pub message_type: String,
    /// Sender's user id (`None` for system events).
    pub from_user: Option<String>,
    /// Sender's display name.
    pub from_name: Option<String>,
    /// `html` or `text`.
    pub content_type: String,
    /// The body content (kept after a soft delete, which only hides it).
    pub content: String,
    /// Subject line of a channel root message.
    pub subject: Option<String>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last modified (edits, deletes and reactions).
    pub last_modified: DateTime<Utc>,
    /// Last edit of the body.
    pub last_edited: Option<DateTime<Utc>>,
    /// Soft deletion.
    pub deleted: Option<DateTime<Utc>>,
    /// Reactions, oldest first.
    pub reactions: Vec<Reaction>,
    /// Mentions, as Graph's `chatMessageMention` JSON.
    pub mentions: Vec<serde_json::Value>,
    /// Attachments, as Graph's `chatMessageAttachment` JSON.
    pub attachments: Vec<serde_json::Value>,
    /// Inline hosted contents.
    pub hosted: Vec<HostedContent>,
    /// `eventDetail` of a system event message.
    pub event_detail: Option<serde_json::Value>,
    /// How it was created.
    pub via: SentVia,
    /// How it was last changed (edit, delete, reaction).
    pub last_change_via: SentVia,
    /// Change sequence number (drives delta).
    pub(crate) seq: u64,
}

/// A member of a team or chat.
#[derive(Clone, Debug)]
pub struct Member {
    /// The membership id.
    pub membership_id: String,
    /// The user's id.
    pub user: String,
    /// `owner` or none.
    pub roles: Vec<String>,
    /// When the member joined (their visible history starts).
    pub since: DateTime<Utc>,
}

/// A user as the directory stores it.
#[derive(Clone, Debug)]
pub struct User {
    /// The public view.
    pub public: TestUser,
    /// Presence availability (`Available`, `Away`, ...).
    pub availability: String,
    /// Presence activity.
    pub activity: String,
}

/// A team with its channels.
#[derive(Clone, Debug)]
pub struct Team {
    /// Team display name.
    pub name: String,
    /// Team members (standard channels share them).
    pub members: Vec<Member>,
    /// Channel id to display name.
    pub channels: HashMap<String, String>,
}

/// A chat.
#[derive(Clone, Debug)]
pub struct Chat {
    /// `oneOnOne` or `group`.
    pub chat_type: String,
    /// Topic of a group chat.
    pub topic: Option<String>,
    /// Members.
    pub members: Vec<Member>,
}

/// An Entra tenant.
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    /// Client ids of apps an admin consented to.
    pub consented: Vec<String>,
    /// Users by id.
    pub users: HashMap<String, User>,
    /// Teams by id.
    pub teams: HashMap<String, Team>,
    /// Chats by id.
    pub chats: HashMap<String, Chat>,
}

/// An app registration (multi-tenant) the identity platform knows.
#[derive(Clone, Debug)]
pub struct AppRegistration {
    /// Its valid client secrets.
    pub secrets: Vec<String>,
    /// DER of its registered certificates (client assertion credentials).
    pub certificates: Vec<Vec<u8>>,
    /// Application permissions granted on consent (the `roles` claim).
    pub roles: Vec<String>,
    /// Delegated permissions granted on consent (the `scp` claim).
    pub scopes: Vec<String>,
}
