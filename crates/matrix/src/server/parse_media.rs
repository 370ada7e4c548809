//! The media side of parsing: message types into canonical messages, with
//! files in the clear or encrypted (their key kept for whoever fetches them).

use brygga_core::{Attachment, EventBody, MatrixEventId, MatrixFile, MediaSource, Message, Text};
use ruma::events::room::MediaSource as RumaMediaSource;
use ruma::events::room::message::{FormattedBody, MessageFormat, MessageType};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::parse::Body;
use crate::files;

/// The message behind one `msgtype`; `None` for kinds the bridge ignores.
pub(super) fn message_of(msgtype: &MessageType) -> Result<Option<Message<MatrixEventId>>, &'static str> {
    let message = match msgtype {
        MessageType::Text(c) => Message::text(text(&c.body, c.formatted.as_ref())),
        MessageType::Notice(c) => Message { notice: true, ..Message::text(text(&c.body, c.formatted.as_ref())) },
        MessageType::Emote(c) => Message { emote: true, ..Message::text(text(&c.body, c.formatted.as_ref())) },
        MessageType::ServerNotice(c) => Message { notice: true, ..Message::text(Text::plain(c.body.clone())) },
        MessageType::Location(c) => Message::text(Text::plain(c.body.clone())),
        MessageType::Image(c) => {
            let info = c.info.as_deref();
            let mime = info.and_then(|i| i.mimetype.clone());
            let size = info.and_then(|i| i.size).map(u64::from);
            media(&c.source, c.filename(), c.caption(), c.formatted.as_ref(), mime, size)?
        }
        MessageType::File(c) => {
            let info = c.info.as_deref();
            let mime = info.and_then(|i| i.mimetype.clone());
            let size = info.and_then(|i| i.size).map(u64::from);
            media(&c.source, c.filename(), c.caption(), c.formatted.as_ref(), mime, size)?
        }
        MessageType::Audio(c) => {
            let info = c.info.as_deref();
            let mime = info.and_then(|i| i.mimetype.clone());
            let size = info.and_then(|i| i.size).map(u64::from);
            media(&c.source, c.filename(), c.caption(), c.formatted.as_ref(), mime, size)?
        }
        MessageType::Video(c) => {
            let info = c.info.as_deref();
            let mime = info.and_then(|i| i.mimetype.clone());
            let size = info.and_then(|i| i.size).map(u64::from);
            media(&c.source, c.filename(), c.caption(), c.formatted.as_ref(), mime, size)?
        }
        _ => return Ok(None),
    };
    Ok(Some(message))
}

fn text(body: &str, formatted: Option<&FormattedBody>) -> Text {
    let html = formatted.filter(|f| f.format == MessageFormat::Html).map(|f| f.body.clone());
    Text { body: body.to_owned(), html }
}

fn media(
    source: &RumaMediaSource,
    filename: &str,
    caption: Option<&str>,
    formatted: Option<&FormattedBody>,
    mime: Option<String>,
    size: Option<u64>,
) -> Result<Message<MatrixEventId>, &'static str> {
    let mut text = match caption {
        Some(caption) => text(caption, formatted),
        None => Text::default(),
    };
    let file = match source {
        RumaMediaSource::Plain(mxc) => Ok(MatrixFile::plain(mxc.to_string())),
        RumaMediaSource::Encrypted(file) => {
            serde_json::to_value(file).map_err(|_| "unencodable file").and_then(|file| files::from_encrypted(&file))
        }
    };
    let file = match file {
        Ok(file) => file,
        Err(reason) => {
            tracing::warn!(reason, "an encrypted file's key is unusable; naming the file instead");
            text.name_file_left_out(filename);
            return Ok(Message::text(text));
        }
    };
    Ok(Message { attachments: vec![attachment(filename, mime, size, file)], ..Message::text(text) })
}

fn attachment(name: &str, mime: Option<String>, size: Option<u64>, file: MatrixFile) -> Attachment {
    Attachment {
        name: name.to_owned(),
        mime: mime.unwrap_or_else(|| "application/octet-stream".to_owned()),
        size,
        source: MediaSource::Matrix(file),
    }
}

/// A file message whose encrypted `file` ruma refuses (a garbled key):
/// the file is named as not bridged rather than the message dropped.
pub(super) fn unreadable_file(content: &RawValue) -> Option<Message<MatrixEventId>> {
    #[derive(Deserialize)]
    struct Loose {
        msgtype: String,
        body: Option<String>,
        filename: Option<String>,
        file: Option<serde::de::IgnoredAny>,
    }
    let loose: Loose = serde_json::from_str(content.get()).ok()?;
    if !MEDIA_TYPES.contains(&loose.msgtype.as_str()) || loose.file.is_none() {
        return None;
    }
    let name = loose.filename.or(loose.body).unwrap_or_else(|| "file".to_owned());
    let mut text = Text::default();
    text.name_file_left_out(&name);
    Some(Message::text(text))
}

/// The msgtypes that carry a file.
const MEDIA_TYPES: [&str; 4] = ["m.image", "m.file", "m.audio", "m.video"];

/// Stickers are images with a fixed shape; ruma's type is stricter than needed.
pub(super) fn sticker(content: &RawValue) -> Result<Option<Body>, &'static str> {
    #[derive(Deserialize)]
    struct Info {
        mimetype: Option<String>,
        size: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Sticker {
        body: String,
        url: String,
        info: Option<Info>,
    }
    let sticker: Sticker = serde_json::from_str(content.get()).map_err(|_| "invalid m.sticker content")?;
    if !sticker.url.starts_with("mxc://") {
        return Err("sticker url is not mxc");
    }
    let (mime, size) = sticker.info.map_or((None, None), |i| (i.mimetype, i.size));
    let message = Message {
        attachments: vec![attachment(
            &sticker.body,
            mime.or(Some("image/png".into())),
            size,
            MatrixFile::plain(sticker.url),
        )],
        ..Message::text(Text::default())
    };
    Ok(Some(EventBody::Message(message)))
}
