//! One `chatMessage` (as read back from Graph) to the events it stands for.
//!
//! Graph re-delivers the whole message on every change, so each kind of
//! change gets an event id of its own that says which state it is: the
//! message id for the message, `#edit@{lastEditedDateTime}` for an edit,
//! `#deleted`, and one per reaction. The store's dedupe on those ids makes a
//! re-read (after `missed`, a restart, or a duplicate notification) a no-op.

use std::collections::BTreeSet;

use brygga_core::{
    Attachment, EventBody, InboundEvent, MediaSource, Membership, Message, RemoteMessageId, RemoteRoomId, RemoteSender,
    RemoteUserId,
};

use crate::html::{TeamsMention, teams_to_matrix};
use crate::ids::{Conversation, MessageRef};
use crate::model::ChatMessage;

/// A reaction as seen on a message: (user, reaction type, created).
pub(crate) type SeenReaction = (String, String, String);

/// What the mapping needs to know about the tenant.
pub(crate) struct MapCtx<'a> {
    pub(crate) conversation: &'a Conversation,
    /// The relay identity: its messages are the bridge's own.
    pub(crate) relay_user: Option<&'a str>,
    /// Entra user id to the Matrix user to pill.
    pub(crate) pill: &'a dyn Fn(&str) -> Option<String>,
    /// Whether an image URL is a hosted content of this tenant's Graph.
    pub(crate) hosted: &'a dyn Fn(&str) -> bool,
}

/// The events of one message, and its reactions (to diff the next state against).
pub(crate) fn map_message(
    ctx: &MapCtx<'_>,
    message: &ChatMessage,
    previous: Option<&BTreeSet<SeenReaction>>,
) -> (Vec<InboundEvent>, BTreeSet<SeenReaction>) {
    let reference = reference(ctx.conversation, message);
    let reactions: BTreeSet<SeenReaction> = message
        .reactions
        .iter()
        .filter_map(|r| {
            let user = r.user.as_ref()?.user.as_ref()?.id.clone();
            Some((user, r.reaction_type.clone(), r.created_date_time.clone().unwrap_or_default()))
        })
        .collect();
    let Ok(room) = RemoteRoomId::new(ctx.conversation.room_id()) else { return (Vec::new(), reactions) };
    let id = reference.id();
    let event = |suffix: &str, sender: RemoteSender, body| {
        let event_id = RemoteMessageId::new(format!("{id}{suffix}")).ok()?;
        Some(InboundEvent::new(room.clone(), event_id, sender, body))
    };
    let target = || RemoteMessageId::new(id.clone()).ok();
    let mut events = Vec::new();
    if message.is_system() {
        events.extend(memberships(message, &event));
        return (events, reactions);
    }
    let Some((sender_id, sender_name)) = message.sender() else { return (events, reactions) };
    let Ok(sender_user) = RemoteUserId::new(sender_id.clone()) else { return (events, reactions) };
    let sender = RemoteSender { id: sender_user, display_name: sender_name, avatar: None };
    let ours = ctx.relay_user == Some(sender_id.as_str());
    if message.deleted_date_time.is_some() {
        if let Some(target) = target() {
            events.extend(event("#deleted", sender, EventBody::Redaction { target, reason: None }));
        }
        return (events, reactions);
    }
    if !ours {
        let mut body = Message::text(render(ctx, message));
        body.thread_root = reference.reply.as_ref().and_then(|_| RemoteMessageId::new(reference.root.clone()).ok());
        body.reply_to = quoted(message);
        body.attachments = images(ctx, message);
        if !body.text.body.is_empty() || !body.attachments.is_empty() {
            events.extend(event("", sender.clone(), EventBody::Message(body)));
        }
        if let (Some(edited), Some(target)) = (message.last_edited_date_time.as_deref(), target()) {
            let text = render(ctx, message);
            events.extend(event(&format!("#edit@{edited}"), sender.clone(), EventBody::Edit { target, text }));
        }
    }
    for (user, kind, created) in &reactions {
        if previous.is_some_and(|p| p.contains(&(user.clone(), kind.clone(), created.clone()))) {
            continue;
        }
        let (Ok(who), Some(target)) = (RemoteUserId::new(user.clone()), target()) else { continue };
        let body = EventBody::Reaction { target, key: reaction_key(kind), removed: false };
        events.extend(event(&format!("#react:{user}:{kind}@{created}"), RemoteSender::new(who), body));
    }
    for (user, kind, created) in previous.into_iter().flatten().filter(|r| !reactions.contains(*r)) {
        let (Ok(who), Some(target)) = (RemoteUserId::new(user.clone()), target()) else { continue };
        let body = EventBody::Reaction { target, key: reaction_key(kind), removed: true };
        events.extend(event(&format!("#unreact:{user}:{kind}@{created}"), RemoteSender::new(who), body));
    }
    (events, reactions)
}

