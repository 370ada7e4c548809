//! Writes of tenants, adapter configs, ghosts, linked accounts and portals.
//! Each runs inside the writer's batch transaction. Checks that can refuse a
//! request (unknown tenant, taken Matrix id) run before anything is written,
//! so a refused request leaves nothing behind in the shared transaction.

use brygga_core::{AdapterKind, Ghost, LinkedAccount, MatrixUserId, Portal, StoreError, TenantId};
use sqlx::AnyConnection;

use crate::ops::{Applied, Reply, TenantRow};

/// Every table with a `tenant` column, children before parents.
const TENANT_TABLES: [&str; 10] = [
    "DELETE FROM admin_tokens WHERE tenant = $1",
    "DELETE FROM tenant_leases WHERE tenant = $1",
    "DELETE FROM adapter_state WHERE tenant = $1",
    "DELETE FROM message_map WHERE tenant = $1",
    "DELETE FROM outbox WHERE tenant = $1",
    "DELETE FROM incoming_transactions WHERE tenant = $1",
    "DELETE FROM linked_accounts WHERE tenant = $1",
    "DELETE FROM ghosts WHERE tenant = $1",
    "DELETE FROM portals WHERE tenant = $1",
    "DELETE FROM adapter_configs WHERE tenant = $1",
];

