//! `cargo xtask demo`: Synapse plus the bridge, registered and pinged, for a person to try.

use crate::{cargo, install};
use brygga_harness::process::ProcessGuard;
use brygga_harness::synapse::{Synapse, SynapseOptions};
use brygga_harness::{http, ports::free_port, random_hex, tail, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs the demo until Ctrl-C, SIGTERM or end of stdin. Ctrl-C and SIGTERM
/// end this process at once; the harness's reapers then stop Synapse and the bridge.
pub fn run() -> Result<ExitCode, String> {
    install::ensure_all()?;
    let root = workspace_root();
    println!("xtask: building brygga");
    install::run(cargo().args(["build", "-p", "brygga"]))?;
    let bin = target_dir(&root).join("debug/brygga");

    let dir = root.join(".brygga-run/demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Each run gets a fresh homeserver, so state from an earlier run would point at rooms that are gone.
    for name in ["brygga.db", "brygga.db-wal", "brygga.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let ports = distinct_free_ports();
    let as_token = random_hex(32);
    let config = dir.join("config.yaml");
    write(&config, &bridge_config(&dir, ports, &as_token))?;

    let registration = dir.join("registration.yaml");
    install::run(Command::new(&bin).arg("generate-registration").arg("-c").arg(&config).arg("-o").arg(&registration))?;
    let registration_yaml =
        std::fs::read_to_string(&registration).map_err(|e| format!("reading {}: {e}", registration.display()))?;

    println!("xtask: starting Synapse on 127.0.0.1:{}", ports[0]);
    let hs = Synapse::start(SynapseOptions {
        registration_yaml: Some(registration_yaml),
        port: Some(ports[0]),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let password = random_hex(8);
    let (alice, _) = hs.register_user("alice", &password).map_err(|e| e.to_string())?;

    println!("xtask: starting the bridge (log: {})", dir.join("brygga.log").display());
    let mut bridge = start_bridge(&bin, &dir, &config)?;
    wait_healthy(&mut bridge, ports[2], &dir.join("brygga.log"))?;

    let ping_url = format!("{}/_matrix/client/v1/appservice/brygga/ping", hs.base_url());
    let auth = format!("Bearer {as_token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let ping = http::request("POST", &ping_url, &headers, Some("{}")).map_err(|e| e.to_string())?;
    let pinged = ping.status == 200;
    println!("xtask: appservice ping: HTTP {} {}", ping.status, ping.body.trim());

    println!();
    println!("==== brygga demo is running ====");
    println!("  Homeserver URL: {}   (server name: {})", hs.base_url(), hs.server_name());
    println!("  User:           {alice}   (or just: alice)");
    println!("  Password:       {password}");
    println!(
        "  Bridge:         registered as appservice `brygga`; {}",
        if pinged { "ping round-trip OK" } else { "ping FAILED, see the bridge log" }
    );
    println!("  Bridge admin:   http://127.0.0.1:{}/health and /metrics", ports[2]);
    println!("  Files:          {} (config, registration, brygga.log)", dir.display());
    println!("  Log in with any Matrix client (e.g. Element) using the homeserver URL above.");
    println!("Press Ctrl-C (or end stdin) to stop.");

    let code = wait_for_stop(&mut bridge, &dir.join("brygga.log"));
    println!("xtask: stopping the bridge and Synapse");
    bridge.stop(Duration::from_secs(10));
    drop(hs);
    Ok(code)
}

/// Homeserver, appservice and admin ports, all different.
fn distinct_free_ports() -> [u16; 3] {
    loop {
        let p = [free_port(), free_port(), free_port()];
        if p[0] != p[1] && p[1] != p[2] && p[0] != p[2] {
            return p;
        }
    }
}

fn bridge_config(dir: &Path, [hs_port, as_port, admin_port]: [u16; 3], as_token: &str) -> String {
    let hs_token = random_hex(32);
    format!(
        r#"homeserver: {{ url: "http://127.0.0.1:{hs_port}", server_name: "localhost" }}
appservice:
  id: brygga
  listen: "127.0.0.1:{as_port}"
  url: "http://127.0.0.1:{as_port}"
  as_token: "{as_token}"
  hs_token: "{hs_token}"
  bot_localpart: brygga
database: {{ url: "sqlite://{db}" }}
admin: {{ listen: "127.0.0.1:{admin_port}" }}
logging: {{ level: info, format: pretty }}
tenants:
  - id: demo
    display_name: "Demo agency"
    invite: ["@alice:localhost"]
"#,
        db = dir.join("brygga.db").display()
    )
}

fn start_bridge(bin: &Path, dir: &Path, config: &Path) -> Result<ProcessGuard, String> {
    let log = std::fs::File::create(dir.join("brygga.log")).map_err(|e| e.to_string())?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("-c").arg(config).current_dir(dir).stdin(Stdio::null()).stdout(log).stderr(log_err);
    ProcessGuard::spawn("brygga", &mut cmd, "").map_err(|e| e.to_string())
}

fn wait_healthy(bridge: &mut ProcessGuard, admin_port: u16, log: &Path) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{admin_port}/health");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = bridge.exited() {
            return Err(format!("the bridge exited ({status}); log tail:\n{}", tail(log, 30)));
        }
        if http::get(&url).is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the bridge did not answer {url} within 60 s; log tail:\n{}", tail(log, 30)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Blocks until stdin ends (success) or the bridge dies (failure).
fn wait_for_stop(bridge: &mut ProcessGuard, log: &Path) -> ExitCode {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    loop {
        if rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            return ExitCode::SUCCESS;
        }
        if let Some(status) = bridge.exited() {
            eprintln!("xtask: the bridge exited ({status}); log tail:\n{}", tail(log, 30));
            return ExitCode::FAILURE;
        }
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
