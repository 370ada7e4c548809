//! Many concurrent writers: exactly-once storage and seq order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use brygga_core::{Direction, PortalKey, Store};

use super::{entry, portal};

const TASKS: usize = 24;
const PER_TASK: usize = 25;
const SHARED_KEYS: usize = 10;

fn queue_of(i: usize) -> PortalKey {
    portal("fk", "xmpp", &format!("room-{}", i % 4))
}

/// Many tasks enqueue at once: every distinct key is stored exactly once,
/// seqs are unique and increase per queue in each task's own order, and a
/// key raced for by every task is won by exactly one.
pub async fn concurrent_enqueues_are_stored_once_in_order(store: Arc<dyn Store>) {
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut shared_wins = Vec::new();
                for i in 0..PER_TASK {
                    let e = entry(Direction::ToRemote, &queue_of(i), &format!("t{t}-{i}"));
                    let seq = store.enqueue(e).await.unwrap().expect("own keys are new");
                    mine.push((i % 4, seq));
                    if i < SHARED_KEYS {
                        let racy = entry(Direction::ToRemote, &queue_of(i), &format!("shared-{i}"));
                        if let Some(seq) = store.enqueue(racy).await.unwrap() {
                            shared_wins.push((i, seq));
                        }
                    }
                }
                (mine, shared_wins)
            })
        })
        .collect();

    let mut all_seqs = BTreeSet::new();
    let mut winners: BTreeMap<usize, usize> = BTreeMap::new();
    for h in handles {
        let (mine, wins) = h.await.unwrap();
        for q in 0..4 {
            let order: Vec<i64> = mine.iter().filter(|(mq, _)| *mq == q).map(|(_, s)| *s).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "a task's entries keep its order: {order:?}");
        }
        for (_, seq) in &mine {
            assert!(all_seqs.insert(*seq), "seq {seq} handed out twice");
        }
        for (i, seq) in wins {
            assert!(all_seqs.insert(seq), "seq {seq} handed out twice");
            *winners.entry(i).or_default() += 1;
        }
    }
    assert_eq!(winners.len(), SHARED_KEYS, "every shared key was stored");
    assert!(winners.values().all(|n| *n == 1), "each shared key stored once: {winners:?}");

    let mut stored = 0;
    for q in 0..4 {
        let pending = store.pending(&queue_of(q), Direction::ToRemote, 0, 10_000).await.unwrap();
        assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq), "pending is in seq order");
        let keys: BTreeSet<_> = pending.iter().map(|e| e.dedupe_key.clone()).collect();
        assert_eq!(keys.len(), pending.len(), "no key stored twice");
        stored += pending.len();
    }
    assert_eq!(stored, TASKS * PER_TASK + SHARED_KEYS);
    assert_eq!(stored, all_seqs.len());
}

/// A consumer that reads `pending(after = last seq seen)` while others
/// enqueue never skips an entry: no entry commits with a lower seq than one
/// already visible (what the router's cursor relies on).
pub async fn pending_never_skips_a_committed_entry(store: Arc<dyn Store>) {
    let q = portal("fk", "xmpp", "busy");
    let total = TASKS * PER_TASK;
    let producers: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let q = q.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..PER_TASK {
                    let e = entry(Direction::ToMatrix, &q, &format!("p{t}-{i}"));
                    seqs.push(store.enqueue(e).await.unwrap().unwrap());
                }
                seqs
            })
        })
        .collect();

    let consumer = {
        let store = store.clone();
        let q = q.clone();
        tokio::spawn(async move {
            let mut after = 0;
            let mut seen = Vec::new();
            while seen.len() < total {
                let batch = store.pending(&q, Direction::ToMatrix, after, 50).await.unwrap();
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                for e in batch {
                    assert!(e.seq > after, "pending honours after");
                    after = e.seq;
                    seen.push(e.seq);
                }
            }
            seen
        })
    };

    let mut produced = BTreeSet::new();
    for p in producers {
        produced.extend(p.await.unwrap());
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), consumer)
        .await
        .expect("the consumer saw every entry (none was skipped behind its cursor)")
        .unwrap();
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), produced);
}
