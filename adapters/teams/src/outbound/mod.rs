//! Matrix to Teams: each event is sent with a delegated token — the Matrix
//! user's own when they linked their Teams account, else the relay
//! identity's with their name shown. Graph refuses app-only message posts
//! outside migration, so there is no app-token fallback.
//!
//! Graph has no client-chosen message ids, so a new message is posted at
//! most once per transaction id by noting the post's intent before the POST
//! (`kept.rs`) and, when a retry finds an intent whose outcome this process
//! does not know, adopting the message the earlier attempt made
//! (`adopt.rs`) instead of posting again.

mod adopt;
mod content;
mod kept;

use brygga_core::{BridgeError, EventBody, OutboundEvent, RemoteMessageId, SendReceipt};
use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::RELAY;
use crate::graph::GraphError;
use crate::ids::{Conversation, MessageRef};
use crate::shared::Shared;

pub(crate) use kept::Posts;
use kept::{Kept, Outcome, sent_key};

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

/// Delivers one event.
pub(crate) async fn send(shared: &Shared, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    let conversation = Conversation::parse(event.room.as_str())
        .ok_or_else(|| BridgeError::permanent("the portal's room id is not a Teams channel or chat"))?;
    let receipt = match &event.body {
        EventBody::Message(_) => {
            if let Some(receipt) = posted_before(shared, &conversation, &event.txn_id).await? {
                return Ok(receipt);
            }
            let receipt = content::message(shared, &conversation, event, &sender_of(shared, event)?).await?;
            shared.posts.record(&event.txn_id, Outcome::Posted(receipt.clone()));
            receipt
        }
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
    Ok(receipt)
}

/// The receipt of an earlier attempt of `txn` that posted (or may have
/// posted: then the message it made is looked for).
async fn posted_before(
    shared: &Shared,
    conversation: &Conversation,
    txn: &str,
) -> Result<Option<SendReceipt>, BridgeError> {
    match shared.posts.get(txn) {
        Some(Outcome::Posted(receipt)) => return Ok(Some(receipt)),
        Some(Outcome::NotPosted) => return Ok(None),
        None => {}
    }
    let kept = shared.state.get(&sent_key(txn)).await?;
    let Some(kept) = kept.and_then(|k| serde_json::from_str::<Kept>(&k).ok()).filter(|k| k.txn == txn) else {
        return Ok(None);
    };
    if let Some(receipt) = kept.receipt {
        return Ok(Some(receipt));
    }
    let Some(intent) = kept.intent else { return Ok(None) };
    let Some(id) = adopt::adopt(shared, conversation, &intent).await? else {
        tracing::debug!(tenant = %shared.tenant, "Teams: an earlier attempt left no message; posting");
        return Ok(None);
    };
    tracing::info!(tenant = %shared.tenant, "Teams: adopted the message an interrupted attempt posted");
    let id = RemoteMessageId::new(id).map_err(|_| BridgeError::permanent("Graph listed a message without an id"))?;
    let receipt = SendReceipt::one(id);
    shared.posts.record(txn, Outcome::Posted(receipt.clone()));
    Ok(Some(receipt))
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
