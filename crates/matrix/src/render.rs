//! Canonical events to Matrix event content (the sending direction).

use brygga_core::{Attachment, BridgeError, MatrixEventId, MediaSource, Message, Text};
use ruma::events::reaction::ReactionEventContent;
use ruma::events::relation::{Annotation, InReplyTo, Replacement, Reply, Thread};
use ruma::events::room::message::{
    AudioInfo, AudioMessageEventContent, EmoteMessageEventContent, FileInfo, FileMessageEventContent,
    ImageMessageEventContent, MessageType, NoticeMessageEventContent, Relation, RoomMessageEventContent,
    RoomMessageEventContentWithoutRelation, TextMessageEventContent, VideoInfo, VideoMessageEventContent,
};
use ruma::events::room::{EncryptedFile, ImageInfo, MediaSource as RumaMediaSource};
use ruma::{OwnedEventId, OwnedMxcUri, UInt};

use crate::files;
use crate::sanitize::sanitize_html;

/// A core event id as a ruma one.
pub(crate) fn event_id(id: &MatrixEventId) -> Result<OwnedEventId, BridgeError> {
    OwnedEventId::try_from(id.as_str()).map_err(|_| BridgeError::permanent("invalid Matrix event id"))
}

/// The `m.room.message` content of a new message.
pub(crate) fn message(message: &Message<MatrixEventId>) -> Result<RoomMessageEventContent, BridgeError> {
    let msgtype = match message.attachments.first() {
        // The router splits multi-part messages; each send carries one file.
        Some(attachment) => media(attachment)?,
        None => text(&message.text, message.emote, message.notice),
    };
    let mut content = RoomMessageEventContent::new(msgtype);
    let reply_to = message.reply_to.as_ref().map(event_id).transpose()?;
    content.relates_to = match (message.thread_root.as_ref().map(event_id).transpose()?, reply_to) {
        // A genuine reply inside a thread.
        (Some(root), Some(reply)) => Some(Relation::Thread(Thread::reply(root, reply))),
        // Old clients see a reply to the root; `is_falling_back` marks it as such.
        (Some(root), None) => Some(Relation::Thread(Thread::plain(root.clone(), root))),
        (None, Some(reply)) => Some(Relation::Reply(Reply::new(InReplyTo::new(reply)))),
        (None, None) => None,
    };
    Ok(content)
}

/// The `m.room.message` content of an edit (`m.replace`).
pub(crate) fn edit(target: &MatrixEventId, new_text: &Text) -> Result<RoomMessageEventContent, BridgeError> {
    let fallback =
        Text { body: format!("* {}", new_text.body), html: new_text.html.as_ref().map(|html| format!("* {html}")) };
    let mut content = RoomMessageEventContent::new(text(&fallback, false, false));
    let new_content = RoomMessageEventContentWithoutRelation::new(text(new_text, false, false));
    content.relates_to = Some(Relation::Replacement(Replacement::new(event_id(target)?, new_content)));
    Ok(content)
}

/// The `m.reaction` content of an annotation.
pub(crate) fn reaction(target: &MatrixEventId, key: &str) -> Result<ReactionEventContent, BridgeError> {
    Ok(ReactionEventContent::new(Annotation::new(event_id(target)?, key.to_owned())))
}

/// A text msgtype; HTML is sanitised and dropped when nothing survives.
fn text(text: &Text, emote: bool, notice: bool) -> MessageType {
    let html = text.html.as_deref().map(sanitize_html).filter(|html| !html.trim().is_empty());
    let body = text.body.clone();
    match (emote, notice, html) {
        (true, _, Some(html)) => MessageType::Emote(EmoteMessageEventContent::html(body, html)),
        (true, _, None) => MessageType::Emote(EmoteMessageEventContent::plain(body)),
        (false, true, Some(html)) => MessageType::Notice(NoticeMessageEventContent::html(body, html)),
        (false, true, None) => MessageType::Notice(NoticeMessageEventContent::plain(body)),
        (false, false, Some(html)) => MessageType::Text(TextMessageEventContent::html(body, html)),
        (false, false, None) => MessageType::Text(TextMessageEventContent::plain(body)),
    }
}

/// A media msgtype chosen by MIME type.
fn media(attachment: &Attachment) -> Result<MessageType, BridgeError> {
    let MediaSource::Matrix(file) = &attachment.source else {
        return Err(BridgeError::permanent("attachment must be uploaded to Matrix before sending"));
    };
    let url = OwnedMxcUri::from(file.mxc.as_str());
    if url.validate().is_err() {
        return Err(BridgeError::permanent("attachment has an invalid mxc URI"));
    }
    // An encrypted file is named by `file` (with its key), never by `url`.
    let source = match files::to_encrypted(file) {
        Some(encrypted) => RumaMediaSource::Encrypted(Box::new(
            serde_json::from_value::<EncryptedFile>(encrypted)
                .map_err(|_| BridgeError::permanent("attachment has an invalid encryption key"))?,
        )),
        None => RumaMediaSource::Plain(url),
    };
    let name = attachment.name.clone();
    let mime = Some(attachment.mime.clone());
    let size = attachment.size.and_then(UInt::new);
    let top = attachment.mime.split('/').next().unwrap_or_default();
    Ok(match top {
        "image" => {
            let mut info = ImageInfo::new();
            (info.mimetype, info.size) = (mime, size);
            let mut content = ImageMessageEventContent::new(name, source);
            content.info = Some(Box::new(info));
            MessageType::Image(content)
        }
        "video" => {
            let mut info = VideoInfo::new();
            (info.mimetype, info.size) = (mime, size);
            let mut content = VideoMessageEventContent::new(name, source);
            content.info = Some(Box::new(info));
            MessageType::Video(content)
        }
        "audio" => {
            let mut info = AudioInfo::new();
            (info.mimetype, info.size) = (mime, size);
            let mut content = AudioMessageEventContent::new(name, source);
            content.info = Some(Box::new(info));
            MessageType::Audio(content)
        }
        _ => {
            let mut info = FileInfo::new();
            (info.mimetype, info.size) = (mime, size);
            let mut content = FileMessageEventContent::new(name, source);
            content.info = Some(Box::new(info));
            MessageType::File(content)
        }
    })
}
