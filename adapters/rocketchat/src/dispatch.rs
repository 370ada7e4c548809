//! Stream events of a session to bridge events: messages (new, edited,
//! reacted to), deletions, typing and presence. Each is looked at on its
//! own; one that does not parse is logged and skipped.

use std::sync::Arc;

use brygga_core::{EventBody, InboundEvent, Presence, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId};
use serde_json::Value;

use crate::adapter::{Identity, Shared};
use crate::ids;
use crate::inbound::{self, Context};
use crate::message::RcMessage;
use crate::pushers::Batch;

/// The rooms a session listens in: channels and groups for the bot, direct chats for their puppet.
pub(crate) fn rooms_of(shared: &Shared, identity: &Identity) -> Vec<String> {
    let rooms = shared.rooms.lock().expect("rooms poisoned");
    rooms.all().filter(|(_, watch)| listens_in(identity, &watch.portal)).map(|(rid, _)| rid.to_owned()).collect()
}

/// Whether a session reads a portal's room: the bot reads channels and
/// groups, a puppet its own direct chats.
fn listens_in(identity: &Identity, portal: &RemoteRoomId) -> bool {
    match (&identity.owner, ids::parse_direct(portal)) {
        (None, None) => true,
        (Some(owner), Some((_, user))) => owner == &user,
        _ => false,
    }
}

/// Handles one stream event.
pub(crate) fn stream(shared: &Arc<Shared>, identity: &Identity, collection: &str, event: &str, args: Vec<Value>) {
    match (collection, event) {
        ("stream-room-messages", _) => {
            let Some(value) = args.first() else { return };
            match RcMessage::from_value(value) {
                Ok(message) => live_message(shared, identity, message),
                Err(reason) => tracing::warn!(reason, "a realtime message was skipped"),
            }
        }
        ("stream-notify-room", event) => {
            let Some((rid, what)) = event.split_once('/') else { return };
            match what {
                "deleteMessage" => deleted(shared, rid, &args),
                "typing" | "user-activity" => typing(shared, rid, &args),
                _ => {}
            }
        }
        ("stream-notify-logged", "user-status") => presence(shared, &args),
        (collection, event) => tracing::debug!(collection, event, "unhandled realtime event"),
    }
}

/// A live message: held while its room catches up, bridged otherwise.
fn live_message(shared: &Arc<Shared>, identity: &Identity, message: RcMessage) {
    let watch = shared.rooms.lock().expect("rooms poisoned").get(&message.rid).cloned();
    match watch {
        // Each room is read by one session only (puppets are in channels too), which keeps its order.
        Some(watch) if !listens_in(identity, &watch.portal) => return,
        Some(_) => {}
        None if !adopt_direct(shared, identity, &message) => return, // A room without a portal.
        None => {}
    }
    let message = shared.rooms.lock().expect("rooms poisoned").held_or(message);
    if let Some(message) = message {
        bridge(shared, &message);
    }
}

/// A puppet got a message in a direct chat nobody bridged yet: the chat becomes a portal.
fn adopt_direct(shared: &Arc<Shared>, identity: &Identity, message: &RcMessage) -> bool {
    let Some(owner) = &identity.owner else { return false };
    // A direct chat's id is its two members' user ids, sorted, side by side.
    let mut pair = [identity.creds.user_id.as_str(), message.u.id.as_str()];
    pair.sort_unstable();
    if message.u.username == identity.username || message.rid != pair.concat() {
        return false;
    }
    let Ok(remote) = RemoteUserId::new(message.u.username.clone()) else { return false };
    let Some(portal) = ids::direct_room(&remote, owner) else { return false };
    let watched = shared.rooms.lock().expect("rooms poisoned").watch(&message.rid, portal.clone());
    if watched {
        // The session subscribes to the chat's deletions and typing.
        shared.rooms_changed.send_modify(|g| *g += 1);
        let (shared, rid) = (shared.clone(), message.rid.clone());
        tokio::spawn(async move {
            if let Err(err) = shared.state.put(&format!("dm-rid:{portal}"), Some(&rid)).await {
                tracing::warn!(error = %err, "remembering a direct chat failed");
            }
        });
    }
    true
}

