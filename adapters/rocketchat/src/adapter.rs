//! The Rocket.Chat adapter of one tenant: a realtime session of the bot
//! (and of each puppet, for its direct chats) for receiving, REST for sending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use brygga_core::{
    Adapter, AdapterState, BridgeError, Capabilities, Health, InboundSink, MatrixMedia, MatrixUserId, OutboundEvent,
    PortalDirectory, Presence, RemoteMedia, RemoteRoomId, RemoteUserId, SendReceipt, StatusReporter, TenantId,
};
use tokio_util::sync::CancellationToken;

use crate::config::{PuppetMode, RocketChatConfig};
use crate::inbound::Memory;
use crate::media::Files;
use crate::puppets::Puppets;
use crate::pushers::Pushers;
use crate::rest::{Creds, Rest, RestError};
use crate::rooms::Rooms;
use crate::{ids, session};

/// A logged-in Rocket.Chat user.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) username: String,
    pub(crate) creds: Creds,
    /// The Matrix user of a puppet; `None` for the bot.
    pub(crate) owner: Option<MatrixUserId>,
}

/// State shared by the adapter's tasks.
pub(crate) struct Shared {
    pub(crate) tenant: TenantId,
    pub(crate) rest: Rest,
    pub(crate) sink: Arc<dyn InboundSink>,
    pub(crate) portals: Arc<dyn PortalDirectory>,
    pub(crate) state: Arc<dyn AdapterState>,
    pub(crate) matrix_media: Arc<dyn MatrixMedia>,
    pub(crate) bot: RwLock<Option<Identity>>,
    pub(crate) rooms: Mutex<Rooms>,
    pub(crate) memory: Mutex<Memory>,
    pub(crate) puppets: Puppets,
    pub(crate) pushers: Mutex<Option<Arc<Pushers>>>,
    /// Open realtime sessions, to send typing notices on.
    pub(crate) writers: crate::writers::Writers,
    /// Bumped when rooms are added, so sessions subscribe to them.
    pub(crate) rooms_changed: tokio::sync::watch::Sender<u64>,
    /// Puppet sessions running, by username.
    puppet_sessions: Mutex<HashMap<String, CancellationToken>>,
    /// Set once the bot's token was refused, so it is reported once.
    auth_failed: AtomicBool,
    cancel: Mutex<Option<CancellationToken>>,
    /// Where the adapter reports its health.
    pub(crate) status: Arc<dyn StatusReporter>,
}

impl Shared {
    pub(crate) fn config(&self) -> &RocketChatConfig {
        self.rest.config()
    }

    /// The bot, once logged in.
    pub(crate) fn bot(&self) -> Result<Identity, BridgeError> {
        self.bot
            .read()
            .expect("bot poisoned")
            .clone()
            .ok_or_else(|| BridgeError::transient("the Rocket.Chat bot is not logged in yet"))
    }

    /// Reports a refused bot token once (the tenant's adapter keeps running
    /// and retries slowly, so a fixed token is picked up without a restart).
    pub(crate) fn bot_refused(&self) {
        self.status.report(Health::BadCredentials, Some("Rocket.Chat refused the bot's token (expired or revoked)"));
        if !self.auth_failed.swap(true, Ordering::AcqRel) {
            tracing::error!(tenant = %self.tenant, "Rocket.Chat refused the bot's token (expired or revoked): fix the tenant's rocketchat config");
        }
    }

    /// Whether `username` is the bot or one of our puppets (their messages are echoes).
    pub(crate) fn is_bridge_user(&self, username: &str) -> bool {
        let bot = self.bot.read().expect("bot poisoned").as_ref().is_some_and(|b| b.username == username);
        bot || (self.config().puppet_mode == PuppetMode::Users && username.starts_with(&self.config().puppet_prefix))
    }

    /// The Matrix user a username mention stands for: a puppet's owner, or a ghost.
    pub(crate) fn mention_target(&self, username: &str) -> Option<String> {
        if let Some(owner) = self.puppets.owner_of(username) {
            return Some(owner.to_string());
        }
        if self.is_bridge_user(username) {
            return None;
        }
        let server = self.config().matrix_server_name.as_ref()?;
        Some(format!("@{}_{}_{}:{server}", crate::KIND, self.tenant, brygga_core::naming::escape(username)))
    }

    /// The Rocket.Chat username a Matrix user id stands for: a ghost's, or a puppet's.
    pub(crate) fn username_of(&self, user: &str) -> Option<String> {
        let user = MatrixUserId::new(user).ok()?;
        let marker = format!("{}_{}_", crate::KIND, self.tenant);
        if let Some((_, escaped)) = user.localpart().split_once(&marker) {
            return brygga_core::naming::unescape(escaped);
        }
        (self.config().puppet_mode == PuppetMode::Users)
            .then(|| ids::puppet_username(&self.config().puppet_prefix, &user))
    }

    /// The pushers of the running adapter.
    pub(crate) fn pushers(&self) -> Option<Arc<Pushers>> {
        self.pushers.lock().expect("pushers poisoned").clone()
    }

