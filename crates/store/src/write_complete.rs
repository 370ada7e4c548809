//! Marking delivered outbox entries done, with their message-map rows,
//! inside the writer's batch transaction.
//!
//! A complete is refused when its entry does not exist or when a mapping
//! names another tenant than the entry's. Each entry therefore claims the
//! tenant its mappings name, and the UPDATE marks only entries that exist
//! under the claimed tenant. When its row count shows that every claim held
//! (the normal case), all mappings are inserted and nothing is read; only
//! otherwise are the owners read, to insert the mappings of the accepted
//! entries and tell refused callers why.

use std::collections::{BTreeSet, HashMap};

use brygga_core::{MessageMapping, StoreError, StoreResult};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::batch::Placeholders;
use crate::ops::Reply;
use crate::options::Backend;
use crate::write_outbox::to_json;

/// The tenant an entry's mappings name: `Some(None)` without mappings,
/// `None` when they disagree (refused whoever owns the entry).
fn claim(mappings: &[MessageMapping]) -> Option<Option<&str>> {
    let mut tenants = mappings.iter().map(|m| m.portal.tenant.as_str());
    let Some(first) = tenants.next() else { return Some(None) };
    tenants.all(|t| t == first).then_some(Some(first))
}

/// Marks entries delivered, drops their payloads and stores their mappings
/// (ignoring mappings already stored). Completing twice is harmless.
pub(crate) async fn complete_many(
    conn: &mut AnyConnection,
    backend: Backend,
    items: &[(i64, &[MessageMapping])],
    now: i64,
) -> Result<Vec<StoreResult<Reply>>, sqlx::Error> {
    let mut claims: BTreeSet<(i64, Option<&str>)> = BTreeSet::new();
    let mut mappings: Vec<&MessageMapping> = Vec::new();
    let mut disputed = false;
    for (seq, maps) in items {
        match claim(maps) {
            Some(tenant) => {
                claims.insert((*seq, tenant));
                mappings.extend(maps.iter());
            }
            None => disputed = true,
        }
    }
    let updated = mark_done(conn, backend, &claims, now).await?;
    // One row per claim means every claim held: one per distinct seq, no
    // seq claimed for two tenants, none missing or owned by another tenant.
    if !disputed && updated == claims.len() as u64 {
        insert_mappings(conn, backend, &mappings, now).await?;
        return Ok(items.iter().map(|_| Ok(Reply::Unit)).collect());
    }
    let mut seqs: Vec<i64> = items.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let owners = owners(conn, backend, &to_json(&seqs)).await?;
    let mut accepted = Vec::new();
    let answers = items
        .iter()
        .map(|(seq, maps)| match refusal(*seq, maps, &owners) {
            Some(err) => Err(err),
            None => {
                accepted.extend(maps.iter());
                Ok(Reply::Unit)
            }
        })
        .collect();
    insert_mappings(conn, backend, &accepted, now).await?;
    Ok(answers)
}

/// Marks done the entries that exist under their claimed tenant; returns
/// how many rows it changed.
async fn mark_done(
    conn: &mut AnyConnection,
    backend: Backend,
    claims: &BTreeSet<(i64, Option<&str>)>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    if claims.is_empty() {
        return Ok(0);
    }
    let mut ph = Placeholders::new(backend);
    let sql = format!(
        "UPDATE outbox SET status = 'done', payload = NULL, updated_at = {} FROM {} \
         WHERE outbox.seq = CAST(j.value ->> 0 AS BIGINT) AND (j.value ->> 1 IS NULL OR outbox.tenant = j.value ->> 1)",
        ph.one(),
        ph.json_rows()
    );
    let claims: Vec<&(i64, Option<&str>)> = claims.iter().collect();
    let done = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(to_json(&claims)).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

/// Inserts mappings, ignoring those already stored.
async fn insert_mappings(
    conn: &mut AnyConnection,
    backend: Backend,
    mappings: &[&MessageMapping],
    now: i64,
) -> Result<(), sqlx::Error> {
    if mappings.is_empty() {
        return Ok(());
    }
    let rows: Vec<(&str, &str, &str, &str, u32, &str, &str)> = mappings
        .iter()
        .map(|m| {
            let p = &m.portal;
            let (event, kind) = (m.matrix_event.as_str(), m.kind.as_str());
            (p.tenant.as_str(), p.kind.as_str(), p.room.as_str(), m.remote_id.as_str(), m.part, event, kind)
        })
        .collect();
    let mut ph = Placeholders::new(backend);
    let sql = format!(
        "INSERT INTO message_map (tenant, kind, room, remote_id, part, matrix_event, map_kind, created_at) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, CAST(j.value ->> 4 AS BIGINT), \
         j.value ->> 5, j.value ->> 6, {} FROM {} WHERE true ON CONFLICT DO NOTHING",
        ph.one(),
        ph.json_rows()
    );
    sqlx::query(AssertSqlSafe(sql)).bind(now).bind(to_json(&rows)).execute(&mut *conn).await?;
    Ok(())
}

/// The tenant of an outbox row per seq, for the seqs that exist.
async fn owners(
    conn: &mut AnyConnection,
    backend: Backend,
    seqs_json: &str,
) -> Result<HashMap<i64, String>, sqlx::Error> {
    let sql = format!(
        "SELECT seq, tenant FROM outbox WHERE seq IN (SELECT CAST(j.value AS BIGINT) FROM {})",
        Placeholders::new(backend).json_rows()
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(seqs_json).fetch_all(&mut *conn).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("tenant")?);
    }
    Ok(found)
}

/// Why a complete was refused.
fn refusal(seq: i64, mappings: &[MessageMapping], owners: &HashMap<i64, String>) -> Option<StoreError> {
    let Some(owner) = owners.get(&seq) else {
        return Some(StoreError::NotFound(format!("outbox entry {seq} does not exist")));
    };
    if mappings.iter().any(|m| m.portal.tenant.as_str() != owner) {
        return Some(StoreError::Conflict(format!(
            "outbox entry {seq} belongs to tenant {owner}; its mappings must too"
        )));
    }
    None
}
