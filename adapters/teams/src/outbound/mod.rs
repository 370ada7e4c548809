//! Matrix to Teams: each event is sent with a delegated token — the Matrix
//! user's own when they linked their Teams account, else the relay
//! identity's with their name shown. Graph refuses app-only message posts
//! outside migration, so there is no app-token fallback.
//!
//! Graph has no client-chosen message ids, so a send's result is kept under
//! its transaction id (in a bounded ring of slots): a retry of a send that
//! went through is answered from there instead of posting again. A crash
//! between Graph's answer and keeping it can still post twice.

mod content;

use brygga_core::{BridgeError, EventBody, OutboundEvent, RemoteMessageId, SendReceipt};
use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::RELAY;
use crate::graph::GraphError;
use crate::ids::{Conversation, MessageRef};
use crate::shared::Shared;

/// Who sends an event on Teams.
pub(crate) struct Sender {
    /// The accounts slot: the Matrix user id, or the relay.
    pub(crate) slot: String,
    /// Whether this is the relay (the sender's name is shown in the text).
    pub(crate) relay: bool,
}

fn sender_of(shared: &Shared, event: &OutboundEvent) -> Result<Sender, BridgeError> {
    let user = event.sender.user_id.as_str();
    if shared.accounts.aad_of(user).is_some() {
        return Ok(Sender { slot: user.to_owned(), relay: false });
    }
    if shared.accounts.relay_aad().is_none() {
        return Err(BridgeError::permanent("the sender has not linked Teams and the tenant has no relay identity"));
    }
    Ok(Sender { slot: RELAY.to_owned(), relay: true })
}

/// Slots of kept receipts: the state stays bounded, and a retry (which comes
/// soon after its send) still finds its receipt unless 4096 sends came between.
const RECEIPT_SLOTS: u64 = 4096;

/// A kept receipt, with the transaction it belongs to (slots are shared).
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    txn: String,
    receipt: SendReceipt,
}

fn sent_key(txn: &str) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike the std hasher.
    let hash = txn.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("sent/{}", hash % RECEIPT_SLOTS)
}

/// Delivers one event.
pub(crate) async fn send(shared: &Shared, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    let conversation = Conversation::parse(event.room.as_str())
        .ok_or_else(|| BridgeError::permanent("the portal's room id is not a Teams channel or chat"))?;
    let kept = shared.state.get(&sent_key(&event.txn_id)).await?;
    if let Some(kept) = kept.and_then(|k| serde_json::from_str::<Kept>(&k).ok()).filter(|k| k.txn == event.txn_id) {
        return Ok(kept.receipt);
    }
    let receipt = match &event.body {
        EventBody::Message(_) => content::message(shared, &conversation, event, &sender_of(shared, event)?).await?,
        EventBody::Edit { target, text } => {
            let sender = sender_of(shared, event)?;
            let target = message_ref(target)?;
            let body = content::body(shared, &sender, event, text, None);
            // Expected before the call: its notification may be read before the call returns.
            let echo = format!("{}#edit", target.id());
            shared.echoes.expect(echo.clone());
            if let Err(err) = change(shared, &conversation, &sender, &target, Method::PATCH, "", Some(&body)).await {
                shared.echoes.forget(&echo);
                return Err(err.into());
            }
            SendReceipt::default()
        }
        EventBody::Redaction { target, .. } => {
            let sender = sender_of(shared, event)?;
            let target = message_ref(target)?;
            let echo = format!("{}#deleted", target.id());
            shared.echoes.expect(echo.clone());
            match change(shared, &conversation, &sender, &target, Method::POST, "/softDelete", None).await {
                // Deleted already (by someone else, or an earlier attempt).
                Ok(()) | Err(GraphError::NotFound(_)) => {}
                Err(err) => {
                    shared.echoes.forget(&echo);
                    return Err(err.into());
                }
            }
            SendReceipt::default()
        }
        EventBody::Reaction { target, key, removed } => {
            let sender = sender_of(shared, event)?;
            if sender.relay {
                // A reaction is a person's own act: the relay cannot make it for someone.
                tracing::debug!(tenant = %shared.tenant, "reaction of an unlinked Matrix user not bridged");
                return Ok(SendReceipt::default());
            }
            let target = message_ref(target)?;
            let (leaf, echo) = if *removed { ("/unsetReaction", "unreact") } else { ("/setReaction", "react") };
            let body = json!({ "reactionType": key });
            let echo = shared.accounts.aad_of(&sender.slot).map(|aad| format!("{}#{echo}:{aad}:{key}", target.id()));
            if let Some(echo) = &echo {
                shared.echoes.expect(echo.clone());
            }
            if let Err(err) = change(shared, &conversation, &sender, &target, Method::POST, leaf, Some(&body)).await {
                if let Some(echo) = &echo {
                    shared.echoes.forget(echo);
                }
                return Err(err.into());
            }
            SendReceipt::default()
        }
        _ => return Ok(SendReceipt::default()),
    };
    if !receipt.remote_ids.is_empty() {
        let kept = Kept { txn: event.txn_id.clone(), receipt: receipt.clone() };
        let text = serde_json::to_string(&kept).expect("serialisable");
        shared.state.put(&sent_key(&event.txn_id), Some(&text)).await?;
    }
    Ok(receipt)
}

fn message_ref(id: &RemoteMessageId) -> Result<MessageRef, BridgeError> {
    MessageRef::parse(id.as_str()).ok_or_else(|| BridgeError::permanent("not a Teams message id"))
}

/// A call on an existing message as the sender (`leaf`: `""`, `/softDelete`, …).
async fn change(
    shared: &Shared,
    conversation: &Conversation,
    sender: &Sender,
    target: &MessageRef,
    method: Method,
    leaf: &str,
    body: Option<&Value>,
) -> Result<(), GraphError> {
    let path = format!("{}{leaf}", conversation.message_path(target));
    match shared.user_call(&sender.slot, method, &path, body, &conversation.room_id()).await? {
        Some(_) => Ok(()),
        // The relay's token is the operator's to fix (kept queued meanwhile);
        // a person's lapsed link cannot be fixed by retrying this event.
        None if sender.relay => Err(GraphError::BadCredentials { status: 0, code: "no usable relay token".into() }),
        None => Err(GraphError::Refused {
            status: 401,
            code: "linkLapsed".into(),
            message: "the sender's Teams link has lapsed; they must link again".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_go_to_stable_bounded_slots() {
        assert_eq!(sent_key("txn-1"), sent_key("txn-1"));
        assert_ne!(sent_key("txn-1"), sent_key("txn-2"));
        let slot: u64 = sent_key("anything").trim_start_matches("sent/").parse().unwrap();
        assert!(slot < RECEIPT_SLOTS);
        // FNV-1a of "a", as published.
        assert_eq!(sent_key("a"), format!("sent/{}", 0xaf63_dc4c_8601_ec8c_u64 % RECEIPT_SLOTS));
    }
}
