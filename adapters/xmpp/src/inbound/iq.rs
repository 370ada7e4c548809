//! Answers to iq requests: pings, and service discovery on the component
//! domain (a gateway listing the bridged group chats) and on puppet JIDs
//! (what clients may use when talking to a Matrix user).

use brygga_core::BridgeError;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use crate::adapter::Shared;
use crate::payload::xmlns;
use crate::stanza::IqKind;
use crate::stanzas::{self, Disco};

/// What puppets (and the gateway) understand, for clients to enable features.
const FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::PING,
    ns::CHATSTATES,
    ns::RECEIPTS,
    ns::MESSAGE_CORRECT,
    ns::REACTIONS,
    ns::OOB,
    xmlns::CHAT_MARKERS,
    xmlns::RETRACT,
    xmlns::REPLY,
];

/// The answer to one request.
pub(super) async fn answer(
    shared: &Shared,
    from: &Jid,
    to: &Jid,
    id: &str,
    kind: IqKind,
    payload: Option<&Element>,
) -> Element {
    let error = |kind, condition| stanzas::iq_error(to, from, id, kind, condition);
    let Some(payload) = payload else { return error("modify", "bad-request") };
    let target = to.to_bare();
    let is_gateway = target.node().is_none() && target.domain() == shared.domain.domain();
    let is_puppet = shared.puppet_owner(&target).is_some();
    match (kind, payload.name(), payload.ns().as_str()) {
        (IqKind::Get, "ping", ns::PING) => stanzas::iq_result(to, from, id),
        (IqKind::Get, "query", ns::DISCO_INFO) if is_gateway => {
            // Also a group chat service: it hosts rooms of its own and lists bridged ones.
            let name = format!("Matrix bridge ({})", shared.domain);
            let identities = [
                Disco { category: "gateway", kind: "matrix", name: &name },
                Disco { category: "conference", kind: "text", name: &name },
            ];
            let features: Vec<&str> = FEATURES.iter().copied().chain([ns::MUC]).collect();
            stanzas::disco_info_identities(to, from, id, &identities, &features)
        }
        (IqKind::Get, "query", ns::DISCO_INFO) if is_puppet => {
            stanzas::disco_info(to, from, id, &Disco { category: "client", kind: "pc", name: "Matrix" }, FEATURES)
        }
        (IqKind::Get, "query", ns::DISCO_ITEMS) if is_gateway => match group_chats(shared).await {
            Ok(rooms) => stanzas::disco_items(to, from, id, &rooms),
            Err(err) => {
                tracing::warn!(error = %err, "listing bridged rooms for disco failed");
                error("wait", "internal-server-error")
            }
        },
        (IqKind::Get, "query", ns::DISCO_ITEMS) if is_puppet => stanzas::disco_items(to, from, id, &[]),
        _ => error("cancel", "service-unavailable"),
    }
}

/// The bridged group chats (direct chats are private and not listed).
async fn group_chats(shared: &Shared) -> Result<Vec<BareJid>, BridgeError> {
    let rooms = shared.portals.rooms().await?;
    Ok(rooms
        .iter()
        .filter(|r| crate::direct::parse(r).is_none())
        .filter_map(|r| BareJid::new(r.as_str()).ok())
        .filter(|jid| jid.node().is_some())
        .collect())
}
