//! Linking existing Matrix rooms to remote rooms, for the CLI and the admin API.

use brygga_core::matrix::server_acl_content;
use brygga_core::router::encryption_refusal;
use brygga_core::{
    AdapterHost, EncryptionPolicy, HostError, MatrixRoomId, MatrixSide, Portal, PortalKey, RemoteRoomId, Store,
    StoreError, TenantId,
};

/// What to link.
pub struct LinkRequest<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The adapter kind.
    pub kind: &'a str,
    /// The remote room, in the adapter's own notation.
    pub remote: &'a RemoteRoomId,
    /// The Matrix room.
    pub room: &'a MatrixRoomId,
    /// Name of the remote room, shown in listings.
    pub name: Option<String>,
}

/// Why a link was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The tenant does not exist.
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    /// The adapter kind is unknown.
    #[error(transparent)]
    Kind(#[from] HostError),
    /// The adapter does not take this as a room.
    #[error("{room} is not a {kind} room: {reason}")]
    NotARoom {
        /// The remote room given.
        room: RemoteRoomId,
        /// The adapter kind.
        kind: String,
        /// Why not.
        reason: String,
    },
    /// The remote or the Matrix room is bridged elsewhere.
    #[error("{0}")]
    Taken(String),
    /// The bridge bot could not join the Matrix room.
    #[error("the bridge bot {bot} could not join {room}: {reason} (invite it to the room first)")]
    BotCannotJoin {
        /// The bot.
        bot: String,
        /// The room.
        room: MatrixRoomId,
        /// The homeserver's answer.
        reason: String,
    },
    /// The tenant's federation policy could not be set on the room.
    #[error(
        "the bridge bot {bot} could not set the tenant's server ACL in {room}: {reason} (give it the power to change m.room.server_acl)"
    )]
    Acl {
        /// The bot.
        bot: String,
        /// The room.
        room: MatrixRoomId,
        /// The homeserver's answer.
        reason: String,
    },
    /// The tenant's encryption policy does not bridge the room.
    #[error("{room} is not linked: {reason}")]
    Encryption {
        /// The room.
        room: MatrixRoomId,
        /// The policy's reason.
        reason: String,
    },
    /// The room's encryption could not be read.
    #[error("the encryption of {room} could not be read: {reason}")]
    EncryptionUnknown {
        /// The room.
        room: MatrixRoomId,
        /// The homeserver's answer.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Links a Matrix room to a remote room: checks both are free, has the bridge
/// bot join the Matrix room (it must be invited or the room public), then
/// records the portal.
pub async fn link(
    store: &dyn Store,
    host: &AdapterHost,
    matrix: &dyn MatrixSide,
    request: LinkRequest<'_>,
) -> Result<PortalKey, LinkError> {
    let factory = host.factory(request.kind)?;
    let Some(tenant) = store.tenant(request.tenant).await? else {
        return Err(LinkError::UnknownTenant(request.tenant.clone()));
    };
    factory.validate_room(request.remote).map_err(|reason| LinkError::NotARoom {
        room: request.remote.clone(),
        kind: factory.kind().to_string(),
        reason,
    })?;
    let key = PortalKey::new(request.tenant.clone(), factory.kind(), request.remote.clone());
    if let Some(existing) = store.portal(&key).await?
        && let Some(room) = existing.room_id
        && &room != request.room
    {
        return Err(LinkError::Taken(format!("{key} is already linked to {room}")));
    }
    if let Some(other) = store.portal_by_room(request.room).await?
        && other.key != key
    {
        return Err(LinkError::Taken(format!("{} is already the portal of {}", request.room, other.key)));
    }
    matrix.ensure_joined(request.room, matrix.bot_user_id()).await.map_err(|e| LinkError::BotCannotJoin {
        bot: matrix.bot_user_id().to_string(),
        room: request.room.clone(),
        reason: e.to_string(),
    })?;
    if tenant.settings.encryption != EncryptionPolicy::Allow {
        let state = matrix
            .room_encryption(request.room)
            .await
            .map_err(|e| LinkError::EncryptionUnknown { room: request.room.clone(), reason: e.to_string() })?;
        if let Some(reason) = encryption_refusal(&tenant, state) {
            return Err(LinkError::Encryption { room: request.room.clone(), reason });
        }
    }
    // A tenant that federates only with some servers has its portals say so.
    if !tenant.settings.allowed_servers.is_empty() {
        let content = server_acl_content(&tenant.settings.allowed_servers, matrix.bot_user_id().server_name());
        matrix.set_state(request.room, "m.room.server_acl", "", &content).await.map_err(|e| LinkError::Acl {
            bot: matrix.bot_user_id().to_string(),
            room: request.room.clone(),
            reason: e.to_string(),
        })?;
    }
    let mut portal = Portal::new(key.clone());
    portal.room_id = Some(request.room.clone());
    portal.name = request.name;
    store.upsert_portal(&portal).await?;
    Ok(key)
}
