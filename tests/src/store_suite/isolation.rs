//! Tenant removal and isolation: every row is keyed by tenant.

use std::sync::Arc;

use brygga_core::{AdapterConfig, Direction, Ghost, LinkedAccount, MappingKind, Portal, Store, TxnOutcome};
use serde_json::json;

use super::{
    add_tenant, enqueue_new, entry, event, kind, mapping, mxid, portal, remote_msg, remote_user, room_id, tid,
};

/// Removing a tenant deletes its rows in every table and nothing of others.
pub async fn remove_tenant_deletes_every_row(store: Arc<dyn Store>) {
    for t in ["gone", "kept"] {
        add_tenant(&*store, t).await;
        let cfg = AdapterConfig::new(tid(t), kind("xmpp"), true, json!({"secret": "s3cret"}));
        store.put_adapter_config(&cfg).await.unwrap();
        let ghost = Ghost::new(tid(t), kind("xmpp"), remote_user("alice@x"), mxid(&format!("@xmpp_{t}_alice:hs")));
        store.upsert_ghost(&ghost).await.unwrap();
        let link = LinkedAccount::new(tid(t), kind("xmpp"), mxid("@bob:hs"), remote_user("bob@x"));
        store.link_account(&link).await.unwrap();
        let p = portal(t, "xmpp", "room@conf");
        let mut portal_row = Portal::new(p.clone());
        portal_row.room_id = Some(room_id(&format!("!{t}:hs")));
        store.upsert_portal(&portal_row).await.unwrap();
        let delivered = enqueue_new(&*store, entry(Direction::ToMatrix, &p, "delivered")).await;
        let m = mapping(&p, &format!("${t}-ev"), "m1", 0, MappingKind::Message);
        store.complete(delivered, vec![m]).await.unwrap();
        enqueue_new(&*store, entry(Direction::ToRemote, &p, "pending")).await;
        let txn = store
            .ingest_transaction(&format!("txn-{t}"), vec![entry(Direction::ToRemote, &p, "ingested")])
            .await
            .unwrap();
        assert_eq!(txn, TxnOutcome::New);
    }

    assert!(store.remove_tenant(&tid("gone")).await.unwrap());

    let gone = tid("gone");
    let p = portal("gone", "xmpp", "room@conf");
    assert_eq!(store.tenant(&gone).await.unwrap(), None);
    assert_eq!(store.adapter_config(&gone, &kind("xmpp")).await.unwrap(), None);
    assert!(store.adapter_configs(Some(&gone)).await.unwrap().is_empty());
    assert_eq!(store.ghost(&gone, &kind("xmpp"), &remote_user("alice@x")).await.unwrap(), None);
    assert_eq!(store.ghost_by_user_id(&mxid("@xmpp_gone_alice:hs")).await.unwrap(), None);
    assert!(store.linked_accounts(&gone, &mxid("@bob:hs")).await.unwrap().is_empty());
    assert_eq!(store.portal(&p).await.unwrap(), None);
    assert_eq!(store.portal_by_room(&room_id("!gone:hs")).await.unwrap(), None);
    assert!(store.portals(&gone).await.unwrap().is_empty());
    assert!(store.messages_by_remote(&p, &remote_msg("m1")).await.unwrap().is_empty());
    assert!(store.messages_by_matrix(&gone, &event("$gone-ev")).await.unwrap().is_empty());
    for dir in [Direction::ToMatrix, Direction::ToRemote] {
        assert!(store.pending(&p, dir, 0, 100).await.unwrap().is_empty());
    }
    let queues = store.pending_queues().await.unwrap();
    assert!(queues.iter().all(|(q, _)| q.tenant != gone), "{queues:?}");

    // Outbox and transaction rows are gone too: their keys are free again.
    assert!(store.enqueue(entry(Direction::ToMatrix, &p, "delivered")).await.unwrap().is_some());
    let again = store.ingest_transaction("txn-gone", vec![entry(Direction::ToRemote, &p, "ingested")]).await.unwrap();
    assert_eq!(again, TxnOutcome::New);

    // The other tenant is untouched.
    let kept = tid("kept");
    let kp = portal("kept", "xmpp", "room@conf");
    assert!(store.tenant(&kept).await.unwrap().is_some());
    assert!(store.adapter_config(&kept, &kind("xmpp")).await.unwrap().is_some());
    assert!(store.ghost_by_user_id(&mxid("@xmpp_kept_alice:hs")).await.unwrap().is_some());
    assert_eq!(store.linked_accounts(&kept, &mxid("@bob:hs")).await.unwrap().len(), 1);
    assert!(store.portal_by_room(&room_id("!kept:hs")).await.unwrap().is_some());
    assert_eq!(store.messages_by_remote(&kp, &remote_msg("m1")).await.unwrap().len(), 1);
    assert_eq!(store.pending(&kp, Direction::ToRemote, 0, 100).await.unwrap().len(), 2);
    assert!(store.enqueue(entry(Direction::ToMatrix, &kp, "delivered")).await.unwrap().is_none());
}

