//! Reads, served by the read pool. They never wait for the writer: in WAL
//! mode (SQLite) and under MVCC (PostgreSQL) readers see the last commit.

use brygga_core::{
    AdapterConfig, AdapterCounts, AdapterKind, AdminToken, Direction, Ghost, LinkedAccount, MatrixEventId,
    MatrixRoomId, MatrixUserId, MessageMapping, OutboxEntry, Portal, PortalKey, RemoteMessageId, RemoteUserId,
    StoreResult, Tenant, TenantId,
};
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, AnyPool};

use crate::codec::{self, db_err};

type AnyQuery<'q> = Query<'q, Any, sqlx::any::AnyArguments>;

async fn all<T>(
    pool: &AnyPool,
    what: &str,
    query: AnyQuery<'_>,
    decode: fn(&AnyRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let rows = query.fetch_all(pool).await.map_err(|e| db_err(what, e))?;
    rows.iter().map(decode).collect()
}

async fn one<T>(
    pool: &AnyPool,
    what: &str,
    query: AnyQuery<'_>,
    decode: fn(&AnyRow) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let row = query.fetch_optional(pool).await.map_err(|e| db_err(what, e))?;
    row.as_ref().map(decode).transpose()
}

pub(crate) async fn tenant(pool: &AnyPool, id: &TenantId) -> StoreResult<Option<Tenant>> {
    let q = sqlx::query("SELECT id, display_name, settings, suspended FROM tenants WHERE id = $1").bind(id.as_str());
    one(pool, "read tenant", q, codec::tenant).await
}

pub(crate) async fn tenants(pool: &AnyPool) -> StoreResult<Vec<Tenant>> {
    let q = sqlx::query("SELECT id, display_name, settings, suspended FROM tenants ORDER BY id");
    all(pool, "list tenants", q, codec::tenant).await
}

pub(crate) async fn adapter_config(
    pool: &AnyPool,
    tenant: &TenantId,
    kind: &AdapterKind,
) -> StoreResult<Option<AdapterConfig>> {
    let q = sqlx::query("SELECT tenant, kind, enabled, config FROM adapter_configs WHERE tenant = $1 AND kind = $2")
        .bind(tenant.as_str())
        .bind(kind.as_str());
    one(pool, "read adapter config", q, codec::adapter_config).await
}

pub(crate) async fn adapter_configs(pool: &AnyPool, tenant: Option<&TenantId>) -> StoreResult<Vec<AdapterConfig>> {
    let q = match tenant {
        Some(t) => sqlx::query(
            "SELECT tenant, kind, enabled, config FROM adapter_configs WHERE tenant = $1 ORDER BY tenant, kind",
        )
        .bind(t.as_str()),
        None => sqlx::query("SELECT tenant, kind, enabled, config FROM adapter_configs ORDER BY tenant, kind"),
    };
    all(pool, "list adapter configs", q, codec::adapter_config).await
}

pub(crate) async fn ghost(
    pool: &AnyPool,
    tenant: &TenantId,
    kind: &AdapterKind,
    remote: &RemoteUserId,
) -> StoreResult<Option<Ghost>> {
    let q = sqlx::query(
        "SELECT tenant, kind, remote_user, user_id, display_name, avatar_mxc, avatar_source FROM ghosts \
         WHERE tenant = $1 AND kind = $2 AND remote_user = $3",
    )
    .bind(tenant.as_str())
    .bind(kind.as_str())
    .bind(remote.as_str());
    one(pool, "read ghost", q, codec::ghost).await
}

pub(crate) async fn ghosts(
    pool: &AnyPool,
    tenant: &TenantId,
    search: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<Ghost>> {
    // LIKE wildcards in the search text are matched literally.
    let pattern = search.map(|s| {
        let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let q = sqlx::query(
        "SELECT tenant, kind, remote_user, user_id, display_name, avatar_mxc, avatar_source FROM ghosts \
         WHERE tenant = $1 AND ($2 IS NULL OR LOWER(remote_user) LIKE $2 ESCAPE '\\' \
         OR LOWER(user_id) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(display_name, '')) LIKE $2 ESCAPE '\\') \
         ORDER BY user_id LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(pattern)
    .bind(i64::from(limit));
    all(pool, "list ghosts", q, codec::ghost).await
}

pub(crate) async fn counts(pool: &AnyPool) -> StoreResult<Vec<((TenantId, AdapterKind), AdapterCounts)>> {
    let mut counts: std::collections::BTreeMap<(TenantId, AdapterKind), AdapterCounts> = Default::default();
    let queries = [
        ("portals", "SELECT tenant, kind, 'portals' AS what, COUNT(*) AS n FROM portals GROUP BY tenant, kind"),
        ("ghosts", "SELECT tenant, kind, 'ghosts' AS what, COUNT(*) AS n FROM ghosts GROUP BY tenant, kind"),
        (
            "pending",
            "SELECT tenant, kind, direction AS what, COUNT(*) AS n FROM outbox WHERE status = 'pending' \
             GROUP BY tenant, kind, direction",
        ),
    ];
    for (what, sql) in queries {
        let rows = all(pool, what, sqlx::query(sql), |row| {
            let key = (codec::tenant_id(row, "tenant")?, codec::id(row, "kind", AdapterKind::new)?);
            Ok((key, codec::text(row, "what")?, codec::int(row, "n")?))
        })
        .await?;
        for (key, what, n) in rows {
            let entry = counts.entry(key).or_default();
            let n = u64::try_from(n).unwrap_or_default();
            match what.as_str() {
                "portals" => entry.portals = n,
                "ghosts" => entry.ghosts = n,
                "to_matrix" => entry.pending_to_matrix = n,
                _ => entry.pending_to_remote = n,
            }
        }
    }
    Ok(counts.into_iter().collect())
}

pub(crate) async fn ghost_by_user_id(pool: &AnyPool, user: &MatrixUserId) -> StoreResult<Option<Ghost>> {
    let q = sqlx::query(
        "SELECT tenant, kind, remote_user, user_id, display_name, avatar_mxc, avatar_source FROM ghosts \
         WHERE user_id = $1",
    )
    .bind(user.as_str());
    one(pool, "read ghost by Matrix id", q, codec::ghost).await
}

pub(crate) async fn linked_accounts(
    pool: &AnyPool,
    tenant: &TenantId,
    user: &MatrixUserId,
) -> StoreResult<Vec<LinkedAccount>> {
    let q = sqlx::query(
        "SELECT tenant, kind, matrix_user, remote_user, credentials FROM linked_accounts \
         WHERE tenant = $1 AND matrix_user = $2 ORDER BY kind",
    )
    .bind(tenant.as_str())
    .bind(user.as_str());
    all(pool, "list linked accounts", q, codec::linked_account).await
}

pub(crate) async fn portal(pool: &AnyPool, key: &PortalKey) -> StoreResult<Option<Portal>> {
    let q = sqlx::query(
        "SELECT tenant, kind, room, room_id, name FROM portals WHERE tenant = $1 AND kind = $2 AND room = $3",
    )
    .bind(key.tenant.as_str())
    .bind(key.kind.as_str())
    .bind(key.room.as_str());
    one(pool, "read portal", q, codec::portal).await
}

pub(crate) async fn state(
    pool: &AnyPool,
    tenant: &TenantId,
    kind: &AdapterKind,
    key: &str,
) -> StoreResult<Option<String>> {
    let q = sqlx::query("SELECT value FROM adapter_state WHERE tenant = $1 AND kind = $2 AND key = $3")
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(key);
    one(pool, "read adapter state", q, |row| codec::text(row, "value")).await
}

pub(crate) async fn admin_token_by_hash(pool: &AnyPool, hash: &str) -> StoreResult<Option<AdminToken>> {
    let q = sqlx::query("SELECT id, tenant, hash, label, created_at FROM admin_tokens WHERE hash = $1").bind(hash);
    one(pool, "read admin token", q, codec::admin_token).await
}

pub(crate) async fn admin_tokens(pool: &AnyPool, tenant: &TenantId) -> StoreResult<Vec<AdminToken>> {
    let q = sqlx::query(
        "SELECT id, tenant, hash, label, created_at FROM admin_tokens WHERE tenant = $1 ORDER BY created_at, id",
    )
    .bind(tenant.as_str());
    all(pool, "list admin tokens", q, codec::admin_token).await
}

pub(crate) async fn portal_by_room(pool: &AnyPool, room: &MatrixRoomId) -> StoreResult<Option<Portal>> {
    let q = sqlx::query("SELECT tenant, kind, room, room_id, name FROM portals WHERE room_id = $1").bind(room.as_str());
    one(pool, "read portal by room", q, codec::portal).await
}

pub(crate) async fn portals(pool: &AnyPool, tenant: &TenantId) -> StoreResult<Vec<Portal>> {
    let q = sqlx::query("SELECT tenant, kind, room, room_id, name FROM portals WHERE tenant = $1 ORDER BY kind, room")
        .bind(tenant.as_str());
    all(pool, "list portals", q, codec::portal).await
}

pub(crate) async fn messages_by_remote(
    pool: &AnyPool,
    portal: &PortalKey,
    remote: &RemoteMessageId,
) -> StoreResult<Vec<MessageMapping>> {
    let q = sqlx::query(
        "SELECT tenant, kind, room, remote_id, part, matrix_event, map_kind FROM message_map \
         WHERE tenant = $1 AND kind = $2 AND room = $3 AND remote_id = $4 ORDER BY part, matrix_event",
    )
    .bind(portal.tenant.as_str())
    .bind(portal.kind.as_str())
    .bind(portal.room.as_str())
    .bind(remote.as_str());
    all(pool, "read message map by remote id", q, codec::mapping).await
}

pub(crate) async fn messages_by_matrix(
    pool: &AnyPool,
    tenant: &TenantId,
    event: &MatrixEventId,
) -> StoreResult<Vec<MessageMapping>> {
    let q = sqlx::query(
        "SELECT tenant, kind, room, remote_id, part, matrix_event, map_kind FROM message_map \
         WHERE tenant = $1 AND matrix_event = $2 ORDER BY part, remote_id",
    )
    .bind(tenant.as_str())
    .bind(event.as_str());
    all(pool, "read message map by Matrix event", q, codec::mapping).await
}

fn queue(row: &AnyRow) -> StoreResult<(PortalKey, Direction)> {
    Ok((codec::portal_key(row)?, codec::direction(row)?))
}

pub(crate) async fn pending_queues(pool: &AnyPool) -> StoreResult<Vec<(PortalKey, Direction)>> {
    let q = sqlx::query(
        "SELECT DISTINCT tenant, kind, room, direction FROM outbox WHERE status = 'pending' \
         ORDER BY tenant, kind, room, direction",
    );
    all(pool, "list pending queues", q, queue).await
}

pub(crate) async fn pending(
    pool: &AnyPool,
    portal: &PortalKey,
    direction: Direction,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<OutboxEntry>> {
    let q = sqlx::query(
        "SELECT seq, tenant, kind, room, direction, dedupe_key, payload, attempts, created_at FROM outbox \
         WHERE tenant = $1 AND kind = $2 AND room = $3 AND direction = $4 AND status = 'pending' AND seq > $5 \
         ORDER BY seq LIMIT $6",
    )
    .bind(portal.tenant.as_str())
    .bind(portal.kind.as_str())
    .bind(portal.room.as_str())
    .bind(direction.as_str())
    .bind(after)
    .bind(i64::from(limit));
    all(pool, "read pending outbox entries", q, codec::outbox_entry).await
}
