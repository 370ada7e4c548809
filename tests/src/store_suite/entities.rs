//! Tenants, adapter configs, ghosts, linked accounts, portals.

use std::sync::Arc;

use brygga_core::{
    AdapterConfig, AdminToken, Direction, Ghost, LinkedAccount, NewOutboxEntry, Portal, Store, StoreError, Tenant,
    TenantSettings,
};
use serde_json::json;

use super::{add_tenant, kind, mxid, portal, remote_user, room_id, tid};

/// Create, read, update, list (ordered bytewise by id) and remove tenants.
pub async fn tenant_crud(store: Arc<dyn Store>) {
    assert_eq!(store.tenant(&tid("fk")).await.unwrap(), None);
    assert!(store.tenants().await.unwrap().is_empty());

    let mut settings = TenantSettings::default();
    settings.invite = vec![mxid("@admin:fk.se")];
    settings.allowed_servers = vec!["fk.se".into(), "trafikverket.se".into()];
    settings.retention_days = Some(90);
    settings.matrix_admins = vec![mxid("@boss:fk.se")];
    let mut fk = Tenant::new(tid("fk"), "Försäkringskassan");
    fk.settings = settings;
    fk.suspended = true;
    store.upsert_tenant(&fk).await.unwrap();
    assert_eq!(store.tenant(&tid("fk")).await.unwrap(), Some(fk.clone()));

    fk.display_name = "FK".into();
    fk.suspended = false;
    fk.settings.retention_days = None;
    store.upsert_tenant(&fk).await.unwrap();
    assert_eq!(store.tenant(&tid("fk")).await.unwrap(), Some(fk.clone()));

    for id in ["b", "a0", "a-1", "a"] {
        add_tenant(&*store, id).await;
    }
    let ids: Vec<String> = store.tenants().await.unwrap().iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["a", "a-1", "a0", "b", "fk"], "ordered by id, bytewise");

    assert!(store.remove_tenant(&tid("fk")).await.unwrap());
    assert!(!store.remove_tenant(&tid("fk")).await.unwrap(), "second removal finds nothing");
    assert_eq!(store.tenant(&tid("fk")).await.unwrap(), None);
    assert_eq!(store.tenants().await.unwrap().len(), 4);
}

/// Adapter configs need their tenant, round-trip JSON and can be toggled.
pub async fn adapter_configs_need_a_tenant_and_toggle(store: Arc<dyn Store>) {
    let cfg = AdapterConfig::new(tid("fk"), kind("xmpp"), true, json!({"domain": "x"}));
    match store.put_adapter_config(&cfg).await {
        Err(StoreError::NotFound(msg)) => assert!(msg.contains("fk"), "message names the tenant: {msg}"),
        other => panic!("config for an unknown tenant must be NotFound, got {other:?}"),
    }
    add_tenant(&*store, "fk").await;
    add_tenant(&*store, "tv").await;

    let xmpp = AdapterConfig::new(
        tid("fk"),
        kind("xmpp"),
        true,
        json!({"component": "bridge.fk.se", "secret": "hunter2", "rooms": [1, 2], "nested": {"a": null}}),
    );
    let teams = AdapterConfig::new(tid("fk"), kind("teams"), false, json!({"tenant_id": "abc"}));
    let tv = AdapterConfig::new(tid("tv"), kind("rocketchat"), true, json!({}));
    for c in [&xmpp, &teams, &tv] {
        store.put_adapter_config(c).await.unwrap();
    }
    assert_eq!(store.adapter_config(&tid("fk"), &kind("xmpp")).await.unwrap(), Some(xmpp.clone()));
    assert_eq!(store.adapter_config(&tid("fk"), &kind("rocketchat")).await.unwrap(), None);

    let fk_kinds: Vec<String> =
        store.adapter_configs(Some(&tid("fk"))).await.unwrap().iter().map(|c| c.kind.to_string()).collect();
    assert_eq!(fk_kinds, ["teams", "xmpp"], "one tenant's configs, ordered by kind");
    let all: Vec<(String, String)> =
        store.adapter_configs(None).await.unwrap().iter().map(|c| (c.tenant.to_string(), c.kind.to_string())).collect();
    let expected = [("fk", "teams"), ("fk", "xmpp"), ("tv", "rocketchat")].map(|(t, k)| (t.into(), k.into()));
    assert_eq!(all, expected, "all configs, ordered by tenant and kind");

    assert!(store.set_adapter_enabled(&tid("fk"), &kind("xmpp"), false).await.unwrap());
    let now = store.adapter_config(&tid("fk"), &kind("xmpp")).await.unwrap().unwrap();
    assert!(!now.enabled);
    assert_eq!(now.config, xmpp.config, "toggling keeps the config");
    assert!(store.set_adapter_enabled(&tid("fk"), &kind("teams"), true).await.unwrap());
    assert!(store.adapter_config(&tid("fk"), &kind("teams")).await.unwrap().unwrap().enabled);
    assert!(!store.set_adapter_enabled(&tid("fk"), &kind("rocketchat"), true).await.unwrap());
    assert!(!store.set_adapter_enabled(&tid("nobody"), &kind("xmpp"), true).await.unwrap());

    let replaced = AdapterConfig::new(tid("fk"), kind("xmpp"), true, json!({"component": "new"}));
    store.put_adapter_config(&replaced).await.unwrap();
    assert_eq!(store.adapter_config(&tid("fk"), &kind("xmpp")).await.unwrap(), Some(replaced));
    assert_eq!(store.adapter_config(&tid("tv"), &kind("rocketchat")).await.unwrap(), Some(tv));
}

