//! brygga-xmpp: bridges Matrix rooms with XMPP group chats as an XEP-0114
//! external component of the tenant's XMPP server.
//!
//! Each tenant has its own component domain. Matrix users appear in group
//! chats as puppets under that domain; XMPP occupants appear on Matrix as
//! ghosts. The bridge's listener sits in every bridged room and is the one
//! seat whose copy of the room's traffic is read.

mod adapter;
mod aliases;
mod config;
mod direct;
mod history;
mod hosted;
mod inbound;
mod link;
mod media;
mod muc;
mod outbound;
mod payload;
mod puppet;
mod reactions;
mod stanza;
mod stanzas;

use std::sync::Arc;

use brygga_core::naming::RoomAliasCodec;
use brygga_core::{Adapter, AdapterContext, AdapterFactory, AdapterKind, BridgeError, RemoteRoomId};
use tokio_xmpp::jid::BareJid;

/// The adapter kind, as used in config, ghost names and portal keys.
pub const KIND: &str = "xmpp";

/// Builds XMPP adapters.
pub struct XmppFactory;

impl AdapterFactory for XmppFactory {
    fn kind(&self) -> AdapterKind {
        AdapterKind::new(KIND).expect("valid kind")
    }

    fn validate(&self, config: &serde_json::Value) -> Result<(), String> {
        config::XmppConfig::parse(config).map(|_| ())
    }

    fn validate_room(&self, room: &RemoteRoomId) -> Result<(), String> {
        match BareJid::new(room.as_str()) {
            Ok(jid) if jid.node().is_some() => Ok(()),
            _ => Err("expected the bare JID of a group chat, like room@conference.example.org".into()),
        }
    }

    fn room_aliases(&self) -> Option<Arc<dyn RoomAliasCodec>> {
        Some(Arc::new(aliases::JidAliases))
    }

    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError> {
        let config = config::XmppConfig::parse(&ctx.config).map_err(BridgeError::permanent)?;
        let adapter = adapter::XmppAdapter::new(config, ctx.sink, ctx.portals, ctx.media_links, ctx.state, ctx.status)?;
        Ok(Arc::new(adapter))
    }
}
