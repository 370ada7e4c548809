//! The web console in real headless Chromium (Debian's `chromium`, driven by
//! Playwright in `tests/console/console-check.mjs`): fk's tenant admin logs
//! in, sees fk's loopback adapter and nothing of tv, disables and enables it
//! and sees its status follow; a wrong token shows an error. Then the API
//! confirms fk's adapter runs again and tv's was never touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use brygga_core::{AdapterKind, MatrixRoomId, Portal, PortalKey, RemoteRoomId, Store, Tenant, TenantId};
use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::bridge::{BridgeProcess, BridgeSetup};
use brygga_store::SqlStore;
use serde_json::json;

/// The name of fk's portal: markup, which the console must show as text.
const PORTAL_NAME: &str = "<img src=x onerror=alert(1)>Lobby";

const CHROMIUM: &str = "/usr/bin/chromium";
/// Where `cargo xtask test` installs playwright-core unless told otherwise.
const DEPS_VAR: &str = "BRYGGA_CONSOLE_DEPS";

/// A bridge with tenants `fk` and `tv`, each with a loopback adapter, and
/// a portal of fk's (stored before the start: without a homeserver the
/// bridge cannot link one).
async fn bridge(dir: &Path) -> (BridgeProcess, BridgeSetup) {
    let setup = BridgeSetup::new(format!("sqlite://{}/console.db", dir.display()));
    let store = SqlStore::connect(&setup.db_url).await.expect("open the store");
    let fk = TenantId::new("fk").unwrap();
    store.upsert_tenant(&Tenant::new(fk.clone(), "fk")).await.unwrap();
    let mut portal =
        Portal::new(PortalKey::new(fk, AdapterKind::new("loopback").unwrap(), RemoteRoomId::new("lobby").unwrap()));
    portal.room_id = Some(MatrixRoomId::new("!lobby:localhost").unwrap());
    portal.name = Some(PORTAL_NAME.to_owned());
    store.upsert_portal(&portal).await.unwrap();
    store.close().await;
    let tenants: String = ["fk", "tv"]
        .iter()
        .map(|t| format!("  - id: {t}\n    adapters:\n      loopback:\n        config: {{ url: \"http://127.0.0.1:1\", network: \"{t}\" }}\n"))
        .collect();
    let mut bridge = BridgeProcess::new(dir, &setup.config(&tenants), setup.admin_port);
    bridge.start().await;
    (bridge, setup)
}

/// The folder holding `node_modules/playwright-core`; fails loudly when
/// the browser or Playwright is missing (never skips).
fn browser_deps() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)"
    );
    let deps = std::env::var_os(DEPS_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| brygga_harness::workspace_root().join("target/console-deps"));
    assert!(
        deps.join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is missing in {}/node_modules: run `cargo xtask test` (or set {DEPS_VAR})",
        deps.display()
    );
    deps
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admin_toggles_an_adapter_in_the_browser() {
    let deps = browser_deps();
    let dir = tempfile::tempdir().unwrap();
    let (bridge, setup) = bridge(dir.path()).await;
    let api = AdminApi::new(bridge.admin_url());
    let op = Some(setup.operator_token.as_str());

    let minted = api.call(op, "POST", "/tenants/fk/tokens", Some(json!({"label": "console test"}))).await;
    assert_eq!(minted.status, 201, "{minted:?}");
    let fk_token = minted.body["token"].as_str().unwrap().to_owned();
    // Both adapters start in the background; wait until they run.
    for tenant in ["fk", "tv"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let adapter = api.call(op, "GET", &format!("/tenants/{tenant}/adapters/loopback"), None).await.body;
            if adapter["running"] == true {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{tenant}'s adapter never ran: {adapter}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let script = brygga_harness::workspace_root().join("tests/console/console-check.mjs");
    let console_url = format!("{}/console", bridge.admin_url());
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&console_url)
        .arg(&fk_token)
        .env(DEPS_VAR, &deps)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("console-check.mjs did not finish in 180 s")
        .expect("running node (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser check failed ({}):\n{stdout}\n{stderr}\n--- bridge log ---\n{}",
        output.status,
        bridge.log()
    );

    // What the browser did shows in the API: fk's adapter runs again, tv's was untouched.
    let fk = api.call(op, "GET", "/tenants/fk/adapters/loopback", None).await.body;
    assert_eq!((fk["enabled"].as_bool(), fk["running"].as_bool()), (Some(true), Some(true)), "{fk}");
    let tv = api.call(op, "GET", "/tenants/tv/adapters/loopback", None).await.body;
    assert_eq!((tv["enabled"].as_bool(), tv["running"].as_bool()), (Some(true), Some(true)), "{tv}");
    // The bridge logs each change made through the API: fk's two, none of tv's.
    let log = std::fs::read_to_string(dir.path().join("bridge-1.log")).expect("the bridge's log");
    let changes: Vec<&str> = log.lines().filter(|l| l.contains("adapter changed through the API")).collect();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert!(changes.iter().all(|l| l.contains("fk") && !l.contains("tv")), "{changes:#?}");
}
