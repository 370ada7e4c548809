//! Matrix to a one-to-one chat: the puppet writes to the contact, and the
//! server's answer to a ping sent after it confirms the message was taken.

use brygga_core::{BridgeError, EventBody, MatrixUserId, OutboundEvent, SendReceipt};
use tokio_xmpp::jid::{BareJid, Jid};

use super::{Delivery, compose, message_id, reaction_set, receipt, remember_set};
use crate::adapter::Shared;
use crate::link::Link;
use crate::puppet::puppet_jid;
use crate::stanzas::MessageBuilder;

pub(super) async fn send(
    shared: &Shared,
    link: &Link,
    event: &OutboundEvent,
    contact: &BareJid,
    user: &MatrixUserId,
) -> Result<SendReceipt, BridgeError> {
    // Only the Matrix side of this chat speaks in it; anyone else in the room stays on Matrix.
    if &event.sender.user_id != user || matches!(event.body, EventBody::Membership { .. }) {
        return Ok(SendReceipt::default());
    }
    let puppet = puppet_jid(&shared.domain, user).ok_or_else(|| BridgeError::permanent("no valid puppet JID"))?;
    let id = message_id(&event.txn_id);
    let builder = MessageBuilder::new(&puppet, &Jid::from(contact.clone()), "chat", &id);
    let set = reaction_set(shared, event).await?;
    let Some((builder, delivery)) = compose(builder, event, shared.links.as_deref(), set.as_deref()) else {
        return Ok(SendReceipt::default());
    };
    match delivery {
        Delivery::Ephemeral => shared.send_quietly(link, builder.build()).await,
        Delivery::Durable => {
            link.send(builder.build()).await?;
            link.barrier().await?;
            remember_set(shared, event, set.as_deref()).await?;
        }
    }
    receipt(&event.body, &id, None)
}
