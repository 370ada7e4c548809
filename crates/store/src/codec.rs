//! Turning rows into domain records and sqlx errors into `StoreError`s.
//! Error messages never include payloads or configs, only ids and reasons.

use std::time::{SystemTime, UNIX_EPOCH};

use brygga_core::{
    AdapterConfig, AdapterKind, Direction, Ghost, InvalidId, LinkedAccount, MappingKind, MatrixEventId, MatrixRoomId,
    MatrixUserId, MessageMapping, OutboxEntry, Portal, PortalKey, RemoteMessageId, RemoteRoomId, RemoteUserId,
    StoreError, Tenant, TenantId, TenantSettings,
};
use sqlx::Row;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

/// Unix time in milliseconds, for the bookkeeping columns.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Maps a sqlx error; `context` names the operation.
pub(crate) fn db_err(context: &str, err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(format!("{context}: {}", db.message())),
            ErrorKind::ForeignKeyViolation => {
                StoreError::NotFound(format!("{context}: a referenced row does not exist ({})", db.message()))
            }
            _ => StoreError::Database(format!("{context}: {}", db.message())),
        },
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
            StoreError::Corrupt(format!("{context}: {err}"))
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Database(format!("{context}: timed out waiting for a database connection"))
        }
        sqlx::Error::PoolClosed => StoreError::Database(format!("{context}: the store is closed")),
        _ => StoreError::Database(format!("{context}: {err}")),
    }
}

fn corrupt(column: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {err}"))
}

pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String, StoreError> {
    row.try_get::<String, _>(column).map_err(|e| corrupt(column, e))
}

pub(crate) fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(column, e))
}

pub(crate) fn int(row: &AnyRow, column: &str) -> Result<i64, StoreError> {
    row.try_get::<i64, _>(column).map_err(|e| corrupt(column, e))
}

/// Flags are INTEGER on SQLite and BOOLEAN on PostgreSQL.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    match row.try_get::<i64, _>(column) {
        Ok(v) => Ok(v != 0),
        Err(_) => row.try_get::<bool, _>(column).map_err(|e| corrupt(column, e)),
    }
}

pub(crate) fn id<T>(row: &AnyRow, column: &str, make: fn(String) -> Result<T, InvalidId>) -> Result<T, StoreError> {
    make(text(row, column)?).map_err(|e| corrupt(column, e))
}

fn opt_id<T>(row: &AnyRow, column: &str, make: fn(String) -> Result<T, InvalidId>) -> Result<Option<T>, StoreError> {
    opt_text(row, column)?.map(make).transpose().map_err(|e| corrupt(column, e))
}

fn small(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    u32::try_from(int(row, column)?).map_err(|e| corrupt(column, e))
}

pub(crate) fn tenant_id(row: &AnyRow, column: &str) -> Result<TenantId, StoreError> {
    id(row, column, TenantId::new)
}

pub(crate) fn portal_key(row: &AnyRow) -> Result<PortalKey, StoreError> {
    Ok(PortalKey::new(
        tenant_id(row, "tenant")?,
        id(row, "kind", AdapterKind::new)?,
        id(row, "room", RemoteRoomId::new)?,
    ))
}

pub(crate) fn direction(row: &AnyRow) -> Result<Direction, StoreError> {
    let value = text(row, "direction")?;
    Direction::parse(&value).ok_or_else(|| corrupt("direction", format!("unknown direction {value:?}")))
}

pub(crate) fn tenant(row: &AnyRow) -> Result<Tenant, StoreError> {
    let settings: TenantSettings = serde_json::from_str(&text(row, "settings")?)
        .map_err(|e| corrupt("settings", format!("not valid tenant settings: {e}")))?;
    let mut tenant = Tenant::new(tenant_id(row, "id")?, text(row, "display_name")?);
    tenant.settings = settings;
    tenant.suspended = flag(row, "suspended")?;
    Ok(tenant)
}

pub(crate) fn adapter_config(row: &AnyRow) -> Result<AdapterConfig, StoreError> {
    // serde_json's error names a position, never the secret it choked on.
    let config = serde_json::from_str(&text(row, "config")?)
        .map_err(|e| corrupt("config", format!("not valid JSON (line {}, column {})", e.line(), e.column())))?;
    Ok(AdapterConfig::new(tenant_id(row, "tenant")?, id(row, "kind", AdapterKind::new)?, flag(row, "enabled")?, config))
}

pub(crate) fn ghost(row: &AnyRow) -> Result<Ghost, StoreError> {
    let mut ghost = Ghost::new(
        tenant_id(row, "tenant")?,
        id(row, "kind", AdapterKind::new)?,
        id(row, "remote_user", RemoteUserId::new)?,
        id(row, "user_id", MatrixUserId::new)?,
    );
    ghost.display_name = opt_text(row, "display_name")?;
    ghost.avatar_mxc = opt_text(row, "avatar_mxc")?;
    ghost.avatar_source = opt_text(row, "avatar_source")?;
    Ok(ghost)
}

pub(crate) fn linked_account(row: &AnyRow) -> Result<LinkedAccount, StoreError> {
    let mut account = LinkedAccount::new(
        tenant_id(row, "tenant")?,
        id(row, "kind", AdapterKind::new)?,
        id(row, "matrix_user", MatrixUserId::new)?,
        id(row, "remote_user", RemoteUserId::new)?,
    );
    account.credentials = opt_text(row, "credentials")?;
    Ok(account)
}

pub(crate) fn admin_token(row: &AnyRow) -> Result<brygga_core::AdminToken, StoreError> {
    let mut token = brygga_core::AdminToken::new(
        text(row, "id")?,
        tenant_id(row, "tenant")?,
        text(row, "hash")?,
        int(row, "created_at")?,
    );
    token.label = opt_text(row, "label")?;
    Ok(token)
}

pub(crate) fn portal(row: &AnyRow) -> Result<Portal, StoreError> {
    let mut portal = Portal::new(portal_key(row)?);
    portal.room_id = opt_id(row, "room_id", MatrixRoomId::new)?;
    portal.name = opt_text(row, "name")?;
    Ok(portal)
}

pub(crate) fn mapping(row: &AnyRow) -> Result<MessageMapping, StoreError> {
    let kind = text(row, "map_kind")?;
    let kind = MappingKind::parse(&kind).ok_or_else(|| corrupt("map_kind", format!("unknown kind {kind:?}")))?;
    Ok(MessageMapping::new(
        portal_key(row)?,
        id(row, "matrix_event", MatrixEventId::new)?,
        id(row, "remote_id", RemoteMessageId::new)?,
        small(row, "part")?,
        kind,
    ))
}

pub(crate) fn outbox_entry(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    let seq = int(row, "seq")?;
    let payload = opt_text(row, "payload")?
        .ok_or_else(|| StoreError::Corrupt(format!("pending outbox entry {seq} has no payload")))?;
    Ok(OutboxEntry::new(
        seq,
        direction(row)?,
        portal_key(row)?,
        text(row, "dedupe_key")?,
        payload,
        small(row, "attempts")?,
    )
    .stored(int(row, "created_at")?))
}

/// Caps a stored error text (errors can embed long server answers).
pub(crate) fn clip(error: &str) -> String {
    const MAX: usize = 2000;
    if error.len() <= MAX {
        return error.to_owned();
    }
    let mut end = MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}
