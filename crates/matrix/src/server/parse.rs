//! Matrix room events to canonical `MatrixEvent`s, one event at a time.
//!
//! A malformed or unsupported event is logged by type and id only (never its
//! content) and skipped, so it cannot cost the other events of a transaction.

use brygga_core::{EventBody, MatrixEvent, MatrixEventId, MatrixRoomId, MatrixUserId, Membership, Text};
use ruma::events::reaction::ReactionEventContent;
use ruma::events::room::member::{MembershipState, RoomMemberEventContent};
use ruma::events::room::message::{Relation, RoomMessageEventContent};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::parse_media::{message_of, sticker, unreadable_file};

/// The envelope every room event shares; the content is parsed by type.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    event_id: Option<String>,
    room_id: Option<String>,
    sender: Option<String>,
    #[serde(default)]
    origin_server_ts: i64,
    state_key: Option<String>,
    /// Where room versions before 11 put the redacted event's id.
    redacts: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// Parses one room event; `None` when it is skipped (and logged).
pub(crate) fn room_event(raw: &RawValue) -> Option<MatrixEvent> {
    let envelope: Envelope<'_> = match serde_json::from_str(raw.get()) {
        Ok(envelope) => envelope,
        Err(_) => {
            // Nothing trustworthy to name; the type and id may be missing too.
            tracing::warn!("skipping an appservice event without a valid envelope");
            return None;
        }
    };
    let event_id = envelope.event_id.as_deref().unwrap_or("<none>");
    match convert(&envelope, raw) {
        Ok(Some(event)) => Some(event),
        Ok(None) => {
            tracing::debug!(event_type = %envelope.kind, event_id, "ignoring event type");
            None
        }
        Err(reason) => {
            tracing::warn!(event_type = %envelope.kind, event_id, reason, "skipping malformed event");
            None
        }
    }
}

type Converted = Result<Option<MatrixEvent>, &'static str>;

fn convert(envelope: &Envelope<'_>, raw: &RawValue) -> Converted {
    let content = envelope.content.ok_or("missing content")?;
    let body = match envelope.kind.as_str() {
        // Decrypted when delivered: its key may not be here yet.
        "m.room.encrypted" if envelope.state_key.is_none() => {
            Some(EventBody::Encrypted { event_json: raw.get().to_owned() })
        }
        "m.room.message" => message(content)?,
        "m.sticker" => sticker(content)?,
        "m.reaction" => Some(reaction(content)?),
        "m.room.redaction" => Some(redaction(content, envelope.redacts.as_deref())?),
        "m.room.member" => member(content, envelope)?,
        "m.room.encryption" if envelope.state_key.as_deref() == Some("") => Some(room_encryption(content)),
        "m.room.name" | "m.room.topic" if envelope.state_key.as_deref() == Some("") => {
            Some(room_details(&envelope.kind, content)?)
        }
        _ => None,
    };
    let Some(body) = body else {
        return Ok(None);
    };
    Ok(Some(MatrixEvent {
        room_id: MatrixRoomId::new(envelope.room_id.clone().ok_or("missing room_id")?)
            .map_err(|_| "invalid room_id")?,
        event_id: event_id(envelope.event_id.clone().ok_or("missing event_id")?)?,
        sender: MatrixUserId::new(envelope.sender.clone().ok_or("missing sender")?).map_err(|_| "invalid sender")?,
        origin_server_ts: envelope.origin_server_ts,
        state_key: envelope.state_key.clone(),
        direct: envelope.kind == "m.room.member" && is_direct(content),
        body,
    }))
}

/// Whether member content marks the room as a direct chat.
fn is_direct(content: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Direct {
        is_direct: Option<bool>,
    }
    serde_json::from_str::<Direct>(content.get()).ok().and_then(|d| d.is_direct).unwrap_or(false)
}

/// An `m.room.encryption` change; one without the algorithm the bridge
/// speaks turns encryption off (clients ignore that and keep encrypting).
fn room_encryption(content: &RawValue) -> Body {
    EventBody::RoomEncryption { enabled: crate::e2ee::names_megolm(content.get()) }
}

/// A name or topic change; a missing or non-text value clears it.
fn room_details(kind: &str, content: &RawValue) -> Result<Body, &'static str> {
    let content: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(content.get()).map_err(|_| "invalid room name or topic content")?;
    let field = if kind == "m.room.name" { "name" } else { "topic" };
    let value = content.get(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    Ok(if kind == "m.room.name" {
        EventBody::RoomDetails { name: Some(value), topic: None }
    } else {
        EventBody::RoomDetails { name: None, topic: Some(value) }
    })
}

fn event_id(raw: impl Into<String>) -> Result<MatrixEventId, &'static str> {
    MatrixEventId::new(raw).map_err(|_| "invalid event id")
}