    /// Starts a puppet's realtime session (for its direct chats), once.
    pub(crate) fn ensure_puppet_session(self: &Arc<Self>, identity: Identity) {
        let Some(parent) = self.cancel.lock().expect("cancel poisoned").clone() else { return };
        let mut sessions = self.puppet_sessions.lock().expect("sessions poisoned");
        if sessions.get(&identity.username).is_some_and(|c| !c.is_cancelled()) {
            return;
        }
        let cancel = parent.child_token();
        sessions.insert(identity.username.clone(), cancel.clone());
        tokio::spawn(session::run(self.clone(), identity, cancel));
    }
}

/// One tenant's Rocket.Chat adapter.
pub(crate) struct RocketChatAdapter {
    shared: Arc<Shared>,
    files: Files,
}

impl RocketChatAdapter {
    pub(crate) fn new(
        config: RocketChatConfig,
        tenant: TenantId,
        sink: Arc<dyn InboundSink>,
        portals: Arc<dyn PortalDirectory>,
        state: Arc<dyn AdapterState>,
        matrix_media: Arc<dyn MatrixMedia>,
        status: Arc<dyn StatusReporter>,
    ) -> Result<Self, BridgeError> {
        let shared = Arc::new(Shared {
            tenant,
            rest: Rest::new(config)?,
            sink,
            portals,
            state,
            matrix_media,
            bot: RwLock::new(None),
            rooms: Mutex::default(),
            memory: Mutex::default(),
            puppets: Puppets::default(),
            pushers: Mutex::new(None),
            writers: Default::default(),
            rooms_changed: tokio::sync::watch::channel(0).0,
            puppet_sessions: Mutex::default(),
            auth_failed: AtomicBool::new(false),
            cancel: Mutex::new(None),
            status,
        });
        Ok(Self { files: Files { shared: shared.clone() }, shared })
    }
}

#[async_trait]
impl Adapter for RocketChatAdapter {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.edits = true;
        caps.redactions = true;
        caps.reactions = true;
        caps.replies = true;
        caps.threads = true;
        caps.media = true;
        caps.membership = true;
        caps.backfill = true;
        // Typing goes out over a puppet's own realtime session.
        caps.typing = self.shared.config().puppet_mode == PuppetMode::Users;
        caps
    }

    fn direct_room(&self, remote: &RemoteUserId, matrix: &MatrixUserId) -> Option<RemoteRoomId> {
        // With impersonation every Matrix user would share the bot's one DM with a person.
        (self.shared.config().puppet_mode == PuppetMode::Users).then(|| ids::direct_room(remote, matrix)).flatten()
    }

    fn direct_peer(&self, room: &RemoteRoomId) -> Option<MatrixUserId> {
        ids::parse_direct(room).map(|(_, user)| user)
    }

    fn media(&self) -> Option<&dyn RemoteMedia> {
        Some(&self.files)
    }

    async fn start(&self) -> Result<(), BridgeError> {
        let shared = &self.shared;
        // A refused token is reported now, to whoever starts the tenant; an
        // unreachable workspace is retried in the background.
        let first = crate::supervisor::log_in(&shared.rest, &shared.config().auth).await;
        if let Err(RestError::Unauthorized(_) | RestError::Refused { .. }) = &first {
            shared.bot_refused();
            return Err(BridgeError::permanent(format!("Rocket.Chat login failed: {}", first.unwrap_err())));
        }
        let cancel = CancellationToken::new();
        if let Some(old) = shared.cancel.lock().expect("cancel poisoned").replace(cancel.clone()) {
            old.cancel();
        }
        let hook_shared = Arc::downgrade(shared);
        let seen = Arc::new(move |rid: &str, ts: i64| {
            if let Some(shared) = hook_shared.upgrade() {
                shared.rooms.lock().expect("rooms poisoned").mark_seen(rid, ts);
            }
        });
        *shared.pushers.lock().expect("pushers poisoned") =
            Some(Pushers::new(shared.sink.clone(), seen, cancel.clone()));
        tokio::spawn(crate::supervisor::supervise(shared.clone(), first.ok(), cancel));
        Ok(())
    }

    async fn stop(&self) {
        if let Some(cancel) = self.shared.cancel.lock().expect("cancel poisoned").take() {
            cancel.cancel();
        }
        crate::supervisor::save_seen(&self.shared).await;
    }

    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
        crate::outbound::send(&self.shared, event).await
    }

    /// Shows a Matrix user's presence on their puppet (only one that exists:
    /// presence alone creates no Rocket.Chat user).
    async fn matrix_presence(&self, user: &MatrixUserId, presence: Presence, status: Option<&str>) {
        let Some(puppet) = self.shared.puppets.existing(self.shared.state.as_ref(), user).await else { return };
        let status_name = match presence {
            Presence::Online => "online",
            Presence::Unavailable => "away",
            _ => "offline",
        };
        let result =
            crate::api::set_status(&self.shared.rest, &puppet.creds(), status_name, status.unwrap_or_default()).await;
        if let Err(err) = result {
            tracing::debug!(error = %err, "showing a Matrix user's presence on Rocket.Chat failed");
        }
    }
}
