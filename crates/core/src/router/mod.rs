//! The router: stores what arrives from either side and delivers it, in
//! order per portal, to the other side.
//!
//! Inbound (remote to Matrix): an adapter pushes into a [`TenantSink`], which
//! stores the event in the outbox before acknowledging, then wakes the
//! portal's queue. Outbound (Matrix to remote): the appservice server hands a
//! transaction to [`Router`] (as [`AppserviceHandler`]), which stores its
//! events before the homeserver gets its 200, then wakes the queues.

mod delivery;
mod encryption;
pub use encryption::refusal as encryption_refusal;
mod names;
mod policy;
mod recent;
pub mod refs;
mod sealed;
pub use sealed::DEFAULT_KEY_WAIT;
pub mod status_rooms;
mod to_matrix;
mod to_remote;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::adapter::{Ack, AdapterState, InboundSink, PortalDirectory};
use crate::commands::BotCommands;
use crate::error::BridgeError;
use crate::event::{EventBody, InboundEvent, MatrixEvent, Membership};
use crate::ids::{AdapterKind, MatrixRoomId, MatrixUserId, PortalKey, RemoteRoomId, TenantId};
use crate::matrix::{AppserviceHandler, GhostProfile, MatrixSide};
use crate::naming::Namer;
use crate::queue::{Queues, RetryPolicy};
use crate::running::RunningAdapters;
use crate::shard::Owners;
use crate::status::StatusBoard;
use crate::store::{Direction, NewOutboxEntry, Store, TxnOutcome};

use delivery::Delivery;

/// New portal rooms, for the bridge status publisher.
type NewRooms = tokio::sync::mpsc::UnboundedReceiver<(PortalKey, MatrixRoomId)>;

/// How often queues with undelivered entries are woken regardless of signals.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Moves events between Matrix and the adapters.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    delivery: Arc<Delivery>,
    commands: BotCommands,
    status: StatusBoard,
    /// The bridge status publisher, until [`Router::recover`] starts it.
    status_rooms: Mutex<Option<(status_rooms::StatusRooms, NewRooms)>>,
    stop: tokio_util::sync::CancellationToken,
    queues: Queues,
    portals_by_room: Mutex<HashMap<MatrixRoomId, PortalKey>>,
}

impl Router {
    /// Builds a router; call [`Router::recover`] before accepting traffic.
    pub fn new(
        store: Arc<dyn Store>,
        matrix: Arc<dyn MatrixSide>,
        namer: Namer,
        adapters: RunningAdapters,
        policy: RetryPolicy,
    ) -> Self {
        let status = StatusBoard::default();
        let owners = Owners::default();
        let commands = BotCommands::new(
            store.clone(),
            matrix.clone(),
            adapters.clone(),
            status.clone(),
            namer.clone(),
            owners.clone(),
        );
        let (rooms_tx, rooms_rx) = tokio::sync::mpsc::unbounded_channel();
        let publisher = status_rooms::StatusRooms::new(store.clone(), matrix.clone(), status.clone(), owners.clone());
        let status_rooms = Mutex::new(Some((publisher, rooms_rx)));
        let delivery = Arc::new(Delivery::new(store.clone(), matrix, namer, adapters, rooms_tx, commands.clone()));
        let queues = Queues::owned_by(store.clone(), delivery.clone(), policy, owners);
        let portals_by_room = Mutex::new(HashMap::new());
        let stop = tokio_util::sync::CancellationToken::new();
        let inner = Inner { store, delivery, commands, status, status_rooms, stop, queues, portals_by_room };
        Self { inner: Arc::new(inner) }
    }

    /// Where the adapters report their health (shown by the bot's `status`).
    pub fn status_board(&self) -> &StatusBoard {
        &self.inner.status
    }

    /// Resumes delivery of everything stored but undelivered; returns the
    /// number of queues woken.
    pub async fn recover(&self) -> Result<usize, BridgeError> {
        let woken = self.inner.queues.recover().await?;
        self.inner.queues.spawn_sweeper(SWEEP_INTERVAL);
        if let Some((publisher, new_rooms)) = self.inner.status_rooms.lock().expect("publisher poisoned").take() {
            tokio::spawn(publisher.run(new_rooms, self.inner.stop.clone()));
        }
        Ok(woken)
    }

