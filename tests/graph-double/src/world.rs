//! The mutable world behind the double: directory, credentials, messages and
//! subscriptions, plus the changes that still have to be notified.

use crate::error::GraphError;
use crate::model::{AppRegistration, Conversation, Member, MessageRecord, Tenant, User};
use crate::subscriptions::Subscription;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What kind of token a caller presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Client credentials: no user, `roles`.
    App,
    /// Delegated (device code / refresh): a signed-in user, `scp`.
    Delegated {
        /// The user's id.
        user: String,
    },
}

/// An access token the identity platform issued.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// Tenant it is valid in.
    pub tenant: String,
    /// The app it was issued to.
    pub client_id: String,
    /// App-only or delegated.
    pub kind: TokenKind,
    /// `roles` (app) or `scp` (delegated) permissions.
    pub permissions: Vec<String>,
    /// Expiry.
    pub expires: DateTime<Utc>,
}

/// A refresh token.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    /// App.
    pub client_id: String,
    /// The signed-in user.
    pub user: String,
    /// Revoked by the test (e.g. password reset).
    pub revoked: bool,
}

/// A pending device code sign-in.
#[derive(Clone, Debug)]
pub struct DeviceFlow {
    /// Tenant path segment the flow started under.
    pub tenant: String,
    /// App.
    pub client_id: String,
    /// The code shown to the user.
    pub user_code: String,
    /// Expiry of the code.
    pub expires: DateTime<Utc>,
    /// Set once the user signed in (their id) or declined (`Err`).
    pub outcome: Option<Result<String, ()>>,
}

/// A message change to notify subscribers of.
#[derive(Clone, Debug)]
pub struct Change {
    /// Where.
    pub conversation: Conversation,
    /// Message id.
    pub id: String,
    /// Root of a reply.
    pub reply_to: Option<String>,
    /// `created`, `updated` or `deleted`.
    pub change_type: &'static str,
}

/// The whole mutable state, under one lock.
#[derive(Default)]
pub struct World {
    /// App registrations by client id.
    pub apps: HashMap<String, AppRegistration>,
    /// Tenants by id.
    pub tenants: HashMap<String, Tenant>,
    /// Access tokens by value.
    pub tokens: HashMap<String, AccessToken>,
    /// Refresh tokens by value.
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Device code flows by device code.
    pub device_flows: HashMap<String, DeviceFlow>,
    /// Messages (roots and replies, creation order) per conversation.
    pub messages: HashMap<Conversation, Vec<MessageRecord>>,
    /// Subscriptions by id.
    pub subscriptions: HashMap<String, Subscription>,
    /// Changes not yet handed to the notifier.
    pub changes: Vec<Change>,
    /// Last change sequence number.
    pub seq: u64,
    /// Last message id handed out (ids are increasing epoch milliseconds, as in Teams).
    pub last_message_id: u64,
}

impl World {
    /// The tenant, or 404.
    pub fn tenant(&self, tenant: &str) -> Result<&Tenant, GraphError> {
        self.tenants.get(tenant).ok_or_else(|| GraphError::not_found("Tenant"))
    }

    /// A user of `tenant`.
    pub fn user(&self, tenant: &str, id: &str) -> Option<&User> {
        self.tenants.get(tenant)?.users.get(id)
    }

    /// A user's display name ("Unknown user" if gone).
    pub fn display_name(&self, tenant: &str, id: &str) -> String {
        self.user(tenant, id).map_or_else(|| "Unknown user".to_owned(), |u| u.public.display_name.clone())
    }

    /// The conversation a team/channel pair names in `tenant`, or 404 as Graph says it.
    pub fn channel(&self, tenant: &str, team: &str, channel: &str) -> Result<Conversation, GraphError> {
        let t = self.tenant(tenant)?;
        let found = t.teams.get(team).ok_or_else(|| GraphError::not_found("Team"))?;
        if !found.channels.contains_key(channel) {
            return Err(GraphError::not_found("Channel"));
        }
        Ok(Conversation::Channel { tenant: tenant.to_owned(), team: team.to_owned(), channel: channel.to_owned() })
    }

    /// The conversation a chat id names in `tenant`, or 404.
    pub fn chat(&self, tenant: &str, chat: &str) -> Result<Conversation, GraphError> {
        if !self.tenant(tenant)?.chats.contains_key(chat) {
            return Err(GraphError::not_found("Chat"));
        }
        Ok(Conversation::Chat { tenant: tenant.to_owned(), chat: chat.to_owned() })
    }

    /// The members of a conversation (a channel shares its team's members).
    pub fn members(&self, conversation: &Conversation) -> &[Member] {
        let Some(t) = self.tenants.get(conversation.tenant()) else { return &[] };
        match conversation {
            Conversation::Channel { team, .. } => t.teams.get(team).map_or(&[], |t| &t.members),
            Conversation::Chat { chat, .. } => t.chats.get(chat).map_or(&[], |c| &c.members),
        }
    }

    /// The members of a conversation, mutably.
    pub fn members_mut(&mut self, conversation: &Conversation) -> Option<&mut Vec<Member>> {
        let t = self.tenants.get_mut(conversation.tenant())?;
        match conversation {
            Conversation::Channel { team, .. } => t.teams.get_mut(team).map(|t| &mut t.members),
            Conversation::Chat { chat, .. } => t.chats.get_mut(chat).map(|c| &mut c.members),
        }
    }

    /// Whether `user` is a member of the conversation.
    pub fn is_member(&self, conversation: &Conversation, user: &str) -> bool {
        self.members(conversation).iter().any(|m| m.user == user)
    }

    /// The next change sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh message id: epoch milliseconds, strictly increasing.
    pub fn next_message_id(&mut self, now: DateTime<Utc>) -> String {
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default();
        self.last_message_id = millis.max(self.last_message_id + 1);
        self.last_message_id.to_string()
    }
}
