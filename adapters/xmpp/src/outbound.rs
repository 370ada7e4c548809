//! Matrix to XMPP: the sender's puppet takes a seat in the group chat and
//! speaks there. A message counts as delivered once the room reflects it.

use std::time::Duration;

use brygga_core::{BridgeError, EventBody, Membership, OutboundEvent, RemoteMessageId, SendReceipt};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};

use crate::adapter::Shared;
use crate::link::Link;
use crate::puppet::{nick_for, puppet_jid};
use crate::stanzas;

/// How long the room may take to reflect a message before the send is retried.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Delivers one event to its group chat.
pub(crate) async fn send(shared: &Shared, link: &Link, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    let room = BareJid::new(event.room.as_str())
        .map_err(|_| BridgeError::permanent(format!("portal room {} is not a bare JID", event.room)))?;
    let puppet = puppet_jid(&shared.domain, &event.sender.user_id)
        .ok_or_else(|| BridgeError::permanent("the sender has no valid puppet JID"))?;
    match &event.body {
        EventBody::Message(message) => {
            shared.listen(link, &room).await?;
            let nick = nick_for(&event.sender.user_id, event.sender.display_name.as_deref());
            shared.seat(link, &room, &puppet, &nick).await?;
            let id = message_id(&event.txn_id);
            let stanza_id = say(shared, link, &room, &puppet, &id, &message.text.body).await?;
            tracing::debug!(room = %room, reflected = stanza_id.is_some(), "message delivered to XMPP");
            Ok(SendReceipt::one(RemoteMessageId::new(id).map_err(|e| BridgeError::permanent(e.to_string()))?))
        }
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
        // Not yet mapped to XMPP: acknowledged so the queue moves on.
        _ => Ok(SendReceipt::default()),
    }
}

/// The stanza id of a Matrix-originated message, stable across retries.
fn message_id(txn_id: &str) -> String {
    txn_id.to_owned()
}

/// Sends a group chat message from a seated puppet and waits for the room's
/// reflection; returns the room's stanza id.
async fn say(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    puppet: &FullJid,
    id: &str,
    body: &str,
) -> Result<Option<String>, BridgeError> {
    let reflected = shared.rooms.lock().expect("rooms poisoned").expect_reflection(room, id);
    let stanza = stanzas::group_message(puppet, &Jid::from(room.clone()), id, body);
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