/// Ghosts are found by remote id and by Matrix id; upserts replace profiles.
pub async fn ghosts_by_remote_and_matrix_id(store: Arc<dyn Store>) {
    let alice = remote_user("alice@fk.se");
    assert_eq!(store.ghost(&tid("fk"), &kind("xmpp"), &alice).await.unwrap(), None);

    let mut ghost = Ghost::new(tid("fk"), kind("xmpp"), alice.clone(), mxid("@xmpp_fk_alice:hub"));
    store.upsert_ghost(&ghost).await.unwrap();
    assert_eq!(store.ghost(&tid("fk"), &kind("xmpp"), &alice).await.unwrap(), Some(ghost.clone()));
    assert_eq!(store.ghost_by_user_id(&ghost.user_id).await.unwrap(), Some(ghost.clone()));

    ghost.display_name = Some("Alice Andersson".into());
    ghost.avatar_mxc = Some("mxc://hub/abc".into());
    ghost.avatar_source = Some("https://fk.se/avatar/alice.png".into());
    store.upsert_ghost(&ghost).await.unwrap();
    assert_eq!(store.ghost(&tid("fk"), &kind("xmpp"), &alice).await.unwrap(), Some(ghost.clone()));

    ghost.avatar_mxc = None;
    store.upsert_ghost(&ghost).await.unwrap();
    let read = store.ghost_by_user_id(&ghost.user_id).await.unwrap().unwrap();
    assert_eq!(read.avatar_mxc, None, "an upsert replaces the whole profile");
    assert_eq!(read.display_name.as_deref(), Some("Alice Andersson"));

    assert_eq!(store.ghost(&tid("fk"), &kind("teams"), &alice).await.unwrap(), None, "kind is part of the key");
    assert_eq!(store.ghost_by_user_id(&mxid("@xmpp_fk_bob:hub")).await.unwrap(), None);

    // A Matrix id belongs to exactly one remote user.
    let thief = Ghost::new(tid("fk"), kind("xmpp"), remote_user("mallory@fk.se"), ghost.user_id.clone());
    assert!(matches!(store.upsert_ghost(&thief).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.ghost_by_user_id(&ghost.user_id).await.unwrap(), Some(ghost));
}

/// Accounts are linked per tenant, kind and Matrix user.
pub async fn linked_accounts_link_relink_unlink(store: Arc<dyn Store>) {
    let bob = mxid("@bob:fk.se");
    assert!(store.linked_accounts(&tid("fk"), &bob).await.unwrap().is_empty());

    let mut xmpp = LinkedAccount::new(tid("fk"), kind("xmpp"), bob.clone(), remote_user("bob@fk.se"));
    xmpp.credentials = Some("sealed:abc".into());
    let teams = LinkedAccount::new(tid("fk"), kind("teams"), bob.clone(), remote_user("00000000-bob"));
    store.link_account(&xmpp).await.unwrap();
    store.link_account(&teams).await.unwrap();
    let other = LinkedAccount::new(tid("fk"), kind("xmpp"), mxid("@carol:fk.se"), remote_user("carol@fk.se"));
    store.link_account(&other).await.unwrap();
    assert_eq!(
        store.linked_accounts(&tid("fk"), &bob).await.unwrap(),
        vec![teams.clone(), xmpp.clone()],
        "ordered by kind, only this user's"
    );

    xmpp.remote_user = remote_user("robert@fk.se");
    xmpp.credentials = None;
    store.link_account(&xmpp).await.unwrap();
    assert_eq!(store.linked_accounts(&tid("fk"), &bob).await.unwrap(), vec![teams.clone(), xmpp]);
    assert!(store.linked_accounts(&tid("tv"), &bob).await.unwrap().is_empty(), "per tenant");

    assert!(store.unlink_account(&tid("fk"), &kind("xmpp"), &bob).await.unwrap());
    assert!(!store.unlink_account(&tid("fk"), &kind("xmpp"), &bob).await.unwrap());
    assert_eq!(store.linked_accounts(&tid("fk"), &bob).await.unwrap(), vec![teams]);
    assert_eq!(store.linked_accounts(&tid("fk"), &mxid("@carol:fk.se")).await.unwrap(), vec![other]);
}

/// Portals need their tenant; found by key and by Matrix room.
pub async fn portals_by_key_and_room(store: Arc<dyn Store>) {
    let key = portal("fk", "xmpp", "kansliet@conference.fk.se");
    match store.upsert_portal(&Portal::new(key.clone())).await {
        Err(StoreError::NotFound(msg)) => assert!(msg.contains("fk"), "message names the tenant: {msg}"),
        other => panic!("portal of an unknown tenant must be NotFound, got {other:?}"),
    }
    add_tenant(&*store, "fk").await;

    store.upsert_portal(&Portal::new(key.clone())).await.unwrap();
    assert_eq!(store.portal(&key).await.unwrap(), Some(Portal::new(key.clone())));

    let mut linked = Portal::new(key.clone());
    linked.room_id = Some(room_id("!kansliet:hub"));
    linked.name = Some("Kansliet".into());
    store.upsert_portal(&linked).await.unwrap();
    assert_eq!(store.portal(&key).await.unwrap(), Some(linked.clone()));
    assert_eq!(store.portal_by_room(&room_id("!kansliet:hub")).await.unwrap(), Some(linked.clone()));
    assert_eq!(store.portal_by_room(&room_id("!other:hub")).await.unwrap(), None);

    let second = portal("fk", "teams", "19:abc@thread.v2");
    let third = portal("fk", "xmpp", "annex@conference.fk.se");
    store.upsert_portal(&Portal::new(second.clone())).await.unwrap();
    store.upsert_portal(&Portal::new(third.clone())).await.unwrap();
    let keys: Vec<_> = store.portals(&tid("fk")).await.unwrap().into_iter().map(|p| p.key).collect();
    assert_eq!(keys, vec![second.clone(), third, key.clone()], "ordered by kind, then room");
    assert!(store.portals(&tid("tv")).await.unwrap().is_empty());

    // A Matrix room is bridged to one portal only.
    let mut thief = Portal::new(second);
    thief.room_id = Some(room_id("!kansliet:hub"));
    assert!(matches!(store.upsert_portal(&thief).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.portal_by_room(&room_id("!kansliet:hub")).await.unwrap(), Some(linked));

    // Unlinking frees the Matrix room.
    assert!(store.remove_portal(&key).await.unwrap());
    assert!(!store.remove_portal(&key).await.unwrap());
    assert_eq!(store.portal(&key).await.unwrap(), None);
    assert_eq!(store.portal_by_room(&room_id("!kansliet:hub")).await.unwrap(), None);
    store.upsert_portal(&thief).await.unwrap();
}

/// Portals, ghosts and waiting entries are counted per tenant and kind.
pub async fn counts_per_tenant_and_kind(store: Arc<dyn Store>) {
    add_tenant(&*store, "fk").await;
    add_tenant(&*store, "tv").await;
    store.upsert_portal(&Portal::new(portal("fk", "xmpp", "a@c"))).await.unwrap();
    store.upsert_portal(&Portal::new(portal("fk", "xmpp", "b@c"))).await.unwrap();
    store.upsert_portal(&Portal::new(portal("tv", "teams", "19:x"))).await.unwrap();
    let ghost = Ghost::new(tid("fk"), kind("xmpp"), remote_user("anna@fk.se"), mxid("@xmpp_fk_anna:hub"));
    store.upsert_ghost(&ghost).await.unwrap();
    let key = portal("fk", "xmpp", "a@c");
    store.enqueue(NewOutboxEntry::new(Direction::ToMatrix, key.clone(), "in-1", "{}".to_owned())).await.unwrap();
    store.enqueue(NewOutboxEntry::new(Direction::ToRemote, key.clone(), "out-1", "{}".to_owned())).await.unwrap();
    let done = store.enqueue(NewOutboxEntry::new(Direction::ToRemote, key, "out-2", "{}".to_owned())).await.unwrap();
    store.complete(done.unwrap(), Vec::new()).await.unwrap();
    let counts = store.counts().await.unwrap();
    let of = |t: &str, k: &str| counts.iter().find(|(key, _)| key == &(tid(t), kind(k))).map(|(_, c)| c.clone());
    let fk = of("fk", "xmpp").expect("fk's xmpp counts");
    assert_eq!((fk.portals, fk.ghosts, fk.pending_to_matrix, fk.pending_to_remote), (2, 1, 1, 1));
    let tv = of("tv", "teams").expect("tv's teams counts");
    assert_eq!((tv.portals, tv.ghosts, tv.pending_to_matrix, tv.pending_to_remote), (1, 0, 0, 0));
    assert_eq!(counts.len(), 2);
}

/// Ghosts of a tenant are listed and searched by remote id, Matrix id or
/// name, case-insensitively, with wildcards taken literally.
pub async fn ghosts_are_listed_and_searched(store: Arc<dyn Store>) {
    add_tenant(&*store, "fk").await;
    add_tenant(&*store, "tv").await;
    let mut anna = Ghost::new(tid("fk"), kind("xmpp"), remote_user("anna@fk.se"), mxid("@xmpp_fk_anna:hub"));
    anna.display_name = Some("Anna Berg".into());
    let bo = Ghost::new(tid("fk"), kind("xmpp"), remote_user("bo_50%@fk.se"), mxid("@xmpp_fk_bo:hub"));
    let other = Ghost::new(tid("tv"), kind("xmpp"), remote_user("anna@tv.se"), mxid("@xmpp_tv_anna:hub"));
    for ghost in [&anna, &bo, &other] {
        store.upsert_ghost(ghost).await.unwrap();
    }
    let ids = |ghosts: Vec<Ghost>| ghosts.into_iter().map(|g| g.user_id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(store.ghosts(&tid("fk"), None, 10).await.unwrap()), ["@xmpp_fk_anna:hub", "@xmpp_fk_bo:hub"]);
    assert_eq!(ids(store.ghosts(&tid("fk"), None, 1).await.unwrap()), ["@xmpp_fk_anna:hub"]);
    assert_eq!(ids(store.ghosts(&tid("fk"), Some("BERG"), 10).await.unwrap()), ["@xmpp_fk_anna:hub"]);
    assert_eq!(ids(store.ghosts(&tid("fk"), Some("xmpp_fk_b"), 10).await.unwrap()), ["@xmpp_fk_bo:hub"]);
    assert_eq!(ids(store.ghosts(&tid("fk"), Some("50%"), 10).await.unwrap()), ["@xmpp_fk_bo:hub"]);
    assert!(store.ghosts(&tid("fk"), Some("5_%"), 10).await.unwrap().is_empty(), "wildcards are literal");
    assert_eq!(ids(store.ghosts(&tid("tv"), Some("anna"), 10).await.unwrap()), ["@xmpp_tv_anna:hub"]);
}

/// Adapter state is kept per tenant and kind, replaced, forgotten, and goes with its tenant.
pub async fn adapter_state_by_tenant_and_kind(store: Arc<dyn Store>) {
    add_tenant(&*store, "fk").await;
    add_tenant(&*store, "tv").await;
    let (fk, tv, xmpp) = (tid("fk"), tid("tv"), kind("xmpp"));
    assert_eq!(store.adapter_state(&fk, &xmpp, "k").await.unwrap(), None);
    store.put_adapter_state(&fk, &xmpp, "k", Some("one")).await.unwrap();
    store.put_adapter_state(&fk, &xmpp, "k", Some("two")).await.unwrap();
    store.put_adapter_state(&tv, &xmpp, "k", Some("theirs")).await.unwrap();
    store.put_adapter_state(&fk, &kind("rocketchat"), "k", Some("other kind")).await.unwrap();
    assert_eq!(store.adapter_state(&fk, &xmpp, "k").await.unwrap().as_deref(), Some("two"));
    assert_eq!(store.adapter_state(&tv, &xmpp, "k").await.unwrap().as_deref(), Some("theirs"));
    store.put_adapter_state(&fk, &xmpp, "k", None).await.unwrap();
    assert_eq!(store.adapter_state(&fk, &xmpp, "k").await.unwrap(), None);
    assert!(store.remove_tenant(&tv).await.unwrap());
    assert_eq!(store.adapter_state(&tv, &xmpp, "k").await.unwrap(), None);
}

/// Admin tokens: stored per tenant (which must exist), found by hash (which
/// is unique), listed oldest first, revoked only by their own tenant, and
/// gone with the tenant.
pub async fn admin_tokens_by_hash_and_tenant(store: Arc<dyn Store>) {
    add_tenant(&*store, "fk").await;
    add_tenant(&*store, "tv").await;
    let (fk, tv) = (tid("fk"), tid("tv"));
    let mut first = AdminToken::new("t1", fk.clone(), "aa11", 10);
    first.label = Some("console".into());
    store.put_admin_token(&first).await.unwrap();
    store.put_admin_token(&AdminToken::new("t2", fk.clone(), "bb22", 20)).await.unwrap();
    store.put_admin_token(&AdminToken::new("t3", tv.clone(), "cc33", 5)).await.unwrap();
    let orphan = store.put_admin_token(&AdminToken::new("t4", tid("nobody"), "dd44", 1)).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
    let duplicate = store.put_admin_token(&AdminToken::new("t5", tv.clone(), "aa11", 1)).await;
    assert!(duplicate.is_err(), "two tokens with one hash");
    assert_eq!(store.admin_token_by_hash("aa11").await.unwrap(), Some(first.clone()));
    assert_eq!(store.admin_token_by_hash("ffff").await.unwrap(), None);
    let ids: Vec<String> = store.admin_tokens(&fk).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert!(!store.remove_admin_token(&tv, "t1").await.unwrap(), "another tenant's token");
    assert!(store.remove_admin_token(&fk, "t1").await.unwrap());
    assert_eq!(store.admin_token_by_hash("aa11").await.unwrap(), None);
    assert!(store.remove_tenant(&tv).await.unwrap());
    assert_eq!(store.admin_token_by_hash("cc33").await.unwrap(), None);
    assert_eq!(store.admin_tokens(&fk).await.unwrap().len(), 1);
}
