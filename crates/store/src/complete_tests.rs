//! Completes that share one group commit are judged one by one: a refused
//! complete writes nothing and gets its own reason, its batch mates succeed.
//! Runs on SQLite, and on PostgreSQL in the test harness's throwaway cluster.

use brygga_core::{
    AdapterKind, Direction, MappingKind, MatrixEventId, MessageMapping, NewOutboxEntry, PortalKey, RemoteMessageId,
    RemoteRoomId, Store, StoreError, Tenant, TenantId,
};
use sqlx::Row;

use crate::SqlStore;
use crate::feed_tests::two_stores;

fn portal(tenant: &str) -> PortalKey {
    PortalKey::new(TenantId::new(tenant).unwrap(), AdapterKind::new("xmpp").unwrap(), RemoteRoomId::new("r").unwrap())
}

fn mapping(tenant: &str, event: &str) -> MessageMapping {
    let event = MatrixEventId::new(format!("${event}")).unwrap();
    MessageMapping::new(portal(tenant), event, RemoteMessageId::new("m").unwrap(), 0, MappingKind::Message)
}

async fn status(store: &SqlStore, seq: i64) -> String {
    let row = sqlx::query("SELECT status FROM outbox WHERE seq = $1").bind(seq).fetch_one(&store.inner.read).await;
    row.unwrap().try_get("status").unwrap()
}

async fn batched_completes_are_judged_one_by_one(store: SqlStore) {
    for t in ["ta", "tb"] {
        store.upsert_tenant(&Tenant::new(TenantId::new(t).unwrap(), t)).await.unwrap();
    }
    let mut seqs = Vec::new();
    for key in ["ok", "foreign", "mixed", "twice"] {
        let entry = NewOutboxEntry::new(Direction::ToMatrix, portal("ta"), key, "p".into());
        seqs.push(store.enqueue(entry).await.unwrap().unwrap());
    }
    let [ok, foreign, mixed, twice] = seqs[..] else { unreachable!() };
    let requests = vec![
        (ok, vec![mapping("ta", "ok")]),
        (foreign, vec![mapping("tb", "foreign")]),
        (mixed, vec![mapping("ta", "mixed-a"), mapping("tb", "mixed-b")]),
        (twice, vec![mapping("ta", "twice")]),
        (twice, vec![mapping("tb", "twice-wrong")]),
        (twice + 1000, vec![]),
    ];
    // Spawned together, so that they reach the writer as one batch.
    let handles: Vec<_> = requests
        .into_iter()
        .map(|(seq, maps)| {
            let store = store.clone();
            tokio::spawn(async move { store.complete(seq, maps).await })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(matches!(results[1], Err(StoreError::Conflict(_))), "{:?}", results[1]);
    assert!(matches!(results[2], Err(StoreError::Conflict(_))), "{:?}", results[2]);
    assert!(results[3].is_ok(), "{:?}", results[3]);
    assert!(matches!(results[4], Err(StoreError::Conflict(_))), "{:?}", results[4]);
    assert!(matches!(results[5], Err(StoreError::NotFound(_))), "{:?}", results[5]);
    for (seq, want) in [(ok, "done"), (foreign, "pending"), (mixed, "pending"), (twice, "done")] {
        assert_eq!(status(&store, seq).await, want, "entry {seq}");
    }
    let ta = TenantId::new("ta").unwrap();
    let tb = TenantId::new("tb").unwrap();
    for (tenant, event, stored) in [
        (&ta, "ok", true),
        (&tb, "foreign", false),
        (&ta, "mixed-a", false),
        (&tb, "mixed-b", false),
        (&ta, "twice", true),
        (&tb, "twice-wrong", false),
    ] {
        let found = store.messages_by_matrix(tenant, &MatrixEventId::new(format!("${event}")).unwrap()).await.unwrap();
        assert_eq!(!found.is_empty(), stored, "mapping {event}");
    }
}

#[tokio::test]
async fn sqlite_judges_batched_completes_one_by_one() {
    let (store, _, _dir) = two_stores(false).await;
    batched_completes_are_judged_one_by_one(store).await;
}

#[tokio::test]
async fn postgres_judges_batched_completes_one_by_one() {
    sqlx::any::install_default_drivers();
    let (store, _, _) = two_stores(true).await;
    batched_completes_are_judged_one_by_one(store).await;
}

#[tokio::test]
async fn postgres_writer_plans_key_lookups_even_on_empty_tables() {
    sqlx::any::install_default_drivers();
    let (store, _, _) = two_stores(true).await;
    let sql = "EXPLAIN UPDATE outbox SET status = 'done' FROM jsonb_array_elements('[[1, null]]'::jsonb) AS j \
               WHERE outbox.seq = CAST(j.value ->> 0 AS BIGINT)";
    let plan: Vec<String> = sqlx::query(sql)
        .fetch_all(&store.inner.write)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String, _>(0).unwrap())
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("Index Scan using outbox_pkey") && !plan.contains("Hash"), "{plan}");
}
