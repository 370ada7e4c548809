//! Matrix to XMPP: each event becomes a stanza from the sender's puppet,
//! in a group chat or a one-to-one chat.

mod direct;
mod group;

use std::sync::Arc;

use brygga_core::{
    BridgeError, EventBody, MatrixUserId, MediaLinks, MediaSource, OutboundEvent, Presence, RemoteMessageId,
    SendReceipt,
};
use tokio_xmpp::jid::Jid;

use crate::adapter::Shared;
use crate::link::Link;
use crate::reactions::Side;
use crate::stanzas::{self, MessageBuilder};

/// Delivers one event.
pub(crate) async fn send(shared: &Arc<Shared>, link: &Link, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    if crate::hosted::is_hosted(shared, event.room.as_str()) {
        return crate::hosted::send(shared, link, event).await;
    }
    match crate::direct::parse(&event.room) {
        Some((contact, user)) => direct::send(shared, link, event, &contact, &user).await,
        None => group::send(shared, link, event).await,
    }
}

/// Shows a Matrix user's presence where their puppet appears: in the group
/// chats it sits in (where offline shows as `xa`, since unavailable presence
/// would leave the room) and to the contacts of their direct chats.
pub(crate) async fn presence(
    shared: &Shared,
    link: &Link,
    user: &MatrixUserId,
    presence: Presence,
    status: Option<&str>,
) {
    let Some(puppet) = crate::puppet::puppet_jid(&shared.domain, user) else { return };
    let seats = shared.rooms.lock().expect("rooms poisoned").seats_of(&puppet);
    let show = match presence {
        Presence::Online => None,
        Presence::Unavailable => Some("away"),
        _ => Some("xa"),
    };
    for (room, nick) in seats {
        let Ok(occupant) = room.with_resource_str(&nick) else { continue };
        shared.send_quietly(link, stanzas::presence(&puppet, &Jid::from(occupant), true, show, status)).await;
    }
    let contacts = match shared.portals.rooms().await {
        Ok(rooms) => rooms.iter().filter_map(crate::direct::parse).filter(|(_, u)| u == user).map(|(c, _)| c).collect(),
        Err(_) => Vec::new(),
    };
    let available = presence != Presence::Offline;
    for contact in contacts {
        let show = if available { show } else { None };
        shared.send_quietly(link, stanzas::presence(&puppet, &Jid::from(contact), available, show, status)).await;
    }
}

/// How sure a send must be before it counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Confirmed by the server (reflection or barrier), retried otherwise.
    Durable,
    /// Best effort: typing and read markers.
    Ephemeral,
}

/// The stanza id of a Matrix-originated stanza, stable across retries so the
/// other side can recognise a repeat.
pub(crate) fn message_id(txn_id: &str) -> String {
    txn_id.to_owned()
}

/// Fills a message stanza for an event; `None` for events without one.
/// Files travel as signed links (XEP-0066) whose body is the link itself,
/// which clients show inline.
pub(crate) fn compose(
    builder: MessageBuilder,
    event: &OutboundEvent,
    links: Option<&dyn MediaLinks>,
    reaction_set: Option<&[String]>,
) -> Option<(MessageBuilder, Delivery)> {
    let (body, aliases) = (&event.body, event.target_aliases.as_slice());
    let built = match body {
        EventBody::Message(message) => {
            let mut text = if message.emote { format!("/me {}", message.text.body) } else { message.text.body.clone() };
            let mut builder = builder.markable();
            if let Some(reply_to) = &message.reply_to {
                builder = builder.replies_to(reply_to.as_str());
            }
            let urls: Vec<String> = message
                .attachments
                .iter()
                .filter_map(|a| match &a.source {
                    MediaSource::Matrix(file) => links?.link(file, &a.name),
                    MediaSource::Remote { locator } => Some(locator.clone()),
                    _ => None,
                })
                .collect();
            if let Some(first) = urls.first() {
                builder = builder.oob(first);
                // The file's name is only a caption when it says something else.
                let caption = !text.is_empty() && message.attachments.iter().all(|a| a.name != text);
                text = if caption { format!("{text}\n{}", urls.join("\n")) } else { urls.join("\n") };
            }
            (builder.body(&text), Delivery::Durable)
        }
        EventBody::Edit { target, text } => {
            (builder.replaces(own_id(target, aliases)).body(&text.body), Delivery::Durable)
        }
        EventBody::Redaction { target, .. } => (builder.retracts(target.as_str()), Delivery::Durable),
        EventBody::Reaction { target, .. } => (builder.reactions(target.as_str(), reaction_set?), Delivery::Durable),
        EventBody::Typing { typing } => {
            let state = if *typing { "composing" } else { "paused" };
            (builder.chat_state(state).no_store(), Delivery::Ephemeral)
        }
        EventBody::ReadReceipt { up_to } => (builder.displayed(up_to.as_str()).no_store(), Delivery::Ephemeral),
        _ => return None,
    };
    Some(built)
}

/// For a reaction: the sender's whole set once it is applied (XEP-0444
/// sends whole sets).
pub(crate) async fn reaction_set(shared: &Shared, event: &OutboundEvent) -> Result<Option<Vec<String>>, BridgeError> {
    let EventBody::Reaction { target, key, removed } = &event.body else { return Ok(None) };
    let (room, user) = (event.room.as_str(), event.sender.user_id.as_str());
    Ok(Some(shared.reactions.apply(room, target.as_str(), user, key, *removed).await?))
}

/// Remembers a reaction set once it was delivered.
pub(crate) async fn remember_set(
    shared: &Shared,
    event: &OutboundEvent,
    set: Option<&[String]>,
) -> Result<(), BridgeError> {
    if let (Some(set), EventBody::Reaction { target, .. }) = (set, &event.body) {
        let (room, user) = (event.room.as_str(), event.sender.user_id.as_str());
        shared.reactions.put(Side::Matrix, room, target.as_str(), user, set).await?;
    }
    Ok(())
}

/// What the bridge records for a delivered event: a new message gets its
/// id, and the id we gave it when the room named it otherwise.
pub(crate) fn receipt(
    body: &EventBody<RemoteMessageId>,
    id: &str,
    ours: Option<&str>,
) -> Result<SendReceipt, BridgeError> {
    let remote = |id: &str| RemoteMessageId::new(id).map_err(|e| BridgeError::permanent(e.to_string()));
    match body {
        EventBody::Message(_) => {
            let mut receipt = SendReceipt::one(remote(id)?);
            receipt.aliases = ours.map(remote).transpose()?.into_iter().collect();
            Ok(receipt)
        }
        _ => Ok(SendReceipt::default()),
    }
}

/// Whether a message was sent by the bridge (it carries one of our ids).
fn is_ours(target: &RemoteMessageId, aliases: &[RemoteMessageId]) -> bool {
    std::iter::once(target).chain(aliases).any(|id| id.as_str().starts_with("brygga."))
}

/// The id a correction names: the one we gave the message, when the room
/// knows it by another.
fn own_id<'a>(target: &'a RemoteMessageId, aliases: &'a [RemoteMessageId]) -> &'a str {
    aliases.iter().find(|a| a.as_str().starts_with("brygga.")).unwrap_or(target).as_str()
}
