//! The adapter contract: what every remote platform implements.
//!
//! An adapter is built per tenant from that tenant's config by its
//! [`AdapterFactory`]. It pushes remote events into an [`InboundSink`] (which
//! acknowledges only once the event is stored) and delivers outbound events
//! handed to it by the router. Optional behaviour is discovered through
//! [`Capabilities`] and accessor methods, never by downcasting.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::account::{AccountCommand, CommandReplies};
use crate::error::BridgeError;
use crate::event::{InboundEvent, OutboundEvent, Presence, SendReceipt};
use crate::ids::{AdapterKind, MatrixUserId, RemoteRoomId, RemoteUserId, TenantId};
use crate::matrix_file::MatrixFile;
use crate::naming::RoomAliasCodec;
use crate::status::{NoStatus, StatusReporter};
use crate::webhook::{WebhookRequest, WebhookResponse};

/// Which event kinds a platform supports natively.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Capabilities {
    /// Messages can be edited in place.
    pub edits: bool,
    /// Messages can be deleted.
    pub redactions: bool,
    /// Messages can carry reactions.
    pub reactions: bool,
    /// Messages can reply to other messages.
    pub replies: bool,
    /// Messages can be grouped in threads.
    pub threads: bool,
    /// Files can be sent.
    pub media: bool,
    /// Membership changes are visible.
    pub membership: bool,
    /// Presence is visible.
    pub presence: bool,
    /// Typing notifications are visible.
    pub typing: bool,
    /// Read receipts are visible.
    pub read_receipts: bool,
    /// History can be fetched after a gap.
    pub backfill: bool,
}

impl Capabilities {
    /// Every capability on.
    pub fn all() -> Self {
        Self {
            edits: true,
            redactions: true,
            reactions: true,
            replies: true,
            threads: true,
            media: true,
            membership: true,
            presence: true,
            typing: true,
            read_receipts: true,
            backfill: true,
        }
    }

    /// Only plain messages.
    pub fn none() -> Self {
        Self::default()
    }
}

/// Outcome of pushing an inbound event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Stored durably; the source may now forget it.
    Stored,
    /// Seen before (same event id); nothing new was stored.
    Duplicate,
    /// An ephemeral event, delivered best-effort and not stored.
    Ephemeral,
}

/// Where an adapter pushes remote events. `push` returns only after the event
/// is durably stored, so an adapter acknowledges its source after it.
#[async_trait]
pub trait InboundSink: Send + Sync {
    /// Stores an event for delivery to Matrix.
    async fn push(&self, event: InboundEvent) -> Result<Ack, BridgeError>;
}

