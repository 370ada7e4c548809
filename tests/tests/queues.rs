//! The per-portal queues over the real SQLite store: order within a queue,
//! parallelism across queues, and recovery from failing or panicking
//! deliveries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::queue::Deliver;
use brygga_core::{
    AdapterKind, BridgeError, Direction, MessageMapping, NewOutboxEntry, OutboxEntry, PortalKey, Queues, RemoteRoomId,
    RetryPolicy, Store, Tenant, TenantId,
};
use brygga_store::SqlStore;

#[derive(Default)]
struct Recorder {
    delivered: Mutex<HashMap<String, Vec<String>>>,
    attempts: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl Deliver for Recorder {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(entry.dedupe_key.clone()).or_default();
            *n += 1;
            *n
        };
        match (entry.payload.as_str(), attempt) {
            ("panic", 1) => panic!("a bug in one delivery"),
            ("flaky", 1 | 2) => return Err(BridgeError::transient("try again")),
            ("poison", _) => return Err(BridgeError::permanent("never deliverable")),
            ("slow", _) => tokio::time::sleep(Duration::from_secs(3)).await,
            _ => {}
        }
        let room = entry.portal.room.to_string();
        self.delivered.lock().unwrap().entry(room).or_default().push(entry.dedupe_key.clone());
        Ok(Vec::new())
    }
}

fn portal(room: &str) -> PortalKey {
    PortalKey::new(
        TenantId::new("fk").unwrap(),
        AdapterKind::new("loopback").unwrap(),
        RemoteRoomId::new(room).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_keep_order_survive_panics_and_do_not_block_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::connect(&format!("sqlite://{}/q.db", dir.path().display())).await.unwrap());
    store.upsert_tenant(&Tenant::new(TenantId::new("fk").unwrap(), "FK")).await.unwrap();
    let payloads = ["ok", "panic", "ok", "flaky", "poison", "ok"];
    for (i, payload) in payloads.iter().enumerate() {
        let entry = NewOutboxEntry::new(Direction::ToRemote, portal("a"), format!("a{i}"), payload.to_string());
        store.enqueue(entry).await.unwrap();
    }
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("slow"), "s0", "slow".into())).await.unwrap();
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("b"), "b0", "ok".into())).await.unwrap();

    let recorder = Arc::new(Recorder::default());
    let policy =
        RetryPolicy { initial: Duration::from_millis(20), max: Duration::from_millis(100), ..RetryPolicy::default() };
    let queues = Queues::new(store.clone(), recorder.clone(), policy);
    assert_eq!(queues.recover().await.unwrap(), 3);

    // The fast queues finish while the slow one is still busy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let done = {
            let delivered = recorder.delivered.lock().unwrap();
            delivered.get("a").map_or(0, Vec::len) == 5 && delivered.get("b").map_or(0, Vec::len) == 1
        };
        if done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "queues stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!recorder.delivered.lock().unwrap().contains_key("slow"), "b and a did not wait for slow");
    let delivered = recorder.delivered.lock().unwrap().clone();
    assert_eq!(delivered["a"], ["a0", "a1", "a2", "a3", "a5"], "in order; the poison entry set aside");
    assert_eq!(recorder.attempts.lock().unwrap()["a1"], 2, "the panicking delivery was retried");
    assert_eq!(recorder.attempts.lock().unwrap()["a3"], 3, "the flaky delivery was retried until it worked");
    // Marking done is pipelined behind the delivery: give the last complete its commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !store.pending(&portal("a"), Direction::ToRemote, 0, 10).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "delivered and dead-lettered entries are no longer pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // New entries wake an idle queue.
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("a"), "a6", "ok".into())).await.unwrap();
    queues.wake((portal("a"), Direction::ToRemote));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while recorder.delivered.lock().unwrap()["a"].len() < 6 {
        assert!(tokio::time::Instant::now() < deadline, "woken queue did not deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    queues.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_delivers_entries_nobody_woke() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::connect(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap());
    store.upsert_tenant(&Tenant::new(TenantId::new("fk").unwrap(), "FK")).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let queues = Queues::new(store.clone(), recorder.clone(), RetryPolicy::default());
    queues.spawn_sweeper(Duration::from_millis(100));
    // Stored after start-up and never woken, as if its wake had been lost.
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("lost"), "l0", "ok".into())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !recorder.delivered.lock().unwrap().contains_key("lost") {
        assert!(tokio::time::Instant::now() < deadline, "the sweeper never woke the queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    queues.shutdown();
}

/// Ownership that a test switches on and off.
struct Switch(std::sync::atomic::AtomicBool);

impl brygga_core::Ownership for Switch {
    fn owns(&self, _tenant: &TenantId) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn delivered_count(recorder: &Recorder, room: &str) -> usize {
    recorder.delivered.lock().unwrap().get(room).map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_owned_tenant_is_delivered_and_giving_it_up_stops_its_workers() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::connect(&format!("sqlite://{}/q.db", dir.path().display())).await.unwrap());
    let fk = TenantId::new("fk").unwrap();
    store.upsert_tenant(&Tenant::new(fk.clone(), "FK")).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let queues = Queues::new(store.clone(), recorder.clone(), RetryPolicy::default());
    let switch = Arc::new(Switch(false.into()));
    queues.set_ownership(switch.clone());

    // Stored while another process owns the tenant: nothing is delivered here.
    for i in 0..3 {
        store
            .enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("a"), format!("a{i}"), "ok".into()))
            .await
            .unwrap();
        queues.stored((portal("a"), Direction::ToRemote));
    }
    assert_eq!(queues.recover().await.unwrap(), 1, "one queue has entries");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivered_count(&recorder, "a").await, 0);
    assert_eq!(queues.active(), 0, "no worker runs for a tenant owned elsewhere");

    // Taken over: its stored entries are delivered.
    switch.0.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(queues.recover_tenant(&fk).await.unwrap(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while delivered_count(&recorder, "a").await < 3 {
        assert!(tokio::time::Instant::now() < deadline, "entries of the taken-over tenant not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Given up: the idle worker exits at once, and later entries wait.
    switch.0.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(queues.drain_tenant(&fk, Duration::from_secs(5)).await, "workers exited");
    assert_eq!(queues.active(), 0);
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal("a"), "a3", "ok".into())).await.unwrap();
    queues.stored((portal("a"), Direction::ToRemote));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivered_count(&recorder, "a").await, 3, "not delivered by a process that gave the tenant up");
}
