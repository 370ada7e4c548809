//! The E2EE test client against a real Synapse, without the bridge: two users
//! exchange every kind of event in encrypted rooms, each side checks what
//! arrived was encrypted and decrypts, and a device that logs in later reads
//! new messages.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use brygga_e2e::e2ee_user::{E2eeUser, Encryption, ReceivedEvent};
use brygga_harness::synapse::{Synapse, SynapseOptions};
use futures::FutureExt;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "e2ee-password";

async fn start_synapse() -> Synapse {
    let options = SynapseOptions { relaxed_rate_limits: true, ..Default::default() };
    tokio::task::spawn_blocking(move || Synapse::start(options)).await.expect("synapse thread").expect("Synapse starts")
}

/// Registers `localpart` and logs its first device in.
async fn user(hs: &Synapse, localpart: &str, device: &str) -> E2eeUser {
    let (user_id, _) = tokio::task::block_in_place(|| hs.register_user(localpart, PASSWORD)).expect("register");
    E2eeUser::login(&hs.base_url(), &user_id, PASSWORD, device).await.expect("login")
}

async fn next(to: &E2eeUser, room: &str, from: &E2eeUser) -> ReceivedEvent {
    to.next_event(room, from.user_id(), WAIT).await.expect("event arrives")
}

fn assert_encrypted(event: &ReceivedEvent, from: &E2eeUser) {
    let expected = Encryption::Decrypted { sender_device: Some(from.device_id().to_owned()) };
    assert_eq!(event.encryption, expected, "{event:#?}");
}

