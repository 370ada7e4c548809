//! The commit feed and the queues' fast path on it: every committed entry is
//! handed over once, in seq order, and entries stored by someone else (a
//! second store on the same database stands in for another process) are
//! neither lost nor overtaken. On SQLite, and on PostgreSQL in the test
//! harness's throwaway cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::queue::Deliver;
use brygga_core::store::CommitListener;
use brygga_core::{
    AdapterKind, BridgeError, Direction, MessageMapping, NewOutboxEntry, OutboxEntry, PortalKey, Queues, RemoteRoomId,
    RetryPolicy, Store, Tenant, TenantId,
};

use crate::SqlStore;

fn portal(room: &str) -> PortalKey {
    PortalKey::new(TenantId::new("fk").unwrap(), AdapterKind::new("xmpp").unwrap(), RemoteRoomId::new(room).unwrap())
}

fn entry(room: &str, key: &str) -> NewOutboxEntry {
    NewOutboxEntry::new(Direction::ToMatrix, portal(room), key, format!("payload {key}"))
}

/// Two stores on one new database (SQLite, or PostgreSQL from the test harness's throwaway cluster).
pub(crate) async fn two_stores(postgres: bool) -> (SqlStore, SqlStore, Option<tempfile::TempDir>) {
    let (url, dir) = if postgres {
        let url = tokio::task::spawn_blocking(brygga_harness::postgres::fresh_database_url).await.unwrap();
        (url, None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (format!("sqlite://{}", dir.path().join("feed.db").display()), Some(dir))
    };
    (SqlStore::connect(&url).await.unwrap(), SqlStore::connect(&url).await.unwrap(), dir)
}

/// Records each call of the feed: (seqs, gap).
#[derive(Default)]
struct Calls(Mutex<Vec<(Vec<i64>, bool)>>);

impl CommitListener for Calls {
    fn committed(&self, entries: &[OutboxEntry], gap: bool) {
        self.0.lock().unwrap().push((entries.iter().map(|e| e.seq).collect(), gap));
    }
}

#[tokio::test]
async fn sqlite_feed_hands_over_every_commit_in_order_and_flags_foreign_rows() {
    let (ours, theirs, _dir) = two_stores(false).await;
    feed_hands_over_every_commit_in_order_and_flags_foreign_rows(ours, theirs).await;
}

#[tokio::test]
async fn postgres_feed_hands_over_every_commit_in_order_and_flags_foreign_rows() {
    sqlx::any::install_default_drivers();
    let (ours, theirs, _) = two_stores(true).await;
    feed_hands_over_every_commit_in_order_and_flags_foreign_rows(ours, theirs).await;
}

async fn feed_hands_over_every_commit_in_order_and_flags_foreign_rows(ours: SqlStore, theirs: SqlStore) {
    let calls = Arc::new(Calls::default());
    let listener: Weak<dyn CommitListener> = Arc::downgrade(&calls) as Weak<dyn CommitListener>;
    assert!(ours.watch_commits(listener));

    let first = ours.enqueue(entry("a", "1")).await.unwrap().unwrap();
    let handles: Vec<_> = (2..40)
        .map(|i| {
            let store = ours.clone();
            tokio::spawn(async move { store.enqueue(entry("a", &i.to_string())).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let txn = vec![entry("b", "t1"), entry("a", "t2")];
    ours.ingest_transaction("txn-1", txn.clone()).await.unwrap();
    ours.ingest_transaction("txn-1", txn).await.unwrap();
    assert_eq!(ours.enqueue(entry("a", "1")).await.unwrap(), None, "a duplicate stores nothing");
    let foreign = theirs.enqueue(entry("a", "foreign")).await.unwrap().unwrap();
    let last = ours.enqueue(entry("a", "last")).await.unwrap().unwrap();

    let calls = calls.0.lock().unwrap().clone();
    let handed: Vec<i64> = calls.iter().flat_map(|(seqs, _)| seqs.clone()).collect();
    let mut stored: Vec<i64> =
        ours.pending(&portal("a"), Direction::ToMatrix, 0, 1000).await.unwrap().iter().map(|e| e.seq).collect();
    stored.extend(ours.pending(&portal("b"), Direction::ToMatrix, 0, 1000).await.unwrap().iter().map(|e| e.seq));
    stored.retain(|seq| *seq != foreign);
    stored.sort_unstable();
    assert_eq!(handed, stored, "each of our entries handed over once, in seq order");
    assert_eq!(handed.first(), Some(&first));
    // The writer knows nothing at start: its first commit cannot vouch.
    assert!(calls[0].1, "the first commit is flagged");
    let gaps: Vec<bool> = calls.iter().map(|(_, gap)| *gap).collect();
    assert!(gaps[1..gaps.len() - 1].iter().all(|gap| !gap), "nobody else wrote in between: {gaps:?}");
    assert_eq!(calls.last().unwrap(), &(vec![last], true), "the commit after a foreign row is flagged");
}

/// Delivers in a shared log; the first `hold` deliveries wait for `go`.
struct Recorder {
    log: Mutex<Vec<(String, i64)>>,
    held: AtomicBool,
    go: tokio::sync::Notify,
}

#[async_trait]
impl Deliver for Recorder {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        if self.held.load(Ordering::SeqCst) {
            self.go.notified().await;
        }
        self.log.lock().unwrap().push((entry.dedupe_key.clone(), entry.seq));
        Ok(Vec::new())
    }
}

async fn wait_for(recorder: &Recorder, n: usize) -> Vec<(String, i64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = recorder.log.lock().unwrap().clone();
        if log.len() >= n {
            return log;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} of {n} delivered: {log:?}", log.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queues_on_the_feed_deliver_foreign_and_overflowing_entries_in_order() {
    let (ours, theirs, _dir) = two_stores(false).await;
    queues_on_the_feed_deliver_foreign_and_overflowing_entries_in_order(ours, theirs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queues_on_the_feed_deliver_foreign_and_overflowing_entries_in_order() {
    sqlx::any::install_default_drivers();
    let (ours, theirs, _) = two_stores(true).await;
    queues_on_the_feed_deliver_foreign_and_overflowing_entries_in_order(ours, theirs).await;
}

async fn queues_on_the_feed_deliver_foreign_and_overflowing_entries_in_order(ours: SqlStore, theirs: SqlStore) {
    ours.upsert_tenant(&Tenant::new(TenantId::new("fk").unwrap(), "FK")).await.unwrap();
    let recorder = Arc::new(Recorder { log: Mutex::default(), held: AtomicBool::new(false), go: Default::default() });
    let queues = Queues::new(Arc::new(ours.clone()), recorder.clone(), RetryPolicy::default());
    let key = (portal("a"), Direction::ToMatrix);

    // Ours and theirs alternate: each of ours follows one of theirs, which
    // only a read of the store can find.
    let mut expected = Vec::new();
    for i in 0..30 {
        let (store, name) = if i % 2 == 0 { (&ours, format!("ours{i}")) } else { (&theirs, format!("theirs{i}")) };
        let seq = store.enqueue(entry("a", &name)).await.unwrap().unwrap();
        queues.stored(key.clone());
        expected.push((name, seq));
    }
    let last = ours.enqueue(entry("a", "ours-last")).await.unwrap().unwrap();
    queues.stored(key.clone());
    expected.push(("ours-last".to_owned(), last));
    assert_eq!(wait_for(&recorder, expected.len()).await, expected, "everything, in seq order");

    // A stalled delivery while more than the inbox holds arrives: the
    // overflow is dropped from memory and read back from the store.
    recorder.held.store(true, Ordering::SeqCst);
    let first = ours.enqueue(entry("a", "held")).await.unwrap().unwrap();
    queues.stored(key.clone());
    let mut more = vec![("held".to_owned(), first)];
    let writes: Vec<_> = (0..1500)
        .map(|i| {
            let store = ours.clone();
            tokio::spawn(async move { (format!("n{i}"), store.enqueue(entry("a", &format!("n{i}"))).await) })
        })
        .collect();
    for w in writes {
        let (name, seq) = w.await.unwrap();
        more.push((name, seq.unwrap().unwrap()));
    }
    more.sort_by_key(|(_, seq)| *seq);
    recorder.held.store(false, Ordering::SeqCst);
    recorder.go.notify_one();
    expected.extend(more);
    assert_eq!(wait_for(&recorder, expected.len()).await, expected, "nothing lost or reordered by the overflow");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.log.lock().unwrap().len(), expected.len(), "nothing delivered twice");
    queues.shutdown();
}
