//! The admin API of a running bridge (no homeserver needed): tokens and
//! their scope, tenants, adapters toggled at run time, and clear 4xx answers
//! to bad input. Every answer is checked against the shipped OpenAPI document.

use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::bridge::{BridgeProcess, BridgeSetup};
use serde_json::{Value, json};

const LOOPBACK: &str = r#"{"config": {"url": "http://127.0.0.1:1", "network": "n"}}"#;

/// A bridge with tenants `fk` and `tv`, each with a loopback adapter.
async fn bridge(dir: &std::path::Path) -> (BridgeProcess, BridgeSetup) {
    let setup = BridgeSetup::new(format!("sqlite://{}/api.db", dir.display()));
    let tenants: String = ["fk", "tv"]
        .iter()
        .map(|t| format!("  - id: {t}\n    adapters:\n      loopback:\n        config: {{ url: \"http://127.0.0.1:1\", network: \"{t}\" }}\n"))
        .collect();
    let mut bridge = BridgeProcess::new(dir, &setup.config(&tenants), setup.admin_port);
    bridge.start().await;
    (bridge, setup)
}

/// Every route of one tenant, as (method, path, body).
fn routes_of(tenant: &str) -> Vec<(&'static str, String, Option<&'static str>)> {
    let t = format!("/tenants/{tenant}");
    vec![
        ("GET", t.clone(), None),
        ("PATCH", t.clone(), Some(r#"{"display_name": "renamed"}"#)),
        ("DELETE", format!("{t}?confirm={tenant}"), None),
        ("POST", format!("{t}/suspend"), None),
        ("POST", format!("{t}/resume"), None),
        ("GET", format!("{t}/adapters"), None),
        ("GET", format!("{t}/adapters/loopback"), None),
        ("PUT", format!("{t}/adapters/loopback"), Some(LOOPBACK)),
        ("POST", format!("{t}/adapters/loopback/enable"), None),
        ("POST", format!("{t}/adapters/loopback/disable"), None),
        ("GET", format!("{t}/portals"), None),
        (
            "POST",
            format!("{t}/portals"),
            Some(r#"{"kind": "loopback", "remote_room": "r9", "room_id": "!r9:localhost"}"#),
        ),
        ("DELETE", format!("{t}/portals/loopback/r9"), None),
        ("GET", format!("{t}/ghosts?search=a"), None),
        ("GET", format!("{t}/tokens"), None),
        ("POST", format!("{t}/tokens"), None),
        ("DELETE", format!("{t}/tokens/tok_x"), None),
    ]
}

fn status_of(adapter: &Value) -> &str {
    adapter["status"].as_str().unwrap_or_default()
}

/// Waits until the adapter at `path` reports `status`; returns it.
async fn wait_status(api: &AdminApi, token: Option<&str>, path: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let adapter = api.call(token, "GET", path, None).await.body;
        if status_of(&adapter) == status {
            return adapter;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {status}: {adapter}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_scope_every_route_and_adapters_toggle_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let (bridge, setup) = bridge(dir.path()).await;
    let api = AdminApi::new(bridge.admin_url());
    let op = Some(setup.operator_token.as_str());

    // No token, a bad token and a malformed header: 401 everywhere.
    let mut all = routes_of("fk");
    all.push(("GET", "/tenants".into(), None));
    all.push(("POST", "/tenants".into(), Some(r#"{"id": "new"}"#)));
    all.push(("GET", "/whoami".into(), None));
    for (method, path, body) in &all {
        for token in [None, Some("not-a-token")] {
            let answer = api.call_raw(token, method, path, *body).await;
            assert_eq!(answer.status, 401, "{method} {path} with {token:?}: {answer:?}");
        }
    }
    let client = reqwest::Client::new();
    let basic = client
        .get(format!("{}/api/v1/whoami", bridge.admin_url()))
        .header("authorization", format!("Basic {}", setup.operator_token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);

    // The operator mints a token for fk's admin; the secret is shown once.
    assert_eq!(api.call(op, "GET", "/whoami", None).await.body["role"], "operator");
    let minted = api.call(op, "POST", "/tenants/fk/tokens", Some(json!({"label": "fk console"}))).await;
    assert_eq!(minted.status, 201, "{minted:?}");
    let fk_token = minted.body["token"].as_str().unwrap().to_owned();
    let fk = Some(fk_token.as_str());
    let listed = api.call(op, "GET", "/tenants/fk/tokens", None).await;
    assert_eq!(listed.body["tokens"][0]["label"], "fk console");
    assert!(listed.body["tokens"][0]["token"].is_null(), "a listing shows no secret");

    // fk's admin sees fk only and is refused (403) on every route of tv.
    let whoami = api.call(fk, "GET", "/whoami", None).await.body;
    assert_eq!((whoami["role"].as_str(), whoami["tenant"].as_str()), (Some("tenant_admin"), Some("fk")));
    let tenants = api.call(fk, "GET", "/tenants", None).await.body;
    let ids: Vec<&str> = tenants["tenants"].as_array().unwrap().iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["fk"]);
    for (method, path, body) in routes_of("tv") {
        let answer = api.call_raw(fk, method, &path, body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
        assert!(answer.body["error"].as_str().unwrap().contains("tenant fk only"), "{answer:?}");
    }
    // ... and from the operator's own actions, even on fk.
    for (method, path, body) in [
        ("POST", "/tenants".to_owned(), Some(r#"{"id": "new"}"#)),
        ("POST", "/tenants/fk/suspend".to_owned(), None),
        ("PATCH", "/tenants/fk".to_owned(), Some(r#"{"display_name": "renamed"}"#)),
        ("DELETE", "/tenants/fk?confirm=fk".to_owned(), None),
        ("GET", "/tenants/fk/tokens".to_owned(), None),
        ("POST", "/tenants/fk/tokens".to_owned(), None),
    ] {
        let answer = api.call_raw(fk, method, &path, body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
    }

    // fk's admin toggles fk's adapter at run time; tv's keeps running.
    let adapters = api.call(fk, "GET", "/tenants/fk/adapters", None).await.body;
    assert_eq!(adapters["adapters"][0]["running"], true, "{adapters}");
    // Its platform is unreachable: it says so, with the error.
    let failing = wait_status(&api, fk, "/tenants/fk/adapters/loopback", "transient_error").await;
    assert!(failing["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{failing}");
    assert!(failing["last_error_at"].is_i64(), "{failing}");
    let off = api.call(fk, "POST", "/tenants/fk/adapters/loopback/disable", None).await;
    assert_eq!((status_of(&off.body), off.body["running"].as_bool()), ("disabled", Some(false)));
    assert_eq!(api.call(op, "GET", "/tenants/tv/adapters/loopback", None).await.body["running"], true);
    let on = api.call(fk, "POST", "/tenants/fk/adapters/loopback/enable", None).await;
    assert_eq!(on.body["running"], true, "{on:?}");
    let reconfigured = api
        .call(
            fk,
            "PUT",
            "/tenants/fk/adapters/loopback",
            Some(json!({"config": {"url": "http://127.0.0.1:2", "network": "fk"}})),
        )
        .await;
    assert_eq!(reconfigured.body["running"], true, "{reconfigured:?}");

    // Bad input gets clear 4xx answers.
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        (
            "PUT",
            "/tenants/fk/adapters/loopback".into(),
            Some(r#"{"config": {"url": "ftp://x", "network": "n"}}"#),
            422,
            "url",
        ),
        ("PUT", "/tenants/fk/adapters/loopback".into(), Some("{not json"), 400, ""),
        ("PUT", "/tenants/fk/adapters/loopback".into(), Some(r#"{"config": {}, "colour": 1}"#), 400, "colour"),
        ("PUT", "/tenants/fk/adapters/telex".into(), Some(LOOPBACK), 404, "unknown adapter kind"),
        ("POST", "/tenants/fk/adapters/telex/enable".into(), None, 404, "loopback"),
        ("GET", "/tenants/Not%20An%20Id".into(), None, 400, ""),
        ("GET", "/tenants/nosuch".into(), None, 404, "unknown tenant"),
        ("POST", "/tenants".into(), Some(r#"{"id": "fk"}"#), 409, "already exists"),
        ("POST", "/tenants".into(), Some(r#"{"id": "Bad Id"}"#), 400, ""),
        ("POST", "/tenants".into(), Some(r#"{"id": "ok", "invite": ["alice"]}"#), 400, "invite"),
        ("DELETE", "/tenants/tv".into(), None, 400, "confirm"),
        ("DELETE", "/tenants/fk/tokens/tok_nosuch".into(), None, 404, "no token"),
        (
            "POST",
            "/tenants/fk/portals".into(),
            Some(r#"{"kind": "loopback", "remote_room": "r1", "room_id": "not a room"}"#),
            400,
            "",
        ),
        (
            "POST",
            "/tenants/fk/portals".into(),
            Some(r#"{"kind": "telex", "remote_room": "r1", "room_id": "!r:localhost"}"#),
            404,
            "telex",
        ),
        ("DELETE", "/tenants/fk/portals/loopback/nosuch".into(), None, 404, "no portal"),
        ("GET", "/tenants/fk/ghosts?limit=x".into(), None, 400, ""),
    ];
    for (method, path, body, status, says) in cases {
        let answer = api.call_raw(op, method, &path, body).await;
        assert_eq!(answer.status, status, "{method} {path}: {answer:?}");
        assert!(answer.body["error"].as_str().unwrap().contains(says), "{method} {path}: {answer:?}");
    }

    // The operator creates, suspends, resumes and deletes tenants.
    let created = api.call(op, "POST", "/tenants", Some(json!({"id": "ag", "display_name": "Agency"}))).await;
    assert_eq!((created.status, created.body["display_name"].as_str()), (201, Some("Agency")));
    let suspended = api.call(op, "POST", "/tenants/tv/suspend", None).await.body;
    assert_eq!(suspended["suspended"], true);
    assert_eq!(status_of(&api.call(op, "GET", "/tenants/tv/adapters/loopback", None).await.body), "stopped");
    api.call(op, "POST", "/tenants/tv/resume", None).await;
    assert_eq!(api.call(op, "GET", "/tenants/tv/adapters/loopback", None).await.body["running"], true);
    assert_eq!(api.call(op, "DELETE", "/tenants/tv?confirm=tv", None).await.status, 204);
    assert_eq!(api.call(op, "GET", "/tenants/tv", None).await.status, 404);

    // A revoked token no longer works.
    let id = listed.body["tokens"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(api.call(op, "DELETE", &format!("/tenants/fk/tokens/{id}"), None).await.status, 204);
    assert_eq!(api.call(fk, "GET", "/whoami", None).await.status, 401);
    let spec = client.get(format!("{}/api/v1/openapi.yaml", bridge.admin_url())).send().await.unwrap();
    assert!(spec.text().await.unwrap().starts_with("openapi: 3.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_changes_a_running_bridge_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (bridge, setup) = bridge(dir.path()).await;
    let api = AdminApi::new(bridge.admin_url());
    let op = Some(setup.operator_token.as_str());

    let out = bridge.cli(&["adapter", "disable", "fk", "loopback"]);
    assert!(out.contains("running bridge"), "{out}");
    let shown = api.call(op, "GET", "/tenants/fk/adapters/loopback", None).await.body;
    assert_eq!((shown["status"].as_str(), shown["running"].as_bool()), (Some("disabled"), Some(false)), "at once");
    let listed = bridge.cli(&["adapter", "list"]);
    assert!(listed.contains("fk\tloopback\tdisabled") && listed.contains("tv\tloopback\t"), "{listed}");
    bridge.cli(&["adapter", "enable", "fk", "loopback"]);
    assert_eq!(api.call(op, "GET", "/tenants/fk/adapters/loopback", None).await.body["running"], true);

    bridge.cli(&["tenant", "add", "ag", "--name", "Agency"]);
    let tenants = bridge.cli(&["tenant", "list"]);
    assert!(tenants.contains("ag\tAgency\tactive"), "{tenants}");
    assert_eq!(api.call(op, "GET", "/tenants/ag", None).await.status, 200);

    // The bridge's refusals reach the terminal.
    let refused = std::process::Command::new(brygga_e2e::bridge::bridge_binary())
        .args(["-c", dir.path().join("config.yaml").to_str().unwrap(), "adapter", "enable", "fk", "telex"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("telex") && stderr.contains("loopback"), "{stderr}");
    bridge.cli(&["tenant", "remove", "ag", "--yes"]);
    assert_eq!(api.call(op, "GET", "/tenants/ag", None).await.status, 404);
}
