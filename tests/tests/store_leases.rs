//! Tenant leases and node liveness on PostgreSQL (sharding needs it), and
//! commits announced to the other processes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::{Direction, LeaseStore, NewOutboxEntry, Node, PortalKey, Store, Tenant, TenantId};
use brygga_store::{Heard, SqlStore};
use tokio_util::sync::CancellationToken;

async fn postgres() -> SqlStore {
    let url =
        tokio::task::spawn_blocking(brygga_harness::postgres::fresh_database_url).await.expect("start PostgreSQL");
    SqlStore::connect(&url).await.expect("open PostgreSQL store")
}

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    let store = postgres().await;
    let (a, b) = (Node::new("a", "http://a:1", "http://a:2"), Node::new("b", "http://b:1", "http://b:2"));
    let fk = tenant("fk");
    let live = store.heartbeat(&a, 10_000).await.unwrap();
    assert_eq!(live, vec![a.clone()]);
    assert_eq!(store.heartbeat(&b, 10_000).await.unwrap(), vec![a.clone(), b.clone()]);

    assert!(store.claim(&fk, "a", 10_000).await.unwrap(), "a free tenant is claimed");
    assert!(!store.claim(&fk, "b", 10_000).await.unwrap(), "a live lease keeps others out");
    assert!(!store.claim(&fk, "a", 10_000).await.unwrap(), "claiming is only for free tenants");
    assert_eq!(store.owner(&fk).await.unwrap(), Some(a.clone()));
    assert_eq!(store.renew("a", 10_000).await.unwrap(), vec![fk.clone()]);
    assert!(store.renew("b", 10_000).await.unwrap().is_empty(), "b holds nothing");

    store.release(&fk, "b").await.unwrap();
    assert_eq!(store.owner(&fk).await.unwrap(), Some(a.clone()), "only the holder releases");
    store.release(&fk, "a").await.unwrap();
    assert_eq!(store.owner(&fk).await.unwrap(), None);
    assert!(store.renew("a", 10_000).await.unwrap().is_empty(), "a released lease is not renewed");
    assert!(store.claim(&fk, "b", 300).await.unwrap(), "a released tenant is claimed at once");

    // A lease that is not renewed expires and may be taken.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leases = store.leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert!(!leases[0].live(), "expired: {leases:?}");
    assert!(store.renew("b", 10_000).await.unwrap().is_empty(), "an expired lease is lost");
    assert!(store.claim(&fk, "a", 10_000).await.unwrap());
    assert_eq!(store.owner(&fk).await.unwrap().map(|n| n.id), Some("a".into()));

    // A node not seen within the window is not live.
    assert_eq!(store.heartbeat(&a, 100).await.unwrap(), vec![a.clone()], "b was seen long ago");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_have_one_winner() {
    let store = postgres().await;
    let fk = tenant("fk");
    let claims = (0..8).map(|i| {
        let (store, fk) = (store.clone(), fk.clone());
        tokio::spawn(async move { store.claim(&fk, &format!("n{i}"), 10_000).await.unwrap() })
    });
    let won = futures::future::join_all(claims).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_hear_of_stored_entries_but_not_their_own() {
    let writer = postgres().await;
    writer.upsert_tenant(&Tenant::new(tenant("fk"), "FK")).await.unwrap();
    writer.announce_commits("a");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let own = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    for (node, seen) in [("b", heard.clone()), ("a", own.clone())] {
        let on = move |h: Heard| {
            if let Heard::Queues(queues) = h {
                seen.lock().unwrap().extend(queues);
            }
        };
        writer.listen_for_commits(node, Arc::new(on), stop.clone());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let portal = PortalKey::new(tenant("fk"), "loopback".parse().unwrap(), "room".parse().unwrap());
    writer.enqueue(NewOutboxEntry::new(Direction::ToRemote, portal.clone(), "e1", "{}".into())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while heard.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "b never heard of the commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(heard.lock().unwrap().clone(), vec![(portal, Direction::ToRemote)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(own.lock().unwrap().is_empty(), "a node does not wake itself for its own commits");
    stop.cancel();
}