    /// The sink an adapter of `kind` for `tenant` pushes into.
    pub fn sink(&self, tenant: TenantId, kind: AdapterKind) -> Arc<dyn InboundSink> {
        Arc::new(TenantSink { router: self.clone(), tenant, kind })
    }

    /// The persistent state of one adapter of one tenant.
    pub fn adapter_state(&self, tenant: TenantId, kind: AdapterKind) -> Arc<dyn AdapterState> {
        Arc::new(TenantSink { router: self.clone(), tenant, kind })
    }

    /// The portal directory of one adapter of one tenant.
    pub fn portal_directory(&self, tenant: TenantId, kind: AdapterKind) -> Arc<dyn PortalDirectory> {
        Arc::new(TenantSink { router: self.clone(), tenant, kind })
    }

    /// Wakes the outbound queues of one adapter (after it starts).
    pub async fn wake_outbound(&self, tenant: &TenantId, kind: &AdapterKind) -> Result<(), BridgeError> {
        for (portal, direction) in self.inner.store.pending_queues().await? {
            if direction == Direction::ToRemote && &portal.tenant == tenant && &portal.kind == kind {
                self.inner.queues.wake((portal, direction));
            }
        }
        Ok(())
    }

    /// Unlinks a portal: its room is no longer bridged (the Matrix room and
    /// the message map stay). False if there was no such portal.
    pub async fn unlink(&self, key: &PortalKey) -> Result<bool, BridgeError> {
        let removed = self.inner.store.remove_portal(key).await?;
        self.inner.portals_by_room.lock().expect("portal cache poisoned").retain(|_, k| k != key);
        self.inner.delivery.forget_room(key);
        if removed {
            tracing::info!(portal = %key, "portal unlinked");
        }
        Ok(removed)
    }

    /// Delivers only for the tenants this process owns (set once, before
    /// [`Router::recover`]).
    pub fn set_ownership(&self, ownership: Arc<dyn crate::shard::Ownership>) {
        self.inner.queues.set_ownership(ownership);
    }

    /// Resumes the stored events of a tenant this process just took over.
    pub async fn recover_tenant(&self, tenant: &TenantId) -> Result<usize, BridgeError> {
        self.inner.queues.recover_tenant(tenant).await
    }

    /// Waits (at most `patience`) until no delivery of a tenant this
    /// process no longer owns is in flight; true if none is.
    pub async fn drain_tenant(&self, tenant: &TenantId, patience: std::time::Duration) -> bool {
        self.inner.queues.drain_tenant(tenant, patience).await
    }

    /// Signals that another process stored entries of a queue.
    pub fn wake(&self, portal: PortalKey, direction: Direction) {
        self.inner.queues.wake((portal, direction));
    }

    /// Sets a tenant's server ACL (its federation policy) in each of its
    /// portal rooms; returns the rooms where the homeserver refused it.
    pub async fn apply_server_acl(&self, tenant: &crate::store::Tenant) -> Result<Vec<MatrixRoomId>, BridgeError> {
        self.inner.delivery.apply_server_acl(tenant).await
    }

    /// The portal a room alias of ours (`#localpart:server`) names, if any.
    pub fn portal_of_alias(&self, alias: &str) -> Option<PortalKey> {
        let (localpart, server) = alias.strip_prefix('#')?.split_once(':')?;
        self.namer().portal_of_alias(localpart).filter(|_| server == self.namer().server_name())
    }

    /// How long an encrypted Matrix message waits for its room key before
    /// its sender is told it could not be decrypted (set once; default
    /// [`DEFAULT_KEY_WAIT`]).
    pub fn wait_for_room_keys(&self, wait: std::time::Duration) {
        let _ = self.inner.delivery.key_wait.set(wait);
    }

