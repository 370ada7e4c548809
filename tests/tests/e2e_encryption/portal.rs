//! Encrypted portal rooms against real Synapse (appservice encryption on):
//! a Matrix user with a real E2EE client links her encrypted room to a
//! remote room and keeps talking across the bridge; the ghosts' messages reach
//! her encrypted, hers reach the remote side decrypted, also after the
//! bridge restarts.

use brygga_e2e::e2ee_env::E2eeEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_portal_room_is_bridged_both_ways_and_across_a_restart() {
    let mut env = E2eeEnv::start("").await;
    let alice = env.alice().await;
    let ghost = E2eeEnv::ghost("bob");

    // Alice makes an encrypted room with the bot, and the operator links it
    // to the remote room (as Element would: encrypted from the start).
    let room = env.linked_encrypted_room(&alice, "enc").await;
    env.ghost_says(&alice, ("enc", &room), ("bob", "m1"), "sealed hello from bob").await;

    alice.send_text(&room, "sealed hello from alice").await.expect("alice sends");
    env.remote_gets("sealed hello from alice").await;

    // Keys survive a restart: both ways still work, nothing undecryptable.
    env.bridge.kill();
    env.bridge.start().await;
    env.ghost_says(&alice, ("enc", &room), ("bob", "m2"), "bob after the restart").await;
    alice.send_text(&room, "alice after the restart").await.expect("alice sends");
    env.remote_gets("alice after the restart").await;

    let from_ghost = alice.received(&room, &ghost);
    assert!(from_ghost.iter().all(|e| !e.is_undecryptable()), "{from_ghost:#?}");
}
