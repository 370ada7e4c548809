//! Rocket.Chat messages as both APIs deliver them (`IMessage`), read
//! leniently: unknown fields are ignored, a message without `_id`, `rid` or
//! author is refused.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::time;

/// The author of a message (`u`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Author {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// Who reacted with one emoji.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ReactionUsers {
    #[serde(default)]
    pub(crate) usernames: Vec<String>,
}

/// A file attached to a message (`file` / `files`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct FileRef {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) mime: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
}

/// One entry of `attachments`: files, quotes and link previews.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct MessageAttachment {
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) title_link: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) image_type: Option<String>,
    #[serde(default)]
    pub(crate) audio_type: Option<String>,
    #[serde(default)]
    pub(crate) video_type: Option<String>,
    #[serde(default)]
    pub(crate) image_size: Option<u64>,
    /// Set on quotes: the link to the quoted message (`…?msg=<id>`).
    #[serde(default)]
    pub(crate) message_link: Option<String>,
}

/// A message, as far as the bridge reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct RcMessage {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    pub(crate) rid: String,
    #[serde(default)]
    pub(crate) msg: String,
    pub(crate) u: Author,
    /// The system message type (`uj`, `ul`, `au`, `ru`, `rm`, …); none for user messages.
    #[serde(default)]
    pub(crate) t: Option<String>,
    #[serde(default)]
    pub(crate) tmid: Option<String>,
    #[serde(default)]
    pub(crate) alias: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub(crate) ts: Option<i64>,
    #[serde(default, rename = "editedAt", deserialize_with = "lenient_time")]
    pub(crate) edited_at: Option<i64>,
    #[serde(default, rename = "_updatedAt", deserialize_with = "lenient_time")]
    pub(crate) updated_at: Option<i64>,
    #[serde(default)]
    pub(crate) reactions: BTreeMap<String, ReactionUsers>,
    #[serde(default)]
    pub(crate) attachments: Vec<MessageAttachment>,
    #[serde(default)]
    pub(crate) file: Option<FileRef>,
    #[serde(default)]
    pub(crate) files: Vec<FileRef>,
    #[serde(default, rename = "_hidden")]
    pub(crate) hidden: bool,
}

fn lenient_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(time::millis(&Value::deserialize(d)?))
}

impl RcMessage {
    /// Reads a message from JSON, or says briefly why not (never quoting its text).
    pub(crate) fn from_value(value: &Value) -> Result<Self, String> {
        let message = Self::deserialize(value)
            .map_err(|e| format!("not a message: {}", e.to_string().chars().take(120).collect::<String>()))?;
        if message.id.is_empty() || message.rid.is_empty() || message.u.username.is_empty() {
            return Err("a message lacks its id, room or author".into());
        }
        Ok(message)
    }

    /// The id of the message this one quotes, from a quote attachment or a
    /// leading `[ ](…?msg=<id>)` link.
    pub(crate) fn quoted_id(&self) -> Option<String> {
        let from_link = || {
            let rest = self.msg.strip_prefix("[ ](")?;
            msg_param(&rest[..rest.find(')')?])
        };
        self.attachments.iter().filter_map(|a| a.message_link.as_deref()).find_map(msg_param).or_else(from_link)
    }

    /// The text without the leading quote links Rocket.Chat puts before a reply.
    pub(crate) fn text_without_quotes(&self) -> &str {
        let mut text = self.msg.as_str();
        while let Some(rest) = text.strip_prefix("[ ](") {
            match rest.find(')') {
                Some(end) if msg_param(&rest[..end]).is_some() => text = rest[end + 1..].trim_start(),
                _ => break,
            }
        }
        text
    }
}

/// The `msg` query parameter of a message link.
fn msg_param(link: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("msg=")).filter(|id| !id.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn realtime_and_rest_shapes_parse() {
        let live = json!({
            "_id": "m1", "rid": "GENERAL", "msg": "hi", "ts": {"$date": 1000},
            "u": {"_id": "u1", "username": "bob", "name": "Bob"},
            "reactions": {":+1:": {"usernames": ["carol"]}}, "unknown": [1, 2]
        });
        let m = RcMessage::from_value(&live).unwrap();
        assert_eq!((m.ts, m.u.name.as_deref()), (Some(1000), Some("Bob")));
        assert_eq!(m.reactions[":+1:"].usernames, vec!["carol"]);
        let rest = json!({"_id": "m2", "rid": "r", "msg": "", "ts": "1970-01-01T00:00:01.000Z",
            "editedAt": "1970-01-01T00:00:02.000Z", "u": {"_id": "u", "username": "x"}, "tmid": "m1"});
        let m = RcMessage::from_value(&rest).unwrap();
        assert_eq!((m.ts, m.edited_at, m.tmid.as_deref()), (Some(1000), Some(2000), Some("m1")));
    }

    #[test]
    fn hostile_shapes_are_refused_not_panicked_on() {
        for bad in [
            json!(null),
            json!("x"),
            json!({"_id": 5}),
            json!({"_id": "m", "rid": "r"}),
            json!({"_id": "", "rid": "r", "u": {"_id": "u", "username": "b"}}),
            json!({"_id": "m", "rid": "r", "u": {"_id": "u", "username": "b"}, "reactions": 7}),
        ] {
            assert!(RcMessage::from_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quotes_are_found_and_stripped() {
        let m = RcMessage::from_value(&json!({"_id": "m", "rid": "r", "u": {"_id": "u", "username": "b"},
            "msg": "[ ](https://chat.example/channel/x?msg=abc) my answer",
            "attachments": [{"message_link": "https://chat.example/channel/x?msg=abc", "text": "q"}]}))
        .unwrap();
        assert_eq!(m.quoted_id().as_deref(), Some("abc"));
        assert_eq!(m.text_without_quotes(), "my answer");
        let plain = RcMessage { msg: "[ ](not a link) x".into(), ..Default::default() };
        assert_eq!(plain.text_without_quotes(), "[ ](not a link) x");
        assert_eq!(plain.quoted_id(), None);
        let bare = RcMessage { msg: "[ ](https://c.example/group/g?msg=q1) hi".into(), ..Default::default() };
        assert_eq!(bare.quoted_id().as_deref(), Some("q1"), "a quote link without its attachment");
    }
}
