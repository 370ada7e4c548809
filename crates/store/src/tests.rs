//! SQLite-specific behaviour: pragmas, the group-commit writer, several
//! stores on one file. Trait behaviour on both backends is covered by the
//! conformance suite in the `brygga-e2e` crate.

use std::time::Instant;

use brygga_core::{
    AdapterKind, Direction, MappingKind, MatrixEventId, MessageMapping, NewOutboxEntry, PortalKey, RemoteMessageId,
    RemoteRoomId, Store, StoreError, Tenant, TenantId,
};
use sqlx::Row;

use crate::{SqlStore, StoreOptions, Synchronous};

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("brygga.db").display())
}

fn portal(room: &str) -> PortalKey {
    PortalKey::new(TenantId::new("fk").unwrap(), AdapterKind::new("xmpp").unwrap(), RemoteRoomId::new(room).unwrap())
}

fn entry(room: &str, key: &str) -> NewOutboxEntry {
    NewOutboxEntry::new(Direction::ToRemote, portal(room), key, format!("payload {key}"))
}

/// Starts `n` enqueues as spawned tasks so they all reach the writer's
/// channel before it runs (on a current-thread runtime), then awaits them.
async fn enqueue_concurrently(store: &SqlStore, n: usize, prefix: &str) -> Vec<Result<Option<i64>, StoreError>> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            let e = entry("room", &format!("{prefix}-{i}"));
            tokio::spawn(async move { store.enqueue(e).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn pragma(store: &SqlStore, name: &'static str, on_writer: bool) -> String {
    let sql = match name {
        "synchronous" => "PRAGMA synchronous",
        "journal_mode" => "PRAGMA journal_mode",
        _ => "PRAGMA query_only",
    };
    let pool = if on_writer { &store.inner.write } else { &store.inner.read };
    let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
    row.try_get::<i64, _>(0).map(|v| v.to_string()).or_else(|_| row.try_get::<String, _>(0)).unwrap()
}

#[tokio::test]
async fn sqlite_uses_wal_and_full_sync_by_default_and_url_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert_eq!(pragma(&store, "journal_mode", true).await, "wal");
    assert_eq!(pragma(&store, "synchronous", true).await, "2", "FULL is 2");
    assert_eq!(pragma(&store, "query_only", false).await, "1", "readers must not write");
    drop(store);

    let store = SqlStore::connect(&format!("{}?synchronous=normal", url(&dir))).await.unwrap();
    assert_eq!(pragma(&store, "synchronous", true).await, "1", "NORMAL is 1");
    let opts = StoreOptions::default().synchronous(Synchronous::Off);
    let store = SqlStore::connect_with(&url(&dir), opts).await.unwrap();
    assert_eq!(pragma(&store, "synchronous", true).await, "0", "OFF is 0");
}

#[tokio::test]
async fn reader_connections_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    let err = sqlx::query("DELETE FROM tenants").execute(&store.inner.read).await.unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[tokio::test]
async fn concurrent_writes_share_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    let before = store.write_stats();
    let seqs = enqueue_concurrently(&store, 200, "k").await;
    let after = store.write_stats();
    assert_eq!(after.requests - before.requests, 200);
    assert!(
        after.transactions - before.transactions <= 3,
        "200 waiting requests should commit in very few transactions, took {}",
        after.transactions - before.transactions
    );
    // Seq follows submission order within the batch: spawned tasks ran in order.
    let seqs: Vec<i64> = seqs.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[tokio::test]
async fn max_batch_bounds_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect_with(&url(&dir), StoreOptions::default().max_batch(8)).await.unwrap();
    let before = store.write_stats();
    let results = enqueue_concurrently(&store, 100, "b").await;
    assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))));
    let used = store.write_stats().transactions - before.transactions;
    assert!(used >= 13, "100 requests in batches of at most 8 need at least 13 commits, used {used}");
}

#[tokio::test]
async fn a_failing_request_does_not_fail_its_batch_mates() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            if i == 20 {
                s.write_raw_for_test("INSERT INTO no_such_table VALUES (1)").await.map(|_| None)
            } else {
                s.enqueue(entry("room", &format!("f-{i}"))).await
            }
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    for (i, r) in results.iter().enumerate() {
        if i == 20 {
            assert!(matches!(r, Err(StoreError::Database(m)) if m.contains("no_such_table")), "{r:?}");
        } else {
            assert!(matches!(r, Ok(Some(_))), "request {i}: {r:?}");
        }
    }
    assert_eq!(store.write_stats().split_batches, 1);
    let stored = store.pending(&portal("room"), Direction::ToRemote, 0, 100).await.unwrap();
    assert_eq!(stored.len(), 39);
}

