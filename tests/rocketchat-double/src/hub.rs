//! The realtime sessions and their stream subscriptions: routes each
//! [`StreamEvent`] to the sessions allowed to see it, as Rocket.Chat's
//! streamer does.

use crate::events::StreamEvent;
use crate::model::RoomType;
use crate::workspace::Workspace;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::UnboundedSender;

/// What a session's writer task is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this text frame.
    Text(String),
    /// Drop the connection abruptly (no close frame), like a network failure.
    Drop,
}

/// A stream subscription (`sub`) of a realtime session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealtimeSubscription {
    /// The session's logged-in user, if any.
    pub user_id: Option<String>,
    /// DDP subscription id.
    pub id: String,
    /// Stream name, e.g. `stream-room-messages`.
    pub name: String,
    /// First parameter, e.g. `__my_messages__` or `<rid>/deleteMessage`.
    pub param: String,
}

#[derive(Debug)]
struct Session {
    user_id: Option<String>,
    token: Option<String>,
    subs: Vec<(String, String, String)>,
    tx: UnboundedSender<Outbound>,
}

/// All connected realtime sessions.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<HashMap<u64, Session>>,
    next: AtomicU64,
}

/// A `changed` frame of a stream collection.
pub fn changed(collection: &str, event_name: &str, args: &[Value]) -> String {
    json!({ "msg": "changed", "collection": collection, "id": "id", "fields": { "eventName": event_name, "args": args } }).to_string()
}

impl Hub {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Session>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new session writing to `tx`; returns its id.
    pub fn register(&self, tx: UnboundedSender<Outbound>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sessions().insert(id, Session { user_id: None, token: None, subs: Vec::new(), tx });
        id
    }

    /// Forgets a closed session.
    pub fn unregister(&self, id: u64) {
        self.sessions().remove(&id);
    }

    /// Records a successful `login` on session `id`.
    pub fn set_login(&self, id: u64, user_id: &str, token: &str) {
        if let Some(s) = self.sessions().get_mut(&id) {
            s.user_id = Some(user_id.to_owned());
            s.token = Some(token.to_owned());
        }
    }

    /// The logged-in user of session `id`.
    pub fn user_of(&self, id: u64) -> Option<String> {
        self.sessions().get(&id).and_then(|s| s.user_id.clone())
    }

    /// Adds subscription `sub_id` to stream `name` with first parameter `param`.
    pub fn subscribe(&self, id: u64, sub_id: &str, name: &str, param: &str) {
        if let Some(s) = self.sessions().get_mut(&id) {
            s.subs.push((sub_id.to_owned(), name.to_owned(), param.to_owned()));
        }
    }

    /// Removes subscription `sub_id`; whether it existed.
    pub fn unsubscribe(&self, id: u64, sub_id: &str) -> bool {
        let mut sessions = self.sessions();
        let Some(s) = sessions.get_mut(&id) else { return false };
        let before = s.subs.len();
        s.subs.retain(|(sid, _, _)| sid != sub_id);
        s.subs.len() != before
    }

    /// All subscriptions of all sessions.
    pub fn subscriptions(&self) -> Vec<RealtimeSubscription> {
        let sessions = self.sessions();
        let mut all = Vec::new();
        for s in sessions.values() {
            for (id, name, param) in &s.subs {
                all.push(RealtimeSubscription {
                    user_id: s.user_id.clone(),
                    id: id.clone(),
                    name: name.clone(),
                    param: param.clone(),
                });
            }
        }
        all
    }

    /// How many sessions are connected.
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    /// Drops every session abruptly.
    pub fn drop_all(&self) -> usize {
        let sessions = self.sessions();
        sessions.values().filter(|s| s.tx.send(Outbound::Drop).is_ok()).count()
    }

    /// Drops the sessions logged in with `token` (of `user_id`, or any token when `None`).
    pub fn drop_logins(&self, user_id: &str, token: Option<&str>) {
        for s in self.sessions().values() {
            if s.user_id.as_deref() == Some(user_id) && token.is_none_or(|t| s.token.as_deref() == Some(t)) {
                let _ = s.tx.send(Outbound::Drop);
            }
        }
    }

    /// Sends `text` verbatim to every session; returns how many got it.
    pub fn send_raw(&self, text: &str) -> usize {
        self.sessions().values().filter(|s| s.tx.send(Outbound::Text(text.to_owned())).is_ok()).count()
    }

    /// Whether a logged-in `user_id` may read stream `name` with `param`.
    pub fn may_subscribe(ws: &Workspace, user_id: &str, name: &str, param: &str) -> bool {
        match name {
            "stream-room-messages" => param == "__my_messages__" || can_read(ws, user_id, param),
            "stream-notify-room" => param.split_once('/').is_some_and(|(rid, _)| can_read(ws, user_id, rid)),
            "stream-notify-user" => param.split_once('/').is_some_and(|(uid, _)| uid == user_id),
            "stream-notify-logged" => true,
            _ => false,
        }
    }

    /// Delivers `event` to every session subscribed to it and allowed to see it (once per session).
    pub fn emit(&self, event: &StreamEvent, ws: &Workspace) {
        let (collection, event_name, args) = match event {
            StreamEvent::RoomMessage { rid, message } => {
                ("stream-room-messages", rid.clone(), std::slice::from_ref(message))
            }
            StreamEvent::NotifyRoom { rid, event, args } => {
                ("stream-notify-room", format!("{rid}/{event}"), args.as_slice())
            }
            StreamEvent::NotifyLogged { event, args } => ("stream-notify-logged", event.clone(), args.as_slice()),
            StreamEvent::NotifyUser { uid, event, args } => {
                ("stream-notify-user", format!("{uid}/{event}"), args.as_slice())
            }
        };
        let frame = changed(collection, &event_name, args);
        for s in self.sessions().values() {
            let Some(user) = s.user_id.as_deref() else { continue };
            let wanted = s.subs.iter().any(|(_, name, param)| {
                name == collection
                    && match event {
                        StreamEvent::RoomMessage { rid, .. } if param == "__my_messages__" => ws.is_member(rid, user),
                        StreamEvent::RoomMessage { rid, .. } | StreamEvent::NotifyRoom { rid, .. } => {
                            *param == event_name && can_read(ws, user, rid)
                        }
                        StreamEvent::NotifyLogged { .. } => *param == event_name,
                        StreamEvent::NotifyUser { uid, .. } => *param == event_name && uid == user,
                    }
            });
            if wanted {
                let _ = s.tx.send(Outbound::Text(frame.clone()));
            }
        }
    }
}

/// Members read any room; anyone logged in reads a public channel.
fn can_read(ws: &Workspace, user_id: &str, rid: &str) -> bool {
    ws.is_member(rid, user_id) || ws.room(rid).is_some_and(|r| r.kind == RoomType::Channel)
}
