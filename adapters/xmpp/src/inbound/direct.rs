//! One-to-one messages to Matrix: a contact writes to a Matrix user's puppet
//! JID, and the pair's direct chat gets the event.

use brygga_core::{InboundEvent, RemoteMessageId, RemoteSender, RemoteUserId};

use crate::adapter::Shared;
use crate::direct;
use crate::stanza::DirectMessage;

pub(crate) async fn message(shared: &Shared, mut message: DirectMessage) -> Vec<InboundEvent> {
    let Some(user) = shared.puppet_owner(&message.to) else {
        tracing::debug!("one-to-one message not addressed to a puppet ignored");
        return Vec::new();
    };
    let contact = message.from.to_bare();
    // Only users write to puppets; anything claiming our own domain is not one.
    if contact.node().is_none() || contact.domain() == shared.domain.domain() {
        tracing::warn!("one-to-one message from a non-user JID ignored");
        return Vec::new();
    }
    if !super::body_fits(shared, &message.payload) {
        tracing::warn!("oversized XMPP message refused");
        return Vec::new();
    }
    let (Some(room), Ok(id)) = (direct::room_id(&contact, &user), RemoteUserId::new(contact.as_str())) else {
        return Vec::new();
    };
    let mut sender = RemoteSender::new(id);
    sender.display_name = contact.node().map(|n| n.as_str().to_owned());
    let event_id = match message.id.or(message.origin_id).and_then(|id| RemoteMessageId::new(id).ok()) {
        Some(id) => id,
        None => super::ephemeral_id(),
    };
    if let Some((target, keys)) = message.payload.reactions.take() {
        return super::reaction_events(shared, room, event_id, sender, &target, keys).await;
    }
    // Ids are scoped by the portal (this pair), so the sender's own id is enough.
    let id = |id: &str| RemoteMessageId::new(id).ok();
    let Some(body) = super::body_of(message.payload, id, id) else { return Vec::new() };
    vec![InboundEvent::new(room, event_id, sender, body)]
}
