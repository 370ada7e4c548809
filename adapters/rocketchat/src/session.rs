//! One realtime (DDP over websocket) session of a Rocket.Chat user:
//! connect, `login` with `{resume: token}`, subscribe, read, keep alive with
//! pings, and reconnect with backoff. After each (re)connect every room of
//! the session catches up from REST history while its live messages wait.

use brygga_core::Health;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::adapter::{Identity, Shared};
use crate::ddp::{self, Frame};
use crate::{catchup, dispatch};

/// Time to get `connected` and the login answer.
const HANDSHAKE: Duration = Duration::from_secs(15);
/// A ping is sent after this much silence …
const PING_AFTER: Duration = Duration::from_secs(25);
/// … and the connection is given up after this much.
const DEAD_AFTER: Duration = Duration::from_secs(60);
/// A session that lasted this long resets the reconnect backoff.
const STABLE: Duration = Duration::from_secs(30);

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// Stopped on purpose.
    Cancelled,
    /// The token was refused.
    Unauthorized,
    /// The connection failed or was lost.
    Lost(String),
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs a user's session until cancelled, reconnecting after failures.
pub(crate) async fn run(shared: Arc<Shared>, identity: Identity, cancel: CancellationToken) {
    let mut backoff = brygga_core::Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    loop {
        let started = Instant::now();
        let end = session(&shared, &identity, &cancel).await;
        let delay = match end {
            End::Cancelled => return,
            End::Unauthorized => {
                if identity.owner.is_none() {
                    shared.bot_refused();
                } else {
                    tracing::warn!(user = %identity.username, "a puppet's realtime login was refused");
                }
                Duration::from_secs(300)
            }
            End::Lost(reason) => {
                if started.elapsed() > STABLE {
                    backoff.reset();
                }
                tracing::warn!(user = %identity.username, reason, "Rocket.Chat realtime connection lost; reconnecting");
                if identity.owner.is_none() {
                    shared.status.report(Health::TransientError, Some(&format!("realtime connection lost: {reason}")));
                }
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn session(shared: &Arc<Shared>, identity: &Identity, cancel: &CancellationToken) -> End {
    let url = shared.config().websocket();
    let config = WebSocketConfig::default()
        .max_message_size(Some(ddp::MAX_FRAME_BYTES * 4))
        .max_frame_size(Some(ddp::MAX_FRAME_BYTES * 4));
    let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false);
    let mut ws = match timeout(HANDSHAKE, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(err)) => return End::Lost(format!("connecting: {err}")),
        Err(_) => return End::Lost("connecting timed out".into()),
    };
    if let Err(end) = handshake(&mut ws, identity).await {
        return end;
    }
    if identity.owner.is_none() {
        shared.status.report(Health::Connected, None);
    }
    let mut rooms_changed = shared.rooms_changed.subscribe();
    // Frames others want sent on this session (typing notices), while it lasts.
    let (tx, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _writer = shared.writers.register(&identity.username, tx);
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut next_id = 0u64;
    let mut fresh = |prefix: &str| {
        next_id += 1;
        format!("{prefix}-{next_id}")
    };
    let mut out = vec![ddp::sub(&fresh("sub"), "stream-room-messages", "__my_messages__")];
    if identity.owner.is_none() {
        out.push(ddp::sub(&fresh("sub"), "stream-notify-logged", "user-status"));
    }
    for frame in out {
        if let Err(err) = ws.send(WsMessage::text(frame)).await {
            return End::Lost(err.to_string());
        }
    }
    rooms_changed.mark_changed();
    let mut last_heard = Instant::now();
    let mut ping_sent = false;
    loop {
        let quiet = if ping_sent { DEAD_AFTER } else { PING_AFTER };
        let frame = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            Some(frame) = outgoing.recv() => {
                if let Err(err) = ws.send(WsMessage::text(frame)).await {
                    return End::Lost(err.to_string());
                }
                continue;
            }
            changed = rooms_changed.changed() => {
                if changed.is_err() {
                    return End::Cancelled;
                }
                for rid in dispatch::rooms_of(shared, identity) {
                    if !subscribed.insert(rid.clone()) {
                        continue;
                    }
                    for event in ["deleteMessage", "typing", "user-activity"] {
                        let frame = ddp::sub(&fresh("sub"), "stream-notify-room", &format!("{rid}/{event}"));
                        if let Err(err) = ws.send(WsMessage::text(frame)).await {
                            return End::Lost(err.to_string());
                        }
                    }
                    catchup::start(shared, identity, &rid);
                }
                continue;
            }
            frame = timeout(quiet.saturating_sub(last_heard.elapsed()), ws.next()) => frame,
        };
        let message = match frame {
            Err(_) if !ping_sent => {
                ping_sent = true;
                if let Err(err) = ws.send(WsMessage::text(ddp::ping(&fresh("ping")))).await {
                    return End::Lost(err.to_string());
                }
                continue;
            }
            Err(_) => return End::Lost("no answer to a ping".into()),
            Ok(None) => return End::Lost("closed by the server".into()),
            Ok(Some(Err(err))) => return End::Lost(err.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        last_heard = Instant::now();
        ping_sent = false;
        let text = match message {
            WsMessage::Text(text) => text,
            WsMessage::Close(_) => return End::Lost("closed by the server".into()),
            WsMessage::Binary(_) => {
                tracing::warn!("a binary realtime frame was skipped");
                continue;
            }
            _ => continue,
        };
        match ddp::parse(&text) {
            Ok(Frame::Ping(id)) => {
                if let Err(err) = ws.send(WsMessage::text(ddp::pong(id.as_deref()))).await {
                    return End::Lost(err.to_string());
                }
            }
            Ok(Frame::Stream { collection, event, args }) => {
                dispatch::stream(shared, identity, &collection, &event, args)
            }
            Ok(Frame::NoSub { id, error }) => {
                tracing::debug!(
                    sub = id,
                    error = error.as_deref().unwrap_or("-"),
                    "a realtime subscription was refused"
                );
            }
            Ok(Frame::Failed) => return End::Lost("the server refused the DDP version".into()),
            Ok(_) => {}
            Err(reason) => tracing::warn!(user = %identity.username, reason, "a malformed realtime frame was skipped"),
        }
    }
}

/// `connect`, then `login` with the token; answers pings meanwhile.
async fn handshake(ws: &mut Ws, identity: &Identity) -> Result<(), End> {
    let lost = |e: tokio_tungstenite::tungstenite::Error| End::Lost(e.to_string());
    ws.send(WsMessage::text(ddp::connect())).await.map_err(lost)?;
    let deadline = Instant::now() + HANDSHAKE;
    let mut logged_in_sent = false;
    loop {
        let message = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(End::Lost("the realtime handshake timed out".into())),
            Ok(None) => return Err(End::Lost("closed during the handshake".into())),
            Ok(Some(Err(err))) => return Err(lost(err)),
            Ok(Some(Ok(WsMessage::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
        };
        match ddp::parse(&message) {
            Ok(Frame::Connected) if !logged_in_sent => {
                logged_in_sent = true;
                ws.send(WsMessage::text(ddp::login("login", &identity.creds.token))).await.map_err(lost)?;
            }
            Ok(Frame::Ping(id)) => ws.send(WsMessage::text(ddp::pong(id.as_deref()))).await.map_err(lost)?,
            Ok(Frame::Failed) => return Err(End::Lost("the server refused the DDP version".into())),
            Ok(Frame::Result { id, error, .. }) if id == "login" => {
                return match error {
                    None => Ok(()),
                    Some(_) => Err(End::Unauthorized),
                };
            }
            Ok(_) => {}
            Err(reason) => tracing::warn!(reason, "a malformed realtime frame was skipped"),
        }
    }
}