/// Turns a message into events and queues them behind its room's earlier ones.
pub(crate) fn bridge(shared: &Arc<Shared>, message: &RcMessage) {
    let watch = {
        let mut rooms = shared.rooms.lock().expect("rooms poisoned");
        rooms.saw_person(&message.u.username);
        rooms.get(&message.rid).cloned()
    };
    let Some(watch) = watch else { return };
    let echo =
        shared.rooms.lock().expect("rooms poisoned").is_ours(&message.id) || shared.is_bridge_user(&message.u.username);
    let mention = |username: &str| shared.mention_target(username);
    let ours = |username: &str| shared.is_bridge_user(username);
    let owner = ids::parse_direct(&watch.portal).map(|(_, user)| user);
    let ctx = Context {
        file_owner: owner.as_ref(),
        room: &watch.portal,
        mention: &mention,
        ours: &ours,
        echo,
        max_body_bytes: shared.config().max_body_bytes,
    };
    let mut events = inbound::events(&mut shared.memory.lock().expect("memory poisoned"), message, &ctx);
    if let Some(name) = &watch.name {
        for event in &mut events {
            event.room_name = Some(name.clone());
        }
    }
    let seen = message.ts.map(|ts| (message.rid.clone(), ts));
    if let Some(pushers) = shared.pushers() {
        pushers.route(&watch.portal, Batch { events, seen });
    }
}

fn deleted(shared: &Arc<Shared>, rid: &str, args: &[Value]) {
    if let Some(id) = args.first().and_then(|a| a["_id"].as_str()) {
        deletion(shared, rid, id);
    }
}

/// A message of `rid` was deleted (seen live, or in a catch-up).
pub(crate) fn deletion(shared: &Arc<Shared>, rid: &str, id: &str) {
    let Some(watch) = shared.rooms.lock().expect("rooms poisoned").get(rid).cloned() else { return };
    // Our own deletions come back too.
    if shared.rooms.lock().expect("rooms poisoned").is_ours(&format!("delete:{id}")) {
        return;
    }
    let (fresh, author) = {
        let mut memory = shared.memory.lock().expect("memory poisoned");
        (memory.delete(id), memory.author(id))
    };
    // The stream does not say who deleted: the author's ghost (or the bot) shows it.
    let sender =
        author.filter(|a| !a.is_empty() && !shared.is_bridge_user(a)).or_else(|| shared.bot().ok().map(|b| b.username));
    let (true, Some(sender), Ok(target)) = (fresh, sender, RemoteMessageId::new(id)) else { return };
    let (Ok(user), Ok(event_id)) = (RemoteUserId::new(sender), RemoteMessageId::new(format!("{id}/delete"))) else {
        return;
    };
    let event = InboundEvent::new(
        watch.portal.clone(),
        event_id,
        RemoteSender::new(user),
        EventBody::Redaction { target, reason: None },
    );
    if let Some(pushers) = shared.pushers() {
        pushers.route(&watch.portal, Batch { events: vec![event], seen: None });
    }
}

fn typing(shared: &Arc<Shared>, rid: &str, args: &[Value]) {
    let Some(username) = args.first().and_then(Value::as_str) else { return };
    let typing = match args.get(1) {
        Some(Value::Bool(typing)) => *typing,
        Some(Value::Array(activities)) => activities.iter().any(|a| a == "user-typing"),
        _ => return,
    };
    if shared.is_bridge_user(username) {
        return;
    }
    let Some(watch) = shared.rooms.lock().expect("rooms poisoned").get(rid).cloned() else { return };
    ephemeral(shared, &watch.portal, username, EventBody::Typing { typing });
}

fn presence(shared: &Arc<Shared>, args: &[Value]) {
    // args: [[userId, username, status, statusText, …]]; status 0 offline, 1 online, 2 away, 3 busy.
    let Some(fields) = args.first().and_then(Value::as_array) else { return };
    let (Some(username), Some(status)) = (fields.get(1).and_then(Value::as_str), fields.get(2).and_then(Value::as_u64))
    else {
        return;
    };
    // Only people seen in bridged rooms: not a ghost for everyone in the workspace.
    if shared.is_bridge_user(username) || !shared.rooms.lock().expect("rooms poisoned").knows_person(username) {
        return;
    }
    let presence = match status {
        1 => Presence::Online,
        2 | 3 => Presence::Unavailable,
        _ => Presence::Offline,
    };
    let status_text = fields.get(3).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    // Matrix presence belongs to the user, not a room: any portal carries it.
    let portal = shared.rooms.lock().expect("rooms poisoned").all().map(|(_, w)| w.portal.clone()).next();
    if let Some(portal) = portal {
        ephemeral(shared, &portal, username, EventBody::Presence { presence, status: status_text });
    }
}

fn ephemeral(shared: &Arc<Shared>, portal: &RemoteRoomId, username: &str, body: EventBody<RemoteMessageId>) {
    let Ok(user) = RemoteUserId::new(username) else { return };
    let id = format!("{}/{username}/{}", body.kind_name(), crate::time::now_millis());
    let Ok(event_id) = RemoteMessageId::new(id) else { return };
    let event = InboundEvent::new(portal.clone(), event_id, RemoteSender::new(user), body);
    if let Some(pushers) = shared.pushers() {
        pushers.route(portal, Batch { events: vec![event], seen: None });
    }
}
