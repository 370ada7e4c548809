//! Matrix to a group chat: the sender's puppet takes a seat in the room and
//! speaks there. A stanza counts as delivered once the room reflects it.

use std::time::Duration;

use brygga_core::{BridgeError, EventBody, Membership, OutboundEvent, SendReceipt};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;

use super::{Delivery, compose, message_id, reaction_set, receipt, remember_set};
use crate::adapter::Shared;
use crate::link::Link;
use crate::puppet::{nick_for, puppet_jid};
use crate::stanzas::{self, MessageBuilder, ModerationDraft};

/// How long the room may take to reflect a message before the send is retried.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Delivers one event to its group chat.
pub(super) async fn send(shared: &Shared, link: &Link, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    let room = BareJid::new(event.room.as_str())
        .map_err(|_| BridgeError::permanent(format!("portal room {} is not a bare JID", event.room)))?;
    let puppet = puppet_jid(&shared.domain, &event.sender.user_id)
        .ok_or_else(|| BridgeError::permanent("the sender has no valid puppet JID"))?;
    match &event.body {
        EventBody::Membership { membership: Membership::Join, display_name, .. } => {
            // A portal opened by alias has no listener yet: the first join brings it.
            shared.listen(link, &room).await?;
            let nick = nick_for(&event.sender.user_id, display_name.as_deref());
            shared.seat(link, &room, &puppet, &nick).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Membership { membership: Membership::Leave, reason, .. } if event.target.is_none() => {
            leave(shared, link, &room, &puppet, reason.as_deref()).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Membership { membership: membership @ (Membership::Kick | Membership::Ban), reason, .. } => {
            remove(shared, link, &room, event, *membership == Membership::Ban, reason.as_deref()).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Membership { .. } => Ok(SendReceipt::default()),
        // Someone else's message: only the room can remove it, on a moderator's request.
        EventBody::Redaction { target, reason } if !super::is_ours(target, &event.target_aliases) => {
            moderate(shared, link, &room, target.as_str(), reason.as_deref()).await?;
            Ok(SendReceipt::default())
        }
        body => {
            let id = message_id(&event.txn_id);
            let builder = MessageBuilder::new(&puppet, &Jid::from(room.clone()), "groupchat", &id);
            let set = reaction_set(shared, event).await?;
            let Some((builder, delivery)) = compose(builder, event, shared.links.as_deref(), set.as_deref()) else {
                return Ok(SendReceipt::default());
            };
            match delivery {
                // Typing and markers only from someone already in the room.
                Delivery::Ephemeral => {
                    if shared.rooms.lock().expect("rooms poisoned").nick_of(&room, &puppet).is_some() {
                        shared.send_quietly(link, builder.build()).await;
                    }
                }
                Delivery::Durable => {
                    shared.listen(link, &room).await?;
                    let nick = nick_for(&event.sender.user_id, event.sender.display_name.as_deref());
                    shared.seat(link, &room, &puppet, &nick).await?;
                    let stanza_id = say(shared, link, &room, &id, builder.build()).await?;
                    tracing::debug!(room = %room, reflected = stanza_id.is_some(), "delivered to XMPP");
                    remember_set(shared, event, set.as_deref()).await?;
                    // The room's id is how XMPP clients refer to it; ours is kept for corrections.
                    if let Some(stanza_id) = stanza_id {
                        return receipt(body, &stanza_id, Some(&id));
                    }
                }
            }
            receipt(body, &id, None)
        }
    }
}

/// Sends a stanza from a seated puppet and waits for the room's reflection;
/// returns the room's stanza id.
async fn say(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    id: &str,
    stanza: Element,
) -> Result<Option<String>, BridgeError> {
    // A retry of a message the room already has (its confirmation was lost,
    // then the archive showed it) must not be sent twice.
    if shared.history.lock().expect("history poisoned").was_delivered(room, id) {
        return Ok(None);
    }
    let reflected = shared.rooms.lock().expect("rooms poisoned").expect_reflection(room, id);
    if let Err(err) = link.send(stanza).await {
        shared.rooms.lock().expect("rooms poisoned").forget_reflection(room, id);
        return Err(err);
    }
    match tokio::time::timeout(REFLECTION_TIMEOUT, reflected).await {
        Ok(Ok(stanza_id)) => Ok(stanza_id),
        Ok(Err(_)) => Err(BridgeError::transient("the XMPP connection changed before the room confirmed")),
        Err(_) => {
            shared.rooms.lock().expect("rooms poisoned").forget_reflection(room, id);
            Err(BridgeError::transient(format!("{room} did not confirm the message in time")))
        }
    }
}

async fn leave(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    puppet: &FullJid,
    reason: Option<&str>,
) -> Result<(), BridgeError> {
    let nick = {
        let rooms = shared.rooms.lock().expect("rooms poisoned");
        rooms.nick_of(room, puppet)
    };
    let Some(nick) = nick else { return Ok(()) };
    let occupant = room.with_resource_str(&nick).map_err(|_| BridgeError::permanent("invalid nick"))?;
    link.send(stanzas::leave(puppet, &Jid::from(occupant), reason)).await?;
    shared.rooms.lock().expect("rooms poisoned").left(room, puppet, None);
    Ok(())
}

/// A Matrix kick or ban of an XMPP occupant's ghost: the listener (which, as
/// the bridge's seat, needs the room's moderator rights) removes them. A ban
/// needs their real JID; without it they are kicked.
async fn remove(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    event: &OutboundEvent,
    ban: bool,
    reason: Option<&str>,
) -> Result<(), BridgeError> {
    let Some(identity) = event.target_remote.as_ref().map(|r| r.as_str().to_owned()) else { return Ok(()) };
    let real_jid = BareJid::new(&identity).ok().filter(|jid| jid.node().is_some() && jid.domain() != room.domain());
    let to = Jid::from(room.clone());
    let id = link.fresh_id("admin");
    let request = match (&real_jid, ban) {
        (Some(jid), true) => {
            stanzas::muc_admin(&shared.listener, &to, &id, ("jid", jid.as_str()), ("affiliation", "outcast"), reason)
        }
        _ => {
            let nick = shared.rooms.lock().expect("rooms poisoned").nick_of_identity(room, &identity);
            let Some(nick) = nick else { return Ok(()) };
            stanzas::muc_admin(&shared.listener, &to, &id, ("nick", &nick), ("role", "none"), reason)
        }
    };
    let answer = link.iq(request).await?;
    if answer.attr("type") == Some("result") {
        return Ok(());
    }
    let condition = error_condition(&answer);
    Err(BridgeError::permanent(format!(
        "{room} refused to remove an occupant ({}): the bridge needs moderator rights there",
        condition.unwrap_or_else(|| "unknown error".into())
    )))
}

/// Asks the room to retract an occupant's message (XEP-0425), as the
/// listener: in the current draft, and in the older one when the room does
/// not know the current one.
async fn moderate(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    id: &str,
    reason: Option<&str>,
) -> Result<(), BridgeError> {
    let mut refusal = None;
    for draft in [ModerationDraft::Current, ModerationDraft::Fastened] {
        let to = Jid::from(room.clone());
        let request = stanzas::moderate(&shared.listener, &to, &link.fresh_id("moderate"), (id, reason), draft);
        let answer = link.iq(request).await?;
        if answer.attr("type") == Some("result") {
            return Ok(());
        }
        let condition = error_condition(&answer);
        let unknown =
            matches!(condition.as_deref(), Some("service-unavailable" | "feature-not-implemented" | "bad-request"));
        refusal = condition;
        if !unknown {
            break;
        }
    }
    Err(BridgeError::permanent(format!(
        "{room} did not retract the message ({}): it needs XEP-0425 moderation and the bridge moderator rights",
        refusal.unwrap_or_else(|| "unknown error".into())
    )))
}

/// The defined condition of an error answer, e.g. `forbidden`.
fn error_condition(answer: &Element) -> Option<String> {
    answer
        .get_child("error", tokio_xmpp::parsers::ns::COMPONENT)
        .and_then(|e| e.children().next())
        .map(|c| c.name().to_owned())
}
