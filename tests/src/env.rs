//! One end-to-end environment: a real Synapse, the fake remote network and
//! the test bridge as a separate process that tests can SIGKILL and restart.

use brygga_harness::TempDir;
use brygga_harness::synapse::{Synapse, SynapseOptions};

pub use crate::bridge::bridge_binary;
use crate::bridge::{BridgeProcess, BridgeSetup};
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

impl Backend {
    /// The store URL for a bridge whose files live in `dir`.
    pub async fn database_url(self, dir: &TempDir) -> String {
        match self {
            Backend::Sqlite => format!("sqlite://{}/bridge.db", dir.path().display()),
            Backend::Postgres => tokio::task::spawn_blocking(brygga_harness::postgres::fresh_database_url)
                .await
                .expect("postgres harness"),
        }
    }
}

/// Starts Synapse with the bridge's registration on the setup's port and
/// registers `@alice:localhost`.
pub async fn start_synapse(setup: &BridgeSetup, registration: String) -> (Synapse, MatrixUser) {
    let hs_port = setup.hs_port;
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
    let (user_id, token) =
        tokio::task::block_in_place(|| synapse.register_user("alice", "alice-password")).expect("register alice");
    let alice = MatrixUser::new(&synapse.base_url(), &user_id, &token);
    (synapse, alice)
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
    /// The operator's admin API token.
    pub operator_token: String,
    bridge: BridgeProcess,
    _dir: TempDir,
}

/// The tenants every environment has: each with the loopback adapter on its
/// own network of the same name; tv's platform supports only replies, and
/// tv federates only with `agency.example` and lets files up to 1 KiB cross;
/// alice administers fk through the bridge bot.
pub const TENANTS: [&str; 2] = ["fk", "tv"];

impl TestEnv {
    /// Starts Synapse, the fake remote and the bridge.
    pub async fn start(backend: Backend) -> Self {
        let dir = TempDir::new("brygga-e2e").expect("temp dir");
        let remote = FakeRemote::start().await;
        let setup = BridgeSetup::new(backend.database_url(&dir).await);
        // Tenant tv's platform can only reply: its portals exercise degradation.
        let tenants: String = TENANTS
            .iter()
            .map(|t| {
                let caps = if *t == "tv" { ", capabilities: { replies: true }" } else { "" };
                // tv federates only with agency.example (and its own homeserver).
                // alice administers fk through the bridge bot.
                let admins = if *t == "fk" { "\n    matrix_admins: [\"@alice:localhost\"]" } else { "" };
                let servers =
                    if *t == "tv" { "\n    allowed_servers: [\"agency.example\"]\n    media: { max_bytes: 1024 }" } else { "" };
                format!(
                    "  - id: {t}\n    invite: [\"@alice:localhost\"]{admins}{servers}\n    adapters:\n      loopback:\n        config: {{ url: \"{}\", network: \"{t}\"{caps} }}\n",
                    remote.url()
                )
            })
            .collect();
        let mut bridge = BridgeProcess::new(dir.path(), &setup.config(&tenants), setup.admin_port);
        let (synapse, alice) = start_synapse(&setup, bridge.registration()).await;
        bridge.start().await;
        Self {
            remote,
            alice,
            synapse,
            hs_token: setup.hs_token.clone(),
            as_token: setup.as_token.clone(),
            appservice_url: format!("http://127.0.0.1:{}", setup.as_port),
            operator_token: setup.operator_token.clone(),
            bridge,
            _dir: dir,
        }
    }

    /// Starts the bridge process again and waits until it is healthy.
    pub async fn start_bridge(&mut self) {
        self.bridge.start().await;
    }

    /// Kills the bridge with SIGKILL: no shutdown code runs.
    pub fn kill_bridge(&mut self) {
        self.bridge.kill();
    }

    /// The current bridge log, for failure messages.
    pub fn bridge_log(&self) -> String {
        self.bridge.log()
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
        self.bridge.admin_url()
    }
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
        let room_id = RemoteRoomId::new(room).expect("room id");
        let mut event = InboundEvent::new(room_id, RemoteMessageId::new(id).expect("event id"), sender, body);
        event.room_name = Some(format!("Room {room}"));
        event
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
