//! One end-to-end environment: a real Synapse, the fake remote network and
//! the test bridge as a separate process that tests can SIGKILL and restart.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use brygga_harness::process::ProcessGuard;
use brygga_harness::synapse::{Synapse, SynapseOptions};
use brygga_harness::{TempDir, ports, random_hex};

use crate::matrix_user::MatrixUser;
use crate::remote::FakeRemote;

/// Which store the bridge uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in the test's temp dir.
    Sqlite,
    /// A fresh database in the harness's PostgreSQL cluster.
    Postgres,
}

/// A running environment; dropping it stops everything.
pub struct TestEnv {
    /// The fake remote network.
    pub remote: FakeRemote,
    /// The Matrix user `@alice:localhost`, invited into every portal.
    pub alice: MatrixUser,
    /// The homeserver.
    pub synapse: Synapse,
    /// The token the homeserver presents to the bridge.
    pub hs_token: String,
    /// The token the bridge presents to the homeserver.
    pub as_token: String,
    /// Where the bridge listens for the homeserver.
    pub appservice_url: String,
    bridge: Option<ProcessGuard>,
    config_path: PathBuf,
    admin_url: String,
    starts: u32,
    dir: TempDir,
}

/// The tenants every environment has: each with the loopback adapter on its
/// own network of the same name; tv's platform supports only replies.
pub const TENANTS: [&str; 2] = ["fk", "tv"];

impl TestEnv {
    /// Starts Synapse, the fake remote and the bridge.
    pub async fn start(backend: Backend) -> Self {
        let dir = TempDir::new("brygga-e2e").expect("temp dir");
        let remote = FakeRemote::start().await;
        let hs_port = ports::free_port();
        let as_port = ports::free_port();
        let admin_port = ports::free_port();
        let db_url = match backend {
            Backend::Sqlite => format!("sqlite://{}/bridge.db", dir.path().display()),
            Backend::Postgres => tokio::task::spawn_blocking(brygga_harness::postgres::fresh_database_url)
                .await
                .expect("postgres harness"),
        };
        let hs_token = random_hex(20);
        let as_token = random_hex(20);
        // Tenant tv's platform can only reply: its portals exercise degradation.
        let tenants: String = TENANTS
            .iter()
            .map(|t| {
                let caps = if *t == "tv" { ", capabilities: { replies: true }" } else { "" };
                format!(
                    "  - id: {t}\n    invite: [\"@alice:localhost\"]\n    adapters:\n      loopback:\n        config: {{ url: \"{}\", network: \"{t}\"{caps} }}\n",
                    remote.url()
                )
            })
            .collect();
        let config = format!(
            "homeserver: {{ url: \"http://127.0.0.1:{hs_port}\", server_name: \"localhost\" }}\n\
             appservice:\n  id: brygga\n  listen: \"127.0.0.1:{as_port}\"\n  url: \"http://127.0.0.1:{as_port}\"\n  \
             as_token: \"{as_token}\"\n  hs_token: \"{hs_token}\"\n  bot_localpart: brygga\n\
             database: {{ url: \"{db_url}\" }}\n\
             admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\n\
             logging: {{ level: \"info,brygga_core=debug\" }}\n\
             tenants:\n{tenants}"
        );
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let registration_path = dir.path().join("registration.yaml");
        let output = Command::new(bridge_binary())
            .arg("-c")
            .arg(&config_path)
            .arg("generate-registration")
            .arg("-o")
            .arg(&registration_path)
            .output()
            .expect("run generate-registration");
        assert!(output.status.success(), "generate-registration failed: {}", String::from_utf8_lossy(&output.stderr));
        let registration = std::fs::read_to_string(&registration_path).expect("registration written");
        let synapse = tokio::task::spawn_blocking(move || {
            Synapse::start(SynapseOptions {
                registration_yaml: Some(registration),
                port: Some(hs_port),
                relaxed_rate_limits: true,
                ..Default::default()
            })
        })
        .await
        .expect("synapse thread")
        .expect("Synapse starts");
        let base = synapse.base_url();
        let (user_id, token) =
            tokio::task::block_in_place(|| synapse.register_user("alice", "alice-password")).expect("register alice");
        let alice = MatrixUser::new(&base, &user_id, &token);
        let mut env = Self {
            remote,
            alice,
            synapse,
            hs_token,
            as_token,
            appservice_url: format!("http://127.0.0.1:{as_port}"),
            bridge: None,
            config_path,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            starts: 0,
            dir,
        };
        env.start_bridge().await;
        env
    }