/// Pushes `event` until the store takes it, retrying transient failures with
/// backoff: an event the platform already delivered may not be offered
/// again. A permanent refusal is logged and skipped (true); false only when
/// `cancel` fired first.
pub async fn push_until_stored(
    sink: &dyn InboundSink,
    event: InboundEvent,
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    let mut backoff = crate::Backoff::new(std::time::Duration::from_millis(100), std::time::Duration::from_secs(10));
    loop {
        match sink.push(event.clone()).await {
            Ok(_) => return true,
            Err(err) if err.is_transient() => tracing::warn!(error = %err, "storing a remote event failed; retrying"),
            Err(err) => {
                tracing::error!(error = %err, kind = event.body.kind_name(), "a remote event was refused by the bridge");
                return true;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Bytes of a media file.
#[derive(Clone, Debug)]
pub struct MediaBytes {
    /// The content.
    pub data: Vec<u8>,
    /// MIME type.
    pub mime: String,
}

/// Access to Matrix media for adapters that forward files (opaque `mxc` ids).
#[async_trait]
pub trait MatrixMedia: Send + Sync {
    /// Downloads a Matrix media file, decrypted when it is encrypted (a bad
    /// key or a ciphertext that does not match its hash is a permanent error).
    async fn download(&self, file: &MatrixFile) -> Result<MediaBytes, BridgeError>;
}

/// Public links to Matrix media, for platforms that take files by URL.
pub trait MediaLinks: Send + Sync {
    /// A link serving `file` (named `name`, decrypted when encrypted) to
    /// whoever holds it, until it expires.
    fn link(&self, file: &MatrixFile, name: &str) -> Option<String>;
}

/// Small state an adapter keeps across restarts (per tenant), as text by key.
#[async_trait]
pub trait AdapterState: Send + Sync {
    /// The value under `key`.
    async fn get(&self, key: &str) -> Result<Option<String>, BridgeError>;
    /// Keeps `value` under `key`, or forgets the key with `None`.
    async fn put(&self, key: &str, value: Option<&str>) -> Result<(), BridgeError>;
}

/// State kept in memory only, for adapters built outside a bridge (tests, benchmarks).
#[derive(Default)]
pub struct MemoryState(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[async_trait]
impl AdapterState for MemoryState {
    async fn get(&self, key: &str) -> Result<Option<String>, BridgeError> {
        Ok(self.0.lock().expect("state poisoned").get(key).cloned())
    }

    async fn put(&self, key: &str, value: Option<&str>) -> Result<(), BridgeError> {
        let mut map = self.0.lock().expect("state poisoned");
        match value {
            Some(value) => map.insert(key.to_owned(), value.to_owned()),
            None => map.remove(key),
        };
        Ok(())
    }
}

/// The portals of one adapter of one tenant, as the store knows them.
#[async_trait]
pub trait PortalDirectory: Send + Sync {
    /// Remote rooms that have a portal (linked or created).
    async fn rooms(&self) -> Result<Vec<RemoteRoomId>, BridgeError>;
}

/// A directory without portals, for adapters built outside a router.
pub struct NoPortals;

#[async_trait]
impl PortalDirectory for NoPortals {
    async fn rooms(&self) -> Result<Vec<RemoteRoomId>, BridgeError> {
        Ok(Vec::new())
    }
}

/// Everything an adapter gets when it is built.
#[derive(Clone)]
#[non_exhaustive]
pub struct AdapterContext {
    /// The tenant the adapter serves.
    pub tenant: TenantId,
    /// The adapter's config as stored for the tenant (validated by the factory).
    pub config: serde_json::Value,
    /// Where to push remote events.
    pub sink: Arc<dyn InboundSink>,
    /// Matrix media access.
    pub media: Arc<dyn MatrixMedia>,
    /// The adapter's portals, e.g. to join their rooms after connecting.
    pub portals: Arc<dyn PortalDirectory>,
    /// Links to Matrix media, when the bridge serves them.
    pub media_links: Option<Arc<dyn MediaLinks>>,
    /// State that survives restarts.
    pub state: Arc<dyn AdapterState>,
    /// Where the adapter reports its health.
    pub status: Arc<dyn StatusReporter>,
}

impl AdapterContext {
    /// Builds a context.
    pub fn new(
        tenant: TenantId,
        config: serde_json::Value,
        sink: Arc<dyn InboundSink>,
        media: Arc<dyn MatrixMedia>,
    ) -> Self {
        let state = Arc::new(MemoryState::default());
        let status = Arc::new(NoStatus);
        Self { tenant, config, sink, media, portals: Arc::new(NoPortals), media_links: None, state, status }
    }

    /// Sets where the adapter reports its health.
    pub fn with_status(mut self, status: Arc<dyn StatusReporter>) -> Self {
        self.status = status;
        self
    }

    /// Sets where the adapter's state is kept.
    pub fn with_state(mut self, state: Arc<dyn AdapterState>) -> Self {
        self.state = state;
        self
    }

    /// Sets the media link signer.
    pub fn with_media_links(mut self, links: Option<Arc<dyn MediaLinks>>) -> Self {
        self.media_links = links;
        self
    }

    /// Sets the portal directory.
    pub fn with_portals(mut self, portals: Arc<dyn PortalDirectory>) -> Self {
        self.portals = portals;
        self
    }
}

/// Optional: adapters that can fetch remote media for the router.
#[async_trait]
pub trait RemoteMedia: Send + Sync {
    /// Fetches the bytes behind a `MediaSource::Remote` locator.
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError>;
}

/// One running adapter for one tenant.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// What the platform supports natively; the router degrades the rest.
    fn capabilities(&self) -> Capabilities;

    /// Connects and starts pushing remote events into the sink.
    async fn start(&self) -> Result<(), BridgeError>;

    /// Disconnects. Queued outbound events stay in the store.
    async fn stop(&self);

    /// Delivers one event. Must be idempotent on `event.txn_id`.
    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError>;

    /// The remote room of a direct chat between a remote user and a Matrix
    /// user, when the platform has direct chats with that user.
    fn direct_room(&self, _remote: &RemoteUserId, _matrix: &MatrixUserId) -> Option<RemoteRoomId> {
        None
    }

    /// The Matrix user a remote room is a direct chat with, if it is one.
    fn direct_peer(&self, _room: &RemoteRoomId) -> Option<MatrixUserId> {
        None
    }

    /// A Matrix user's presence changed. Matrix presence belongs to no room,
    /// so an adapter shows it wherever that user appears on its platform.
    async fn matrix_presence(&self, _user: &MatrixUserId, _presence: Presence, _status: Option<&str>) {}

    /// Whether a room asked for by alias exists and may be bridged on demand.
    async fn accepts_room(&self, _room: &RemoteRoomId) -> bool {
        false
    }

    /// Remote media access, when the platform has files.
    fn media(&self) -> Option<&dyn RemoteMedia> {
        None
    }

    /// Carries out a Matrix user's account command (link, unlink), answering
    /// through `replies`; may keep answering after it returns. Platforms
    /// without account linking say so.
    async fn account_command(
        &self,
        _command: AccountCommand,
        replies: Arc<dyn CommandReplies>,
    ) -> Result<(), BridgeError> {
        replies.notice("This platform has no account linking: your messages are bridged under your Matrix name.").await;
        Ok(())
    }

    /// Answers an HTTP request the platform made to the bridge for this
    /// adapter (e.g. a change notification); 404 unless it takes any.
    async fn webhook(&self, _request: WebhookRequest) -> WebhookResponse {
        WebhookResponse::text(404, "this adapter takes no webhooks")
    }
}

/// Builds adapters of one kind.
pub trait AdapterFactory: Send + Sync {
    /// The kind this factory builds.
    fn kind(&self) -> AdapterKind;

    /// Checks a config without building anything, naming the bad key.
    fn validate(&self, config: &serde_json::Value) -> Result<(), String>;

    /// Checks that a remote room id is in this platform's notation.
    fn validate_room(&self, _room: &RemoteRoomId) -> Result<(), String> {
        Ok(())
    }

    /// The adapter's own spelling of room ids in portal aliases, if any.
    fn room_aliases(&self) -> Option<Arc<dyn RoomAliasCodec>> {
        None
    }

    /// Builds an adapter for one tenant.
    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError>;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::event::{EventBody, RemoteSender};
    use crate::ids::{RemoteMessageId, RemoteUserId};

    /// Fails transiently `transient` times, then stores (or refuses for good).
    struct Flaky {
        calls: AtomicU32,
        transient: u32,
        refuse: bool,
    }

    #[async_trait]
    impl InboundSink for Flaky {
        async fn push(&self, _event: InboundEvent) -> Result<Ack, BridgeError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            match () {
                _ if call < self.transient => Err(BridgeError::transient("busy")),
                _ if self.refuse => Err(BridgeError::permanent("no")),
                _ => Ok(Ack::Stored),
            }
        }
    }

    fn event() -> InboundEvent {
        let sender = RemoteSender::new(RemoteUserId::new("anna").unwrap());
        let body = EventBody::Typing { typing: true };
        InboundEvent::new(RemoteRoomId::new("r").unwrap(), RemoteMessageId::new("e").unwrap(), sender, body)
    }

    #[tokio::test]
    async fn pushes_until_stored_skips_refusals_and_stops_when_cancelled() {
        let cancel = tokio_util::sync::CancellationToken::new();
        let flaky = Flaky { calls: AtomicU32::new(0), transient: 3, refuse: false };
        assert!(push_until_stored(&flaky, event(), &cancel).await);
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 4, "retried through the transient failures");
        let refusing = Flaky { calls: AtomicU32::new(0), transient: 0, refuse: true };
        assert!(push_until_stored(&refusing, event(), &cancel).await, "a refusal is skipped");
        assert_eq!(refusing.calls.load(Ordering::SeqCst), 1);
        cancel.cancel();
        let busy = Flaky { calls: AtomicU32::new(0), transient: u32::MAX, refuse: false };
        assert!(!push_until_stored(&busy, event(), &cancel).await, "cancelled while retrying");
    }
}
