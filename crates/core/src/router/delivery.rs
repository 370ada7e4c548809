//! The state one delivery needs: store, Matrix side, adapters, and caches of
//! what has already been set up on the homeserver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::BridgeError;
use crate::event::RemoteSender;
use crate::ids::{AdapterKind, MatrixEventId, MatrixRoomId, MatrixUserId, PortalKey, RemoteMessageId, TenantId};
use crate::matrix::{BridgeInfo, DirectRoom, GhostProfile, MatrixSide, RoomSpec};
use crate::naming::Namer;
use crate::queue::Deliver;
use crate::router::names::DisplayNames;
use crate::router::recent::RecentMappings;
use crate::running::RunningAdapters;
use crate::store::{Direction, EncryptionPolicy, Ghost, MessageMapping, OutboxEntry, Portal, Store};

/// How to make a portal room that does not exist yet.
#[derive(Default)]
pub(crate) struct NewRoom<'a> {
    /// Room name.
    pub(crate) name: Option<&'a str>,
    /// Joinable by anyone who knows its alias (portals opened by alias).
    pub(crate) public: bool,
    /// A direct chat, made by a ghost for one Matrix user.
    pub(crate) direct: Option<DirectRoom>,
    /// Made while the homeserver asks about the alias (which is therefore free).
    pub(crate) on_alias_query: bool,
}

/// Delivers outbox entries in either direction.
pub(crate) struct Delivery {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) matrix: Arc<dyn MatrixSide>,
    pub(crate) namer: Namer,
    pub(crate) adapters: RunningAdapters,
    rooms: Mutex<HashMap<PortalKey, MatrixRoomId>>,
    ghosts: Mutex<HashMap<MatrixUserId, Ghost>>,
    /// Mappings delivered but not yet committed by the queue.
    recent: RecentMappings,
    /// Matrix users' display names per room.
    pub(crate) names: DisplayNames,
    /// Tenants' policies, as last read.
    pub(crate) tenants: super::policy::TenantCache,
    /// Portal rooms made or learnt, for their bridge status.
    new_rooms: tokio::sync::mpsc::UnboundedSender<(PortalKey, MatrixRoomId)>,
    /// Answers bot commands handed over through a lobby.
    pub(crate) commands: crate::commands::BotCommands,
    /// Learns of undecryptable events.
    pub(crate) observer: std::sync::OnceLock<Arc<dyn crate::observe::DeliveryObserver>>,
    /// How long an encrypted message waits for its room key (set once).
    pub(crate) key_wait: std::sync::OnceLock<std::time::Duration>,
}

#[async_trait]
impl Deliver for Delivery {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        let mappings = match entry.direction {
            Direction::ToMatrix => self.deliver_to_matrix(entry).await,
            Direction::ToRemote if entry.portal.is_lobby() => self.deliver_lobby(entry).await,
            Direction::ToRemote => self.deliver_to_remote(entry).await,
        }?;
        self.recent.record(entry.seq, &mappings);
        Ok(mappings)
    }

    fn settled(&self, seq: i64) {
        self.recent.settle(seq);
    }
}

