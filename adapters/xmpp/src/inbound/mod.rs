//! XMPP to Matrix: every stanza the component receives is classified and
//! either settles one of our own waits (joins, reflections), answers an iq,
//! or becomes events pushed durably into the bridge.

mod catchup;
mod direct;

pub(crate) use self::direct::message as direct_message;
mod group;
mod iq;
pub(crate) mod pushers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use brygga_core::{EventBody, InboundEvent, Message, RemoteMessageId, RemoteRoomId, RemoteSender, Text};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::minidom::Element;

use self::pushers::Pushers;
use crate::adapter::Shared;
use crate::link::Link;
use crate::payload::{ChatState, Payload};
use crate::stanza::{GroupMessage, Inbound, classify};

/// Reads inbound stanzas until cancelled.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    link: Link,
    mut inbound: mpsc::Receiver<Element>,
    cancel: CancellationToken,
) {
    let (pushers, mut drained) = Pushers::new(shared.sink.clone(), cancel.child_token());
    shared.set_pushers(pushers.clone());
    loop {
        let element = tokio::select! {
            _ = cancel.cancelled() => return,
            element = inbound.recv() => match element {
                Some(element) => element,
                None => return,
            },
            Some(room) = drained.recv() => {
                // A flooded room drained: fetch what was dropped from its archive.
                let Some(room) = BareJid::new(room.as_str()).ok().filter(|_| crate::direct::parse(&room).is_none()) else {
                    continue;
                };
                let held = catchup::start(&shared, &link, &room).await;
                route(&shared, &pushers, group_messages(&shared, held).await);
                continue;
            }
        };
        if let Some(events) = crate::hosted::inbound(&shared, &link, &element).await {
            route(&shared, &pushers, events);
            continue;
        }
        let events = match classify(&element) {
            Inbound::GroupMessage(message) => {
                let live = message.to.try_as_full().ok() == Some(&shared.listener);
                let released = if live {
                    let mut history = shared.history.lock().expect("history poisoned");
                    let now = SystemTime::now();
                    history.seen(&message.room, now);
                    if let Some(at) = history.save_due(&message.room, now) {
                        catchup::save(shared.clone(), message.room.clone(), at);
                    }
                    history.hold(message)
                } else {
                    Some(message)
                };
                match released {
                    Some(message) => group::message(&shared, message).await,
                    None => Vec::new(),
                }
            }
            Inbound::Archived { query, message } => {
                let ours = shared.history.lock().expect("history poisoned").room_of_query(&query);
                if ours.as_ref() == Some(&message.room) { group::message(&shared, message).await } else { Vec::new() }
            }
            Inbound::QueryEnd { id, from, complete, last } => {
                let held = catchup::page_end(&shared, &link, &id, &from, complete, last).await;
                group_messages(&shared, held).await
            }
            Inbound::Occupant(presence) => {
                let listener_joined = presence.available
                    && presence.codes.contains(&110)
                    && presence.to.try_as_full().ok() == Some(&shared.listener);
                let room = presence.room.clone();
                let mut events = group::occupant(&shared, presence);
                if listener_joined {
                    let held = catchup::start(&shared, &link, &room).await;
                    events.extend(group_messages(&shared, held).await);
                }
                events
            }
            Inbound::DirectMessage(message) => direct::message(&shared, message).await,
            Inbound::IqRequest { from, to, id, kind, payload } => {
                let answer = iq::answer(&shared, &from, &to, &id, kind, payload.as_ref()).await;
                shared.send_quietly(&link, answer).await;
                Vec::new()
            }
            Inbound::Ignored(why) => {
                tracing::debug!(why, "XMPP stanza ignored");
                Vec::new()
            }
        };
        route(&shared, &pushers, events);
    }
}

/// The events of several group messages, in order.
async fn group_messages(shared: &Shared, messages: Vec<GroupMessage>) -> Vec<InboundEvent> {
    let mut events = Vec::new();
    for message in messages {
        events.extend(group::message(shared, message).await);
    }
    events
}

