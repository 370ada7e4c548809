//! New messages: the body (mentions, the relay's name line, files as links),
//! where they go (a channel thread's replies, or a quoted chat message) and
//! the post itself.

use brygga_core::{BridgeError, EventBody, MediaSource, OutboundEvent, RemoteMessageId, SendReceipt, Text};
use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::kept::{Intent, Kept, Outcome, fingerprint, sent_key};
use super::{Sender, message_ref};
use crate::accounts::RELAY;
use crate::graph::GraphError;
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
            (MediaSource::Matrix(matrix_file), Some(links)) => links.link(matrix_file, &file.name),
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
    let quote = match &quoted {
        Some(target) => quote(shared, conversation, target).await,
        None => None,
    };
    let root = match (conversation, &thread) {
        (Conversation::Channel { .. }, Some(target)) => Some(target.root.clone()),
        _ => None,
    };
    // The sender, then (when a person's link lapsed) the relay with their name.
    let relay = shared.accounts.relay_aad().map(str::to_owned);
    let mut posters = vec![match sender.relay {
        true => (Sender { slot: RELAY.to_owned(), relay: true }, relay.clone()),
        false => (Sender { slot: sender.slot.clone(), relay: false }, shared.accounts.aad_of(&sender.slot)),
    }];
    if !sender.relay && relay.is_some() {
        posters.push((Sender { slot: RELAY.to_owned(), relay: true }, relay));
    }
    for (poster, who) in posters {
        let mut payload = body(shared, &poster, event, &text, extra);
        if let Some(quote) = &quote {
            quote.apply(&mut payload);
        }
        let intent = Intent {
            who: who.unwrap_or_default(),
            fingerprint: fingerprint(payload["body"]["content"].as_str().unwrap_or_default(), true),
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            root: root.clone(),
            after: shared.posts.latest(&conversation.room_id()),
        };
        let Some(id) = post_once(shared, conversation, &event.txn_id, &path, &poster, &payload, intent).await? else {
            continue;
        };
        let created = match &root {
            Some(root) => MessageRef { root: root.clone(), reply: Some(id) },
            None => MessageRef::root(id),
        };
        let remote = RemoteMessageId::new(created.id())
            .map_err(|_| BridgeError::permanent("Graph answered a post without a message id"))?;
        return Ok(SendReceipt::one(remote));
    }
    shared.posts.record(&event.txn_id, Outcome::NotPosted);
    Err(BridgeError::Transient {
        message: "no usable delegated token for the sender or the relay".into(),
        retry_after: Some(std::time::Duration::from_secs(60)),
    })
}

/// Notes the intent durably, then posts; the new message's Graph id, or
/// `None` when `poster` has no usable identity. What Graph surely did not
/// create is remembered, so a retry needs no reconciliation.
async fn post_once(
    shared: &Shared,
    conversation: &Conversation,
    txn: &str,
    path: &str,
    poster: &Sender,
    payload: &Value,
    intent: Intent,
) -> Result<Option<String>, BridgeError> {
    let kept = Kept { txn: txn.to_owned(), receipt: None, intent: Some(intent) };
    let kept = serde_json::to_string(&kept).map_err(|e| BridgeError::permanent(e.to_string()))?;
    shared.state.put(&sent_key(txn), Some(&kept)).await?;
    match shared.user_call(&poster.slot, Method::POST, path, Some(payload), &conversation.room_id()).await {
        Ok(Some((answer, _))) => {
            if let Some(created) = answer.body.get("createdDateTime").and_then(Value::as_str) {
                shared.posts.created(&conversation.room_id(), created);
            }
            Ok(Some(answer.body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()))
        }
        Ok(None) => Ok(None),
        Err(err) => {
            // Throttled or refused: Graph created nothing. Unreachable or 5xx: it may have.
            if !matches!(err, GraphError::Unavailable(_)) {
                shared.posts.record(txn, Outcome::NotPosted);
            }
            Err(err.into())
        }
    }
}

/// A chat post's quote of an earlier message.
struct Quote {
    attachment: Value,
    id: String,
}

impl Quote {
    /// Adds the quote to a post's payload.
    fn apply(&self, payload: &mut Value) {
        payload["attachments"] = json!([self.attachment]);
        let html = payload["body"]["content"].as_str().unwrap_or_default().to_owned();
        payload["body"]["content"] =
            Value::String(format!("<attachment id=\"{}\"></attachment>{html}", escape(&self.id)));
    }
}

/// The quote of `target` for a chat post (a `messageReference` attachment,
/// as the Teams client writes it). Without the original's preview the post goes unquoted.
async fn quote(shared: &Shared, conversation: &Conversation, target: &MessageRef) -> Option<Quote> {
    let path = conversation.message_path(target);
    let answer = shared.app_call(Method::GET, &path, None, &conversation.room_id()).await.ok()?;
    let original = serde_json::from_value::<ChatMessage>(answer.body).ok()?;
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
    let attachment = json!({ "id": original.id, "contentType": "messageReference", "content": content.to_string() });
    Some(Quote { attachment, id: original.id })
}
