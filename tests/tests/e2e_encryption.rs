//! Encrypted portal rooms against real Synapse (appservice encryption on):
//! a Matrix user with a real E2EE client links her encrypted room to a
//! remote room and keeps talking across the bridge; the ghosts' messages reach
//! her encrypted, hers reach the remote side decrypted, also after the
//! bridge restarts.

use std::time::Duration;

use base64::Engine;
use brygga_core::EventBody;
use brygga_e2e::bridge::{BridgeProcess, BridgeSetup};
use brygga_e2e::e2ee_user::{E2eeUser, ReceivedEvent};
use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv};
use brygga_e2e::remote::FakeRemote;
use brygga_harness::TempDir;
use brygga_harness::synapse::{Synapse, SynapseOptions};

const WAIT: Duration = Duration::from_secs(30);
const NET: &str = "fk";

struct Env {
    remote: FakeRemote,
    bridge: BridgeProcess,
    synapse: Synapse,
    _dir: TempDir,
}

async fn start() -> Env {
    let dir = TempDir::new("brygga-e2ee").expect("temp dir");
    let remote = FakeRemote::start().await;
    let setup = BridgeSetup::new(Backend::Sqlite.database_url(&dir).await);
    let tenants = format!(
        "  - id: fk\n    invite: [\"@alice:localhost\"]\n    adapters:\n      loopback:\n        config: {{ url: \"{}\", network: \"{NET}\" }}\n",
        remote.url()
    );
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let config = format!(
        "{}encryption: {{ enabled: true, store_dir: \"{}/crypto\", key: \"{key}\" }}\n",
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
    Env { remote, bridge, synapse, _dir: dir }
}

async fn alice(synapse: &Synapse) -> E2eeUser {
    let (user_id, _) = tokio::task::block_in_place(|| synapse.register_user("alice", "alice-password")).expect("alice");
    E2eeUser::login(&synapse.base_url(), &user_id, "alice-password", "ALICEPHONE").await.expect("alice logs in")
}

async fn ghost_says(env: &Env, alice: &E2eeUser, room: &str, ghost: &str, id: &str, body: &str) -> ReceivedEvent {
    env.remote.inject(NET, text("enc", id, "bob", body));
    let event = alice.next_event(room, ghost, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(event.was_encrypted(), "the ghost's message came in clear: {event:#?}");
    assert_eq!(event.body(), Some(body));
    event
}

async fn remote_gets(env: &Env, body: &str) {
    let wanted = body.to_owned();
    env.remote
        .wait_for(NET, WAIT, body, move |sent| {
            sent.iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == wanted))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_portal_room_is_bridged_both_ways_and_across_a_restart() {
    let mut env = start().await;
    let alice = alice(&env.synapse).await;
    let ghost = TestEnv::ghost_id("fk", "bob");

    // Alice makes an encrypted room with the bot, and the operator links it
    // to the remote room (as Element would: encrypted from the start).
    let room = alice.create_encrypted_room("enc", &["@brygga:localhost"]).await.expect("room");
    let linked = env.bridge.cli(&["portal", "link", "fk", "loopback", "enc", &room]);
    assert!(linked.contains("linked"), "{linked}");
    ghost_says(&env, &alice, &room, &ghost, "m1", "sealed hello from bob").await;

    alice.send_text(&room, "sealed hello from alice").await.expect("alice sends");
    remote_gets(&env, "sealed hello from alice").await;

    // Keys survive a restart: both ways still work, nothing undecryptable.
    env.bridge.kill();
    env.bridge.start().await;
    ghost_says(&env, &alice, &room, &ghost, "m2", "bob after the restart").await;
    alice.send_text(&room, "alice after the restart").await.expect("alice sends");
    remote_gets(&env, "alice after the restart").await;

    let from_ghost = alice.received(&room, &ghost);
    assert!(from_ghost.iter().all(|e| !e.is_undecryptable()), "{from_ghost:#?}");
}
