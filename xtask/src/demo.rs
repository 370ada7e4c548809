//! `cargo xtask demo`: Synapse, Prosody and the bridge with a demo tenant and one
//! linked room, for a person to chat across from any Matrix and any XMPP client.
//! With `--rocketchat`, also a stand-in Rocket.Chat workspace (see `demo_rocketchat`);
//! with `--teams`, a stand-in Teams tenant (see `demo_teams`).

use crate::demo_rocketchat::RocketChatDemo;
use crate::demo_teams::TeamsDemo;
use crate::{cargo, install};
use brygga_harness::process::ProcessGuard;
use brygga_harness::prosody::{Prosody, ProsodyOptions};
use brygga_harness::synapse::{Synapse, SynapseOptions};
use brygga_harness::{http, ports::free_port, random_hex, tail, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo tenant.
const TENANT: &str = "demo";
/// The tenant's XMPP component domain.
const COMPONENT: &str = "matrix.localhost";
/// The XMPP user, registered on `localhost`.
const XMPP_USER: &str = "bob";
/// The group chat linked to the demo's Matrix room.
const LOBBY: &str = "lobby@conference.localhost";
/// What the bridge logs once its XMPP component is online.
const CONNECTED: &str = "XMPP component connected";

/// Runs the demo until Ctrl-C, SIGTERM or end of stdin. Ctrl-C and SIGTERM end
/// this process at once; the harness's reapers then stop Synapse, Prosody and the bridge.
/// `stand_ins` adds the stand-in Rocket.Chat workspace and Teams tenant.
pub fn run(stand_ins: StandIns) -> Result<ExitCode, String> {
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
    let log = dir.join("brygga.log");

    let mut rocketchat = if stand_ins.rocketchat { Some(RocketChatDemo::start()?) } else { None };
    let mut teams = if stand_ins.teams { Some(TeamsDemo::start()?) } else { None };
    let component_secret = random_hex(16);
    let bob_password = random_hex(8);
    println!("xtask: starting Prosody");
    let mut prosody = Prosody::start(ProsodyOptions {
        components: vec![(COMPONENT.to_owned(), component_secret.clone())],
        users: vec![(XMPP_USER.to_owned(), bob_password.clone())],
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    println!("xtask: Prosody is listening on 127.0.0.1:{} (clients)", prosody.c2s_port());

    let ports = distinct_free_ports();
    let as_token = random_hex(32);
    let config = dir.join("config.yaml");
    let xmpp = XmppSettings { component_port: prosody.component_port(), secret: &component_secret };
    let mut more_adapters = rocketchat.as_ref().map(RocketChatDemo::adapter_yaml).unwrap_or_default();
    if let Some(teams) = &teams {
        more_adapters.push_str(&teams.adapter_yaml(TENANT, ports[1]));
    }
    write(&config, &bridge_config(&dir, ports, &as_token, &xmpp, &more_adapters))?;

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
    let (alice, alice_token) = hs.register_user("alice", &password).map_err(|e| e.to_string())?;

    println!("xtask: starting the bridge (log: {})", log.display());
    let mut bridge = start_bridge(&bin, &dir, &config)?;
    wait_healthy(&mut bridge, ports[2], &log)?;

    let ping_url = format!("{}/_matrix/client/v1/appservice/brygga/ping", hs.base_url());
    let auth = format!("Bearer {as_token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let ping = http::request("POST", &ping_url, &headers, Some("{}")).map_err(|e| e.to_string())?;
    let pinged = ping.status == 200;
    println!("xtask: appservice ping: HTTP {} {}", ping.status, ping.body.trim());

    let connected = wait_for_log(&mut bridge, &log, CONNECTED, Duration::from_secs(30))?;
    println!("xtask: XMPP component {COMPONENT}: {}", if connected { "connected" } else { "NOT connected" });

    let matrix = MatrixClient { base_url: hs.base_url(), token: alice_token };
    let room = matrix.create_room("Lobby", &["@brygga:localhost"])?;
    println!("xtask: Alice created {room}; linking it to {LOBBY}");
    let linked = link_room(&bin, &dir, &config, &["xmpp", LOBBY, &room, "--name", "lobby"])?;
    println!("xtask: {linked}");
    // The first message seats the bridge in the group chat at once (it would otherwise join
    // on its next portal refresh), and greets both sides.
    matrix.send_text(
        &room,
        &format!("Welcome to the brygga demo: this room is bridged to the XMPP group chat {LOBBY}."),
    )?;
    if let Some(rc) = &mut rocketchat {
        let cli = |rid: &str, room: &str| link_room(&bin, &dir, &config, &["rocketchat", rid, room, "--name", "lobby"]);
        rc.open_lobby(&matrix, "@brygga:localhost", cli)?;
    }
    if let Some(teams) = &mut teams {
        let cli = |remote: &str, room: &str, name: &str| {
            link_room(&bin, &dir, &config, &["teams", remote, room, "--name", name])
        };
        teams.open_rooms(&matrix, "@brygga:localhost", cli)?;
    }

    let c2s = prosody.c2s_port();
    println!();
    println!("==== brygga demo is running ====");
    println!("Matrix (log in with any Matrix client, e.g. Element, using the homeserver URL):");
    println!("  Homeserver URL: {}   (server name: {})", hs.base_url(), hs.server_name());
    println!("  User:           {alice}   (or just: alice)");
    println!("  Password:       {password}");
    println!("  Room:           {room}   (\"Lobby\", already joined, bridged to {LOBBY})");
    println!("XMPP (log in with any XMPP client that lets you set the server address):");
    println!("  Server:         127.0.0.1, port {c2s}   (XMPP domain: localhost)");
    println!("  Encryption:     none needed: plain TCP logins are allowed (STARTTLS is offered with a");
    println!("                  self-signed certificate; accept it or turn TLS off in the client)");
    println!("  JID:            {XMPP_USER}@localhost");
    println!("  Password:       {bob_password}");
    println!("  Group chat:     {LOBBY}   (join with any nickname)");
    println!(
        "  Gajim:          add the account, \"Advanced\" -> host 127.0.0.1, port {c2s}, connection type \"Plain\""
    );
    println!("  Profanity:      /connect {XMPP_USER}@localhost server 127.0.0.1 port {c2s} tls disable");
    println!("More group chats: any group chat on conference.localhost opens from Matrix by joining");
    println!("  #xmpp_{TENANT}_<room>_conference.localhost:localhost   (e.g. after bob joins");
    println!("  coffee@conference.localhost, Alice joins #xmpp_{TENANT}_coffee_conference.localhost:localhost)");
    if let Some(rc) = &rocketchat {
        rc.print_logins();
    }
    if let Some(teams) = &teams {
        teams.print_logins();
    }
    println!(
        "Bridge:           registered as appservice `brygga`; {}; XMPP component {COMPONENT} {}",
        if pinged { "ping round-trip OK" } else { "ping FAILED, see the bridge log" },
        if connected { "connected" } else { "NOT connected, see the bridge log" }
    );
    println!("Bridge admin:     http://127.0.0.1:{}/health and /metrics", ports[2]);
    println!("Files:            {} (config, registration, brygga.log)", dir.display());
    println!("Prosody log:      {}", prosody.log_path().display());
    println!("Press Ctrl-C (or end stdin) to stop.");

    let code = wait_for_stop(&mut bridge, &mut prosody, &log);
    println!("xtask: stopping the bridge, Prosody and Synapse");
    bridge.stop(Duration::from_secs(10));
    if let Some(rc) = rocketchat {
        rc.stop();
    }
    if let Some(teams) = teams {
        teams.stop();
    }
    prosody.stop();
    drop(prosody);
    drop(hs);
    Ok(code)
}

/// The stand-ins `cargo xtask demo` adds besides XMPP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StandIns {
    /// `--rocketchat`: the Rocket.Chat test double as a workspace.
    pub rocketchat: bool,
    /// `--teams`: the Graph test double as a Teams tenant.
    pub teams: bool,
}

impl StandIns {
    /// Parses the demo's flags (`--rocketchat`, `--teams`, in any order); `None` for anything else.
    pub fn parse(flags: &[String]) -> Option<Self> {
        let mut stand_ins = Self::default();
        for flag in flags {
            let seen = match flag.as_str() {
                "--rocketchat" => &mut stand_ins.rocketchat,
                "--teams" => &mut stand_ins.teams,
                _ => return None,
            };
            if std::mem::replace(seen, true) {
                return None;
            }
        }
        Some(stand_ins)
    }
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

/// Where the demo tenant's XMPP component connects.
struct XmppSettings<'a> {
    component_port: u16,
    secret: &'a str,
}

/// The bridge's config; `more_adapters` is YAML for more adapters of the demo tenant.
fn bridge_config(
    dir: &Path,
    [hs_port, as_port, admin_port]: [u16; 3],
    as_token: &str,
    xmpp: &XmppSettings,
    more_adapters: &str,
) -> String {
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
  - id: {TENANT}
    display_name: "Demo agency"
    invite: ["@alice:localhost"]
    adapters:
      xmpp:
        config:
          server: "127.0.0.1:{component_port}"
          domain: "{COMPONENT}"
          secret: "{secret}"
          server_domain: "localhost"
          muc_domains: ["conference.localhost"]
{more_adapters}"#,
        db = dir.join("brygga.db").display(),
        component_port = xmpp.component_port,
        secret = xmpp.secret,
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

/// Waits until the bridge's log mentions `needle`; `Ok(false)` if it did not within `timeout`.
fn wait_for_log(bridge: &mut ProcessGuard, log: &Path, needle: &str, timeout: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains(needle)) {
            return Ok(true);
        }
        if let Some(status) = bridge.exited() {
            return Err(format!("the bridge exited ({status}); log tail:\n{}", tail(log, 30)));
        }
        if Instant::now() > deadline {
            eprintln!("xtask: the bridge did not log {needle:?} within {timeout:?}; log tail:\n{}", tail(log, 30));
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Links a Matrix room of the demo tenant with the bridge's CLI (`portal link demo ARGS...`); returns what it printed.
fn link_room(bin: &Path, dir: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(["portal", "link", TENANT])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running brygga portal link: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && stdout.contains("linked") {
        Ok(stdout)
    } else {
        Err(format!("brygga portal link failed ({}): {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

/// Alice's side of the client-server API, just what the demo needs.
pub(crate) struct MatrixClient {
    base_url: String,
    token: String,
}

impl MatrixClient {
    /// Creates a private room named `name` inviting `invite`; returns its id.
    pub(crate) fn create_room(&self, name: &str, invite: &[&str]) -> Result<String, String> {
        let invite: Vec<String> = invite.iter().map(|u| json_str(u)).collect();
        let body =
            format!(r#"{{"name": {}, "preset": "private_chat", "invite": [{}]}}"#, json_str(name), invite.join(", "));
        let reply = self.call("POST", "/_matrix/client/v3/createRoom", &body)?;
        let json = reply.json().map_err(|e| e.to_string())?;
        json["room_id"].as_str().map(str::to_owned).ok_or_else(|| format!("createRoom answered: {}", reply.body))
    }

    /// Sends a text message to `room`.
    pub(crate) fn send_text(&self, room: &str, text: &str) -> Result<(), String> {
        let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/demo-{}", path_escape(room), random_hex(8));
        let body = format!(r#"{{"msgtype": "m.text", "body": {}}}"#, json_str(text));
        self.call("PUT", &path, &body).map(drop)
    }

    /// One authenticated request; anything but HTTP 200 is an error.
    fn call(&self, method: &str, path: &str, body: &str) -> Result<http::Response, String> {
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let url = format!("{}{path}", self.base_url);
        let reply = http::request(method, &url, &headers, Some(body)).map_err(|e| e.to_string())?;
        if reply.status == 200 {
            Ok(reply)
        } else {
            Err(format!("{method} {path}: HTTP {}: {}", reply.status, reply.body.trim()))
        }
    }
}

/// A JSON string literal (the demo's strings are plain text).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-escapes everything but unreserved characters, for one URL path segment.
fn path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Blocks until stdin ends (success) or the bridge or Prosody dies (failure).
fn wait_for_stop(bridge: &mut ProcessGuard, prosody: &mut Prosody, log: &Path) -> ExitCode {
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
        if !prosody.is_running() {
            eprintln!("xtask: Prosody exited; log tail:\n{}", prosody.log_tail(30));
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

#[cfg(test)]
mod tests {
    use super::StandIns;

    fn parse(flags: &[&str]) -> Option<StandIns> {
        StandIns::parse(&flags.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn stand_in_flags_combine_in_any_order_and_nothing_else_passes() {
        assert_eq!(parse(&[]), Some(StandIns::default()));
        assert_eq!(parse(&["--teams"]), Some(StandIns { rocketchat: false, teams: true }));
        assert_eq!(parse(&["--teams", "--rocketchat"]), Some(StandIns { rocketchat: true, teams: true }));
        assert_eq!(parse(&["--teams", "--teams"]), None);
        assert_eq!(parse(&["--slack"]), None);
    }
}