/// A user's whole reaction set to `target`, as single additions and removals
/// against the set they had (their ids derive from the set's own `base` id).
pub(crate) async fn reaction_events(
    shared: &Shared,
    room: RemoteRoomId,
    base: RemoteMessageId,
    sender: RemoteSender,
    target: &str,
    keys: Vec<String>,
) -> Vec<InboundEvent> {
    let Ok(target) = RemoteMessageId::new(target) else { return Vec::new() };
    let change = match shared.reactions.replace(room.as_str(), target.as_str(), sender.id.as_str(), keys).await {
        Ok(change) => change,
        Err(err) => {
            tracing::warn!(room = %room, error = %err, "reaction state unavailable; reactions skipped");
            return Vec::new();
        }
    };
    let marked = change.added.into_iter().map(|k| (k, false)).chain(change.removed.into_iter().map(|k| (k, true)));
    marked
        .filter_map(|(key, removed)| {
            let id = RemoteMessageId::new(format!("{base}{}{key}", if removed { '-' } else { '+' })).ok()?;
            let body = EventBody::Reaction { target: target.clone(), key, removed };
            Some(InboundEvent::new(room.clone(), id, sender.clone(), body))
        })
        .collect()
}

/// Hands events to their rooms' pushers; a flooded room's excess is dropped
/// here and, for group chats, fetched again from the archive later.
fn route(shared: &Shared, pushers: &Arc<Pushers>, events: Vec<InboundEvent>) {
    for event in events {
        let room = event.room.clone();
        if pushers.route(event).is_err()
            && let Ok(jid) = BareJid::new(room.as_str())
            && shared.history.lock().expect("history poisoned").gap(&jid, SystemTime::now())
        {
            tracing::warn!(room = %room, "XMPP room flooded; dropping its messages until it drains");
        }
    }
}

/// Whether a message's body is within the configured limit.
pub(crate) fn body_fits(shared: &Shared, payload: &Payload) -> bool {
    payload.body.as_ref().is_none_or(|b| b.len() <= shared.config.max_body_bytes)
}

/// A unique id for an event the remote side gave none (presence, typing).
pub(crate) fn ephemeral_id() -> RemoteMessageId {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let id = format!("local:{nanos}:{}", NEXT.fetch_add(1, Ordering::Relaxed));
    RemoteMessageId::new(id).expect("a short ASCII id is valid")
}

/// What a message says, as a bridge event. `id` turns the ids a stanza uses
/// for other messages into the ids the bridge knows them by; `own_id` does
/// the same for a correction, which names the sender's own id of its target.
pub(crate) fn body_of(
    payload: Payload,
    id: impl Fn(&str) -> Option<RemoteMessageId>,
    own_id: impl Fn(&str) -> Option<RemoteMessageId>,
) -> Option<EventBody<RemoteMessageId>> {
    if let Some(retraction) = payload.retraction {
        return Some(EventBody::Redaction { target: id(&retraction.id)?, reason: retraction.reason });
    }
    if let Some(replace) = &payload.replace {
        let body = payload.body?;
        return Some(EventBody::Edit { target: own_id(replace)?, text: Text::plain(body) });
    }
    if payload.body.is_some() || !payload.oob_urls.is_empty() {
        let mut message = Message::text(Text::plain(payload.body.unwrap_or_default()));
        message.reply_to = payload.reply_to.as_deref().and_then(&id);
        message.attachments = payload.oob_urls.iter().map(|url| crate::media::attachment(url)).collect();
        return Some(EventBody::Message(message));
    }
    if let Some(up_to) = payload.read_up_to.as_deref().and_then(&id) {
        return Some(EventBody::ReadReceipt { up_to });
    }
    match payload.chat_state? {
        ChatState::Composing => Some(EventBody::Typing { typing: true }),
        ChatState::Active | ChatState::Paused | ChatState::Inactive | ChatState::Gone => {
            Some(EventBody::Typing { typing: false })
        }
    }
}