impl Delivery {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        matrix: Arc<dyn MatrixSide>,
        namer: Namer,
        adapters: RunningAdapters,
        new_rooms: tokio::sync::mpsc::UnboundedSender<(PortalKey, MatrixRoomId)>,
        commands: crate::commands::BotCommands,
    ) -> Self {
        Self {
            new_rooms,
            commands,
            store,
            matrix,
            namer,
            adapters,
            rooms: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(HashMap::new()),
            recent: RecentMappings::default(),
            names: DisplayNames::default(),
            tenants: Default::default(),
            observer: std::sync::OnceLock::new(),
            key_wait: std::sync::OnceLock::new(),
        }
    }

    /// The portal's Matrix room, if it has one already.
    pub(crate) async fn existing_room(&self, key: &PortalKey) -> Result<Option<MatrixRoomId>, BridgeError> {
        if let Some(room) = self.rooms.lock().expect("room cache poisoned").get(key) {
            return Ok(Some(room.clone()));
        }
        let room = self.store.portal(key).await?.and_then(|p| p.room_id);
        if let Some(room) = &room {
            self.rooms.lock().expect("room cache poisoned").insert(key.clone(), room.clone());
        }
        Ok(room)
    }

    /// Records the portal's Matrix room (a direct chat opened from Matrix).
    pub(crate) fn remember_room(&self, key: &PortalKey, room: &MatrixRoomId) {
        self.rooms.lock().expect("room cache poisoned").insert(key.clone(), room.clone());
        // Nobody listens before the router recovered: the first sweep covers the room.
        let _ = self.new_rooms.send((key.clone(), room.clone()));
    }

    /// Forgets the portal's Matrix room (it was unlinked).
    pub(crate) fn forget_room(&self, key: &PortalKey) {
        self.rooms.lock().expect("room cache poisoned").remove(key);
    }

    /// The portal's Matrix room, created (idempotently, by alias) if missing.
    pub(crate) async fn ensure_room(&self, key: &PortalKey, new: NewRoom<'_>) -> Result<MatrixRoomId, BridgeError> {
        let NewRoom { name, public, direct, on_alias_query } = new;
        if let Some(room) = self.existing_room(key).await? {
            return Ok(room);
        }
        let tenant = self
            .store
            .tenant(&key.tenant)
            .await?
            .ok_or_else(|| BridgeError::permanent(format!("unknown tenant {}", key.tenant)))?;
        let encrypted = tenant.settings.encryption == EncryptionPolicy::Require;
        let spec = RoomSpec {
            alias_localpart: self.namer.portal_alias(key),
            name: name.map(str::to_owned),
            invite: tenant.settings.invite.clone(),
            public,
            direct,
            alias_is_free: on_alias_query,
            bridge: BridgeInfo {
                kind: key.kind.clone(),
                tenant: key.tenant.clone(),
                room: key.room.clone(),
                room_name: name.map(str::to_owned),
                encrypted,
            },
            allowed_servers: tenant.settings.allowed_servers.clone(),
            encrypted,
        };
        let room = self.matrix.ensure_room(&spec).await?;
        let mut portal = self.store.portal(key).await?.unwrap_or_else(|| Portal::new(key.clone()));
        portal.room_id = Some(room.clone());
        if portal.name.is_none() {
            portal.name = name.map(str::to_owned);
        }
        self.store.upsert_portal(&portal).await?;
        tracing::info!(portal = %key, room = %room, "portal room ready");
        self.remember_room(key, &room);
        Ok(room)
    }

    /// The ghost of a remote sender, registered and with a current profile.
    pub(crate) async fn ensure_ghost(
        &self,
        tenant: &TenantId,
        kind: &AdapterKind,
        sender: &RemoteSender,
    ) -> Result<MatrixUserId, BridgeError> {
        let user_id = self.namer.ghost_user_id(kind, tenant, &sender.id);
        let cached = self.ghosts.lock().expect("ghost cache poisoned").get(&user_id).cloned();
        let stored = match cached {
            Some(ghost) => Some(ghost),
            None => self.store.ghost(tenant, kind, &sender.id).await?,
        };
        let name = sender.display_name.clone().or_else(|| stored.as_ref().and_then(|g| g.display_name.clone()));
        let avatar_source = sender.avatar.clone().or_else(|| stored.as_ref().and_then(|g| g.avatar_source.clone()));
        if let Some(ghost) = stored.as_ref()
            && ghost.display_name == name
            && ghost.avatar_source == avatar_source
        {
            self.ghosts.lock().expect("ghost cache poisoned").insert(user_id.clone(), ghost.clone());
            return Ok(user_id);
        }
        let mut ghost = Ghost::new(tenant.clone(), kind.clone(), sender.id.clone(), user_id.clone());
        ghost.display_name = name;
        ghost.avatar_mxc = stored.as_ref().and_then(|g| g.avatar_mxc.clone());
        if avatar_source != stored.as_ref().and_then(|g| g.avatar_source.clone()) {
            ghost.avatar_mxc = match &avatar_source {
                Some(locator) => self.upload_avatar(tenant, kind, &user_id, locator).await?,
                None => None,
            };
        }
        ghost.avatar_source = avatar_source;
        let profile = GhostProfile { display_name: ghost.display_name.clone(), avatar_mxc: ghost.avatar_mxc.clone() };
        self.matrix.ensure_ghost(&user_id, &profile).await?;
        self.store.upsert_ghost(&ghost).await?;
        self.ghosts.lock().expect("ghost cache poisoned").insert(user_id.clone(), ghost);
        Ok(user_id)
    }

    /// Re-uploads a remote avatar; `None` when the platform cannot serve it.
    async fn upload_avatar(
        &self,
        tenant: &TenantId,
        kind: &AdapterKind,
        user: &MatrixUserId,
        locator: &str,
    ) -> Result<Option<String>, BridgeError> {
        let Some(adapter) = self.adapters.get(tenant, kind) else {
            return Err(BridgeError::transient("adapter not running; cannot fetch the avatar"));
        };
        let Some(media) = adapter.media() else { return Ok(None) };
        match media.fetch(locator).await {
            // The bot uploads: the ghost may not be registered yet.
            Ok(bytes) => Ok(Some(self.matrix.upload(self.matrix.bot_user_id(), None, "avatar", bytes).await?.mxc)),
            Err(err) if err.is_transient() => Err(err),
            Err(err) => {
                tracing::warn!(user = %user, error = %err, "remote avatar could not be fetched");
                Ok(None)
            }
        }
    }

    /// The Matrix events of a remote message (empty when never bridged).
    pub(crate) async fn matrix_parts(
        &self,
        portal: &PortalKey,
        remote: &RemoteMessageId,
    ) -> Result<Vec<MessageMapping>, BridgeError> {
        match self.recent.by_remote(portal, remote) {
            Some(parts) => Ok(parts),
            None => Ok(self.store.messages_by_remote(portal, remote).await?),
        }
    }

    /// The remote messages of a Matrix event (empty when never bridged).
    pub(crate) async fn remote_parts(
        &self,
        tenant: &TenantId,
        event: &MatrixEventId,
    ) -> Result<Vec<MessageMapping>, BridgeError> {
        match self.recent.by_matrix(tenant, event) {
            Some(parts) => Ok(parts),
            None => Ok(self.store.messages_by_matrix(tenant, event).await?),
        }
    }
}
