//! Messages from Matrix: text (split where Rocket.Chat's size limit needs
//! it) with ids derived from the event, then files through `rooms.media` and
//! `rooms.mediaConfirm`.

use std::sync::Arc;

use brygga_core::{Attachment, BridgeError, MediaSource, Message, OutboundEvent, RemoteMessageId, SendReceipt};
use serde_json::{Value, json};

use super::{Author, markdown, refused};
use crate::adapter::Shared;
use crate::api;
use crate::ids;
use crate::rest::RestError;

pub(super) async fn send(
    shared: &Arc<Shared>,
    author: &Author,
    rid: &str,
    event: &OutboundEvent,
    message: &Message<RemoteMessageId>,
) -> Result<SendReceipt, RestError> {
    let mut text = markdown(shared, &message.text, message.emote);
    if let Some(reply) = message.reply_to.as_ref().filter(|r| Some(*r) != message.thread_root.as_ref()) {
        // Rocket.Chat quotes a message by a link to it before the text.
        text = format!("[ ]({}?msg={reply}) {text}", shared.config().url);
    }
    let tmid = message.thread_root.as_ref().map(RemoteMessageId::as_str);
    let mut ids = Vec::new();
    let chunks = if text.trim().is_empty() { Vec::new() } else { split(&text, shared.config().max_message_chars) };
    if chunks.is_empty() && message.attachments.is_empty() {
        return Err(refused("an empty message"));
    }
    // Parts are numbered the same way on every retry: text chunks, then files.
    for (part, chunk) in chunks.iter().enumerate() {
        let id = ids::message_id(&event.txn_id, part);
        let mut body = json!({"_id": id, "rid": rid, "msg": chunk});
        if let Some(tmid) = tmid {
            body["tmid"] = json!(tmid);
        }
        if let Some(alias) = &author.alias {
            body["alias"] = json!(alias);
        }
        send_once(shared, author, &id, body).await?;
        ids.push(id);
    }
    for (i, attachment) in message.attachments.iter().enumerate() {
        ids.push(send_file(shared, author, rid, tmid, &event.txn_id, chunks.len() + i, attachment).await?);
    }
    let remote_ids = ids.into_iter().filter_map(|id| RemoteMessageId::new(id).ok()).collect();
    Ok(SendReceipt { remote_ids, aliases: Vec::new() })
}

/// `chat.sendMessage` with our id; a refusal of a message that exists (a retry) is success.
async fn send_once(shared: &Arc<Shared>, author: &Author, id: &str, body: Value) -> Result<(), RestError> {
    // Known before the echo can arrive.
    shared.rooms.lock().expect("rooms poisoned").ours(id);
    match api::send_message(&shared.rest, &author.creds, body).await {
        Ok(_) => Ok(()),
        Err(err @ RestError::Refused { .. }) => match api::get_message(&shared.rest, &author.creds, id).await? {
            Some(_) => Ok(()),
            None => Err(err),
        },
        Err(err) => Err(err),
    }
}

/// Uploads a Matrix file (`rooms.media`) and posts it (`rooms.mediaConfirm`);
/// the posted message's id is kept so a retry does not post it twice.
async fn send_file(
    shared: &Arc<Shared>,
    author: &Author,
    rid: &str,
    tmid: Option<&str>,
    txn_id: &str,
    part: usize,
    attachment: &Attachment,
) -> Result<String, RestError> {
    let key = format!("sent:{txn_id}:{part}");
    if let Some(id) = shared.state.get(&key).await.ok().flatten() {
        return Ok(id);
    }
    let MediaSource::Matrix(file) = &attachment.source else {
        return Err(refused("a file without Matrix content"));
    };
    let max = shared.config().max_file_bytes;
    if attachment.size.is_some_and(|s| s > max) {
        return Err(refused("the file is over max_file_bytes"));
    }
    let bytes = shared.matrix_media.download(file).await.map_err(|e| match e {
        BridgeError::Transient { message, .. } => RestError::Unavailable(message),
        other => refused(&other.to_string()),
    })?;
    if bytes.data.len() as u64 > max {
        return Err(refused("the file is over max_file_bytes"));
    }
    let mime = if attachment.mime.is_empty() { bytes.mime.as_str() } else { attachment.mime.as_str() };
    let file_id = api::upload(&shared.rest, &author.creds, rid, &attachment.name, mime, &bytes.data).await?;
    let mut extra = json!({"msg": ""});
    if let Some(tmid) = tmid {
        extra["tmid"] = json!(tmid);
    }
    let message = api::confirm_media(&shared.rest, &author.creds, rid, &file_id, extra).await?;
    let id = message["_id"].as_str().map(str::to_owned).ok_or_else(|| refused("rooms.mediaConfirm gave no message"))?;
    shared.rooms.lock().expect("rooms poisoned").ours(&id);
    if let Err(err) = shared.state.put(&key, Some(&id)).await {
        tracing::warn!(error = %err, "remembering a sent file failed");
    }
    Ok(id)
}

/// Splits text into pieces of at most `max` characters, at a line break or
/// space where there is one in the second half of a piece.
fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let hard = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..hard];
        let soft = window.rfind('\n').or_else(|| window.rfind(' ')).filter(|&i| i >= hard / 2);
        let cut = soft.map_or(hard, |i| i + 1);
        pieces.push(rest[..cut].trim_end().to_owned());
        rest = &rest[cut..];
    }
    if !rest.trim().is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_split_at_breaks_within_the_limit() {
        assert_eq!(split("short", 10), ["short"]);
        assert_eq!(split("aaaa bbbb cccc", 10), ["aaaa bbbb", "cccc"]);
        assert_eq!(split("line one\nline two", 12), ["line one", "line two"]);
        let unbroken = "x".repeat(25);
        let pieces = split(&unbroken, 10);
        assert_eq!(pieces, ["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
        let wide = "é".repeat(15);
        assert!(split(&wide, 10).iter().all(|p| p.chars().count() <= 10));
        assert_eq!(split(&wide, 10).concat(), wide);
    }
}
