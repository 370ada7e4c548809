//! brygga-teams: bridges Matrix rooms with Microsoft Teams channels (with
//! their threads) and chats, through Microsoft Graph v1.0.
//!
//! Receiving uses Graph change notifications delivered to the bridge's
//! webhook, with GET and `/delta` to close gaps; sending uses Graph REST with
//! the delegated token of the Matrix user's linked Teams account, or of the
//! tenant's relay identity with the sender's name shown.

mod accounts;
mod adapter;
mod catchup;
mod cert;
mod commands;
mod config;
mod crypto;
mod echo;
mod graph;
mod html;
mod ids;
mod jwt;
mod limiter;
mod link;
mod map;
mod media;
mod model;
mod notify;
mod outbound;
mod presence;
mod reactions;
mod resource_data;
mod shared;
mod status;
mod subs;
mod token;
mod webhook;
mod workers;

use std::sync::Arc;

use brygga_core::{Adapter, AdapterContext, AdapterFactory, AdapterKind, BridgeError, RemoteRoomId};

pub use adapter::TeamsAdapter;
pub use link::{LinkOutcome, LinkPrompt, Linked};

/// The adapter kind, as used in config, ghost names and portal keys.
pub const KIND: &str = "teams";

/// Builds Teams adapters.
pub struct TeamsFactory;

impl TeamsFactory {
    /// Builds the concrete adapter (for callers that route webhooks to it).
    pub fn build_teams(&self, ctx: AdapterContext) -> Result<Arc<TeamsAdapter>, BridgeError> {
        let config = config::TeamsConfig::parse(&ctx.config).map_err(BridgeError::permanent)?;
        Ok(Arc::new(TeamsAdapter::new(config, ctx)?))
    }
}

impl AdapterFactory for TeamsFactory {
    fn kind(&self) -> AdapterKind {
        AdapterKind::new(KIND).expect("valid kind")
    }

    fn validate(&self, config: &serde_json::Value) -> Result<(), String> {
        config::TeamsConfig::parse(config).map(|_| ())
    }

    fn validate_room(&self, room: &RemoteRoomId) -> Result<(), String> {
        match ids::Conversation::parse(room.as_str()) {
            Some(_) => Ok(()),
            None => Err("expected a Teams channel as {team id}/{channel id} (like \
                 fbe2bf47-16c8-47cf-b4a5-4b9b187c508b/19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2) \
                 or a chat id (like 19:a1b2c3@thread.v2)"
                .into()),
        }
    }

    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError> {
        Ok(self.build_teams(ctx)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_channels_or_chats() {
        let room = |s: &str| RemoteRoomId::new(s).unwrap();
        let channel = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b/19:4a95@thread.tacv2";
        assert!(TeamsFactory.validate_room(&room(channel)).is_ok());
        assert!(TeamsFactory.validate_room(&room("19:abc@thread.v2")).is_ok());
        assert!(TeamsFactory.validate_room(&room("General")).unwrap_err().contains("channel"));
        assert!(TeamsFactory.validate(&serde_json::json!({"client_id": "x"})).is_err());
    }
}
