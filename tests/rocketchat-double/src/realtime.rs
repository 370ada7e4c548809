//! The realtime API: DDP over a websocket at `/websocket`, as Meteor speaks
//! it (`server_id`, `connect`/`connected`, `ping`/`pong`, `method` `login`
//! with `{resume}`, `sub`/`ready`/`nosub`/`unsub`) with Rocket.Chat's streams.

use crate::hub::{Hub, Outbound};
use crate::server::Shared;
use crate::time;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedSender};

/// How often the server pings an idle connection, as Meteor's heartbeat does.
const HEARTBEAT: Duration = Duration::from_secs(25);
/// Login tokens expire after `Accounts_LoginExpiration` (90 days by default).
const TOKEN_LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;

/// `GET /websocket`: upgrades to a DDP session.
pub async fn upgrade(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(s, socket))
}

async fn session(s: Arc<Shared>, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = s.hub.register(tx.clone());
    let (mut sink, mut stream) = socket.split();
    let mut connected = false;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let _ = tx.send(Outbound::Text(json!({ "server_id": "0" }).to_string()));
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(text)) => if sink.send(Message::Text(text.into())).await.is_err() { break },
                // Returning drops the socket without a close frame, like a lost connection.
                Some(Outbound::Drop) | None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => handle(&s, id, &tx, &mut connected, text.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => if connected {
                let _ = tx.send(Outbound::Text(json!({ "msg": "ping" }).to_string()));
            },
        }
    }
    s.hub.unregister(id);
}

fn send(tx: &UnboundedSender<Outbound>, frame: Value) {
    let _ = tx.send(Outbound::Text(frame.to_string()));
}

/// A `Meteor.Error` as DDP carries it.
fn meteor_error(error: Value, reason: &str) -> Value {
    let code = error.as_str().map_or_else(|| error.to_string(), str::to_owned);
    json!({ "isClientSafe": true, "error": error, "reason": reason, "message": format!("{reason} [{code}]"), "errorType": "Meteor.Error" })
}

fn handle(s: &Shared, id: u64, tx: &UnboundedSender<Outbound>, connected: &mut bool, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return send(tx, json!({ "msg": "error", "reason": "Bad request" }));
    };
    let kind = frame["msg"].as_str().unwrap_or_default();
    if !*connected && kind != "connect" {
        return send(tx, json!({ "msg": "error", "reason": "Must connect first", "offendingMessage": frame }));
    }
    match kind {
        "connect" => {
            if frame["version"] != json!("1") {
                return send(tx, json!({ "msg": "failed", "version": "1" }));
            }
            *connected = true;
            send(tx, json!({ "msg": "connected", "session": crate::ids::random_id() }));
        }
        "ping" => match frame.get("id") {
            Some(ping_id) => send(tx, json!({ "msg": "pong", "id": ping_id })),
            None => send(tx, json!({ "msg": "pong" })),
        },
        "pong" => {}
        "method" => method(s, id, tx, &frame),
        "sub" => subscribe(s, id, tx, &frame),
        "unsub" => {
            let sub_id = frame["id"].as_str().unwrap_or_default();
            s.hub.unsubscribe(id, sub_id);
            send(tx, json!({ "msg": "nosub", "id": sub_id }));
        }
        _ => send(tx, json!({ "msg": "error", "reason": "Bad request", "offendingMessage": frame })),
    }
}

fn method(s: &Shared, id: u64, tx: &UnboundedSender<Outbound>, frame: &Value) {
    let call_id = frame["id"].clone();
    let params = frame["params"].as_array().cloned().unwrap_or_default();
    let outcome = match frame["method"].as_str().unwrap_or_default() {
        "login" => login(s, id, params.first()),
        "stream-notify-room" => notify_room(s, id, &params),
        other => Err(meteor_error(json!(404), &format!("Method '{other}' not found"))),
    };
    match outcome {
        Ok(result) => send(tx, json!({ "msg": "result", "id": call_id, "result": result })),
        Err(error) => send(tx, json!({ "msg": "result", "id": call_id, "error": error })),
    }
    send(tx, json!({ "msg": "updated", "methods": [call_id] }));
}

fn login(s: &Shared, id: u64, params: Option<&Value>) -> Result<Value, Value> {
    let logged_out = || meteor_error(json!(403), "You've been logged out by the server. Please log in again.");
    let token = params.and_then(|p| p["resume"].as_str()).ok_or_else(|| meteor_error(json!(400), "Match failed"))?;
    let user = s.with(|ws| ws.users().find(|u| u.tokens.iter().any(|t| t == token)).map(|u| u.id.clone()));
    let user = user.ok_or_else(logged_out)?;
    s.hub.set_login(id, &user, token);
    let expires = time::ddp(time::now_ms() + TOKEN_LIFETIME_MS);
    Ok(json!({ "id": user, "token": token, "tokenExpires": expires, "type": "resume" }))
}

/// A client's own typing notice: `["<rid>/user-activity", username, activities, extras]` or `["<rid>/typing", username, bool]`.
fn notify_room(s: &Shared, id: u64, params: &[Value]) -> Result<Value, Value> {
    let not_allowed = || meteor_error(json!("not-allowed"), "Not allowed");
    let user = s.hub.user_of(id).ok_or_else(not_allowed)?;
    let (rid, event) =
        params.first().and_then(Value::as_str).and_then(|p| p.split_once('/')).ok_or_else(not_allowed)?;
    if !matches!(event, "typing" | "user-activity") {
        return Err(not_allowed());
    }
    let (rid, event, args) = (rid.to_owned(), event.to_owned(), params[1..].to_vec());
    s.with(|ws| {
        if !ws.is_member(&rid, &user) {
            return Err(not_allowed());
        }
        ws.events.push(crate::events::StreamEvent::NotifyRoom { rid, event, args });
        Ok(Value::Null)
    })
}

fn subscribe(s: &Shared, id: u64, tx: &UnboundedSender<Outbound>, frame: &Value) {
    let sub_id = frame["id"].as_str().unwrap_or_default();
    let name = frame["name"].as_str().unwrap_or_default();
    let param = frame["params"].get(0).and_then(Value::as_str).unwrap_or_default();
    let known =
        matches!(name, "stream-room-messages" | "stream-notify-room" | "stream-notify-user" | "stream-notify-logged");
    if !known {
        let error = meteor_error(json!(404), &format!("Subscription '{name}' not found"));
        return send(tx, json!({ "msg": "nosub", "id": sub_id, "error": error }));
    }
    let allowed = s.hub.user_of(id).is_some_and(|user| s.with(|ws| Hub::may_subscribe(ws, &user, name, param)));
    if !allowed {
        let error = meteor_error(json!("not-allowed"), "Not allowed");
        return send(tx, json!({ "msg": "nosub", "id": sub_id, "error": error }));
    }
    s.hub.subscribe(id, sub_id, name, param);
    send(tx, json!({ "msg": "ready", "subs": [sub_id] }));
}
