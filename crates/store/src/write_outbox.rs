//! Writes of the outbox, incoming transactions and the message map, inside
//! the writer's batch transaction.

use std::collections::{BTreeSet, HashMap};

use brygga_core::{NewOutboxEntry, StoreError, TxnOutcome};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::batch::Placeholders;
use crate::codec::clip;
use crate::feed::FirstInsert;
use crate::ops::{Applied, Reply};
use crate::options::Backend;

/// Inserts entries in order (so seq follows their order) and returns each
/// one's seq, or `None` when its dedupe key was used before, by an earlier
/// row or an earlier entry of the same call. The unique key outlives
/// delivery because delivered rows are kept, without payload. Each row also
/// reports the highest seq below it, noted in `first` for the commit feed.
pub(crate) async fn enqueue_many(
    conn: &mut AnyConnection,
    backend: Backend,
    entries: &[&NewOutboxEntry],
    now: i64,
    first: &mut FirstInsert,
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<[&str; 6]> = entries
        .iter()
        .map(|e| {
            let p = &e.portal;
            [p.tenant.as_str(), p.kind.as_str(), p.room.as_str(), e.direction.as_str(), &e.dedupe_key, &e.payload]
        })
        .collect();
    let mut ph = Placeholders::new(backend);
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON.
    let sql = format!(
        "INSERT INTO outbox (tenant, kind, room, direction, dedupe_key, payload, created_at, updated_at, \
         status, attempts) SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
         j.value ->> 5, {}, {}, 'pending', 0 FROM {} WHERE true ORDER BY j.key \
         ON CONFLICT (tenant, direction, dedupe_key) DO NOTHING RETURNING seq, tenant, direction, dedupe_key, \
         (SELECT COALESCE(MAX(o.seq), 0) FROM outbox AS o WHERE o.seq < outbox.seq) AS prev",
        ph.one(),
        ph.one(),
        ph.json_rows()
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(now).bind(to_json(&rows)).fetch_all(&mut *conn).await?;
    let mut inserted: HashMap<(String, String, String), i64> = HashMap::with_capacity(rows.len());
    for row in rows {
        let key = (row.try_get("tenant")?, row.try_get("direction")?, row.try_get("dedupe_key")?);
        let seq = row.try_get::<i64, _>("seq")?;
        first.note(seq, row.try_get::<i64, _>("prev")?);
        inserted.insert(key, seq);
    }
    // The first entry with a key is the one whose row was inserted; later
    // duplicates find the key already taken.
    Ok(entries
        .iter()
        .map(|e| {
            let key = (e.portal.tenant.to_string(), e.direction.as_str().to_owned(), e.dedupe_key.clone());
            inserted.remove(&key)
        })
        .collect())
}

/// One statement parameter holding a whole batch of rows.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(rows: &T) -> String {
    serde_json::to_string(rows).expect("plain rows always serialize")
}

/// A transaction id already recorded for any tenant is a replay. Entries are
/// inserted in order, so entries of one portal keep their relative order.
pub(crate) async fn ingest(
    conn: &mut AnyConnection,
    backend: Backend,
    txn_id: &str,
    entries: &[NewOutboxEntry],
    now: i64,
    first: &mut FirstInsert,
) -> Applied {
    let seen = sqlx::query("SELECT tenant FROM incoming_transactions WHERE txn_id = $1 LIMIT 1")
        .bind(txn_id)
        .fetch_optional(&mut *conn)
        .await?;
    if seen.is_some() {
        return Ok(Ok(Reply::Txn(TxnOutcome::Replayed, Vec::new())));
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
    let refs: Vec<&NewOutboxEntry> = entries.iter().collect();
    let seqs = enqueue_many(conn, backend, &refs, now, first).await?;
    Ok(Ok(Reply::Txn(TxnOutcome::New, seqs)))
}

async fn not_found_unless_exists(conn: &mut AnyConnection, seq: i64) -> Applied {
    let exists = sqlx::query("SELECT seq FROM outbox WHERE seq = $1").bind(seq).fetch_optional(conn).await?;
    Ok(match exists {
        // Delivered or dead-lettered already: nothing left to record.
        Some(_) => Ok(Reply::Unit),
        None => Err(StoreError::NotFound(format!("outbox entry {seq} does not exist"))),
    })
}

/// Counts a failed attempt of a pending entry.
pub(crate) async fn record_failure(conn: &mut AnyConnection, seq: i64, error: &str, now: i64) -> Applied {
    let sql = "UPDATE outbox SET attempts = attempts + 1, last_error = $2, updated_at = $3 \
               WHERE seq = $1 AND status = 'pending'";
    update_pending(conn, sql, seq, error, now).await
}

/// Parks a pending entry as failed; its payload stays for inspection.
pub(crate) async fn dead_letter(conn: &mut AnyConnection, seq: i64, error: &str, now: i64) -> Applied {
    let sql = "UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3 \
               WHERE seq = $1 AND status = 'pending'";
    update_pending(conn, sql, seq, error, now).await
}

/// Runs an update of a pending entry (binding seq, error, now); an entry no
/// longer pending is left alone, an unknown one is `NotFound`.
async fn update_pending(conn: &mut AnyConnection, sql: &'static str, seq: i64, error: &str, now: i64) -> Applied {
    let done = sqlx::query(sql).bind(seq).bind(clip(error)).bind(now).execute(&mut *conn).await?;
    if done.rows_affected() == 0 {
        return not_found_unless_exists(conn, seq).await;
    }
    Ok(Ok(Reply::Unit))
}
