//! The test-side control API: set up tenants and people, act as them in
//! Teams (through the same code paths REST uses, so notifications fire),
//! and read state back.

use crate::conversations::Draft;
use crate::error::{DoubleError, GraphError};
use crate::model::{Chat, Conversation, Member, SentVia, Team, Tenant, TestUser, User};
use crate::world::TokenKind;
use crate::{DEFAULT_CLIENT_ID, GraphDouble};
use serde_json::json;
use std::collections::HashMap;

/// A lifecycle notification a test can make Graph send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The subscription needs `reauthorize` (or a renewal) soon.
    ReauthorizationRequired,
    /// Graph removed the subscription (it is deleted by this event).
    SubscriptionRemoved,
    /// Graph could not deliver some notifications.
    Missed,
}

impl LifecycleEvent {
    /// The `lifecycleEvent` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

/// Request counters.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Requests per route, keyed `METHOD /matched/path`.
    pub requests: HashMap<String, u64>,
    /// 429s answered.
    pub throttled: u64,
}

impl GraphDouble {
    /// A new tenant whose admin consented to the app registration; returns its id.
    pub fn add_tenant(&self) -> String {
        let id = crate::ids::guid();
        let tenant = Tenant { consented: vec![DEFAULT_CLIENT_ID.to_owned()], ..Tenant::default() };
        self.shared.with(|w| w.tenants.insert(id.clone(), tenant));
        id
    }

    /// Grants (again) admin consent in `tenant`.
    pub fn grant_consent(&self, tenant: &str) {
        self.shared.with(|w| {
            if let Some(t) = w.tenants.get_mut(tenant)
                && !t.consented.iter().any(|c| c == DEFAULT_CLIENT_ID)
            {
                t.consented.push(DEFAULT_CLIENT_ID.to_owned());
            }
        });
    }

    /// Revokes the app's consent in `tenant`: new tokens are refused (issued ones live until they expire, as in Entra).
    pub fn revoke_consent(&self, tenant: &str) {
        self.shared.with(|w| {
            if let Some(t) = w.tenants.get_mut(tenant) {
                t.consented.retain(|c| c != DEFAULT_CLIENT_ID);
            }
        });
    }

    /// Registers a certificate (its DER) as a credential of the app registration (client assertions).
    pub fn add_client_certificate(&self, der: &[u8]) {
        self.shared.with(|w| w.apps.get_mut(DEFAULT_CLIENT_ID).map(|a| a.certificates.push(der.to_vec())));
    }

    /// Removes the app registration's client secrets: only certificates are left.
    pub fn remove_client_secrets(&self) {
        self.shared.with(|w| w.apps.get_mut(DEFAULT_CLIENT_ID).map(|a| a.secrets.clear()));
    }

    /// Expires every access token issued in `tenant` now.
    pub fn expire_tokens(&self, tenant: &str) {
        let past = crate::time::now() - chrono::Duration::seconds(1);
        self.shared.with(|w| w.tokens.values_mut().filter(|t| t.tenant == tenant).for_each(|t| t.expires = past));
    }

    /// Revokes `user`'s refresh tokens (as a password reset does).
    pub fn revoke_refresh_tokens(&self, user: &TestUser) {
        self.shared
            .with(|w| w.refresh_tokens.values_mut().filter(|r| r.user == user.id).for_each(|r| r.revoked = true));
    }

    /// A new user in `tenant`, presence `Offline`.
    pub fn add_user(&self, tenant: &str, display_name: &str) -> TestUser {
        let id = crate::ids::guid();
        let local: String = display_name.split_whitespace().next().unwrap_or("user").to_lowercase();
        let public = TestUser {
            tenant: tenant.to_owned(),
            id: id.clone(),
            display_name: display_name.to_owned(),
            user_principal_name: format!("{local}.{}@{}.example", &id[..4], &tenant[..8]),
        };
        let user = User { public: public.clone(), availability: "Offline".into(), activity: "Offline".into() };
        self.shared.with(|w| w.tenants.entry(tenant.to_owned()).or_default().users.insert(id, user));
        public
    }

    fn member(user: &TestUser, owner: bool) -> Member {
        let roles = if owner { vec!["owner".to_owned()] } else { Vec::new() };
        Member { membership_id: crate::ids::secret(), user: user.id.clone(), roles, since: crate::time::now() }
    }

    /// A new team whose first member is its owner; returns the team id.
    pub fn add_team(&self, tenant: &str, name: &str, members: &[&TestUser]) -> String {
        let id = crate::ids::guid();
        let members = members.iter().enumerate().map(|(i, u)| Self::member(u, i == 0)).collect();
        let team = Team { name: name.to_owned(), members, channels: HashMap::new() };
        self.shared.with(|w| w.tenants.entry(tenant.to_owned()).or_default().teams.insert(id.clone(), team));
        id
    }

    /// A new standard channel in `team` (members are the team's).
    pub fn add_channel(&self, tenant: &str, team: &str, name: &str) -> Conversation {
        let channel = crate::ids::thread_id("thread.tacv2");
        self.shared.with(|w| {
            if let Some(t) = w.tenants.get_mut(tenant).and_then(|t| t.teams.get_mut(team)) {
                t.channels.insert(channel.clone(), name.to_owned());
            }
        });
        Conversation::Channel { tenant: tenant.to_owned(), team: team.to_owned(), channel }
    }