/// `from` sends text, an edit, a reply, a reaction, a file and a redaction;
/// `to` receives each in order, decrypted, and nothing from `from` in clear
/// except what clients always send in clear.
async fn exchange(from: &E2eeUser, to: &E2eeUser, room: &str) {
    let tag = from.device_id();
    let text = from.send_text(room, &format!("hello from {tag}")).await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!((got.event_id.as_str(), got.body()), (text.as_str(), Some(format!("hello from {tag}").as_str())));
    assert_encrypted(&got, from);

    let edit = from.send_edit(room, &text, "edited").await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!(got.event_id, edit);
    assert_eq!(got.relation(), Some(("m.replace", text.as_str())));
    assert_eq!(got.content["m.new_content"]["body"], "edited");
    assert_encrypted(&got, from);

    let reply = from.send_reply(room, &text, "a reply").await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!((got.event_id.as_str(), got.body()), (reply.as_str(), Some("a reply")));
    assert_eq!(got.relation(), Some(("m.in_reply_to", text.as_str())));
    assert_encrypted(&got, from);

    let reaction = from.send_reaction(room, &reply, "👍").await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!((got.event_id.as_str(), got.event_type.as_str()), (reaction.as_str(), "m.reaction"));
    assert_eq!(got.relation(), Some(("m.annotation", reply.as_str())));
    assert_eq!(got.content["m.relates_to"]["key"], "👍");

    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = from.send_file(room, "report.bin", "application/octet-stream", bytes.clone()).await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!((got.event_id.as_str(), got.content["msgtype"].as_str()), (file.as_str(), Some("m.file")));
    assert!(
        got.content.get("file").is_some() && got.content.get("url").is_none(),
        "attachment not encrypted: {got:#?}"
    );
    assert_eq!(got.file.as_deref(), Some(bytes.as_slice()), "decrypted file bytes");
    assert_encrypted(&got, from);

    let redaction = from.redact(room, &reply, Some("oops")).await.unwrap();
    let got = next(to, room, from).await;
    assert_eq!((got.event_id.as_str(), got.event_type.as_str()), (redaction.as_str(), "m.room.redaction"));
    assert_eq!(got.redacts(), Some(reply.as_str()));

    let encrypted = to.assert_all_encrypted(room, from.user_id()).await;
    assert!(encrypted >= 4, "text, edit, reply and file arrived encrypted ({encrypted})");
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_dm_carries_every_kind_of_event_both_ways() {
    let hs = start_synapse().await;
    let alice = user(&hs, "alice", "ALICEPHONE").await;
    let bob = user(&hs, "bob", "BOBLAPTOP").await;

    let dm = alice.create_encrypted_dm(bob.user_id()).await.unwrap();
    alice.wait_for_member(&dm, bob.user_id(), WAIT).await.expect("bob accepts the invite");
    assert!(bob.is_encrypted(&dm).await.unwrap());
    assert!(alice.has_cross_signing().await && bob.has_cross_signing().await, "cross-signing set up as Element does");

    exchange(&alice, &bob, &dm).await;
    exchange(&bob, &alice, &dm).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_group_room_reaches_every_member_and_a_later_device() {
    let hs = start_synapse().await;
    let alice = user(&hs, "alice", "ALICEPHONE").await;
    let bob = user(&hs, "bob", "BOBLAPTOP").await;
    let carol = user(&hs, "carol", "CAROLDESK").await;

    let room = alice.create_encrypted_room("team", &[bob.user_id(), carol.user_id()]).await.unwrap();
    for member in [&bob, &carol] {
        alice.wait_for_member(&room, member.user_id(), WAIT).await.expect("member joins");
    }
    exchange(&alice, &bob, &room).await;
    exchange(&bob, &alice, &room).await;
    assert!(carol.assert_all_encrypted(&room, alice.user_id()).await >= 4, "carol got alice's events too");

    // Bob's second device logs in later: new messages reach it, both ways.
    let bob_phone = E2eeUser::login(&hs.base_url(), bob.user_id(), PASSWORD, "BOBPHONE").await.unwrap();
    alice.wait_for_device(bob.user_id(), "BOBPHONE", WAIT).await.expect("alice learns of the new device");
    let text = alice.send_text(&room, "for every device").await.unwrap();
    for device in [&bob, &bob_phone, &carol] {
        let got = device.next_event_where(&room, alice.user_id(), WAIT, |e| e.event_id == text).await.unwrap();
        assert_eq!(got.body(), Some("for every device"), "on {}: {:?}", device.device_id(), got.encryption);
        assert_encrypted(&got, &alice);
    }
    // What alice sent before the phone existed stays unreadable there, and is reported so.
    let history = bob_phone.received(&room, alice.user_id());
    let unreadable = history.iter().filter(|e| e.is_undecryptable()).count();
    assert!(unreadable >= 3, "earlier text, edit and file are listed as undecryptable: {history:#?}");
    let redacted = history.iter().filter(|e| e.encryption == Encryption::Redacted).count();
    assert_eq!(redacted, 1, "the redacted reply came encrypted, with nothing left to decrypt: {history:#?}");

    let answer = bob_phone.send_text(&room, "from the phone").await.unwrap();
    let got = alice.next_event_where(&room, bob.user_id(), WAIT, |e| e.event_id == answer).await.unwrap();
    assert_eq!(got.body(), Some("from the phone"));
    assert_encrypted(&got, &bob_phone);
}

#[tokio::test(flavor = "multi_thread")]
async fn turning_encryption_on_later_encrypts_what_follows() {
    let hs = start_synapse().await;
    let alice = user(&hs, "alice", "ALICEPHONE").await;
    let bob = user(&hs, "bob", "BOBLAPTOP").await;

    let room = alice.create_room("plain at first", &[bob.user_id()]).await.unwrap();
    alice.wait_for_member(&room, bob.user_id(), WAIT).await.expect("bob joins");
    assert!(!alice.is_encrypted(&room).await.unwrap());
    alice.send_text(&room, "in the clear").await.unwrap();
    let got = next(&bob, &room, &alice).await;
    assert_eq!((got.body(), &got.encryption), (Some("in the clear"), &Encryption::Plaintext));

    alice.enable_encryption(&room).await.unwrap();
    assert!(bob.is_encrypted(&room).await.unwrap());
    bob.send_text(&room, "now secret").await.unwrap();
    let got = next(&alice, &room, &bob).await;
    assert_eq!(got.body(), Some("now secret"));
    assert_encrypted(&got, &bob);

    // The plaintext message from before is caught by the all-encrypted check.
    let check = AssertUnwindSafe(bob.assert_all_encrypted(&room, alice.user_id())).catch_unwind().await;
    assert!(check.is_err(), "a plaintext message fails the all-encrypted check");
}
