//! The loopback adapter: a real adapter implementation whose "platform" is
//! the fake remote network of [`crate::remote`]. It is compiled only into the
//! test bridge binary, never into the shipped one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::{
    Adapter, AdapterContext, AdapterFactory, AdapterKind, BridgeError, Capabilities, EventBody, Health, InboundEvent,
    InboundSink, MatrixMedia, MatrixUserId, MediaBytes, MediaSource, OutboundEvent, RemoteMedia, RemoteMessageId,
    RemoteRoomId, RemoteUserId, SendReceipt, StatusReporter, WebhookRequest, WebhookResponse,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::remote::{AckBody, EventPage, SendAnswer};

/// The adapter kind.
pub const KIND: &str = "loopback";

/// How the names of direct chats' rooms begin.
const DIRECT_PREFIX: &str = "dm ";

/// Loopback adapter config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Fake remote base URL.
    url: String,
    /// Network name on the fake remote.
    network: String,
    /// Capabilities to declare (default: all).
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

/// Builds loopback adapters.
pub struct LoopbackFactory;

impl AdapterFactory for LoopbackFactory {
    fn kind(&self) -> AdapterKind {
        AdapterKind::new(KIND).expect("valid kind")
    }

    fn validate(&self, config: &serde_json::Value) -> Result<(), String> {
        let config: Config = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
        if !config.url.starts_with("http://") {
            return Err("key `url` must be an http:// URL".into());
        }
        if config.network.is_empty() {
            return Err("key `network` must not be empty".into());
        }
        Ok(())
    }

    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError> {
        let config: Config =
            serde_json::from_value(ctx.config.clone()).map_err(|e| BridgeError::permanent(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BridgeError::permanent(e.to_string()))?;
        Ok(Arc::new(Loopback {
            base: format!("{}/{}", config.url.trim_end_matches('/'), config.network),
            caps: config.capabilities.unwrap_or_else(Capabilities::all),
            http,
            sink: ctx.sink,
            matrix_media: ctx.media,
            status: ctx.status,
            stop: Mutex::new(None),
        }))
    }
}

struct Loopback {
    base: String,
    caps: Capabilities,
    http: reqwest::Client,
    sink: Arc<dyn InboundSink>,
    matrix_media: Arc<dyn MatrixMedia>,
    status: Arc<dyn StatusReporter>,
    stop: Mutex<Option<CancellationToken>>,
}

impl Loopback {
    /// Moves Matrix files onto the network, as a real adapter re-uploads them.
    async fn upload_files(&self, event: &OutboundEvent) -> Result<OutboundEvent, BridgeError> {
        let mut event = event.clone();
        if let EventBody::Message(message) = &mut event.body {
            for (i, attachment) in message.attachments.iter_mut().enumerate() {
                let MediaSource::Matrix(file) = &attachment.source else {
                    continue;
                };
                let bytes = self.matrix_media.download(file).await?;
                let locator = format!("{}-{i}", event.txn_id);
                self.http
                    .put(format!("{}/media/{locator}", self.base))
                    .body(bytes.data)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| BridgeError::transient(format!("upload failed: {e}")))?;
                attachment.source = MediaSource::Remote { locator };
            }
        }
        Ok(event)
    }
}