/// Two tenants using the same remote ids never see each other's rows.
pub async fn tenants_never_mix(store: Arc<dyn Store>) {
    for t in ["fk", "tv"] {
        add_tenant(&*store, t).await;
        let cfg = AdapterConfig::new(tid(t), kind("xmpp"), t == "fk", json!({"owner": t}));
        store.put_adapter_config(&cfg).await.unwrap();
        let ghost = Ghost::new(tid(t), kind("xmpp"), remote_user("alice@x"), mxid(&format!("@x_{t}_alice:hub")));
        store.upsert_ghost(&ghost).await.unwrap();
        let link = LinkedAccount::new(tid(t), kind("xmpp"), mxid("@bob:hub"), remote_user(&format!("bob-{t}")));
        store.link_account(&link).await.unwrap();
        let p = portal(t, "xmpp", "room@conf");
        let mut row = Portal::new(p.clone());
        row.room_id = Some(room_id(&format!("!{t}:hub")));
        store.upsert_portal(&row).await.unwrap();
        let seq = enqueue_new(&*store, entry(Direction::ToMatrix, &p, "msg-1")).await;
        store.complete(seq, vec![mapping(&p, &format!("${t}"), "msg-1", 0, MappingKind::Message)]).await.unwrap();
        enqueue_new(&*store, entry(Direction::ToMatrix, &p, "msg-2")).await;
    }
    for (t, other) in [("fk", "tv"), ("tv", "fk")] {
        let p = portal(t, "xmpp", "room@conf");
        let cfg = store.adapter_config(&tid(t), &kind("xmpp")).await.unwrap().unwrap();
        assert_eq!(cfg.config, json!({"owner": t}));
        let ghost = store.ghost(&tid(t), &kind("xmpp"), &remote_user("alice@x")).await.unwrap().unwrap();
        assert_eq!(ghost.user_id, mxid(&format!("@x_{t}_alice:hub")));
        let links = store.linked_accounts(&tid(t), &mxid("@bob:hub")).await.unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].remote_user, remote_user(&format!("bob-{t}")));
        assert_eq!(store.portal(&p).await.unwrap().unwrap().room_id, Some(room_id(&format!("!{t}:hub"))));
        assert_eq!(store.portal_by_room(&room_id(&format!("!{t}:hub"))).await.unwrap().unwrap().key, p);
        let maps = store.messages_by_remote(&p, &remote_msg("msg-1")).await.unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!(maps[0].matrix_event, event(&format!("${t}")));
        assert!(store.messages_by_matrix(&tid(t), &event(&format!("${other}"))).await.unwrap().is_empty());
        let pending = store.pending(&p, Direction::ToMatrix, 0, 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].portal.tenant, tid(t));
    }
    assert!(store.remove_tenant(&tid("fk")).await.unwrap());
    let p = portal("tv", "xmpp", "room@conf");
    assert_eq!(store.messages_by_remote(&p, &remote_msg("msg-1")).await.unwrap().len(), 1);
    assert_eq!(store.pending(&p, Direction::ToMatrix, 0, 10).await.unwrap().len(), 1);
}
