//! Keys reach the devices Matrix clients expect: a device Alice logs in on
//! after the portal was bridged, and a user who joins later, read the
//! ghosts' new messages; and a message
//! whose key never reaches the bridge is named in the room, counted, and
//! does not hold the room up.

use brygga_e2e::e2ee_env::{E2eeEnv, NET, WAIT};
use brygga_e2e::e2ee_user::{E2eeUser, ReceivedEvent};
use matrix_sdk_base::crypto::vodozemac::megolm::{GroupSession, SessionConfig};
use matrix_sdk_base::crypto::vodozemac::{Curve25519PublicKey, Curve25519SecretKey};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_devices_and_new_members_read_the_ghosts_new_messages() {
    let env = E2eeEnv::start("").await;
    let phone = env.alice().await;
    let room = env.linked_encrypted_room(&phone, "devices").await;
    env.ghost_says(&phone, ("devices", &room), ("bob", "d1"), "before the laptop").await;

    let laptop = env.alice_on("ALICELAPTOP").await;
    // Once a later message of Alice's has crossed, the homeserver has told the
    // bridge of her new device (device lists come with the transactions).
    phone.send_text(&room, "alice has a laptop now").await.expect("alice sends");
    env.remote_gets("alice has a laptop now").await;

    let on_phone = env.ghost_says(&phone, ("devices", &room), ("bob", "d2"), "after the laptop").await;
    reads_too(&env, &laptop, &room, &on_phone).await;

    // Carol joins; once her first message has crossed, the bridge knows her.
    let carol = env.user("carol", "CAROLPHONE").await;
    phone.invite(&room, carol.user_id()).await.expect("carol invited");
    phone.wait_for_member(&room, carol.user_id(), WAIT).await.expect("carol joins");
    carol.send_text(&room, "carol is here").await.expect("carol sends");
    env.remote_gets("carol is here").await;
    let on_phone = env.ghost_says(&phone, ("devices", &room), ("bob", "d3"), "welcome carol").await;
    reads_too(&env, &carol, &room, &on_phone).await;
}

/// `reader`'s device also gets the ghost's message `seen`, and decrypts it.
async fn reads_too(env: &E2eeEnv, reader: &E2eeUser, room: &str, seen: &ReceivedEvent) {
    let got = reader
        .next_event_where(room, &E2eeEnv::ghost("bob"), WAIT, |e| e.event_id == seen.event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    let device = reader.device_id();
    assert!(!got.is_undecryptable(), "{device} cannot read the ghost: {got:#?}");
    assert!(got.was_encrypted(), "{got:#?}");
    assert_eq!(got.body(), seen.body());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_the_bridge_cannot_decrypt_is_named_counted_and_passed_over() {
    let env = E2eeEnv::start_with_key_wait("", 3).await;
    let alice = env.alice().await;
    let room = env.linked_encrypted_room(&alice, "mystery").await;

    // A real Megolm message of a session whose key nobody ever shares, then
    // an ordinary one behind it.
    let mut session = GroupSession::new(SessionConfig::version_1());
    let sealed = json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": Curve25519PublicKey::from(&Curve25519SecretKey::new()).to_base64(),
        "device_id": alice.device_id(),
        "session_id": session.session_id(),
        "ciphertext": session.encrypt(r#"{"type":"m.room.message","content":{"msgtype":"m.text","body":"?"}}"#).to_base64(),
    });
    let mystery = alice.send_as_is(&room, "m.room.encrypted", &sealed).await.expect("sent as is");
    alice.send_text(&room, "after the mystery").await.expect("alice sends");

    let notice = alice
        .next_event_where(&room, "@brygga:localhost", WAIT, |e| {
            e.body().is_some_and(|b| b.contains("could not decrypt"))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    let text = notice.body().unwrap();
    assert!(text.contains("@alice:localhost") && text.contains("room key never reached the bridge"), "{text}");
    assert!(notice.was_encrypted(), "the notice came in clear: {notice:#?}");
    assert_eq!(notice.content["msgtype"], "m.notice");

    // The room was held for the key, not stopped: what came next crosses.
    env.remote_gets("after the mystery").await;
    let sent = env.remote.sent(NET);
    let crossed: Vec<_> = sent.iter().filter(|e| e.room.as_str() == "mystery").collect();
    assert!(
        crossed.iter().all(|e| !format!("{:?}", e.body).contains(&mystery)),
        "the undecryptable event crossed: {crossed:#?}"
    );
    let metrics = reqwest::get(format!("{}/metrics", env.bridge.admin_url())).await.unwrap().text().await.unwrap();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with(r#"brygga_undecryptable_events_total{tenant="fk",adapter="loopback"}"#))
        .unwrap_or_else(|| panic!("no undecryptable count:\n{metrics}"));
    assert!(counted.ends_with(" 1"), "{counted}");
    assert!(env.bridge.log().contains("undecryptable Matrix event"));
}
