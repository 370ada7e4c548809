//! Rocket.Chat messages to bridge events. The realtime stream re-delivers a
//! whole message on every change (edit, reaction, thread count), so each
//! message's last state is remembered and only the difference is bridged;
//! a re-delivery with nothing new bridges nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use brygga_core::{
    Attachment, EventBody, InboundEvent, MatrixUserId, MediaSource, Membership, Message, RemoteMessageId, RemoteRoomId,
    RemoteSender, RemoteUserId,
};

use crate::emoji;
use crate::markdown;
use crate::message::RcMessage;

/// How many messages' states are remembered.
const MEMORY_CAP: usize = 20_000;

/// What the bridge last saw of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Seen {
    edited_at: Option<i64>,
    deleted: bool,
    reactions: BTreeSet<(String, String)>,
    author: String,
}

/// Bounded memory of message states.
#[derive(Default)]
pub(crate) struct Memory {
    states: HashMap<String, Seen>,
    order: VecDeque<String>,
}

impl Memory {
    fn remember(&mut self, id: &str, seen: Seen) {
        if self.states.insert(id.to_owned(), seen).is_none() {
            self.order.push_back(id.to_owned());
            if self.order.len() > MEMORY_CAP
                && let Some(old) = self.order.pop_front()
            {
                self.states.remove(&old);
            }
        }
    }

    /// The author of a remembered message.
    pub(crate) fn author(&self, id: &str) -> Option<String> {
        self.states.get(id).map(|s| s.author.clone())
    }

    /// Marks a message deleted; false if it already was.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        match self.states.get_mut(id) {
            Some(seen) if seen.deleted => false,
            Some(seen) => {
                seen.deleted = true;
                true
            }
            None => {
                self.remember(id, Seen { deleted: true, ..Default::default() });
                true
            }
        }
    }
}

/// What the conversion needs besides the message.
pub(crate) struct Context<'a> {
    /// The portal room the message belongs to.
    pub(crate) room: &'a RemoteRoomId,
    /// Username to Matrix user id, for pills.
    pub(crate) mention: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a username is the bot or a puppet (their doings are echoes).
    pub(crate) ours: &'a dyn Fn(&str) -> bool,
    /// The message is the bridge's own: only others' reactions to it are bridged.
    pub(crate) echo: bool,
    /// Longest text bridged; longer text is cut.
    pub(crate) max_body_bytes: usize,
    /// The Matrix user whose puppet fetches the room's files (in direct chats).
    pub(crate) file_owner: Option<&'a MatrixUserId>,
}

/// The events a (re)delivered message stands for, given what was seen before.
pub(crate) fn events(memory: &mut Memory, message: &RcMessage, ctx: &Context<'_>) -> Vec<InboundEvent> {
    let prev = memory.states.get(&message.id).cloned();
    let sender = sender_of(message);
    let Some(sender) = sender else { return Vec::new() };
    let event = |id: String, body| {
        RemoteMessageId::new(id).ok().map(|id| InboundEvent::new(ctx.room.clone(), id, sender.clone(), body))
    };
    let mut out = Vec::new();
    let reactions: BTreeSet<(String, String)> = message
        .reactions
        .iter()
        .flat_map(|(key, users)| users.usernames.iter().map(move |u| (key.clone(), u.clone())))
        .collect();
    let target = RemoteMessageId::new(message.id.clone()).ok();
    match message.t.as_deref() {
        Some("rm") => {
            if memory.delete(&message.id)
                && let Some(target) = target
            {
                out.extend(event(format!("{}/delete", message.id), EventBody::Redaction { target, reason: None }));
            }
            return out;
        }
        Some(kind) => {
            if prev.is_none() && !ctx.echo {
                out.extend(membership(message, kind, ctx.room));
            }
            memory.remember(&message.id, Seen { author: message.u.username.clone(), ..Default::default() });
            return out;
        }
        None => {}
    }
    let Some(target) = target else { return out };
    match prev {
        None => {
            let content = content(message, ctx);
            // Nothing to show (an empty text without files) is not bridged.
            let empty = content.text.body.trim().is_empty() && content.attachments.is_empty();
            if !ctx.echo && !empty {
                out.extend(event(message.id.clone(), EventBody::Message(content.clone())));
                // First seen already edited (e.g. after a restart, in a catch-up):
                // the edit too, under its own id, so one bridged before is recognised.
                if let Some(edited_at) = message.edited_at {
                    let id = format!("{}/edit/{edited_at}", message.id);
                    out.extend(event(id, EventBody::Edit { target: target.clone(), text: content.text }));
                }
            }
            for (key, user) in reactions.iter().filter(|(_, user)| !(ctx.ours)(user)) {
                let body = EventBody::Reaction { target: target.clone(), key: emoji::to_unicode(key), removed: false };
                out.extend(reaction(ctx.room, &message.id, key, user, "", body));
            }
        }
        Some(prev) if prev.deleted => return out,
        Some(prev) => {
            if message.edited_at.is_some() && message.edited_at != prev.edited_at && !ctx.echo {
                let text = content(message, ctx).text;
                let id = format!("{}/edit/{}", message.id, message.edited_at.unwrap_or_default());
                out.extend(event(id, EventBody::Edit { target: target.clone(), text }));
            }
            let stamp = message.updated_at.unwrap_or_else(crate::time::now_millis).to_string();
            let others = |(_, user): &&(String, String)| !(ctx.ours)(user);
            for (key, user) in reactions.difference(&prev.reactions).filter(others) {
                let body = EventBody::Reaction { target: target.clone(), key: emoji::to_unicode(key), removed: false };
                out.extend(reaction(ctx.room, &message.id, key, user, &stamp, body));
            }
            for (key, user) in prev.reactions.difference(&reactions).filter(others) {
                let body = EventBody::Reaction { target: target.clone(), key: emoji::to_unicode(key), removed: true };
                out.extend(reaction(ctx.room, &message.id, key, user, &stamp, body));
            }
        }
    }
    let seen = Seen { edited_at: message.edited_at, deleted: false, reactions, author: message.u.username.clone() };
    memory.remember(&message.id, seen);
    out
}

