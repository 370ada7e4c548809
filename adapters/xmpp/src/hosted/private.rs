//! Private messages in hosted rooms (XEP-0045 §7.5): an occupant writes to
//! `room/nick`. Between XMPP occupants the room relays them; to a Matrix
//! user they become that user's direct chat with the writer, answered from
//! the user's puppet JID (which the non-anonymous room shows anyway).

use std::sync::Arc;

use brygga_core::InboundEvent;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use super::wire;
use crate::adapter::Shared;
use crate::link::Link;
use crate::stanza::DirectMessage;

/// Who a private message is for.
enum Addressee {
    Xmpp(Vec<FullJid>),
    Matrix(brygga_core::MatrixUserId),
}

pub(super) async fn message(
    shared: &Arc<Shared>,
    link: &Link,
    element: &Element,
    room: &BareJid,
    to: &Jid,
    session: &FullJid,
) -> Vec<InboundEvent> {
    let bounce = |condition| wire::message_error(to, &Jid::from(session.clone()), element.attr("id"), condition);
    let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) else { return Vec::new() };
    let (sender_nick, addressee) = {
        let occupants = shared.hosted.occupants.lock().expect("occupants poisoned");
        let addressee = match occupants.matrix_user(room, &nick) {
            Some(user) => Some(Addressee::Matrix(user)),
            None => Some(occupants.sessions_of(room, &nick)).filter(|s| !s.is_empty()).map(Addressee::Xmpp),
        };
        (occupants.nick_of(room, session), addressee)
    };
    // Only occupants write privately, and only to someone in the room.
    let Some(sender_nick) = sender_nick else {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    };
    let Some(addressee) = addressee else {
        shared.send_quietly(link, bounce("item-not-found")).await;
        return Vec::new();
    };
    let payload = crate::payload::read(element);
    if !crate::inbound::body_fits(shared, &payload) {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    }
    match addressee {
        Addressee::Xmpp(sessions) => {
            let Ok(from) = room.with_resource_str(&sender_nick) else { return Vec::new() };
            for target in &sessions {
                shared.send_quietly(link, relayed(element, &from, target)).await;
            }
            Vec::new()
        }
        Addressee::Matrix(user) => {
            let Some(puppet) = crate::puppet::puppet_jid(&shared.domain, &user) else { return Vec::new() };
            let message = DirectMessage {
                from: Jid::from(session.clone()),
                to: puppet.to_bare(),
                id: element.attr("id").map(str::to_owned),
                origin_id: element.get_child("origin-id", ns::SID).and_then(|o| o.attr("id")).map(str::to_owned),
                payload,
            };
            crate::inbound::direct_message(shared, message).await
        }
    }
}

/// The private message as the addressee gets it: from the writer's
/// occupant JID, marked as coming through the room.
fn relayed(element: &Element, from: &FullJid, to: &FullJid) -> Element {
    let mut copy = Element::builder("message", ns::COMPONENT)
        .attr(name("from"), from.as_str())
        .attr(name("to"), to.as_str())
        .attr(name("type"), "chat");
    if let Some(id) = element.attr("id") {
        copy = copy.attr(name("id"), id);
    }
    let children = wire::reflectable(element).into_iter().filter(|c| !c.is("x", ns::MUC_USER));
    copy.append_all(children).append(Element::builder("x", ns::MUC_USER).build()).build()
}

fn name(value: &'static str) -> tokio_xmpp::minidom::rxml::NcName {
    tokio_xmpp::minidom::rxml::NcName::try_from(value).expect("static attribute names are valid")
}
