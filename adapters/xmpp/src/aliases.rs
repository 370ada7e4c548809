//! Group chat JIDs in portal aliases: `room@conference.example.org` is
//! written `room_conference.example.org`, so `#xmpp_<tenant>_room_conference.example.org:hs`
//! names the portal of that room.

use brygga_core::RemoteRoomId;
use brygga_core::naming::{RoomAliasCodec, escape, unescape};
use tokio_xmpp::jid::BareJid;

/// The XMPP spelling of rooms in aliases.
pub(crate) struct JidAliases;

/// Domains are DNS names: nothing to escape, and never a `_`.
fn plain_domain(domain: &str) -> bool {
    !domain.is_empty() && domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

impl RoomAliasCodec for JidAliases {
    fn encode(&self, room: &RemoteRoomId) -> Option<String> {
        let jid = BareJid::new(room.as_str()).ok()?;
        let (node, domain) = (jid.node()?.as_str(), jid.domain().as_str());
        plain_domain(domain).then(|| format!("{}_{domain}", escape(node)))
    }

    fn decode(&self, fragment: &str) -> Option<RemoteRoomId> {
        // The node is escaped (a literal `_` is `__`); the domain has no `_`.
        let (node, domain) = fragment.rsplit_once('_')?;
        if !plain_domain(domain) || node.is_empty() {
            return None;
        }
        let jid = BareJid::new(&format!("{}@{domain}", unescape(node)?)).ok()?;
        RemoteRoomId::new(jid.as_str()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RemoteRoomId {
        RemoteRoomId::new(s).unwrap()
    }

    #[test]
    fn rooms_round_trip_through_alias_fragments() {
        for jid in ["lobby@conference.localhost", "my_room@muc.example.org", "räd@conference.localhost"] {
            let fragment = JidAliases.encode(&room(jid)).unwrap();
            assert_eq!(JidAliases.decode(&fragment), Some(room(jid)), "{fragment}");
        }
        assert_eq!(JidAliases.encode(&room("lobby@conference.localhost")).unwrap(), "lobby_conference.localhost");
    }

    #[test]
    fn odd_fragments_are_refused() {
        for fragment in ["nounderscore", "_conference.localhost", "room_", "room_UPPER.example", "a=zz_b.c"] {
            assert_eq!(JidAliases.decode(fragment), None, "{fragment}");
        }
        assert_eq!(JidAliases.encode(&room("domain.only")), None);
    }
}
