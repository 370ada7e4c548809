//! brygga-rocketchat: bridges Matrix rooms with a Rocket.Chat workspace's
//! channels, private groups and direct chats.
//!
//! Receiving uses the realtime API (DDP over a websocket) with REST history
//! to close gaps after a reconnect; sending uses REST. Matrix users appear as
//! real Rocket.Chat users (puppets) or, where the workspace does not allow
//! minting their tokens, as the bot with their name as alias.

mod adapter;
mod api;
mod catchup;
mod config;
mod ddp;
mod dispatch;
mod emoji;
mod html_to_md;
mod ids;
mod inbound;
mod markdown;
mod media;
mod message;
mod outbound;
mod puppets;
mod pushers;
mod rest;
mod rooms;
mod session;
mod supervisor;
mod time;
mod writers;

use std::sync::Arc;

use brygga_core::{Adapter, AdapterContext, AdapterFactory, AdapterKind, BridgeError, RemoteRoomId};

/// The adapter kind, as used in config, ghost names and portal keys.
pub const KIND: &str = "rocketchat";

/// Builds Rocket.Chat adapters.
pub struct RocketChatFactory;

impl AdapterFactory for RocketChatFactory {
    fn kind(&self) -> AdapterKind {
        AdapterKind::new(KIND).expect("valid kind")
    }

    fn validate(&self, config: &serde_json::Value) -> Result<(), String> {
        config::RocketChatConfig::parse(config).map(|_| ())
    }

    fn validate_room(&self, room: &RemoteRoomId) -> Result<(), String> {
        if ids::is_room_id(room.as_str()) || ids::parse_direct(room).is_some() {
            Ok(())
        } else {
            Err("expected a Rocket.Chat room id (rid), like GENERAL or 7Hx3kPqWq2bYzNe4s".into())
        }
    }

    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError> {
        let config = config::RocketChatConfig::parse(&ctx.config).map_err(BridgeError::permanent)?;
        let adapter = adapter::RocketChatAdapter::new(
            config,
            ctx.tenant,
            ctx.sink,
            ctx.portals,
            ctx.state,
            ctx.media,
            ctx.status,
        )?;
        Ok(Arc::new(adapter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_rids_or_direct_chats() {
        let room = |s: &str| RemoteRoomId::new(s).unwrap();
        assert!(RocketChatFactory.validate_room(&room("GENERAL")).is_ok());
        assert!(RocketChatFactory.validate_room(&room("bob @alice:hs")).is_ok());
        assert!(RocketChatFactory.validate_room(&room("#general")).unwrap_err().contains("room id"));
        assert!(RocketChatFactory.validate(&serde_json::json!({"url": "x"})).is_err());
    }
}
