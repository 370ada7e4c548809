//! Linking existing Matrix rooms to remote rooms, for the CLI.

use brygga_core::{AdapterHost, MatrixRoomId, MatrixSide, Portal, PortalKey, RemoteRoomId, Store, TenantId};

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

/// Links a Matrix room to a remote room: checks both are free, has the bridge
/// bot join the Matrix room (it must be invited or the room public), then
/// records the portal.
pub async fn link(
    store: &dyn Store,
    host: &AdapterHost,
    matrix: &dyn MatrixSide,
    request: LinkRequest<'_>,
) -> anyhow::Result<PortalKey> {
    let factory = host.factory(request.kind)?;
    if store.tenant(request.tenant).await?.is_none() {
        anyhow::bail!("unknown tenant {}", request.tenant);
    }
    factory
        .validate_room(request.remote)
        .map_err(|e| anyhow::anyhow!("{} is not a {} room: {e}", request.remote, factory.kind()))?;
    let key = PortalKey::new(request.tenant.clone(), factory.kind(), request.remote.clone());
    if let Some(existing) = store.portal(&key).await?
        && let Some(room) = existing.room_id
        && &room != request.room
    {
        anyhow::bail!("{key} is already linked to {room}");
    }
    if let Some(other) = store.portal_by_room(request.room).await?
        && other.key != key
    {
        anyhow::bail!("{} is already the portal of {}", request.room, other.key);
    }
    matrix.ensure_joined(request.room, matrix.bot_user_id()).await.map_err(|e| {
        anyhow::anyhow!(
            "the bridge bot {} could not join {}: {e} (invite it to the room first)",
            matrix.bot_user_id(),
            request.room
        )
    })?;
    let mut portal = Portal::new(key.clone());
    portal.room_id = Some(request.room.clone());
    portal.name = request.name;
    store.upsert_portal(&portal).await?;
    Ok(key)
}
