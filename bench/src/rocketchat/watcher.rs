//! A minimal realtime (DDP) client of a Rocket.Chat user: it subscribes to
//! `__my_messages__`, as a Rocket.Chat client does, and records the bodies
//! of messages the bridge's puppets post. The double keeps no cheaper way to
//! observe new messages (`messages(rid)` copies a whole room).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::Probe;

/// The running client; dropping it disconnects.
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Connects as `user` and subscribes; messages whose author's username
    /// starts with `authors` go to `probe`. Returns once the subscription is live.
    pub async fn connect(
        rc: &RocketChatDouble,
        user: &TestUser,
        authors: &str,
        probe: Arc<Probe>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(rc.websocket_url()).await.context("connecting to the realtime API")?;
        let frames = [
            json!({"msg": "connect", "version": "1", "support": ["1"]}),
            json!({"msg": "method", "method": "login", "id": "login", "params": [{"resume": user.token}]}),
            json!({"msg": "sub", "id": "mine", "name": "stream-room-messages", "params": ["__my_messages__", false]}),
        ];
        for frame in frames {
            socket.send(Message::text(frame.to_string())).await?;
        }
        let authors = authors.to_owned();
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                match frame["msg"].as_str() {
                    Some("ping") => {
                        let _ = socket.send(Message::text(json!({"msg": "pong"}).to_string())).await;
                    }
                    Some("changed") if frame["collection"] == "stream-room-messages" => {
                        let message = &frame["fields"]["args"][0];
                        let author = message["u"]["username"].as_str().unwrap_or_default();
                        if author.starts_with(&authors) {
                            probe.received(message["msg"].as_str());
                        }
                    }
                    _ => {}
                }
            }
        });
        if !rc.wait_for_subscription(&user.id, "stream-room-messages", "__my_messages__", timeout).await {
            task.abort();
            bail!("the watcher's realtime subscription never became live");
        }
        Ok(Self { task })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
