//! One message: POST (send), GET, PATCH (edit), softDelete/undoSoftDelete,
//! setReaction/unsetReaction and hostedContents.

use super::{Params, conversation, message_id, require_read};
use crate::auth::Caller;
use crate::conversations::Draft;
use crate::error::GraphError;
use crate::model::Conversation;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

type Result<T> = std::result::Result<T, GraphError>;

/// Graph's refusal of an app-only message POST outside a migration.
fn import_only() -> GraphError {
    GraphError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Message POST is allowed in application-only context only for import purposes. Refer to https://docs.microsoft.com/microsoftteams/platform/graph-api/import-messages/import-external-messages-to-teams for more details.",
    )
}

fn require_write(caller: &Caller, c: &Conversation) -> Result<()> {
    match c {
        Conversation::Channel { .. } => caller.require(&[], &["ChannelMessage.Send", "ChannelMessage.ReadWrite"]),
        Conversation::Chat { .. } => caller.require(&[], &["ChatMessage.Send", "Chat.ReadWrite"]),
    }
}

/// Reads `{"body": {"contentType", "content"}}` of a POST or PATCH.
fn item_body(body: &Value) -> Result<(String, String)> {
    let item = body.get("body").ok_or_else(|| GraphError::bad_request("Missing body."))?;
    let content = item["content"].as_str().ok_or_else(|| GraphError::bad_request("Missing body content."))?;
    let content_type = match item.get("contentType").and_then(Value::as_str).unwrap_or("text") {
        t if t.eq_ignore_ascii_case("html") => "html",
        t if t.eq_ignore_ascii_case("text") => "text",
        other => return Err(GraphError::bad_request(format!("Invalid contentType '{other}'."))),
    };
    Ok((content_type.to_owned(), content.to_owned()))
}

fn array(body: &Value, name: &str) -> Result<Vec<Value>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(GraphError::bad_request(format!("'{name}' must be an array."))),
    }
}

/// Mentions must name an `<at id="n">` in the content (Graph rejects dangling ones).
fn check_mentions(content: &str, mentions: &[Value]) -> Result<()> {
    for m in mentions {
        let id = m["id"].as_i64().ok_or_else(|| GraphError::bad_request("A mention needs an integer id."))?;
        if m["mentioned"].is_null() || m["mentionText"].as_str().is_none() {
            return Err(GraphError::bad_request("A mention needs mentionText and mentioned."));
        }
        if !content.contains(&format!("<at id=\"{id}\">")) {
            return Err(GraphError::bad_request(format!(
                "Mention id {id} does not match any <at> tag in the content."
            )));
        }
    }
    Ok(())
}

/// `POST .../messages` or `.../messages/{id}/replies`: send as the signed-in user.
pub async fn post(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let created = s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        let Some(user) = caller.user() else { return Err(import_only()) };
        require_write(&caller, &c)?;
        let (content_type, content) = item_body(&body)?;
        let mentions = array(&body, "mentions")?;
        check_mentions(&content, &mentions)?;
        if !array(&body, "hostedContents")?.is_empty() {
            return Err(GraphError::bad_request("hostedContents in a POST are not modelled by the double."));
        }
        let new = Draft {
            content_type,
            content,
            subject: body.get("subject").and_then(Value::as_str).map(str::to_owned),
            mentions,
            attachments: array(&body, "attachments")?,
            ..Draft::default()
        };
        let m = w.post(&c, Some(user), p.get("id").map(String::as_str), new, caller.via())?;
        Ok((StatusCode::CREATED, Json(crate::render::message(&base, &c, &m))).into_response())
    })?;
    if s.take_unanswered_post() {
        // The message exists, but its answer is lost (the caller died or the
        // network failed): the request hangs until the caller gives up.
        std::future::pending::<()>().await;
    }
    Ok(created)
}

/// `GET .../messages/{id}` (or a reply).
pub async fn get_one(State(s): State<Arc<Shared>>, headers: HeaderMap, Path(p): Path<Params>) -> Result<Json<Value>> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let m = w.message(&c, message_id(&p)?)?;
        if p.contains_key("reply") && m.reply_to.as_deref() != p.get("id").map(String::as_str) {
            return Err(GraphError::not_found("Message"));
        }
        Ok(Json(crate::render::message(&base, &c, m)))
    })
}

/// `PATCH .../messages/{id}`: the sender edits the body (delegated only; 204).
pub async fn patch(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        let user = caller.delegated_user()?.to_owned();
        require_write(&caller, &c)?;
        let (content_type, content) = item_body(&body)?;
        check_mentions(&content, &array(&body, "mentions")?)?;
        w.edit(&c, message_id(&p)?, &user, &content_type, &content, caller.via())?;
        Ok(StatusCode::NO_CONTENT)
    })
}

async fn deletion(s: Arc<Shared>, headers: HeaderMap, p: Params, undo: bool) -> Result<StatusCode> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        let user = caller.delegated_user()?.to_owned();
        require_write(&caller, &c)?;
        w.soft_delete(&c, message_id(&p)?, &user, undo, caller.via())?;
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST .../softDelete` (204).
pub async fn soft_delete(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<StatusCode> {
    deletion(s, headers, p, false).await
}

/// `POST .../undoSoftDelete` (204).
pub async fn undo_soft_delete(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<StatusCode> {
    deletion(s, headers, p, true).await
}

async fn reaction(s: Arc<Shared>, headers: HeaderMap, p: Params, body: Value, unset: bool) -> Result<StatusCode> {
    let caller = s.caller(&headers)?;
    let reaction = body["reactionType"].as_str().filter(|r| !r.is_empty());
    let reaction = reaction.ok_or_else(|| GraphError::bad_request("Missing reactionType."))?.to_owned();
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        let user = caller.delegated_user()?.to_owned();
        require_write(&caller, &c)?;
        w.react(&c, message_id(&p)?, &user, &reaction, unset, caller.via())?;
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST .../setReaction` with `{"reactionType": "👍"}` (204).
pub async fn set_reaction(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    reaction(s, headers, p, body, false).await
}

/// `POST .../unsetReaction` (204).
pub async fn unset_reaction(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    reaction(s, headers, p, body, true).await
}

fn hosted_json(h: &crate::model::HostedContent) -> Value {
    json!({ "id": h.id, "contentBytes": null, "contentType": h.content_type })
}

/// `GET .../hostedContents`.
pub async fn hosted_list(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let m = w.message(&c, message_id(&p)?)?;
        let items = m.hosted.iter().map(hosted_json).collect();
        Ok(Json(crate::render::collection("#Collection(microsoft.graph.chatMessageHostedContent)", items, None)))
    })
}

/// `GET .../hostedContents/{hosted}`.
pub async fn hosted_one(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let m = w.message(&c, message_id(&p)?)?;
        let h = m.hosted.iter().find(|h| Some(&h.id) == p.get("hosted"));
        Ok(Json(hosted_json(h.ok_or_else(|| GraphError::not_found("Hosted content"))?)))
    })
}

/// `GET .../hostedContents/{hosted}/$value`: the bytes.
pub async fn hosted_value(State(s): State<Arc<Shared>>, headers: HeaderMap, Path(p): Path<Params>) -> Result<Response> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let m = w.message(&c, message_id(&p)?)?;
        let h = m.hosted.iter().find(|h| Some(&h.id) == p.get("hosted"));
        let h = h.ok_or_else(|| GraphError::not_found("Hosted content"))?;
        Ok(([(header::CONTENT_TYPE, h.content_type.clone())], h.bytes.clone()).into_response())
    })
}