#[async_trait]
impl Adapter for Loopback {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn start(&self) -> Result<(), BridgeError> {
        let token = CancellationToken::new();
        if let Some(old) = self.stop.lock().expect("poisoned").replace(token.clone()) {
            old.cancel();
        }
        let receiver = Receiver {
            base: self.base.clone(),
            http: self.http.clone(),
            sink: self.sink.clone(),
            status: self.status.clone(),
        };
        self.status.report(Health::Connecting, None);
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = receiver.run() => {}
            }
        });
        Ok(())
    }

    async fn stop(&self) {
        if let Some(token) = self.stop.lock().expect("poisoned").take() {
            token.cancel();
        }
    }

    /// A remote user's direct chat with a Matrix user is room `dm <user> <matrix user>`.
    fn direct_room(&self, remote: &RemoteUserId, matrix: &MatrixUserId) -> Option<RemoteRoomId> {
        RemoteRoomId::new(format!("{DIRECT_PREFIX}{remote} {matrix}")).ok()
    }

    fn direct_peer(&self, room: &RemoteRoomId) -> Option<MatrixUserId> {
        let (_, matrix) = room.as_str().strip_prefix(DIRECT_PREFIX)?.rsplit_once(' ')?;
        MatrixUserId::new(matrix).ok()
    }

    /// Rooms named `public-…` may be opened by their alias.
    async fn accepts_room(&self, room: &RemoteRoomId) -> bool {
        room.as_str().starts_with("public-")
    }

    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
        let event = self.upload_files(event).await?;
        let response = self
            .http
            .post(format!("{}/send", self.base))
            .json(&event)
            .send()
            .await
            .map_err(|e| BridgeError::transient(format!("remote unreachable: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(BridgeError::transient(format!("remote answered {status}")));
        }
        if !status.is_success() {
            return Err(BridgeError::permanent(format!("remote refused the send: {status}")));
        }
        let answer: SendAnswer = response.json().await.map_err(|e| BridgeError::transient(e.to_string()))?;
        let remote_ids = answer
            .remote_ids
            .into_iter()
            .map(RemoteMessageId::new)
            .collect::<Result<_, _>>()
            .map_err(|e| BridgeError::permanent(e.to_string()))?;
        Ok(SendReceipt { remote_ids, aliases: Vec::new() })
    }

    fn media(&self) -> Option<&dyn RemoteMedia> {
        Some(self)
    }

    /// `GET ...?validationToken=x` echoes `x`; `POST` with an `InboundEvent`
    /// as JSON pushes it (202 once stored), as a notification would.
    async fn webhook(&self, request: WebhookRequest) -> WebhookResponse {
        if let Some(token) = request.query.strip_prefix("validationToken=") {
            return WebhookResponse::text(200, token);
        }
        if request.method != "POST" || request.path != "events" {
            return WebhookResponse::text(404, "no such hook");
        }
        let Ok(event) = serde_json::from_slice::<InboundEvent>(&request.body) else {
            return WebhookResponse::text(400, "not an event");
        };
        match self.sink.push(event).await {
            Ok(_) => WebhookResponse::empty(202),
            Err(err) => WebhookResponse::text(503, err.to_string()),
        }
    }
}

#[async_trait]
impl RemoteMedia for Loopback {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        let response = self
            .http
            .get(format!("{}/media/{locator}", self.base))
            .send()
            .await
            .map_err(|e| BridgeError::transient(e.to_string()))?;
        if !response.status().is_success() {
            return Err(BridgeError::permanent(format!("media answered {}", response.status())));
        }
        let data = response.bytes().await.map_err(|e| BridgeError::transient(e.to_string()))?.to_vec();
        Ok(MediaBytes { data, mime: "application/octet-stream".into() })
    }
}

/// Pulls events, pushes them into the sink in order, acknowledges them.
struct Receiver {
    base: String,
    http: reqwest::Client,
    sink: Arc<dyn InboundSink>,
    status: Arc<dyn StatusReporter>,
}

impl Receiver {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.round().await {
                Ok(()) => {
                    self.status.report(Health::Connected, None);
                    backoff = Duration::from_millis(100);
                }
                Err(err) => {
                    self.status.report(Health::TransientError, Some(&err.to_string()));
                    tracing::warn!(error = %err, "loopback receive failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn round(&self) -> Result<(), BridgeError> {
        let page: EventPage = self
            .http
            .get(format!("{}/events?wait_ms=1000", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| BridgeError::transient(e.to_string()))?
            .json()
            .await
            .map_err(|e| BridgeError::transient(e.to_string()))?;
        let Some(last) = page.events.last().map(|e| e.cursor) else {
            return Ok(());
        };
        for envelope in page.events {
            // Acknowledged only after the sink stored it: a crash re-delivers,
            // and the sink's deduplication absorbs the repeat.
            if let Err(err) = self.sink.push(envelope.event).await {
                if err.is_transient() {
                    return Err(err);
                }
                tracing::warn!(error = %err, cursor = envelope.cursor, "event rejected by the bridge; skipped");
            }
        }
        self.http
            .post(format!("{}/ack", self.base))
            .json(&AckBody { cursor: last })
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| BridgeError::transient(e.to_string()))?;
        Ok(())
    }
}
