//! A small REST and DDP client for driving the double as a real client would.
#![allow(dead_code)]

use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A REST call as `user`; returns status, headers and JSON body (Null if not JSON).
pub async fn call(
    rc: &RocketChatDouble,
    user: Option<&TestUser>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", rc.url());
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(u) = user {
        request = request.header("X-User-Id", &u.id).header("X-Auth-Token", &u.token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the double");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A DDP connection.
pub struct Ddp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Ddp {
    /// Connects and completes the DDP handshake.
    pub async fn connect(rc: &RocketChatDouble) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(rc.websocket_url()).await.expect("websocket connects");
        let mut ddp = Self { ws, next_id: 0 };
        assert_eq!(ddp.next().await, json!({ "server_id": "0" }));
        ddp.send(json!({ "msg": "connect", "version": "1", "support": ["1"] })).await;
        let connected = ddp.next().await;
        assert_eq!(connected["msg"], "connected", "{connected}");
        ddp
    }

    /// Connects and logs in with `user`'s token.
    pub async fn login(rc: &RocketChatDouble, user: &TestUser) -> Self {
        let mut ddp = Self::connect(rc).await;
        let result = ddp.call("login", json!([{ "resume": user.token }])).await;
        assert_eq!(result["result"]["id"], json!(user.id), "{result}");
        ddp
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::Text(frame.to_string().into())).await.expect("frame sent");
    }

    /// The next JSON text frame (skipping server pings); panics after 5 s.
    pub async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(5)).await.expect("a frame within 5 s")
    }

    /// The next JSON text frame, or `None` on timeout or close.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            match frame {
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::String(text.to_string()));
                    if value["msg"] != "ping" {
                        return Some(value);
                    }
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Calls a method; returns its `result` frame (the `updated` frame is consumed).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({ "msg": "method", "method": method, "id": id, "params": params })).await;
        let result = self.next().await;
        assert_eq!(result["msg"], "result", "{result}");
        let updated = self.next().await;
        assert_eq!(updated["msg"], "updated", "{updated}");
        result
    }

    /// Subscribes; returns the `ready` or `nosub` frame.
    pub async fn sub(&mut self, name: &str, param: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({ "msg": "sub", "id": id, "name": name, "params": [param, false] })).await;
        self.next().await
    }

    /// The next `changed` frame of `collection`.
    pub async fn changed(&mut self, collection: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["msg"] == "changed" && frame["collection"] == collection {
                return frame;
            }
        }
    }
}