pub(crate) async fn upsert_tenant(conn: &mut AnyConnection, row: &TenantRow, now: i64) -> Applied {
    sqlx::query(
        "INSERT INTO tenants (id, display_name, settings, suspended, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, settings = excluded.settings, \
         suspended = excluded.suspended, updated_at = excluded.updated_at",
    )
    .bind(row.id.as_str())
    .bind(row.display_name.as_str())
    .bind(row.settings.as_str())
    .bind(row.suspended)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn remove_tenant(conn: &mut AnyConnection, id: &TenantId) -> Applied {
    for sql in TENANT_TABLES {
        sqlx::query(sql).bind(id.as_str()).execute(&mut *conn).await?;
    }
    let done = sqlx::query("DELETE FROM tenants WHERE id = $1").bind(id.as_str()).execute(conn).await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

async fn tenant_exists(conn: &mut AnyConnection, id: &TenantId) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM tenants WHERE id = $1").bind(id.as_str()).fetch_optional(conn).await?;
    Ok(row.is_some())
}

pub(crate) async fn put_admin_token(conn: &mut AnyConnection, token: &brygga_core::AdminToken) -> Applied {
    if !tenant_exists(conn, &token.tenant).await? {
        return Ok(Err(StoreError::NotFound(format!("tenant {} does not exist", token.tenant))));
    }
    sqlx::query("INSERT INTO admin_tokens (id, tenant, hash, label, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&token.id)
        .bind(token.tenant.as_str())
        .bind(&token.hash)
        .bind(token.label.as_deref())
        .bind(token.created_at)
        .execute(conn)
        .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn remove_admin_token(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Applied {
    let done = sqlx::query("DELETE FROM admin_tokens WHERE tenant = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

pub(crate) async fn put_adapter_config(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    kind: &AdapterKind,
    enabled: bool,
    config: &str,
    now: i64,
) -> Applied {
    if !tenant_exists(conn, tenant).await? {
        return Ok(Err(StoreError::NotFound(format!(
            "tenant {tenant} does not exist; create it before configuring its {kind} adapter"
        ))));
    }
    sqlx::query(
        "INSERT INTO adapter_configs (tenant, kind, enabled, config, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant, kind) DO UPDATE SET enabled = excluded.enabled, config = excluded.config, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(kind.as_str())
    .bind(enabled)
    .bind(config)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn set_adapter_enabled(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    kind: &AdapterKind,
    enabled: bool,
    now: i64,
) -> Applied {
    let done = sqlx::query("UPDATE adapter_configs SET enabled = $3, updated_at = $4 WHERE tenant = $1 AND kind = $2")
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(enabled)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

pub(crate) async fn upsert_ghost(conn: &mut AnyConnection, ghost: &Ghost, now: i64) -> Applied {
    let owner = sqlx::query("SELECT tenant, kind, remote_user FROM ghosts WHERE user_id = $1")
        .bind(ghost.user_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = owner {
        use sqlx::Row;
        let same = row.try_get::<String, _>("tenant")? == ghost.tenant.as_str()
            && row.try_get::<String, _>("kind")? == ghost.kind.as_str()
            && row.try_get::<String, _>("remote_user")? == ghost.remote_user.as_str();
        if !same {
            return Ok(Err(StoreError::Conflict(format!(
                "Matrix user {} is already the ghost of another remote user",
                ghost.user_id
            ))));
        }
    }
    sqlx::query(
        "INSERT INTO ghosts (tenant, kind, remote_user, user_id, display_name, avatar_mxc, avatar_source, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant, kind, remote_user) DO UPDATE SET user_id = excluded.user_id, \
         display_name = excluded.display_name, avatar_mxc = excluded.avatar_mxc, \
         avatar_source = excluded.avatar_source, updated_at = excluded.updated_at",
    )
    .bind(ghost.tenant.as_str())
    .bind(ghost.kind.as_str())
    .bind(ghost.remote_user.as_str())
    .bind(ghost.user_id.as_str())
    .bind(ghost.display_name.as_deref())
    .bind(ghost.avatar_mxc.as_deref())
    .bind(ghost.avatar_source.as_deref())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn link_account(conn: &mut AnyConnection, account: &LinkedAccount, now: i64) -> Applied {
    sqlx::query(
        "INSERT INTO linked_accounts (tenant, kind, matrix_user, remote_user, credentials, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant, kind, matrix_user) DO UPDATE SET remote_user = excluded.remote_user, \
         credentials = excluded.credentials, updated_at = excluded.updated_at",
    )
    .bind(account.tenant.as_str())
    .bind(account.kind.as_str())
    .bind(account.matrix_user.as_str())
    .bind(account.remote_user.as_str())
    .bind(account.credentials.as_deref())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn unlink_account(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    kind: &AdapterKind,
    user: &MatrixUserId,
) -> Applied {
    let done = sqlx::query("DELETE FROM linked_accounts WHERE tenant = $1 AND kind = $2 AND matrix_user = $3")
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(user.as_str())
        .execute(conn)
        .await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

pub(crate) async fn remove_portal(conn: &mut AnyConnection, key: &brygga_core::PortalKey) -> Applied {
    let done = sqlx::query("DELETE FROM portals WHERE tenant = $1 AND kind = $2 AND room = $3")
        .bind(key.tenant.as_str())
        .bind(key.kind.as_str())
        .bind(key.room.as_str())
        .execute(conn)
        .await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

pub(crate) async fn upsert_portal(conn: &mut AnyConnection, portal: &Portal, now: i64) -> Applied {
    let key = &portal.key;
    if !tenant_exists(conn, &key.tenant).await? {
        return Ok(Err(StoreError::NotFound(format!(
            "tenant {} does not exist; create it before adding portal {key}",
            key.tenant
        ))));
    }
    if let Some(room_id) = &portal.room_id {
        let holder = sqlx::query("SELECT tenant, kind, room FROM portals WHERE room_id = $1")
            .bind(room_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = holder {
            let other = crate::codec::portal_key(&row);
            if other.as_ref().map_or(true, |other| other != key) {
                return Ok(Err(StoreError::Conflict(format!(
                    "Matrix room {room_id} already belongs to another portal"
                ))));
            }
        }
    }
    sqlx::query(
        "INSERT INTO portals (tenant, kind, room, room_id, name, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant, kind, room) DO UPDATE SET room_id = excluded.room_id, name = excluded.name, \
         updated_at = excluded.updated_at",
    )
    .bind(key.tenant.as_str())
    .bind(key.kind.as_str())
    .bind(key.room.as_str())
    .bind(portal.room_id.as_ref().map(|r| r.as_str()))
    .bind(portal.name.as_deref())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn put_state(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    kind: &AdapterKind,
    key: &str,
    value: Option<&str>,
    now: i64,
) -> Applied {
    let query = match value {
        Some(value) => sqlx::query(
            "INSERT INTO adapter_state (tenant, kind, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, kind, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(key)
        .bind(value)
        .bind(now),
        None => sqlx::query("DELETE FROM adapter_state WHERE tenant = $1 AND kind = $2 AND key = $3")
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(key),
    };
    query.execute(conn).await?;
    Ok(Ok(Reply::Unit))
}
