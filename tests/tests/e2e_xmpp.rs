//! The XMPP adapter end to end: real Prosody, real Synapse, the bridge as a
//! process, a slixmpp client on the XMPP side and a Matrix client on the other.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::xmpp_env::{XmppEnv, ghost_id};
use brygga_e2e::xmpp_user::XmppUser;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn body_is(body: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["type"] == "message" && e["body"] == body
}

#[tokio::test(flavor = "multi_thread")]
async fn group_chat_text_travels_both_ways_with_puppets_and_ghosts() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    env.alice.set_display_name("Alice A.").await;
    let muc = "lobby@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;

    // Matrix to XMPP: Alice's puppet speaks under her display name.
    env.alice.send_text(&room, "hello from matrix").await;
    let got = bob.wait_for(WAIT, body_is("hello from matrix")).await;
    assert_eq!(got["from"], format!("{muc}/Alice A."), "{got}");
    assert_eq!(got["msg_type"], "groupchat");

    // XMPP to Matrix: Bob's ghost speaks, named after his nick.
    bob.send_groupchat(muc, "hello from xmpp").await;
    let event = env.matrix_sees(&room, "hello from xmpp").await;
    let bob_ghost = ghost_id("fk", &format!("{muc}/Bob"));
    assert_eq!(event["sender"], bob_ghost.as_str(), "{event}");
    assert_eq!(env.alice.profile(&bob_ghost).await["displayname"], "Bob");

    // Nothing echoes: Alice's message is not bridged back, Bob sees it once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts: Vec<String> = env
        .alice
        .messages(&room)
        .await
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(texts, ["hello from matrix", "hello from xmpp"]);
    let copies = bob.events_seen().iter().filter(|e| body_is("hello from matrix")(e)).count();
    assert_eq!(copies, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_to_one_chats_work_in_both_directions() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let alice_puppet = "alice\\3alocalhost@matrix-fk.localhost";
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;

    // XMPP first: Bob writes to Alice's puppet; his ghost opens a DM with her.
    let first = bob.send_chat(alice_puppet, "hi alice, from xmpp").await;
    let bob_ghost = ghost_id("fk", "bob@localhost");
    let room = env.alice.wait_invite(&bob_ghost, WAIT).await;
    env.alice.join(&room).await;
    let event = env.matrix_sees(&room, "hi alice, from xmpp").await;
    assert_eq!(event["sender"], bob_ghost.as_str());

    // Alice answers; Bob gets it from her puppet. Then he corrects his first message.
    env.alice.send_text(&room, "hi bob, from matrix").await;
    let got = bob.wait_for(WAIT, body_is("hi bob, from matrix")).await;
    assert!(got["from"].as_str().unwrap().starts_with(alice_puppet), "{got}");
    assert_eq!(got["msg_type"], "chat");
    bob.correct(alice_puppet, "chat", &first.id, "hi alice (corrected)").await;
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the correction", |t| {
            t.iter().any(|e| e["content"]["m.new_content"]["body"] == "hi alice (corrected)")
        })
        .await;
    let edit = timeline.iter().find(|e| e["content"]["m.new_content"]["body"] == "hi alice (corrected)").unwrap();
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], event["event_id"]);

    // Matrix first: Alice opens a DM with Carol's ghost and writes.
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    let carol_ghost = ghost_id("fk", "carol@localhost");
    let dm = env.alice.create_dm(&carol_ghost).await;
    env.alice
        .wait_timeline(&dm, WAIT, "the ghost's join", |t| {
            t.iter().any(|e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == carol_ghost.as_str()
                    && e["content"]["membership"] == "join"
            })
        })
        .await;
    env.alice.send_text(&dm, "hello carol").await;
    let got = carol.wait_for(WAIT, body_is("hello carol")).await;
    assert!(got["from"].as_str().unwrap().starts_with(alice_puppet), "{got}");
    carol.send_chat(alice_puppet, "hello alice").await;
    let answer = env.matrix_sees(&dm, "hello alice").await;
    assert_eq!(answer["sender"], carol_ghost.as_str());
}
