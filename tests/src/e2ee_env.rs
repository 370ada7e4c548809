//! A running encrypted-bridging environment: real Synapse with the
//! appservice encryption extensions on, the bridge with encryption enabled
//! and the loopback adapter (and, if asked, the XMPP adapter on a real
//! Prosody), and Alice on a real E2EE client.

use std::time::Duration;

use base64::Engine;
use brygga_core::EventBody;
use brygga_core::router::DEFAULT_KEY_WAIT;
use brygga_harness::TempDir;
use brygga_harness::prosody::Prosody;
use brygga_harness::synapse::{Synapse, SynapseOptions};

use crate::bridge::{BridgeProcess, BridgeSetup};
use crate::e2ee_user::{E2eeUser, ReceivedEvent};
use crate::env::events::text;
use crate::env::{Backend, TestEnv};
use crate::remote::FakeRemote;
use crate::xmpp_env::{adapter_yaml, start_prosody};

/// How long a test waits for anything to arrive.
pub const WAIT: Duration = Duration::from_secs(30);
/// The loopback adapter's network name.
pub const NET: &str = "fk";

/// Synapse, the bridge and the fake remote network of tenant `fk`.
pub struct E2eeEnv {
    /// The remote network behind the loopback adapter.
    pub remote: FakeRemote,
    /// The bridge process.
    pub bridge: BridgeProcess,
    /// The homeserver.
    pub synapse: Synapse,
    /// The XMPP server, when tenant `fk` also has the XMPP adapter.
    pub prosody: Option<Prosody>,
    _dir: TempDir,
}

impl E2eeEnv {
    /// Starts everything; `tenant_settings` are extra YAML lines of tenant
    /// `fk` (indented four spaces), e.g. its encryption policy.
    pub async fn start(tenant_settings: &str) -> Self {
        Self::launch(tenant_settings, DEFAULT_KEY_WAIT.as_secs(), false).await
    }

    /// Like [`start`](Self::start), with Matrix messages waiting only
    /// `key_wait_secs` for their room keys.
    pub async fn start_with_key_wait(tenant_settings: &str, key_wait_secs: u64) -> Self {
        Self::launch(tenant_settings, key_wait_secs, false).await
    }

    /// Like [`start`](Self::start), with tenant `fk` also on a real Prosody
    /// through the XMPP adapter (users as in [`crate::xmpp_env::XMPP_USERS`]).
    pub async fn start_with_xmpp(tenant_settings: &str) -> Self {
        Self::launch(tenant_settings, DEFAULT_KEY_WAIT.as_secs(), true).await
    }

    async fn launch(tenant_settings: &str, key_wait_secs: u64, xmpp: bool) -> Self {
        let dir = TempDir::new("brygga-e2ee").expect("temp dir");
        let remote = FakeRemote::start().await;
        let prosody = if xmpp { Some(start_prosody(&["fk"]).await) } else { None };
        let setup = BridgeSetup::new(Backend::Sqlite.database_url(&dir).await);
        let xmpp_adapter = prosody.as_ref().map_or_else(String::new, |prosody| adapter_yaml(prosody, "fk"));
        let tenants = format!(
            "  - id: fk\n    invite: [\"@alice:localhost\"]\n{tenant_settings}    adapters:\n      loopback:\n        config: {{ url: \"{}\", network: \"{NET}\" }}\n{xmpp_adapter}",
            remote.url()
        );
        let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        let config = format!(
            "{}encryption: {{ enabled: true, store_dir: \"{}/crypto\", key: \"{key}\", key_wait_secs: {key_wait_secs} }}\n",
            setup.config(&tenants),
            dir.path().display()
        );
        let mut bridge = BridgeProcess::new(dir.path(), &config, setup.admin_port);
        let registration = bridge.registration();
        assert!(registration.contains("io.element.msc4190: true"), "{registration}");
        let hs_port = setup.hs_port;
        let synapse = tokio::task::spawn_blocking(move || {
            Synapse::start(SynapseOptions {
                registration_yaml: Some(registration),
                port: Some(hs_port),
                relaxed_rate_limits: true,
                appservice_encryption: true,
                ..Default::default()
            })
        })
        .await
        .expect("synapse thread")
        .expect("Synapse starts");
        bridge.start().await;
        Self { remote, bridge, synapse, prosody, _dir: dir }
    }

    /// Alice, registered and logged in on a fresh E2EE device, `ALICEPHONE`.
    pub async fn alice(&self) -> E2eeUser {
        self.user("alice", "ALICEPHONE").await
    }

    /// Alice (registered by [`alice`](Self::alice)) on another new device.
    pub async fn alice_on(&self, device_id: &str) -> E2eeUser {
        self.login("alice", device_id).await
    }

    /// Registers `localpart` and logs it in on a fresh E2EE device.
    pub async fn user(&self, localpart: &str, device_id: &str) -> E2eeUser {
        let password = format!("{localpart}-password");
        tokio::task::block_in_place(|| self.synapse.register_user(localpart, &password)).expect("registration");
        self.login(localpart, device_id).await
    }

    async fn login(&self, localpart: &str, device_id: &str) -> E2eeUser {
        let user_id = format!("@{localpart}:localhost");
        E2eeUser::login(&self.synapse.base_url(), &user_id, &format!("{localpart}-password"), device_id)
            .await
            .unwrap_or_else(|e| panic!("{user_id} logs in: {e}"))
    }

    /// An encrypted room of `alice`'s with the bot, linked by the operator
    /// to remote room `remote_room` (as Element makes rooms: encrypted from
    /// the start); returns its id.
    pub async fn linked_encrypted_room(&self, alice: &E2eeUser, remote_room: &str) -> String {
        let room = alice.create_encrypted_room(remote_room, &["@brygga:localhost"]).await.expect("room");
        let linked = self.bridge.cli(&["portal", "link", NET, "loopback", remote_room, &room]);
        assert!(linked.contains("linked"), "{linked}");
        room
    }

    /// The ghost of remote user `user`.
    pub fn ghost(user: &str) -> String {
        TestEnv::ghost_id("fk", user)
    }

    /// Remote user `user` says `body` in remote room `remote_room`; returns
    /// what Alice receives in `room`, checked to have come encrypted.
    pub async fn ghost_says(
        &self,
        alice: &E2eeUser,
        (remote_room, room): (&str, &str),
        (user, id): (&str, &str),
        body: &str,
    ) -> ReceivedEvent {
        self.remote.inject(NET, text(remote_room, id, user, body));
        let event = alice
            .next_event(room, &Self::ghost(user), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.bridge.log()));
        assert!(event.was_encrypted(), "the ghost's message came in clear: {event:#?}");
        assert_eq!(event.body(), Some(body));
        event
    }

    /// Waits until the remote side got a message with text `body`.
    pub async fn remote_gets(&self, body: &str) {
        let wanted = body.to_owned();
        self.remote
            .wait_for(NET, WAIT, body, move |sent| {
                sent.iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == wanted))
            })
            .await;
    }

    /// Whether the remote side got a message with text `body` (by now).
    pub fn remote_got(&self, body: &str) -> bool {
        self.remote.sent(NET).iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == body))
    }
}