/// How the bridge refers to a message: a channel thread's reply with its root.
pub(crate) fn reference(conversation: &Conversation, message: &ChatMessage) -> MessageRef {
    match (conversation, message.reply_to_id.as_deref()) {
        (Conversation::Channel { .. }, Some(root)) if !root.is_empty() && root != message.id => {
            MessageRef { root: root.to_owned(), reply: Some(message.id.clone()) }
        }
        _ => MessageRef::root(message.id.clone()),
    }
}

fn render(ctx: &MapCtx<'_>, message: &ChatMessage) -> brygga_core::Text {
    let mentions: Vec<TeamsMention> = message
        .mentions
        .iter()
        .map(|m| TeamsMention {
            id: m.id,
            user: m.mentioned.as_ref().and_then(|s| s.user.as_ref()).map(|u| u.id.clone()),
        })
        .collect();
    let content = message.body.content.as_deref().unwrap_or_default();
    let mut out = teams_to_matrix(content, message.body.is_html(), &mentions, ctx.pill, ctx.hosted).text;
    // Files shared from OneDrive or SharePoint are offered as links (the
    // bridge has no access to a person's files).
    for file in message.attachments.iter().filter(|a| a.content_type.as_deref() == Some("reference")) {
        let (Some(url), name) = (file.content_url.as_deref(), file.name.as_deref().unwrap_or("file")) else { continue };
        if !url.starts_with("https://") {
            continue;
        }
        let sep = if out.body.is_empty() { "" } else { "\n" };
        out.body = format!("{}{sep}{name}: {url}", out.body);
        let link = format!("<a href=\"{}\">{}</a>", crate::html::escape(url), crate::html::escape(name));
        let html = out.html.take().unwrap_or_else(|| crate::html::escape(&out.body));
        out.html = Some(crate::html::sanitize_for_matrix(&format!("{html}<br>{link}")));
    }
    out
}

/// The message a chat message quotes (a `messageReference` attachment).
fn quoted(message: &ChatMessage) -> Option<RemoteMessageId> {
    let reference = message.attachments.iter().find(|a| a.content_type.as_deref() == Some("messageReference"))?;
    RemoteMessageId::new(reference.id.clone()?).ok()
}

fn images(ctx: &MapCtx<'_>, message: &ChatMessage) -> Vec<Attachment> {
    let content = message.body.content.as_deref().unwrap_or_default();
    if !message.body.is_html() {
        return Vec::new();
    }
    teams_to_matrix(content, true, &[], &|_| None, ctx.hosted)
        .images
        .into_iter()
        .enumerate()
        .map(|(n, locator)| Attachment {
            name: format!("image-{}.png", n + 1),
            mime: "image/png".into(),
            size: None,
            source: MediaSource::Remote { locator },
        })
        .collect()
}

/// Builds one event of a message from its id suffix, sender and body.
type MakeEvent<'a> = &'a dyn Fn(&str, RemoteSender, EventBody<RemoteMessageId>) -> Option<InboundEvent>;

fn memberships(message: &ChatMessage, event: MakeEvent<'_>) -> Vec<InboundEvent> {
    let Some(detail) = &message.event_detail else { return Vec::new() };
    let membership = match detail.odata_type.as_str() {
        "#microsoft.graph.membersAddedEventMessageDetail" | "#microsoft.graph.membersJoinedEventMessageDetail" => {
            Membership::Join
        }
        "#microsoft.graph.membersDeletedEventMessageDetail" | "#microsoft.graph.membersLeftEventMessageDetail" => {
            Membership::Leave
        }
        _ => return Vec::new(),
    };
    detail
        .members
        .iter()
        .filter_map(|member| {
            let who = RemoteUserId::new(member.id.clone()).ok()?;
            let sender = RemoteSender { id: who, display_name: member.display_name.clone(), avatar: None };
            let body = EventBody::Membership { membership, display_name: member.display_name.clone(), reason: None };
            event(&format!("#member:{}", member.id), sender, body)
        })
        .collect()
}

/// Teams' named reactions as emoji; others are emoji already.
pub(crate) fn reaction_key(kind: &str) -> String {
    match kind {
        "like" => "👍",
        "heart" => "❤️",
        "laugh" => "😆",
        "surprised" => "😮",
        "sad" => "😢",
        "angry" => "😡",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
