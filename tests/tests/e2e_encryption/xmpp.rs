//! An encrypted direct chat with a contact on a real XMPP server: Alice
//! (Element-like, encrypted by default) opens it with the contact's ghost;
//! Bob's XMPP client gets her words decrypted, and his answers and
//! corrections reach her encrypted. Encryption ends at the bridge.

use brygga_e2e::e2ee_env::{E2eeEnv, WAIT};
use brygga_e2e::xmpp_env::ghost_id;
use brygga_e2e::xmpp_user::XmppUser;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_direct_chat_with_an_xmpp_contact_works_both_ways() {
    let env = E2eeEnv::start_with_xmpp("").await;
    let alice = env.alice().await;
    let bob = XmppUser::connect(env.prosody.as_ref().expect("prosody"), "bob", "bob-pw").await;
    let ghost = ghost_id("fk", "bob@localhost");
    let room = alice.create_encrypted_dm(&ghost).await.expect("the direct chat");
    alice.wait_for_member(&room, &ghost, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));

    let hello = alice.send_text(&room, "a sealed hello to bob").await.expect("alice sends");
    let got = bob.wait_for(WAIT, |e| e["body"] == "a sealed hello to bob").await;
    assert_eq!(got["msg_type"], "chat");
    let puppet = got["from"].as_str().unwrap().split('/').next().unwrap().to_owned();
    assert!(puppet.starts_with("alice\\3alocalhost@"), "{got}");

    let answer = bob.send_chat(&puppet, "bob answers in the clear").await;
    let from_bob = alice.next_event(&room, &ghost, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(from_bob.was_encrypted(), "the ghost wrote in clear: {from_bob:#?}");
    assert_eq!(from_bob.body(), Some("bob answers in the clear"));

    // Corrections both ways: Bob's becomes an encrypted edit, Alice's a XEP-0308 correction.
    bob.correct(&puppet, "chat", &answer.id, "bob answers, corrected").await;
    let edit = alice.next_event(&room, &ghost, WAIT).await.expect("bob's correction");
    assert!(edit.was_encrypted(), "{edit:#?}");
    assert_eq!(edit.relation(), Some(("m.replace", from_bob.event_id.as_str())));
    assert_eq!(edit.content["m.new_content"]["body"], "bob answers, corrected");
    alice.send_edit(&room, &hello, "a sealed hello to bob, edited").await.expect("alice edits");
    let corrected = bob.wait_for(WAIT, |e| e["body"] == "a sealed hello to bob, edited").await;
    assert_eq!(corrected["replace_id"], got["id"], "{corrected}");
    assert!(alice.assert_all_encrypted(&room, &ghost).await >= 2);
}
