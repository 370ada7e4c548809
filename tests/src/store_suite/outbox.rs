//! The outbox and appservice transactions.

use std::sync::Arc;
use std::time::Duration;

use brygga_core::{Direction, MappingKind, Store, StoreError, TxnOutcome};

use super::{enqueue_new, entry, event, mapping, portal, remote_msg, tid};

/// A dedupe key is used once per tenant and direction, even after delivery.
pub async fn enqueue_dedupes_even_after_delivery(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let first = enqueue_new(&*store, entry(Direction::ToRemote, &p, "k1")).await;
    assert_eq!(store.enqueue(entry(Direction::ToRemote, &p, "k1")).await.unwrap(), None);
    let elsewhere = portal("fk", "teams", "chat");
    assert_eq!(
        store.enqueue(entry(Direction::ToRemote, &elsewhere, "k1")).await.unwrap(),
        None,
        "the key is per tenant and direction, not per portal"
    );
    let other_way = enqueue_new(&*store, entry(Direction::ToMatrix, &p, "k1")).await;
    let other_tenant = enqueue_new(&*store, entry(Direction::ToRemote, &portal("tv", "xmpp", "room@conf"), "k1")).await;
    assert!(first < other_way && other_way < other_tenant, "seq increases");

    let pending = store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "the duplicate stored nothing");
    assert_eq!(pending[0].payload, "payload of k1");

    store.complete(first, vec![]).await.unwrap();
    assert_eq!(store.enqueue(entry(Direction::ToRemote, &p, "k1")).await.unwrap(), None, "still a duplicate");
    assert!(store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap().is_empty());
}

/// `pending` returns a queue's undelivered entries in seq order after `after`.
pub async fn pending_is_ordered_and_honours_after_and_limit(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let q = portal("fk", "xmpp", "annex@conf");
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(enqueue_new(&*store, entry(Direction::ToRemote, &p, &format!("p{i}"))).await);
        enqueue_new(&*store, entry(Direction::ToRemote, &q, &format!("q{i}"))).await;
    }
    enqueue_new(&*store, entry(Direction::ToMatrix, &p, "back")).await;

    let all = store.pending(&p, Direction::ToRemote, 0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.portal, p);
        assert_eq!(e.direction, Direction::ToRemote);
        assert_eq!(e.dedupe_key, format!("p{i}"));
        assert_eq!(e.payload, format!("payload of p{i}"));
        assert_eq!(e.attempts, 0);
    }
    let after = store.pending(&p, Direction::ToRemote, seqs[1], 100).await.unwrap();
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[2..]);
    let limited = store.pending(&p, Direction::ToRemote, 0, 2).await.unwrap();
    assert_eq!(limited.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[..2]);
    assert!(store.pending(&p, Direction::ToRemote, seqs[4], 100).await.unwrap().is_empty());
    assert_eq!(store.pending(&q, Direction::ToRemote, 0, 100).await.unwrap().len(), 5);
    let back = store.pending(&p, Direction::ToMatrix, 0, 100).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].dedupe_key, "back");
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// `pending_queues` lists exactly the queues with undelivered entries.
pub async fn pending_queues_lists_undelivered_queues(store: Arc<dyn Store>) {
    assert!(store.pending_queues().await.unwrap().is_empty());
    let p = portal("fk", "xmpp", "room@conf");
    let q = portal("tv", "teams", "chat");
    let a = enqueue_new(&*store, entry(Direction::ToRemote, &p, "a")).await;
    let b = enqueue_new(&*store, entry(Direction::ToRemote, &p, "b")).await;
    enqueue_new(&*store, entry(Direction::ToMatrix, &p, "c")).await;
    let d = enqueue_new(&*store, entry(Direction::ToMatrix, &q, "d")).await;
    let expected = sorted(vec![
        (p.clone(), Direction::ToRemote),
        (p.clone(), Direction::ToMatrix),
        (q.clone(), Direction::ToMatrix),
    ]);
    assert_eq!(sorted(store.pending_queues().await.unwrap()), expected);

    store.complete(a, vec![]).await.unwrap();
    assert_eq!(sorted(store.pending_queues().await.unwrap()), expected, "one entry is still pending");
    store.complete(b, vec![]).await.unwrap();
    store.dead_letter(d, "gave up").await.unwrap();
    assert_eq!(store.pending_queues().await.unwrap(), vec![(p, Direction::ToMatrix)]);
}

