//! New messages: the body (mentions, the relay's name line, files as links),
//! where they go (a channel thread's replies, or a quoted chat message) and
//! the post itself.

use brygga_core::{BridgeError, EventBody, MediaSource, OutboundEvent, RemoteMessageId, SendReceipt, Text};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Sender, message_ref};
use crate::accounts::RELAY;
use crate::html::{escape, matrix_to_teams};
use crate::ids::{Conversation, MessageRef, seg};
use crate::model::ChatMessage;
use crate::shared::Shared;

/// The chatMessage body for a Matrix text (with the relay's name line and
/// `extra` HTML, e.g. file links, after it).
pub(crate) fn body(shared: &Shared, sender: &Sender, event: &OutboundEvent, text: &Text, extra: Option<&str>) -> Value {
    let tenant = shared.tenant.to_string();
    let ghost_marker = format!("{}_{tenant}_", crate::KIND);
    let teams_user = |user: &str| -> Option<String> {
        if let Some(aad) = shared.accounts.aad_of(user) {
            return Some(aad);
        }
        let local = user.strip_prefix('@')?.split(':').next()?;
        brygga_core::naming::unescape(local.strip_prefix(&ghost_marker)?)
    };
    let rendered = matrix_to_teams(text, &teams_user);
    let mut html = rendered.html;
    if sender.relay {
        let name = event.sender.display_name.as_deref().unwrap_or(event.sender.user_id.as_str());
        html = format!("<p><b>{}</b></p>{html}", escape(name));
    }
    if let Some(extra) = extra {
        html.push_str(extra);
    }
    let mentions: Vec<Value> = rendered
        .mentions
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "mentionText": m.text,
                "mentioned": {"user": {"id": m.user_id, "displayName": m.text, "userIdentityType": "aadUser"}},
            })
        })
        .collect();
    json!({ "body": { "contentType": "html", "content": html }, "mentions": mentions })
}

/// Posts a new message; returns its id as the bridge writes it.
pub(crate) async fn message(
    shared: &Shared,
    conversation: &Conversation,
    event: &OutboundEvent,
    sender: &Sender,
) -> Result<SendReceipt, BridgeError> {
    let EventBody::Message(message) = &event.body else { return Ok(SendReceipt::default()) };
    let mut extra = String::new();
    for file in &message.attachments {
        let link = match (&file.source, &shared.media_links) {
            (MediaSource::Matrix { mxc }, Some(links)) => links.link(mxc, &file.name),
            _ => None,
        };
        extra.push_str(&match link {
            Some(url) => format!("<p><a href=\"{}\">{}</a></p>", escape(&url), escape(&file.name)),
            None => format!("<p>{}</p>", escape(&file.name)),
        });
    }
    let mut text = message.text.clone();
    if message.emote {
        let name = event.sender.display_name.as_deref().unwrap_or(event.sender.user_id.as_str());
        text = Text {
            body: format!("* {name} {}", text.body),
            html: text.html.map(|h| format!("* {} {h}", escape(name))),
        };
    }
    if text.body.trim().is_empty() && extra.is_empty() {
        return Ok(SendReceipt::default());
    }
    let extra = Some(extra.as_str()).filter(|e| !e.is_empty());
    // A channel reply goes to its thread; a chat reply quotes its target.
    let thread = message.thread_root.as_ref().or(message.reply_to.as_ref()).map(message_ref).transpose()?;
    let quoted = match conversation {
        Conversation::Chat { .. } => message.reply_to.as_ref().map(message_ref).transpose()?,
        Conversation::Channel { .. } => None,
    };
    let path = match (conversation, &thread) {
        (Conversation::Channel { .. }, Some(target)) => {
            format!("{}/{}/replies", conversation.messages_path(), seg(&target.root))
        }
        _ => conversation.messages_path(),
    };
    let room = conversation.room_id();
    let mut payload = body(shared, sender, event, &text, extra);
    if let Some(target) = &quoted {
        quote(shared, conversation, target, &mut payload).await;
    }
    let mut sent = shared.user_call(&sender.slot, Method::POST, &path, Some(&payload), &room).await?;
    if sent.is_none() && !sender.relay && shared.accounts.relay_aad().is_some() {
        // The person's link lapsed: the relay posts for them, with their name.
        let relay = Sender { slot: RELAY.to_owned(), relay: true };
        let mut payload = body(shared, &relay, event, &text, extra);
        if let Some(target) = &quoted {
            quote(shared, conversation, target, &mut payload).await;
        }
        sent = shared.user_call(RELAY, Method::POST, &path, Some(&payload), &room).await?;
    }
    let Some((answer, _)) = sent else {
        return Err(BridgeError::Transient {
            message: "no usable delegated token for the sender or the relay".into(),
            retry_after: Some(std::time::Duration::from_secs(60)),
        });
    };
    let id = answer.body.get("id").and_then(Value::as_str).unwrap_or_default();
    let created = match (conversation, &thread) {
        (Conversation::Channel { .. }, Some(target)) => {
            MessageRef { root: target.root.clone(), reply: Some(id.into()) }
        }
        _ => MessageRef::root(id),
    };
    let remote = RemoteMessageId::new(created.id())
        .map_err(|_| BridgeError::permanent("Graph answered a post without a message id"))?;
    Ok(SendReceipt::one(remote))
}

/// Makes a chat post quote `target` (a `messageReference` attachment, as the
/// Teams client writes it). Without the original's preview the post goes unquoted.
async fn quote(shared: &Shared, conversation: &Conversation, target: &MessageRef, payload: &mut Value) {
    let path = conversation.message_path(target);
    let Ok(answer) = shared.app_call(Method::GET, &path, None, &conversation.room_id()).await else { return };
    let Ok(original) = serde_json::from_value::<ChatMessage>(answer.body) else { return };
    let preview = crate::html::teams_to_matrix(
        original.body.content.as_deref().unwrap_or_default(),
        original.body.is_html(),
        &[],
        &|_| None,
        &|_| false,
    )
    .text
    .body;
    let preview: String = preview.chars().take(200).collect();
    let (sender_id, sender_name) = original.sender().unwrap_or_default();
    let content = json!({
        "messageId": original.id,
        "messagePreview": preview,
        "messageSender": {"user": {"id": sender_id, "displayName": sender_name, "userIdentityType": "aadUser"}},
    });
    payload["attachments"] = json!([{
        "id": original.id,
        "contentType": "messageReference",
        "content": content.to_string(),
    }]);
    let html = payload["body"]["content"].as_str().unwrap_or_default().to_owned();
    payload["body"]["content"] =
        Value::String(format!("<attachment id=\"{}\"></attachment>{html}", escape(&original.id)));
}