    /// A new chat: `oneOnOne` for two members without a topic, else `group`.
    pub fn add_chat(&self, tenant: &str, topic: Option<&str>, members: &[&TestUser]) -> Conversation {
        let chat = if topic.is_none() && members.len() == 2 {
            format!("19:{}_{}@unq.gbl.spaces", members[0].id, members[1].id)
        } else {
            crate::ids::thread_id("thread.v2")
        };
        let chat_type = if topic.is_none() && members.len() == 2 { "oneOnOne" } else { "group" };
        let record = Chat {
            chat_type: chat_type.to_owned(),
            topic: topic.map(str::to_owned),
            members: members.iter().map(|u| Self::member(u, true)).collect(),
        };
        self.shared.with(|w| w.tenants.entry(tenant.to_owned()).or_default().chats.insert(chat.clone(), record));
        Conversation::Chat { tenant: tenant.to_owned(), chat }
    }

    /// Adds `user` to a chat (or the channel's team), posting Teams' `membersAdded` system event message.
    pub fn add_member(&self, conversation: &Conversation, user: &TestUser) -> Result<(), DoubleError> {
        self.membership(conversation, user, true)
    }

    /// Removes `user`, posting Teams' `membersDeleted` system event message.
    pub fn remove_member(&self, conversation: &Conversation, user: &TestUser) -> Result<(), DoubleError> {
        self.membership(conversation, user, false)
    }

    fn membership(&self, conversation: &Conversation, user: &TestUser, add: bool) -> Result<(), DoubleError> {
        self.shared.with(|w| {
            let members = w.members_mut(conversation).ok_or_else(|| GraphError::not_found("Conversation"))?;
            if add {
                members.push(Self::member(user, false));
            } else {
                members.retain(|m| m.user != user.id);
            }
            let kind = if add { "membersAddedEventMessageDetail" } else { "membersDeletedEventMessageDetail" };
            let mut detail = json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "members": [{ "id": user.id, "displayName": null, "userIdentityType": "aadUser" }],
                "initiator": { "application": null, "device": null, "user": null },
            });
            if add {
                detail["visibleHistoryStartDateTime"] = json!("0001-01-01T00:00:00Z");
            }
            let draft = Draft {
                content_type: "html".into(),
                content: "<systemEventMessage/>".into(),
                event_detail: Some(detail),
                ..Draft::default()
            };
            w.post(conversation, None, None, draft, SentVia::Control)?;
            Ok(())
        })
    }

    /// A delegated access token for `user` (as after a device code sign-in), with the default scopes.
    pub fn delegated_token(&self, user: &TestUser) -> String {
        let lifetime = self.shared.settings().token_lifetime;
        let scopes = crate::DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        let kind = TokenKind::Delegated { user: user.id.clone() };
        self.shared.with(|w| w.issue_access(&user.tenant, DEFAULT_CLIENT_ID, kind, scopes, lifetime))
    }

    /// A refresh token for `user` (as the device code flow would return), for the app registration.
    pub fn refresh_token(&self, user: &TestUser) -> String {
        let value = crate::ids::secret();
        let record = crate::world::RefreshToken {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            user: user.id.clone(),
            revoked: false,
        };
        self.shared.with(|w| w.refresh_tokens.insert(value.clone(), record));
        value
    }

    /// An app-only access token in `tenant` with the default roles.
    pub fn app_token(&self, tenant: &str) -> String {
        let lifetime = self.shared.settings().token_lifetime;
        let roles = crate::DEFAULT_ROLES.iter().map(|s| (*s).to_owned()).collect();
        self.shared.with(|w| w.issue_access(tenant, DEFAULT_CLIENT_ID, TokenKind::App, roles, lifetime))
    }

    /// The user codes of device code flows still waiting for a sign-in.
    pub fn pending_device_codes(&self) -> Vec<String> {
        self.shared
            .with(|w| w.device_flows.values().filter(|f| f.outcome.is_none()).map(|f| f.user_code.clone()).collect())
    }

    /// `user` signs in with `user_code` at the verification page; false if no flow waits for that code.
    pub fn complete_device_login(&self, user_code: &str, user: &TestUser) -> bool {
        self.device_outcome(user_code, Ok(user.id.clone()))
    }

    /// The user declines the sign-in of `user_code`.
    pub fn decline_device_login(&self, user_code: &str) -> bool {
        self.device_outcome(user_code, Err(()))
    }

    fn device_outcome(&self, user_code: &str, outcome: Result<String, ()>) -> bool {
        self.shared.with(|w| {
            let flow = w.device_flows.values_mut().find(|f| f.user_code.eq_ignore_ascii_case(user_code.trim()));
            flow.map(|f| f.outcome = Some(outcome)).is_some()
        })
    }

    /// Sets `user`'s presence (`availability` such as `Available`, `Busy`, `Away`, `Offline`; `activity` such as `InACall`).
    pub fn set_presence(&self, user: &TestUser, availability: &str, activity: &str) {
        self.shared.with(|w| {
            if let Some(u) = w.tenants.get_mut(&user.tenant).and_then(|t| t.users.get_mut(&user.id)) {
                u.availability = availability.to_owned();
                u.activity = activity.to_owned();
            }
        });
    }
}