    /// Has `observer` learn of every delivery outcome (set once).
    pub fn observe(&self, observer: Arc<dyn crate::observe::DeliveryObserver>) {
        let _ = self.inner.delivery.observer.set(observer.clone());
        self.inner.queues.observe(observer);
    }

    /// Number of queues with a running worker.
    pub fn active_queues(&self) -> usize {
        self.inner.queues.active()
    }

    /// Stops delivering after the entries in flight.
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.queues.shutdown();
    }

    fn namer(&self) -> &Namer {
        &self.inner.delivery.namer
    }

    /// True for the bot and our ghosts: their events are our own echoes.
    fn is_bridge_user(&self, user: &MatrixUserId) -> bool {
        user == self.inner.delivery.matrix.bot_user_id() || self.namer().parse_ghost(user).is_some()
    }

    /// A Matrix user invited a ghost into a room that is no portal: the
    /// queue of the ghost's adapter that may turn it into a direct chat
    /// (delivered where that adapter runs, see [`PortalKey::lobby`]).
    async fn direct_chat_invite(&self, event: &MatrixEvent) -> Result<Option<PortalKey>, BridgeError> {
        let EventBody::Membership { membership: Membership::Invite, .. } = &event.body else { return Ok(None) };
        let Some(ghost) = event.state_key.as_deref().and_then(|s| MatrixUserId::new(s).ok()) else {
            return Ok(None);
        };
        let Some((kind, tenant, _)) = self.namer().parse_ghost(&ghost) else { return Ok(None) };
        // Only a configured adapter will ever take it off the queue.
        if self.inner.store.adapter_config(&tenant, &kind).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(PortalKey::lobby(tenant, kind)))
    }

    async fn portal_of_room(&self, room: &MatrixRoomId) -> Result<Option<PortalKey>, BridgeError> {
        if let Some(key) = self.inner.portals_by_room.lock().expect("portal cache poisoned").get(room) {
            return Ok(Some(key.clone()));
        }
        let Some(portal) = self.inner.store.portal_by_room(room).await? else {
            return Ok(None);
        };
        self.inner.portals_by_room.lock().expect("portal cache poisoned").insert(room.clone(), portal.key.clone());
        Ok(Some(portal.key))
    }
}

#[async_trait]
impl AppserviceHandler for Router {
    async fn transaction(&self, txn_id: &str, events: Vec<MatrixEvent>) -> Result<(), BridgeError> {
        let mut entries = Vec::new();
        for event in events {
            if self.is_bridge_user(&event.sender) {
                continue;
            }
            let portal = match self.portal_of_room(&event.room_id).await? {
                Some(portal) => portal,
                None => match self.direct_chat_invite(&event).await? {
                    Some(portal) => portal,
                    None => {
                        if !self.inner.commands.take(&event).await? {
                            tracing::debug!(room = %event.room_id, kind = event.body.kind_name(), "event outside any portal skipped");
                        }
                        continue;
                    }
                },
            };
            let payload = serde_json::to_string(&event).map_err(|e| BridgeError::permanent(e.to_string()))?;
            entries.push(NewOutboxEntry::new(Direction::ToRemote, portal, event.event_id.as_str(), payload));
        }
        // Nothing to store (only our own echoes, or rooms without portals):
        // a replay of it would store nothing either, so its id need not be kept.
        if entries.is_empty() {
            return Ok(());
        }
        let queues: BTreeSet<PortalKey> = entries.iter().map(|e| e.portal.clone()).collect();
        let outcome = self.inner.store.ingest_transaction(txn_id, entries).await?;
        if outcome == TxnOutcome::Replayed {
            tracing::info!(txn_id, "replayed transaction acknowledged without processing");
            return Ok(());
        }
        for portal in queues {
            self.inner.queues.stored((portal, Direction::ToRemote));
        }
        Ok(())
    }

