//! The state one delivery needs: store, Matrix side, adapters, and caches of
//! what has already been set up on the homeserver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::BridgeError;
use crate::event::RemoteSender;
use crate::ids::{AdapterKind, MatrixRoomId, MatrixUserId, PortalKey, RemoteMessageId, TenantId};
use crate::matrix::{BridgeInfo, GhostProfile, MatrixSide, RoomSpec};
use crate::naming::Namer;
use crate::queue::Deliver;
use crate::running::RunningAdapters;
use crate::store::{Direction, Ghost, MessageMapping, OutboxEntry, Portal, Store};

/// Delivers outbox entries in either direction.
pub(crate) struct Delivery {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) matrix: Arc<dyn MatrixSide>,
    pub(crate) namer: Namer,
    pub(crate) adapters: RunningAdapters,
    rooms: Mutex<HashMap<PortalKey, MatrixRoomId>>,
    ghosts: Mutex<HashMap<MatrixUserId, GhostProfile>>,
}

#[async_trait]
impl Deliver for Delivery {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        match entry.direction {
            Direction::ToMatrix => self.deliver_to_matrix(entry).await,
            Direction::ToRemote => self.deliver_to_remote(entry).await,
        }
    }
}

impl Delivery {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        matrix: Arc<dyn MatrixSide>,
        namer: Namer,
        adapters: RunningAdapters,
    ) -> Self {
        Self {
            store,
            matrix,
            namer,
            adapters,
            rooms: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(HashMap::new()),
        }
    }

    /// The portal's Matrix room, if it has one already.
    pub(crate) async fn existing_room(&self, key: &PortalKey) -> Result<Option<MatrixRoomId>, BridgeError> {
        if let Some(room) = self.rooms.lock().expect("room cache poisoned").get(key) {
            return Ok(Some(room.clone()));
        }
        let room = self.store.portal(key).await?.and_then(|p| p.room_id);
        if let Some(room) = &room {
            self.rooms
                .lock()
                .expect("room cache poisoned")
                .insert(key.clone(), room.clone());
        }
        Ok(room)
    }

    /// The portal's Matrix room, created (idempotently, by alias) if missing.
    pub(crate) async fn ensure_room(&self, key: &PortalKey, name: Option<&str>) -> Result<MatrixRoomId, BridgeError> {
        if let Some(room) = self.existing_room(key).await? {
            return Ok(room);
        }
        let tenant = self
            .store
            .tenant(&key.tenant)
            .await?
            .ok_or_else(|| BridgeError::permanent(format!("unknown tenant {}", key.tenant)))?;
        let spec = RoomSpec {
            alias_localpart: self.namer.portal_alias(key),
            name: name.map(str::to_owned),
            invite: tenant.settings.invite.clone(),
            bridge: BridgeInfo {
                kind: key.kind.clone(),
                tenant: key.tenant.clone(),
                room: key.room.clone(),
                room_name: name.map(str::to_owned),
            },
        };
        let room = self.matrix.ensure_room(&spec).await?;
        let mut portal = self
            .store
            .portal(key)
            .await?
            .unwrap_or_else(|| Portal::new(key.clone()));
        portal.room_id = Some(room.clone());
        if portal.name.is_none() {
            portal.name = name.map(str::to_owned);
        }
        self.store.upsert_portal(&portal).await?;
        tracing::info!(portal = %key, room = %room, "portal room ready");
        self.rooms
            .lock()
            .expect("room cache poisoned")
            .insert(key.clone(), room.clone());
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
        let current = match cached {
            Some(profile) => Some(profile),
            None => self.store.ghost(tenant, kind, &sender.id).await?.map(|g| GhostProfile {
                display_name: g.display_name,
                avatar_mxc: g.avatar_mxc,
            }),
        };
        let wanted_name = sender
            .display_name
            .clone()
            .or_else(|| current.as_ref().and_then(|p| p.display_name.clone()));
        let up_to_date = current.as_ref().is_some_and(|p| p.display_name == wanted_name);
        if up_to_date {
            self.ghosts
                .lock()
                .expect("ghost cache poisoned")
                .insert(user_id.clone(), current.expect("checked above"));
            return Ok(user_id);
        }
        let profile = GhostProfile {
            display_name: wanted_name,
            avatar_mxc: current.and_then(|p| p.avatar_mxc),
        };
        self.matrix.ensure_ghost(&user_id, &profile).await?;
        let mut ghost = Ghost::new(tenant.clone(), kind.clone(), sender.id.clone(), user_id.clone());
        ghost.display_name = profile.display_name.clone();
        ghost.avatar_mxc = profile.avatar_mxc.clone();
        self.store.upsert_ghost(&ghost).await?;
        self.ghosts
            .lock()
            .expect("ghost cache poisoned")
            .insert(user_id.clone(), profile);
        Ok(user_id)
    }

    /// The Matrix events of a remote message (empty when never bridged).
    pub(crate) async fn matrix_parts(
        &self,
        portal: &PortalKey,
        remote: &RemoteMessageId,
    ) -> Result<Vec<MessageMapping>, BridgeError> {
        Ok(self.store.messages_by_remote(portal, remote).await?)
    }
}
