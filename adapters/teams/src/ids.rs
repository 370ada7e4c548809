//! How Teams conversations and messages are written as bridge ids.
//!
//! A channel portal's room id is `{team id}/{channel id}` (a team id is a
//! GUID, a channel id looks like `19:…@thread.tacv2`); a chat's is its chat
//! id (`19:…@thread.v2`, `19:…@unq.gbl.spaces`). A message in a channel
//! thread is `{root id}/{reply id}`, so edits, deletes and reactions know
//! which Graph path to use; root messages and chat messages are their id.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters escaped in a Graph path segment (ids keep `:` and `@`, as Graph shows them).
const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'/').add(b'?').add(b'#').add(b'%').add(b'"').add(b'<').add(b'>');

/// A Teams conversation a portal can bridge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Conversation {
    /// A channel of a team, with its threads.
    Channel { team: String, channel: String },
    /// A group or one-on-one chat.
    Chat { chat: String },
}

fn plausible(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && !id.chars().any(|c| c.is_control() || c.is_whitespace() || c == '/')
}

impl Conversation {
    /// Reads a portal's room id.
    pub(crate) fn parse(room: &str) -> Option<Self> {
        match room.split_once('/') {
            Some((team, channel)) => {
                let guid = team.len() == 36 && team.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                (guid && plausible(channel) && channel.starts_with("19:"))
                    .then(|| Self::Channel { team: team.to_owned(), channel: channel.to_owned() })
            }
            None => (plausible(room) && room.contains(':')).then(|| Self::Chat { chat: room.to_owned() }),
        }
    }

    /// The portal's room id.
    pub(crate) fn room_id(&self) -> String {
        match self {
            Self::Channel { team, channel } => format!("{team}/{channel}"),
            Self::Chat { chat } => chat.clone(),
        }
    }

    /// The Graph path of its messages, relative to the v1.0 root.
    pub(crate) fn messages_path(&self) -> String {
        match self {
            Self::Channel { team, channel } => format!("teams/{}/channels/{}/messages", seg(team), seg(channel)),
            Self::Chat { chat } => format!("chats/{}/messages", seg(chat)),
        }
    }

    /// The subscription resource of its messages.
    pub(crate) fn resource(&self) -> String {
        format!("/{}", self.messages_path())
    }

    /// The Graph path of one message (or thread reply).
    pub(crate) fn message_path(&self, message: &MessageRef) -> String {
        let root = format!("{}/{}", self.messages_path(), seg(&message.root));
        match &message.reply {
            Some(reply) => format!("{root}/replies/{}", seg(reply)),
            None => root,
        }
    }
}

/// Escapes one path segment.
pub(crate) fn seg(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// A message, as the bridge refers to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MessageRef {
    /// The message id, or the thread root's for a reply.
    pub(crate) root: String,
    /// The reply's id, for a reply in a channel thread.
    pub(crate) reply: Option<String>,
}

impl MessageRef {
    pub(crate) fn root(id: impl Into<String>) -> Self {
        Self { root: id.into(), reply: None }
    }

    /// Reads a remote message id written by [`Self::id`].
    pub(crate) fn parse(id: &str) -> Option<Self> {
        match id.split_once('/') {
            Some((root, reply)) if plausible(root) && plausible(reply) => {
                Some(Self { root: root.to_owned(), reply: Some(reply.to_owned()) })
            }
            Some(_) => None,
            None => plausible(id).then(|| Self::root(id)),
        }
    }

    /// The remote message id.
    pub(crate) fn id(&self) -> String {
        match &self.reply {
            Some(reply) => format!("{}/{reply}", self.root),
            None => self.root.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: &str = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b";

    #[test]
    fn room_ids_are_channels_or_chats() {
        let channel = Conversation::parse(&format!("{TEAM}/19:4a95@thread.tacv2")).unwrap();
        assert_eq!(channel.room_id(), format!("{TEAM}/19:4a95@thread.tacv2"));
        assert_eq!(channel.resource(), format!("/teams/{TEAM}/channels/19:4a95@thread.tacv2/messages"));
        let chat = Conversation::parse("19:a_b@unq.gbl.spaces").unwrap();
        assert_eq!(chat, Conversation::Chat { chat: "19:a_b@unq.gbl.spaces".into() });
        assert_eq!(chat.messages_path(), "chats/19:a_b@unq.gbl.spaces/messages");
        assert_eq!(Conversation::parse("team/19:x"), None);
        assert_eq!(Conversation::parse(&format!("{TEAM}/general")), None);
        assert_eq!(Conversation::parse("general"), None);
        assert_eq!(Conversation::parse("19:a b"), None);
        assert_eq!(Conversation::parse(""), None);
    }

    #[test]
    fn message_refs_address_replies() {
        let chat = Conversation::parse("19:x@thread.v2").unwrap();
        let reply = MessageRef::parse("1612289765949/1612289792432").unwrap();
        assert_eq!(reply.id(), "1612289765949/1612289792432");
        let channel = Conversation::parse(&format!("{TEAM}/19:c@thread.tacv2")).unwrap();
        assert_eq!(
            channel.message_path(&reply),
            format!("teams/{TEAM}/channels/19:c@thread.tacv2/messages/1612289765949/replies/1612289792432")
        );
        assert_eq!(chat.message_path(&MessageRef::root("17")), "chats/19:x@thread.v2/messages/17");
        assert_eq!(MessageRef::parse("a/"), None);
        assert_eq!(MessageRef::parse(""), None);
        assert_eq!(seg("a/b?c#d%"), "a%2Fb%3Fc%23d%25");
    }
}