/// `complete` removes an entry from pending and records its mappings.
pub async fn complete_marks_done_and_stores_mappings(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let first = enqueue_new(&*store, entry(Direction::ToRemote, &p, "one")).await;
    let second = enqueue_new(&*store, entry(Direction::ToRemote, &p, "two")).await;
    let m = mapping(&p, "$one", "x-1", 0, MappingKind::Message);
    store.complete(first, vec![m.clone()]).await.unwrap();
    let left = store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [second]);
    assert_eq!(store.messages_by_matrix(&tid("fk"), &event("$one")).await.unwrap(), vec![m.clone()]);

    // Completing again (a retry after a crash) is harmless and keeps one row.
    store.complete(first, vec![m.clone()]).await.unwrap();
    assert_eq!(store.messages_by_remote(&p, &remote_msg("x-1")).await.unwrap(), vec![m]);

    assert!(matches!(store.complete(first + 10_000, vec![]).await, Err(StoreError::NotFound(_))));

    // Mappings of another tenant are refused and change nothing.
    let foreign = mapping(&portal("tv", "xmpp", "room@conf"), "$two", "x-2", 0, MappingKind::Message);
    assert!(store.complete(second, vec![foreign]).await.is_err());
    assert_eq!(store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap().len(), 1);
    assert!(store.messages_by_matrix(&tid("tv"), &event("$two")).await.unwrap().is_empty());
}

/// `record_failure` counts attempts and keeps the entry pending.
pub async fn record_failure_counts_attempts(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let seq = enqueue_new(&*store, entry(Direction::ToRemote, &p, "flaky")).await;
    store.record_failure(seq, "timeout").await.unwrap();
    store.record_failure(seq, "HTTP 502").await.unwrap();
    let e = &store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap()[0];
    assert_eq!((e.seq, e.attempts), (seq, 2));
    assert_eq!(e.payload, "payload of flaky");
    assert!(matches!(store.record_failure(seq + 10_000, "x").await, Err(StoreError::NotFound(_))));
}

/// `dead_letter` takes an entry out of pending but keeps its key used.
pub async fn dead_letter_leaves_pending(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let bad = enqueue_new(&*store, entry(Direction::ToRemote, &p, "poison")).await;
    let good = enqueue_new(&*store, entry(Direction::ToRemote, &p, "fine")).await;
    store.dead_letter(bad, "remote refused: 400").await.unwrap();
    let left = store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [good]);
    assert_eq!(store.enqueue(entry(Direction::ToRemote, &p, "poison")).await.unwrap(), None);
    assert!(matches!(store.dead_letter(good + 10_000, "x").await, Err(StoreError::NotFound(_))));
}

/// A transaction id is processed once; its entries keep their order.
pub async fn ingest_stores_new_and_skips_replayed(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let q = portal("tv", "rocketchat", "GENERAL");
    let entries = vec![
        entry(Direction::ToRemote, &p, "e1"),
        entry(Direction::ToRemote, &q, "e2"),
        entry(Direction::ToRemote, &p, "e3"),
        entry(Direction::ToRemote, &p, "e1"),
    ];
    assert_eq!(store.ingest_transaction("42", entries).await.unwrap(), TxnOutcome::New);
    let keys = |v: Vec<brygga_core::OutboxEntry>| v.into_iter().map(|e| e.dedupe_key).collect::<Vec<_>>();
    assert_eq!(keys(store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap()), ["e1", "e3"]);
    assert_eq!(keys(store.pending(&q, Direction::ToRemote, 0, 10).await.unwrap()), ["e2"]);

    let replay = vec![entry(Direction::ToRemote, &p, "e4")];
    assert_eq!(store.ingest_transaction("42", replay).await.unwrap(), TxnOutcome::Replayed);
    // Known for any tenant means replayed, even with only another tenant's entries.
    let other = vec![entry(Direction::ToRemote, &portal("sk", "xmpp", "r"), "e5")];
    assert_eq!(store.ingest_transaction("42", other).await.unwrap(), TxnOutcome::Replayed);
    assert_eq!(keys(store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap()), ["e1", "e3"]);
    assert!(store.pending(&portal("sk", "xmpp", "r"), Direction::ToRemote, 0, 10).await.unwrap().is_empty());

    let next = vec![entry(Direction::ToRemote, &p, "e6")];
    assert_eq!(store.ingest_transaction("43", next).await.unwrap(), TxnOutcome::New);
    assert_eq!(keys(store.pending(&p, Direction::ToRemote, 0, 10).await.unwrap()), ["e1", "e3", "e6"]);
}

/// Readers see all entries of a transaction or none, never a part.
pub async fn ingest_is_atomic(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    let n = 300;
    let entries: Vec<_> = (0..n).map(|i| entry(Direction::ToRemote, &p, &format!("a{i}"))).collect();
    let watcher = {
        let store = store.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let count = store.pending(&p, Direction::ToRemote, 0, 1000).await.unwrap().len();
                seen.push(count);
                if count == n {
                    return seen;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.ingest_transaction("big", entries).await.unwrap(), TxnOutcome::New);
    let seen = tokio::time::timeout(Duration::from_secs(30), watcher).await.unwrap().unwrap();
    assert!(seen.iter().all(|c| *c == 0 || *c == n), "a reader saw a partial transaction: {seen:?}");
}