#[tokio::test]
async fn committed_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqlStore::connect(&url(&dir)).await.unwrap();
        store.upsert_tenant(&Tenant::new(TenantId::new("fk").unwrap(), "FK")).await.unwrap();
        store.enqueue(entry("room", "persist")).await.unwrap();
        store.close().await;
    }
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    assert!(store.tenant(&TenantId::new("fk").unwrap()).await.unwrap().is_some());
    let pending = store.pending(&portal("room"), Direction::ToRemote, 0, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, "payload persist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_both_write_without_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqlStore::connect(&url(&dir)).await.unwrap();
    let b = SqlStore::connect(&url(&dir)).await.unwrap();
    let (ra, rb) = tokio::join!(enqueue_concurrently(&a, 150, "a"), enqueue_concurrently(&b, 150, "b"));
    assert!(ra.iter().chain(rb.iter()).all(|r| matches!(r, Ok(Some(_)))));
    let all = a.pending(&portal("room"), Direction::ToRemote, 0, 1000).await.unwrap();
    assert_eq!(all.len(), 300);
}

#[tokio::test]
async fn close_commits_queued_writes_then_refuses_more() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    // join! polls in order: both enqueues are queued before the close.
    let (a, b, ()) =
        tokio::join!(store.enqueue(entry("room", "before-1")), store.enqueue(entry("room", "before-2")), store.close());
    assert!(matches!(a, Ok(Some(_))) && matches!(b, Ok(Some(_))), "{a:?} {b:?}");
    let err = store.enqueue(entry("room", "late")).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(store.tenants().await.is_err(), "reads fail too");

    let reopened = SqlStore::connect(&url(&dir)).await.unwrap();
    let keys: Vec<_> = reopened
        .pending(&portal("room"), Direction::ToRemote, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.dedupe_key)
        .collect();
    assert_eq!(keys, ["before-1", "before-2"]);
}

#[tokio::test]
async fn migrate_on_a_running_store_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    store.enqueue(entry("room", "x")).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.enqueue(entry("room", "y")).await.unwrap().map(|s| s > 0), Some(true));
    let applied = sqlx::query("SELECT count(*) AS n FROM _sqlx_migrations").fetch_one(&store.inner.read).await.unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite")).unwrap().count();
    assert_eq!(applied.try_get::<i64, _>("n").unwrap(), files as i64, "each migration applied once");
}

/// Delivered entries keep no message body; dead letters keep theirs for
/// inspection, with the reason.
#[tokio::test]
async fn delivery_drops_the_payload_and_failures_keep_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url(&dir)).await.unwrap();
    let done = store.enqueue(entry("room", "done")).await.unwrap().unwrap();
    let dead = store.enqueue(entry("room", "dead")).await.unwrap().unwrap();
    store.record_failure(dead, "timeout").await.unwrap();
    store.complete(done, Vec::new()).await.unwrap();
    store.dead_letter(dead, "HTTP 400").await.unwrap();
    let rows = sqlx::query("SELECT seq, status, payload, attempts, last_error FROM outbox ORDER BY seq")
        .fetch_all(&store.inner.read)
        .await
        .unwrap();
    let row = |i: usize| {
        let r = &rows[i];
        (
            r.try_get::<String, _>("status").unwrap(),
            r.try_get::<Option<String>, _>("payload").unwrap(),
            r.try_get::<i64, _>("attempts").unwrap(),
            r.try_get::<Option<String>, _>("last_error").unwrap(),
        )
    };
    assert_eq!(row(0), ("done".into(), None, 0, None));
    assert_eq!(row(1), ("failed".into(), Some("payload dead".into()), 1, Some("HTTP 400".into())));
}

/// Throughput of enqueue+complete pairs (each complete storing one mapping)
/// from many concurrent callers, with the default `synchronous=FULL`.
/// `cargo test -p brygga-store --release -- --ignored --nocapture throughput`
/// (`BRYGGA_BENCH_SYNC=normal` to compare).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn throughput_of_enqueue_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let sync = std::env::var("BRYGGA_BENCH_SYNC").unwrap_or_else(|_| "full".into());
    let store = SqlStore::connect(&format!("{}?synchronous={sync}", url(&dir))).await.unwrap();
    let tasks = 256;
    let per_task = 200;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    let e = entry(&format!("room-{}", t % 32), &format!("{t}-{i}"));
                    let portal = e.portal.clone();
                    let seq = store.enqueue(e).await.unwrap().unwrap();
                    let mapping = MessageMapping::new(
                        portal,
                        MatrixEventId::new(format!("$ev{t}-{i}")).unwrap(),
                        RemoteMessageId::new(format!("m{t}-{i}")).unwrap(),
                        0,
                        MappingKind::Message,
                    );
                    store.complete(seq, vec![mapping]).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let pairs = (tasks * per_task) as f64;
    let stats = store.write_stats();
    println!(
        "synchronous={sync}: {pairs} enqueue+complete pairs in {secs:.2}s = {:.0} pairs/s; \
         {} requests in {} transactions",
        pairs / secs,
        stats.requests,
        stats.transactions
    );
    assert!(pairs / secs > 1000.0);
}
