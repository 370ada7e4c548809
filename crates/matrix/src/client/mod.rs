//! The client side: acting on the homeserver as the bot or a ghost.
//!
//! Every request carries the appservice token; acting as a ghost appends
//! `user_id=@ghost:server` (appservice identity assertion).

mod e2ee;
mod http;
mod media;
mod members;
mod rooms;
mod send;
mod state;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::{
    BridgeError, DecryptFailure, EventBody, GhostProfile, MatrixEventId, MatrixFile, MatrixMedia, MatrixRoomId,
    MatrixSide, MatrixUserId, MediaBytes, RoomSpec,
};
use ruma::api::client::appservice::request_ping;
use ruma::{OwnedRoomId, OwnedUserId};
use url::Url;

pub(crate) use self::http::Http;
use self::http::{CallError, RetryPolicy, Versions};

/// Settings of the homeserver client.
#[derive(Clone)]
pub struct ClientSettings {
    /// Base URL of the homeserver's client-server API.
    pub homeserver_url: Url,
    /// The homeserver's server name (the part after `:` in ids).
    pub server_name: String,
    /// The appservice token (`as_token` of the registration).
    pub as_token: String,
    /// Local part of the bridge bot (`sender_localpart` of the registration).
    pub bot_localpart: String,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Total time to keep retrying one call before giving up.
    pub retry_budget: Duration,
    /// First delay between retries; doubled up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest delay between retries (a server's `retry_after_ms` may exceed it).
    pub max_backoff: Duration,
}

impl ClientSettings {
    /// Settings with default timeouts (30 s per request, 60 s retry budget).
    pub fn new(
        homeserver_url: Url,
        server_name: impl Into<String>,
        as_token: impl Into<String>,
        bot_localpart: impl Into<String>,
    ) -> Self {
        Self {
            homeserver_url,
            server_name: server_name.into(),
            as_token: as_token.into(),
            bot_localpart: bot_localpart.into(),
            request_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("ClientSettings")
            .field("homeserver_url", &self.homeserver_url.as_str())
            .field("server_name", &self.server_name)
            .field("as_token", &"<redacted>")
            .field("bot_localpart", &self.bot_localpart)
            .field("request_timeout", &self.request_timeout)
            .field("retry_budget", &self.retry_budget)
            .finish_non_exhaustive()
    }
}

/// The client could not be built from its settings.
#[derive(Debug, thiserror::Error)]
#[error("invalid Matrix client settings: {0}")]
pub struct ClientBuildError(String);

/// Acts on the homeserver as the bridge bot or its ghosts.
pub struct MatrixClient {
    http: Http,
    server_name: String,
    bot: MatrixUserId,
    /// (room, user) pairs known to be joined, to skip redundant joins.
    joined: Mutex<HashSet<(String, String)>>,
    /// Last profile set per ghost, so unchanged profiles are not re-sent
    /// (each change makes the homeserver update every room of the ghost).
    profiles: Mutex<HashMap<String, GhostProfile>>,
    /// The devices and encrypted rooms, when the bridge encrypts.
    e2ee: Option<Arc<crate::e2ee::E2ee>>,
}

impl fmt::Debug for MatrixClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixClient").field("bot", &self.bot).finish_non_exhaustive()
    }
}