/// A reaction event, sent by the reacting user's ghost.
fn reaction(
    room: &RemoteRoomId,
    id: &str,
    key: &str,
    user: &str,
    stamp: &str,
    body: EventBody<RemoteMessageId>,
) -> Option<InboundEvent> {
    let sign = if matches!(body, EventBody::Reaction { removed: true, .. }) { "-" } else { "+" };
    let event_id = RemoteMessageId::new(format!("{id}/react/{sign}/{key}/{user}/{stamp}")).ok()?;
    let sender = RemoteSender::new(RemoteUserId::new(user).ok()?);
    Some(InboundEvent::new(room.clone(), event_id, sender, body))
}

/// Who a message is from, as a ghost: its author (named by the alias an integration set).
fn sender_of(message: &RcMessage) -> Option<RemoteSender> {
    let mut sender = RemoteSender::new(RemoteUserId::new(message.u.username.clone()).ok()?);
    sender.display_name = message.alias.clone().or_else(|| message.u.name.clone()).filter(|n| !n.trim().is_empty());
    Some(sender)
}

/// System messages about membership (`uj`, `ul`, `au`, `ru`); others are skipped.
fn membership(message: &RcMessage, kind: &str, room: &RemoteRoomId) -> Option<InboundEvent> {
    let (who, membership) = match kind {
        "uj" | "ujt" => (message.u.username.as_str(), Membership::Join),
        "ul" | "ult" => (message.u.username.as_str(), Membership::Leave),
        // For added/removed users, `msg` holds the affected username.
        "au" => (message.msg.as_str(), Membership::Join),
        "ru" => (message.msg.as_str(), Membership::Leave),
        other => {
            tracing::debug!(kind = other, "Rocket.Chat system message skipped");
            return None;
        }
    };
    let mut sender = RemoteSender::new(RemoteUserId::new(who).ok()?);
    if who == message.u.username {
        sender.display_name = message.u.name.clone();
    }
    let body = EventBody::Membership { membership, display_name: sender.display_name.clone(), reason: None };
    Some(InboundEvent::new(room.clone(), RemoteMessageId::new(message.id.clone()).ok()?, sender, body))
}

/// The Matrix message of a Rocket.Chat message: text, quote, thread and files.
fn content(message: &RcMessage, ctx: &Context<'_>) -> Message<RemoteMessageId> {
    let mut text = message.text_without_quotes().to_owned();
    if text.is_empty()
        && let Some(description) = message.attachments.iter().find_map(|a| a.description.clone())
    {
        text = description;
    }
    if text.len() > ctx.max_body_bytes {
        let mut cut = ctx.max_body_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
        tracing::info!(message = %message.id, "a long Rocket.Chat message was cut");
    }
    let mut out = Message::text(markdown::to_matrix(&text, ctx.mention));
    out.reply_to = message.quoted_id().and_then(|id| RemoteMessageId::new(id).ok());
    out.thread_root = message.tmid.as_ref().and_then(|id| RemoteMessageId::new(id.clone()).ok());
    out.attachments = attachments(message, ctx.file_owner);
    out
}

/// Files of a message, fetched later through the adapter's media access.
fn attachments(message: &RcMessage, owner: Option<&MatrixUserId>) -> Vec<Attachment> {
    let files: BTreeMap<&str, &crate::message::FileRef> =
        message.files.iter().chain(message.file.iter()).map(|f| (f.id.as_str(), f)).collect();
    message
        .attachments
        .iter()
        .filter(|a| a.message_link.is_none())
        .filter_map(|a| {
            let link = a.title_link.as_ref()?;
            let file = files.values().find(|f| link.contains(&f.id));
            let mime = a
                .image_type
                .clone()
                .or(a.video_type.clone())
                .or(a.audio_type.clone())
                .or_else(|| file.and_then(|f| f.mime.clone()));
            Some(Attachment {
                name: a.title.clone().or_else(|| file.and_then(|f| f.name.clone())).unwrap_or_else(|| "file".into()),
                mime: mime.unwrap_or_else(|| "application/octet-stream".into()),
                size: a.image_size.or_else(|| file.and_then(|f| f.size)),
                source: MediaSource::Remote { locator: crate::media::locator(link, owner) },
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
