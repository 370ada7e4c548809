//! Matrix to Rocket.Chat over REST, as the sender's puppet (or as the bot
//! with the sender's name as `alias`). Messages get an `_id` derived from
//! the event, so a retried send is recognised instead of duplicated.

use std::sync::Arc;

use brygga_core::{BridgeError, EventBody, MatrixUserId, Membership, OutboundEvent, RemoteRoomId, SendReceipt, Text};

use crate::adapter::{Identity, Shared};
use crate::api::{self, RoomKind};
use crate::config::PuppetMode;
use crate::rest::{Creds, RestError};
use crate::{emoji, html_to_md, ids};

mod messages;

/// Who a Matrix event is sent as.
pub(super) struct Author {
    pub(super) creds: Creds,
    pub(super) username: String,
    /// The puppet's user id, when sending as a puppet.
    pub(super) puppet: Option<String>,
    /// The name shown when the bot impersonates.
    pub(super) alias: Option<String>,
    pub(super) user: MatrixUserId,
}

/// Delivers one outbound event.
pub(crate) async fn send(shared: &Arc<Shared>, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    let bot = shared.bot()?;
    let author = author(shared, &bot, event).await?;
    let result = deliver(shared, &bot, &author, event).await;
    if let (Err(RestError::Unauthorized(_)), Some(_)) = (&result, &author.puppet) {
        // The puppet's token was revoked: a new one is minted on the retry.
        shared.puppets.forget(shared.state.as_ref(), &author.user).await;
        return Err(BridgeError::transient("a puppet's Rocket.Chat token was refused; minting a new one"));
    }
    if let Err(RestError::Unauthorized(_)) = &result {
        shared.bot_refused();
    }
    Ok(result?)
}