impl MatrixClient {
    /// Builds a client; nothing is sent until the first call.
    pub fn new(settings: ClientSettings) -> Result<Self, ClientBuildError> {
        let bot_id = format!("@{}:{}", settings.bot_localpart, settings.server_name);
        OwnedUserId::try_from(bot_id.as_str())
            .map_err(|_| ClientBuildError(format!("bot user id {bot_id:?} is not valid")))?;
        let bot = MatrixUserId::new(bot_id).map_err(|e| ClientBuildError(e.to_string()))?;
        if settings.as_token.is_empty() {
            return Err(ClientBuildError("as_token is empty".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ClientBuildError(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy {
            total: settings.retry_budget,
            initial_backoff: settings.initial_backoff,
            max_backoff: settings.max_backoff,
        };
        let base = settings.homeserver_url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            http: Http::new(client, base, settings.as_token, policy),
            server_name: settings.server_name,
            bot,
            joined: Mutex::new(HashSet::new()),
            profiles: Mutex::new(HashMap::new()),
            e2ee: None,
        })
    }

    /// Gives the bot and the ghosts devices (stores in `config.store_dir`),
    /// so encrypted rooms are bridged.
    pub fn with_encryption(mut self, config: brygga_crypto::CryptoConfig) -> Self {
        let transport = Arc::new(crate::e2ee::Transport { http: self.http.clone() });
        self.e2ee = Some(Arc::new(crate::e2ee::E2ee::new(brygga_crypto::Crypto::new(config, transport))));
        self
    }

    /// The encryption state the appservice server feeds, when encryption is on.
    pub fn e2ee(&self) -> Option<Arc<crate::e2ee::E2ee>> {
        self.e2ee.clone()
    }

    /// Makes sure the bot's device exists with its keys uploaded (encryption only).
    pub async fn prepare_encryption(&self) -> Result<(), BridgeError> {
        self.ensure_device(&self.bot).await
    }

    /// Closes the ghosts' devices unused for `idle`; returns how many.
    pub fn close_idle_devices(&self, idle: std::time::Duration) -> usize {
        self.e2ee.as_ref().map_or(0, |e2ee| e2ee.crypto.close_idle(idle))
    }

    async fn ensure_device(&self, user: &MatrixUserId) -> Result<(), BridgeError> {
        let Some(e2ee) = &self.e2ee else { return Ok(()) };
        e2ee.crypto
            .ensure_device(user.as_str())
            .await
            .map_err(|e| BridgeError::transient(format!("creating the device of a bridge user: {e}")))
    }

    /// Asks the homeserver to ping this appservice; returns the round trip it measured.
    pub async fn ping(&self, appservice_id: &str) -> Result<Duration, BridgeError> {
        let request = request_ping::v1::Request::new(appservice_id.to_owned());
        let response =
            self.http.call("ping", request, None, Versions::Modern).await.map_err(|e| e.into_bridge("ping"))?;
        Ok(response.duration)
    }

    fn remember_joined(&self, room: &MatrixRoomId, user: &MatrixUserId, joined: bool) {
        let key = (room.as_str().to_owned(), user.as_str().to_owned());
        let mut set = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        if joined {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    fn is_joined(&self, room: &MatrixRoomId, user: &MatrixUserId) -> bool {
        let key = (room.as_str().to_owned(), user.as_str().to_owned());
        self.joined.lock().unwrap_or_else(|e| e.into_inner()).contains(&key)
    }
}

/// A core user id as a ruma one.
fn user_id(user: &MatrixUserId) -> Result<OwnedUserId, BridgeError> {
    OwnedUserId::try_from(user.as_str()).map_err(|_| BridgeError::permanent("invalid Matrix user id"))
}

/// A core room id as a ruma one.
fn room_id(room: &MatrixRoomId) -> Result<OwnedRoomId, BridgeError> {
    OwnedRoomId::try_from(room.as_str()).map_err(|_| BridgeError::permanent("invalid Matrix room id"))
}

#[async_trait]
impl MatrixSide for MatrixClient {
    fn bot_user_id(&self) -> &MatrixUserId {
        &self.bot
    }

    async fn ensure_ghost(&self, user: &MatrixUserId, profile: &GhostProfile) -> Result<(), BridgeError> {
        self.register_and_profile(user, profile).await?;
        // A device before any invite: a Matrix client shares room keys
        // only with the devices a member has when it encrypts.
        self.ensure_device(user).await
    }

    async fn ensure_room(&self, spec: &RoomSpec) -> Result<MatrixRoomId, BridgeError> {
        self.find_or_create_room(spec).await
    }

    async fn ensure_joined(&self, room: &MatrixRoomId, user: &MatrixUserId) -> Result<(), BridgeError> {
        self.join(room, user).await
    }

    async fn event_sender(
        &self,
        room: &MatrixRoomId,
        event: &MatrixEventId,
    ) -> Result<Option<MatrixUserId>, BridgeError> {
        self.sender_of(room, event).await
    }

    async fn display_name(&self, room: &MatrixRoomId, user: &MatrixUserId) -> Result<Option<String>, BridgeError> {
        self.display_name_in(room, user).await
    }

    async fn upload(
        &self,
        user: &MatrixUserId,
        room: Option<&MatrixRoomId>,
        name: &str,
        media: MediaBytes,
    ) -> Result<MatrixFile, BridgeError> {
        self.upload_for(user, room, name, media).await
    }

    async fn set_state(
        &self,
        room: &MatrixRoomId,
        event_type: &str,
        state_key: &str,
        content: &serde_json::Value,
    ) -> Result<(), BridgeError> {
        self.put_state(room, event_type, state_key, content).await
    }

    async fn send(
        &self,
        room: &MatrixRoomId,
        user: &MatrixUserId,
        txn_id: &str,
        body: &EventBody<MatrixEventId>,
    ) -> Result<Option<MatrixEventId>, BridgeError> {
        self.send_event(room, user, txn_id, body).await
    }

    async fn room_encryption(&self, room: &MatrixRoomId) -> Result<brygga_core::RoomEncryption, BridgeError> {
        self.room_encryption_of(room).await
    }

    async fn decrypt(&self, event: &brygga_core::MatrixEvent) -> Result<brygga_core::MatrixEvent, DecryptFailure> {
        self.decrypt_event(event).await
    }

    async fn notify(&self, room: &MatrixRoomId, txn_id: &str, text: &str) -> Result<(), BridgeError> {
        self.notify_room(room, txn_id, text).await
    }
}

#[async_trait]
impl MatrixMedia for MatrixClient {
    async fn download(&self, file: &MatrixFile) -> Result<MediaBytes, BridgeError> {
        self.download_file(file).await
    }
}

/// Whether a failed call is worth checking the alias again for.
fn maybe_created(err: &CallError) -> bool {
    matches!(err, CallError::Unavailable { .. }) || err.errcode() == Some("M_ROOM_IN_USE")
}