    async fn ephemeral(&self, events: Vec<MatrixEvent>) {
        for event in events {
            if self.is_bridge_user(&event.sender) {
                continue;
            }
            if let EventBody::Presence { presence, status } = &event.body {
                let adapters = &self.inner.delivery.adapters;
                for (tenant, kind) in adapters.keys() {
                    if let Some(adapter) = adapters.get(&tenant, &kind) {
                        adapter.matrix_presence(&event.sender, *presence, status.as_deref()).await;
                    }
                }
                continue;
            }
            let portal = match self.portal_of_room(&event.room_id).await {
                Ok(Some(portal)) => portal,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "looking up a portal for an ephemeral event failed");
                    continue;
                }
            };
            if let Err(err) = self.inner.delivery.deliver_ephemeral_to_remote(&portal, &event).await {
                tracing::debug!(portal = %portal, error = %err, kind = event.body.kind_name(), "ephemeral event not delivered");
            }
        }
    }

    async fn user_exists(&self, user: &MatrixUserId) -> bool {
        let Some((kind, tenant, _)) = self.namer().parse_ghost(user) else {
            return false;
        };
        match self.inner.store.adapter_config(&tenant, &kind).await {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(err) => {
                tracing::warn!(error = %err, "user query failed");
                return false;
            }
        }
        // The homeserver asks before it lets anyone talk to the user: register it now.
        match self.inner.delivery.matrix.ensure_ghost(user, &GhostProfile::default()).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(user = %user, error = %err, "registering a queried ghost failed");
                false
            }
        }
    }

    async fn alias_exists(&self, alias: &str) -> bool {
        let Some(key) = self.portal_of_alias(alias) else {
            return false;
        };
        // Only rooms of an adapter that runs for the tenant get a portal on demand.
        let Some(adapter) = self.inner.delivery.adapters.get(&key.tenant, &key.kind) else {
            return false;
        };
        if !adapter.accepts_room(&key.room).await {
            return false;
        }
        let new = delivery::NewRoom { public: true, on_alias_query: true, ..Default::default() };
        match self.inner.delivery.ensure_room(&key, new).await {
            Ok(room) => {
                tracing::info!(portal = %key, room = %room, "portal created on an alias query");
                true
            }
            Err(err) => {
                tracing::warn!(portal = %key, error = %err, "creating a portal on an alias query failed");
                false
            }
        }
    }
}

/// The inbound sink of one adapter of one tenant.
struct TenantSink {
    router: Router,
    tenant: TenantId,
    kind: AdapterKind,
}

#[async_trait]
impl InboundSink for TenantSink {
    async fn push(&self, event: InboundEvent) -> Result<Ack, BridgeError> {
        let portal = PortalKey::new(self.tenant.clone(), self.kind.clone(), event.room.clone());
        let inner = &self.router.inner;
        if event.body.is_ephemeral() {
            inner.delivery.deliver_ephemeral_to_matrix(&portal, event).await?;
            return Ok(Ack::Ephemeral);
        }
        let dedupe_key = event.event_id.to_string();
        let payload = serde_json::to_string(&event).map_err(|e| BridgeError::permanent(e.to_string()))?;
        let entry = NewOutboxEntry::new(Direction::ToMatrix, portal.clone(), dedupe_key, payload);
        match inner.store.enqueue(entry).await? {
            Some(_) => {
                inner.queues.stored((portal, Direction::ToMatrix));
                Ok(Ack::Stored)
            }
            None => Ok(Ack::Duplicate),
        }
    }
}

#[async_trait]
impl PortalDirectory for TenantSink {
    async fn rooms(&self) -> Result<Vec<RemoteRoomId>, BridgeError> {
        let portals = self.router.inner.store.portals(&self.tenant).await?;
        Ok(portals.into_iter().filter(|p| p.key.kind == self.kind).map(|p| p.key.room).collect())
    }
}

#[async_trait]
impl AdapterState for TenantSink {
    async fn get(&self, key: &str) -> Result<Option<String>, BridgeError> {
        Ok(self.router.inner.store.adapter_state(&self.tenant, &self.kind, key).await?)
    }

    async fn put(&self, key: &str, value: Option<&str>) -> Result<(), BridgeError> {
        Ok(self.router.inner.store.put_adapter_state(&self.tenant, &self.kind, key, value).await?)
    }
}