pub(super) type Body = EventBody<MatrixEventId>;

fn message(content: &RawValue) -> Result<Option<Body>, &'static str> {
    let content: RoomMessageEventContent = match serde_json::from_str(content.get()) {
        Ok(content) => content,
        Err(_) => {
            return unreadable_file(content)
                .map(|m| Some(EventBody::Message(m)))
                .ok_or("invalid m.room.message content");
        }
    };
    let (reply_to, thread_root) = match content.relates_to {
        Some(Relation::Replacement(replacement)) => {
            // The new content carries no reply fallback; the outer body is "* ...".
            let Some(message) = message_of(&replacement.new_content.msgtype)? else {
                return Ok(None);
            };
            return Ok(Some(EventBody::Edit { target: event_id(replacement.event_id.as_str())?, text: message.text }));
        }
        Some(Relation::Reply(reply)) => (Some(reply.in_reply_to.event_id), None),
        Some(Relation::Thread(thread)) => {
            // A falling-back in_reply_to only points at the thread's latest
            // event for old clients; it is not a real reply.
            let reply = thread.in_reply_to.filter(|_| !thread.is_falling_back).map(|r| r.event_id);
            (reply, Some(thread.event_id))
        }
        _ => (None, None),
    };
    let Some(mut message) = message_of(&content.msgtype)? else {
        return Ok(None);
    };
    if reply_to.is_some() {
        message.text = strip_reply_fallback(message.text);
    }
    message.reply_to = reply_to.map(|id| event_id(id.as_str())).transpose()?;
    message.thread_root = thread_root.map(|id| event_id(id.as_str())).transpose()?;
    Ok(Some(EventBody::Message(message)))
}

fn reaction(content: &RawValue) -> Result<Body, &'static str> {
    let content: ReactionEventContent =
        serde_json::from_str(content.get()).map_err(|_| "invalid m.reaction content")?;
    Ok(EventBody::Reaction {
        target: event_id(content.relates_to.event_id.as_str())?,
        key: content.relates_to.key,
        removed: false,
    })
}

fn redaction(content: &RawValue, top_level: Option<&str>) -> Result<Body, &'static str> {
    #[derive(Deserialize)]
    struct Redaction {
        redacts: Option<String>,
        reason: Option<String>,
    }
    let content: Redaction = serde_json::from_str(content.get()).map_err(|_| "invalid m.room.redaction content")?;
    // Room v11 moved `redacts` into the content; older rooms keep it on top.
    let target = content.redacts.as_deref().or(top_level).ok_or("redaction without target")?;
    Ok(EventBody::Redaction { target: event_id(target)?, reason: content.reason })
}

fn member(content: &RawValue, envelope: &Envelope<'_>) -> Result<Option<Body>, &'static str> {
    let content: RoomMemberEventContent =
        serde_json::from_str(content.get()).map_err(|_| "invalid m.room.member content")?;
    let target = envelope.state_key.as_deref().ok_or("member event without state_key")?;
    let membership = match content.membership {
        MembershipState::Join => Membership::Join,
        MembershipState::Invite => Membership::Invite,
        MembershipState::Ban => Membership::Ban,
        MembershipState::Leave if envelope.sender.as_deref() == Some(target) => Membership::Leave,
        MembershipState::Leave => Membership::Kick,
        _ => return Ok(None),
    };
    Ok(Some(EventBody::Membership { membership, display_name: content.displayname, reason: content.reason }))
}

/// Removes a rich-reply fallback so no quoted Matrix ids reach the remote side.
pub(crate) fn strip_reply_fallback(text: Text) -> Text {
    Text {
        body: strip_plain_fallback(&text.body).to_owned(),
        html: text.html.map(|html| strip_html_fallback(&html)).filter(|h| !h.trim().is_empty()),
    }
}

/// A fallback is a block of `> ` lines followed by an empty line; a quote
/// without that separator is the user's own text and stays.
fn strip_plain_fallback(body: &str) -> &str {
    let mut rest = body;
    let mut quoted = false;
    while rest.starts_with("> ") || rest.starts_with(">\n") {
        quoted = true;
        match rest.split_once('\n') {
            Some((_, tail)) => rest = tail,
            None => return body,
        }
    }
    if !quoted {
        return body;
    }
    match rest.strip_prefix('\n') {
        Some(reply) => reply,
        None => body,
    }
}

fn strip_html_fallback(html: &str) -> String {
    let (Some(start), Some(end)) = (html.find("<mx-reply>"), html.rfind("</mx-reply>")) else {
        return html.to_owned();
    };
    if end < start {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len());
    out.push_str(&html[..start]);
    out.push_str(&html[end + "</mx-reply>".len()..]);
    out
}
