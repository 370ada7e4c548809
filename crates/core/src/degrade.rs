//! Degradation: what to send when a platform lacks a capability.
//!
//! The rule is to keep the meaning visible rather than drop it: an edit
//! becomes a new message marked with `*`, a reaction becomes a short text,
//! a deletion a notice. Only ephemeral signals are dropped.

use crate::adapter::Capabilities;
use crate::event::{EventBody, Message, Text};

/// Adapts an event to what a platform supports; `None` drops it.
pub fn degrade<R: Clone>(body: EventBody<R>, caps: &Capabilities) -> Option<EventBody<R>> {
    match body {
        EventBody::Message(message) => Some(EventBody::Message(degrade_message(message, caps))),
        EventBody::Edit { text, .. } if !caps.edits => Some(EventBody::Message(Message::text(marked("* ", text)))),
        EventBody::Redaction { .. } if !caps.redactions => {
            let mut notice = Message::text(Text::plain("(deleted a message)"));
            notice.notice = true;
            Some(EventBody::Message(notice))
        }
        EventBody::Reaction { target, key, removed } if !caps.reactions => {
            if removed {
                return None;
            }
            let mut message = Message::text(Text::plain(format!("reacted with {key}")));
            if caps.replies {
                message.reply_to = Some(target);
            }
            Some(EventBody::Message(message))
        }
        EventBody::Membership { .. } if !caps.membership => None,
        EventBody::Presence { .. } if !caps.presence => None,
        EventBody::Typing { .. } if !caps.typing => None,
        EventBody::ReadReceipt { .. } if !caps.read_receipts => None,
        other => Some(other),
    }
}

fn degrade_message<R>(mut message: Message<R>, caps: &Capabilities) -> Message<R> {
    if !caps.threads {
        // A thread reply without threads is still a reply to the thread root.
        if let Some(root) = message.thread_root.take() {
            message.reply_to.get_or_insert(root);
        }
    }
    if !caps.replies {
        message.reply_to = None;
    }
    if !caps.media && !message.attachments.is_empty() {
        let names: Vec<String> = message.attachments.drain(..).map(|a| format!("[file: {}]", a.name)).collect();
        let listing = names.join("\n");
        message.text = if message.text.body.is_empty() {
            Text::plain(listing)
        } else {
            Text {
                body: format!("{}\n{listing}", message.text.body),
                html: message.text.html.map(|h| format!("{h}<br>{}", escape_html(&listing))),
            }
        };
    }
    message
}

fn marked(marker: &str, text: Text) -> Text {
    Text { body: format!("{marker}{}", text.body), html: text.html.map(|h| format!("{marker}{h}")) }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attachment, MediaSource};

    type Body = EventBody<String>;

    #[test]
    fn edits_become_marked_messages_without_edit_support() {
        let edit: Body = EventBody::Edit { target: "m1".into(), text: Text::plain("fixed") };
        match degrade(edit.clone(), &Capabilities::none()) {
            Some(EventBody::Message(m)) => assert_eq!(m.text.body, "* fixed"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(degrade(edit.clone(), &Capabilities::all()), Some(edit));
    }

    #[test]
    fn reactions_become_text_replies_and_removals_vanish() {
        let mut caps = Capabilities::none();
        caps.replies = true;
        let add: Body = EventBody::Reaction { target: "m1".into(), key: "👍".into(), removed: false };
        match degrade(add, &caps) {
            Some(EventBody::Message(m)) => {
                assert_eq!(m.text.body, "reacted with 👍");
                assert_eq!(m.reply_to.as_deref(), Some("m1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let remove: Body = EventBody::Reaction { target: "m1".into(), key: "👍".into(), removed: true };
        assert_eq!(degrade(remove, &caps), None);
    }

    #[test]
    fn redactions_become_notices_and_ephemera_drop() {
        let redaction: Body = EventBody::Redaction { target: "m".into(), reason: None };
        assert!(matches!(degrade(redaction, &Capabilities::none()), Some(EventBody::Message(m)) if m.notice));
        let typing: Body = EventBody::Typing { typing: true };
        assert_eq!(degrade(typing, &Capabilities::none()), None);
    }

    #[test]
    fn threads_fall_back_to_replies_and_files_to_names() {
        let mut caps = Capabilities::none();
        caps.replies = true;
        let mut m: Message<String> = Message::text(Text::plain("see"));
        m.thread_root = Some("root".into());
        m.attachments.push(Attachment {
            name: "a.pdf".into(),
            mime: "application/pdf".into(),
            size: None,
            source: MediaSource::Remote { locator: "x".into() },
        });
        match degrade(EventBody::Message(m), &caps) {
            Some(EventBody::Message(m)) => {
                assert_eq!(m.reply_to.as_deref(), Some("root"));
                assert!(m.thread_root.is_none());
                assert!(m.attachments.is_empty());
                assert_eq!(m.text.body, "see\n[file: a.pdf]");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