    /// Starts the bridge process and waits until its admin listener answers.
    pub async fn start_bridge(&mut self) {
        assert!(self.bridge.is_none(), "bridge already running");
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("bridge-{}.log", self.starts))).expect("log file");
        let mut command = Command::new(bridge_binary());
        command.arg("-c").arg(&self.config_path).arg("run").stdout(Stdio::null()).stderr(log);
        let guard = ProcessGuard::spawn("brygga-test-bridge", &mut command, "").expect("spawn bridge");
        self.bridge = Some(guard);
        let health = format!("{}/health", self.admin_url);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.bridge.as_mut().and_then(ProcessGuard::exited) {
                panic!("bridge exited with {status}:\n{}", self.bridge_log());
            }
            assert!(tokio::time::Instant::now() < deadline, "bridge never became healthy:\n{}", self.bridge_log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the bridge with SIGKILL: no shutdown code runs.
    pub fn kill_bridge(&mut self) {
        // Dropping the guard sends SIGKILL and reaps the process.
        drop(self.bridge.take().expect("bridge running"));
    }

    /// The current bridge log, for failure messages.
    pub fn bridge_log(&self) -> String {
        brygga_harness::tail(&self.dir.path().join(format!("bridge-{}.log", self.starts)), 60)
    }

    /// The portal alias of a remote room of a tenant.
    pub fn portal_alias(tenant: &str, room: &str) -> String {
        format!("#loopback_{tenant}_{}:localhost", brygga_core::naming::escape(room))
    }

    /// The ghost id of a remote user of a tenant.
    pub fn ghost_id(tenant: &str, user: &str) -> String {
        format!("@loopback_{tenant}_{}:localhost", brygga_core::naming::escape(user))
    }

    /// The admin listener base URL.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

/// The test bridge binary built from this package. Cargo builds a package's
/// binaries before its integration tests, next to their `deps/` folder.
pub fn bridge_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target profile dir");
    let binary = profile_dir.join("brygga-test-bridge");
    assert!(binary.exists(), "{} missing: run the tests through cargo", binary.display());
    binary
}

/// Builders for remote events in tests.
pub mod events {
    use brygga_core::{
        EventBody, InboundEvent, Message, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId, Text,
    };

    /// A remote event in `room` from `user`.
    pub fn remote(room: &str, id: &str, user: &str, body: EventBody<RemoteMessageId>) -> InboundEvent {
        let mut sender = RemoteSender::new(RemoteUserId::new(user).expect("user id"));
        sender.display_name = Some(format!("{user} (remote)"));
        InboundEvent {
            room: RemoteRoomId::new(room).expect("room id"),
            event_id: RemoteMessageId::new(id).expect("event id"),
            sender,
            body,
            room_name: Some(format!("Room {room}")),
        }
    }

    /// A plain remote text message.
    pub fn text(room: &str, id: &str, user: &str, body: &str) -> InboundEvent {
        remote(room, id, user, EventBody::Message(Message::text(Text::plain(body))))
    }

    /// A remote message id.
    pub fn rid(id: &str) -> RemoteMessageId {
        RemoteMessageId::new(id).expect("message id")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // A failed test shows what the bridge logged; passing tests stay quiet.
        if std::thread::panicking() {
            eprintln!("---- bridge log (last lines) ----\n{}", self.bridge_log());
        }
    }
}