async fn deliver(
    shared: &Arc<Shared>,
    bot: &Identity,
    author: &Author,
    event: &OutboundEvent,
) -> Result<SendReceipt, RestError> {
    let rid = room_id(shared, author, &event.room).await?;
    match &event.body {
        EventBody::Message(message) => {
            join(shared, bot, author, &event.room, &rid).await?;
            messages::send(shared, author, &rid, event, message).await
        }
        EventBody::Edit { target, text } => {
            api::update(&shared.rest, &author.creds, &rid, target.as_str(), &markdown(shared, text, false)).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Redaction { target, .. } => {
            shared.rooms.lock().expect("rooms poisoned").ours(&format!("delete:{target}"));
            match api::delete(&shared.rest, &author.creds, &rid, target.as_str()).await {
                // Someone else's message: the bot (an admin) removes it as moderator.
                Err(RestError::Refused { .. }) if author.puppet.is_some() => {
                    api::delete(&shared.rest, &bot.creds, &rid, target.as_str()).await?;
                }
                other => other?,
            }
            Ok(SendReceipt::default())
        }
        EventBody::Reaction { target, key, removed } => {
            let Some(shortcode) = emoji::to_shortcode(key) else {
                tracing::debug!("a reaction that is no emoji was not sent to Rocket.Chat");
                return Ok(SendReceipt::default());
            };
            join(shared, bot, author, &event.room, &rid).await?;
            api::react(&shared.rest, &author.creds, target.as_str(), &shortcode, !removed).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Typing { typing } if author.puppet.is_some() => {
            join(shared, bot, author, &event.room, &rid).await?;
            let frame = crate::ddp::typing(&shared.writers.fresh_id(), &rid, &author.username, *typing);
            if !shared.writers.send(&author.username, frame) {
                tracing::debug!("a typing notice was dropped: the puppet's session is not open");
            }
            Ok(SendReceipt::default())
        }
        EventBody::Membership { membership: Membership::Join, .. } if event.target.is_none() => {
            join(shared, bot, author, &event.room, &rid).await?;
            Ok(SendReceipt::default())
        }
        EventBody::Membership { membership: Membership::Leave, .. }
            if event.target.is_none() && author.puppet.is_some() =>
        {
            if ids::parse_direct(&event.room).is_none() {
                match api::leave(&shared.rest, &author.creds, &rid).await {
                    Err(RestError::Refused { .. }) => tracing::debug!("a puppet's leave was refused (not in the room)"),
                    other => other?,
                }
            }
            Ok(SendReceipt::default())
        }
        _ => Ok(SendReceipt::default()),
    }
}

async fn author(shared: &Arc<Shared>, bot: &Identity, event: &OutboundEvent) -> Result<Author, BridgeError> {
    let user = event.sender.user_id.clone();
    let name = event.sender.display_name.as_deref();
    match shared.config().puppet_mode {
        PuppetMode::Users => {
            let puppet = shared.puppets.ensure(&shared.rest, shared.state.as_ref(), &bot.creds, &user, name).await?;
            // It listens from now on, so its direct chats reach Matrix.
            let identity =
                Identity { username: puppet.username.clone(), creds: puppet.creds(), owner: Some(user.clone()) };
            shared.ensure_puppet_session(identity);
            Ok(Author {
                creds: puppet.creds(),
                username: puppet.username,
                puppet: Some(puppet.user_id),
                alias: None,
                user,
            })
        }
        PuppetMode::Impersonate => Ok(Author {
            creds: bot.creds.clone(),
            username: bot.username.clone(),
            puppet: None,
            alias: Some(name.unwrap_or(user.as_str()).to_owned()),
            user,
        }),
    }
}

/// The rid of a portal: the room itself, or the direct chat (created on first use).
async fn room_id(shared: &Arc<Shared>, author: &Author, room: &RemoteRoomId) -> Result<String, RestError> {
    let Some((remote, _)) = ids::parse_direct(room) else { return Ok(room.as_str().to_owned()) };
    if let Some(rid) = shared.rooms.lock().expect("rooms poisoned").rid_of(room) {
        return Ok(rid);
    }
    let key = format!("dm-rid:{room}");
    let rid = match shared.state.get(&key).await.ok().flatten() {
        Some(rid) => rid,
        None => {
            let opened = crate::time::now_millis();
            let rid = api::create_direct(&shared.rest, &author.creds, remote.as_str()).await?;
            // Bridged from its opening on, even if the puppet's session subscribes later.
            shared.rooms.lock().expect("rooms poisoned").mark_seen(&rid, opened);
            if let Err(err) = shared.state.put(&key, Some(&rid)).await {
                tracing::warn!(error = %err, "remembering a direct chat failed");
            }
            rid
        }
    };
    if shared.rooms.lock().expect("rooms poisoned").watch(&rid, room.clone()) {
        shared.rooms_changed.send_modify(|g| *g += 1);
    }
    if let Some(user_id) = &author.puppet {
        shared.puppets.joined(user_id, &rid);
    }
    Ok(rid)
}

/// Puts the author's puppet into a channel or group before it speaks there.
async fn join(
    shared: &Arc<Shared>,
    bot: &Identity,
    author: &Author,
    portal: &RemoteRoomId,
    rid: &str,
) -> Result<(), RestError> {
    let Some(user_id) = &author.puppet else { return Ok(()) };
    // A direct chat has its two members already.
    if ids::parse_direct(portal).is_some() {
        return Ok(());
    }
    if shared.puppets.is_in(user_id, rid) {
        return Ok(());
    }
    let known = shared.rooms.lock().expect("rooms poisoned").get(rid).and_then(|w| w.kind);
    let kind = match known {
        Some(kind) => kind,
        None => api::room_info(&shared.rest, &bot.creds, rid).await?.0,
    };
    if kind != RoomKind::Direct {
        api::invite(&shared.rest, &bot.creds, kind, rid, user_id).await?;
    }
    shared.puppets.joined(user_id, rid);
    Ok(())
}

/// The Rocket.Chat Markdown of a Matrix text.
pub(super) fn markdown(shared: &Shared, text: &Text, emote: bool) -> String {
    let mention = |user: &str| shared.username_of(user);
    let out = match &text.html {
        Some(html) => html_to_md::to_markdown(html, &mention),
        None => text.body.clone(),
    };
    if emote { format!("_{out}_") } else { out }
}

pub(super) fn refused(why: &str) -> RestError {
    RestError::Refused { path: "file".into(), status: 0, error: why.into(), error_type: "brygga-file".into() }
}
