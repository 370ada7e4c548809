//! Writes of the outbox, incoming transactions and the message map, inside
//! the writer's batch transaction.

use std::collections::BTreeSet;

use brygga_core::{MessageMapping, NewOutboxEntry, StoreError, TxnOutcome};
use sqlx::{AnyConnection, Row};

use crate::codec::clip;
use crate::writer::{Applied, Reply};

/// Inserts one entry; `None` when its dedupe key was used before (the unique
/// key outlives delivery because delivered rows are kept without payload).
pub(crate) async fn enqueue(conn: &mut AnyConnection, entry: &NewOutboxEntry, now: i64) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO outbox (tenant, kind, room, direction, dedupe_key, payload, status, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
         ON CONFLICT (tenant, direction, dedupe_key) DO NOTHING RETURNING seq",
    )
    .bind(entry.portal.tenant.as_str())
    .bind(entry.portal.kind.as_str())
    .bind(entry.portal.room.as_str())
    .bind(entry.direction.as_str())
    .bind(entry.dedupe_key.as_str())
    .bind(entry.payload.as_str())
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get::<i64, _>("seq")).transpose()
}

/// A transaction id already recorded for any tenant is a replay. Entries are
/// inserted in order, so entries of one portal keep their relative order.
pub(crate) async fn ingest(conn: &mut AnyConnection, txn_id: &str, entries: &[NewOutboxEntry], now: i64) -> Applied {
    let seen = sqlx::query("SELECT tenant FROM incoming_transactions WHERE txn_id = $1 LIMIT 1")
        .bind(txn_id)
        .fetch_optional(&mut *conn)
        .await?;
    if seen.is_some() {
        return Ok(Ok(Reply::Txn(TxnOutcome::Replayed)));
    }
    let tenants: BTreeSet<&str> = entries.iter().map(|e| e.portal.tenant.as_str()).collect();
    for tenant in tenants {
        sqlx::query(
            "INSERT INTO incoming_transactions (tenant, txn_id, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant, txn_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(txn_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for entry in entries {
        enqueue(conn, entry, now).await?;
    }
    Ok(Ok(Reply::Txn(TxnOutcome::New)))
}

/// Marks an entry delivered, drops its payload and stores its mappings.
/// Mappings must be of the entry's tenant; that is checked before writing.
pub(crate) async fn complete(conn: &mut AnyConnection, seq: i64, mappings: &[MessageMapping], now: i64) -> Applied {
    let tenant = match mappings.first() {
        Some(first) => {
            let tenant = &first.portal.tenant;
            if mappings.iter().any(|m| &m.portal.tenant != tenant) {
                return Ok(Err(StoreError::Conflict(format!(
                    "outbox entry {seq}: mappings span several tenants"
                ))));
            }
            Some(tenant.as_str())
        }
        None => None,
    };
    // With mappings, the tenant is part of the WHERE clause, so a mapping of
    // another tenant updates nothing and is refused below.
    let done = sqlx::query(
        "UPDATE outbox SET status = 'done', payload = NULL, updated_at = $2 \
         WHERE seq = $1 AND ($3 IS NULL OR tenant = $3)",
    )
    .bind(seq)
    .bind(now)
    .bind(tenant)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(Err(missing_or_foreign(conn, seq).await?));
    }
    for m in mappings {
        sqlx::query(
            "INSERT INTO message_map (tenant, kind, room, remote_id, part, matrix_event, map_kind, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(m.portal.tenant.as_str())
        .bind(m.portal.kind.as_str())
        .bind(m.portal.room.as_str())
        .bind(m.remote_id.as_str())
        .bind(i64::from(m.part))
        .bind(m.matrix_event.as_str())
        .bind(m.kind.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Ok(Reply::Unit))
}

async fn missing_or_foreign(conn: &mut AnyConnection, seq: i64) -> Result<StoreError, sqlx::Error> {
    let exists = sqlx::query("SELECT seq FROM outbox WHERE seq = $1")
        .bind(seq)
        .fetch_optional(conn)
        .await?;
    Ok(if exists.is_some() {
        StoreError::Conflict(format!("outbox entry {seq} belongs to another tenant than its mappings"))
    } else {
        StoreError::NotFound(format!("outbox entry {seq} does not exist"))
    })
}

async fn not_found_unless_exists(conn: &mut AnyConnection, seq: i64) -> Applied {
    let exists = sqlx::query("SELECT seq FROM outbox WHERE seq = $1")
        .bind(seq)
        .fetch_optional(conn)
        .await?;
    Ok(match exists {
        // Delivered or dead-lettered already: nothing left to record.
        Some(_) => Ok(Reply::Unit),
        None => Err(StoreError::NotFound(format!("outbox entry {seq} does not exist"))),
    })
}

/// Counts a failed attempt of a pending entry.
pub(crate) async fn record_failure(conn: &mut AnyConnection, seq: i64, error: &str, now: i64) -> Applied {
    let done = sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, updated_at = $3 \
         WHERE seq = $1 AND status = 'pending'",
    )
    .bind(seq)
    .bind(clip(error))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return not_found_unless_exists(conn, seq).await;
    }
    Ok(Ok(Reply::Unit))
}

/// Parks a pending entry as failed; its payload stays for inspection.
pub(crate) async fn dead_letter(conn: &mut AnyConnection, seq: i64, error: &str, now: i64) -> Applied {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3 WHERE seq = $1 AND status = 'pending'",
    )
    .bind(seq)
    .bind(clip(error))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return not_found_unless_exists(conn, seq).await;
    }
    Ok(Ok(Reply::Unit))
}
