//! A portal's MSC2346 bridge info (`m.bridge` state), which tells Matrix
//! clients what the room is bridged to and whether it is encrypted up to the bridge.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{AdapterKind, MatrixUserId, PortalKey, RemoteRoomId, TenantId};

/// State event types carrying bridge info (stable and legacy name).
pub const BRIDGE_STATE_TYPES: [&str; 2] = ["m.bridge", "uk.half-shot.bridge"];

/// The content field saying how far the room's encryption reaches.
const ENCRYPTION_FIELD: &str = "io.brygga.encryption";

/// The `m.bridge` / `uk.half-shot.bridge` state of a portal room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeInfo {
    /// The adapter kind (protocol id).
    pub kind: AdapterKind,
    /// The tenant (network id).
    pub tenant: TenantId,
    /// The remote room (channel id).
    pub room: RemoteRoomId,
    /// The remote room's name.
    pub room_name: Option<String>,
    /// Whether the room is end-to-bridge encrypted.
    #[serde(default)]
    pub encrypted: bool,
}

impl BridgeInfo {
    /// The state key of the portal's bridge state events (`m.bridge` and
    /// the bridge status): `kind/tenant/room`, each part with `%` and `/`
    /// escaped so the parts stay apart.
    pub fn state_key(&self) -> String {
        bridge_state_key(&PortalKey::new(self.tenant.clone(), self.kind.clone(), self.room.clone()))
    }

    /// The state content, naming `bot` as the bridge bot.
    pub fn content(&self, bot: &MatrixUserId) -> Value {
        let mut channel = json!({ "id": self.room.as_str() });
        if let Some(name) = &self.room_name {
            channel["displayname"] = json!(name);
        }
        json!({
            "bridgebot": bot.as_str(),
            "protocol": { "id": self.kind.as_str(), "displayname": protocol_name(self.kind.as_str()) },
            "network": { "id": self.tenant.as_str() },
            "channel": channel,
            // Encryption ends at the bridge: the remote platform gets plaintext.
            ENCRYPTION_FIELD: if self.encrypted { "end-to-bridge" } else { "none" },
        })
    }
}

/// The state key of a portal's bridge state events (see [`BridgeInfo::state_key`]).
pub fn bridge_state_key(portal: &PortalKey) -> String {
    let escape = |part: &str| part.replace('%', "%25").replace('/', "%2F");
    format!("{}/{}/{}", escape(portal.kind.as_str()), escape(portal.tenant.as_str()), escape(portal.room.as_str()))
}

/// A readable protocol name for the kinds the bridge ships.
fn protocol_name(kind: &str) -> &str {
    match kind {
        "xmpp" => "XMPP",
        "rocketchat" => "Rocket.Chat",
        "teams" => "Microsoft Teams",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_names_the_bridge_and_how_far_encryption_reaches() {
        let mut info = BridgeInfo {
            kind: AdapterKind::new("xmpp").unwrap(),
            tenant: TenantId::new("fk").unwrap(),
            room: RemoteRoomId::new("room/with%slash").unwrap(),
            room_name: Some("Room".into()),
            encrypted: false,
        };
        let bot = MatrixUserId::new("@bot:hs").unwrap();
        assert_eq!(info.state_key(), "xmpp/fk/room%2Fwith%25slash");
        let content = info.content(&bot);
        assert_eq!(content["channel"]["id"], "room/with%slash");
        assert_eq!(content["protocol"]["displayname"], "XMPP");
        assert_eq!(content["bridgebot"], "@bot:hs");
        assert_eq!(content[ENCRYPTION_FIELD], "none");
        info.encrypted = true;
        assert_eq!(info.content(&bot)[ENCRYPTION_FIELD], "end-to-bridge");
    }
}
