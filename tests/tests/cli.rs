//! The `brygga` command line: tenants, adapters, registration and config
//! errors, run through the real binary (with the loopback adapter).

use std::path::Path;
use std::process::Command;

use brygga_e2e::env::bridge_binary;

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    let yaml = format!(
        "homeserver: {{ url: \"http://127.0.0.1:1\", server_name: \"hub.example\" }}\n\
         appservice: {{ listen: \"127.0.0.1:1\", url: \"http://127.0.0.1:1\", as_token: \"aaaaaaaaaaaaaaaaaaaa\", hs_token: \"bbbbbbbbbbbbbbbbbbbb\" }}\n\
         database: {{ url: \"sqlite://{}/cli.db\" }}\n",
        dir.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn brygga(config: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(bridge_binary()).arg("-c").arg(config).args(args).output().expect("run brygga");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn tenants_and_adapters_are_managed_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    assert!(brygga(&cfg, &["migrate"]).0);
    let (ok, out) = brygga(&cfg, &["tenant", "add", "ag-1", "--name", "Agency One", "--invite", "@alice:hub.example"]);
    assert!(ok, "{out}");
    let (ok, out) = brygga(&cfg, &["tenant", "add", "ag-1"]);
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = brygga(&cfg, &["tenant", "list"]);
    assert!(ok && out.contains("ag-1\tAgency One\tactive"), "{out}");

    let (ok, out) = brygga(&cfg, &["adapter", "enable", "ag-1", "telex"]);
    assert!(!ok && out.contains("unknown adapter kind") && out.contains("loopback"), "{out}");
    let (ok, out) = brygga(
        &cfg,
        &["adapter", "enable", "nosuch", "loopback", "--adapter-config", r#"{"url":"http://x","network":"n"}"#],
    );
    assert!(!ok && out.contains("unknown tenant"), "{out}");
    let (ok, out) = brygga(
        &cfg,
        &["adapter", "enable", "ag-1", "loopback", "--adapter-config", r#"{"url":"ftp://x","network":"n"}"#],
    );
    assert!(!ok && out.contains("url"), "{out}");
    let (ok, out) = brygga(&cfg, &["adapter", "enable", "ag-1", "loopback", "--adapter-config", "{not json"]);
    assert!(!ok && out.contains("not valid JSON"), "{out}");
    let (ok, out) = brygga(
        &cfg,
        &["adapter", "enable", "ag-1", "loopback", "--adapter-config", r#"{"url":"http://x","network":"n"}"#],
    );
    assert!(ok, "{out}");
    let (ok, out) = brygga(&cfg, &["adapter", "disable", "ag-1", "loopback"]);
    assert!(ok, "{out}");
    let (ok, out) = brygga(&cfg, &["adapter", "list"]);
    assert!(ok && out.contains("ag-1\tloopback\tdisabled"), "{out}");

    let (ok, out) = brygga(&cfg, &["generate-registration", "-o", "-"]);
    assert!(ok, "{out}");
    assert!(out.contains("@loopback_ag-1_.*:hub\\.example"), "{out}");

    let (ok, out) = brygga(&cfg, &["tenant", "remove", "ag-1"]);
    assert!(!ok && out.contains("--yes"), "{out}");
    let (ok, out) = brygga(&cfg, &["tenant", "remove", "ag-1", "--yes"]);
    assert!(ok, "{out}");
    let (ok, out) = brygga(&cfg, &["adapter", "list"]);
    assert!(ok && !out.contains("ag-1"), "{out}");
    let (ok, out) = brygga(&cfg, &["tenant", "add", "Bad_Id"]);
    assert!(!ok && out.contains("TenantId"), "{out}");
}

#[test]
fn a_bad_config_names_the_key_and_exits_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap().replace("127.0.0.1:1\", url", "somewhere\", url");
    std::fs::write(&cfg, text).unwrap();
    let output = Command::new(bridge_binary()).arg("-c").arg(&cfg).arg("migrate").output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("appservice.listen"), "{err}");

    let missing = Command::new(bridge_binary()).args(["-c", "/nonexistent/brygga.yaml", "run"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn run_starts_without_a_homeserver_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (as_port, admin_port) = (brygga_harness::ports::free_port(), brygga_harness::ports::free_port());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("listen: \"127.0.0.1:1\"", &format!("listen: \"127.0.0.1:{as_port}\""))
        + format!("admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\n").as_str();
    std::fs::write(&cfg, text).unwrap();
    let mut command = Command::new(bridge_binary());
    command.arg("-c").arg(&cfg).arg("run").stderr(std::process::Stdio::null());
    let mut bridge = brygga_harness::process::ProcessGuard::spawn("bridge", &mut command, "").unwrap();
    let health = format!("http://127.0.0.1:{admin_port}/health");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while brygga_harness::http::get(&health).map(|r| r.status).ok() != Some(200) {
        assert!(bridge.exited().is_none(), "the bridge exited although only the homeserver is missing");
        assert!(std::time::Instant::now() < deadline, "the bridge never became healthy");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = bridge.stop(std::time::Duration::from_secs(10)).expect("exit status");
    assert!(status.success(), "SIGTERM should end the bridge cleanly, got {status}");
}
