//! More Rocket.Chat paths end to end: typing from Matrix, impersonation
//! instead of puppet users, a direct chat opened from Rocket.Chat, and a
//! bridge restart that catches up from history.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::rocketchat_env::{Puppets, RcListener, RocketChatEnv, WAIT, ghost_id};
use serde_json::{Value, json};

const PUPPET: &str = "matrix.alice.localhost";

#[tokio::test(flavor = "multi_thread")]
async fn typing_from_matrix_shows_as_the_puppet_typing() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "typing").await;
    env.alice.send_text(&room, "I am here").await;
    env.rc_sees(ws, &rid, "Alice's message", |m| m.msg == "I am here").await;

    let bob = RcListener::connect(ws, &ws.bob, &[("stream-notify-room", &format!("{rid}/user-activity"))]).await;
    let path = format!(
        "/rooms/{}/typing/{}",
        brygga_e2e::matrix_user::enc(&room),
        brygga_e2e::matrix_user::enc(&env.alice.user_id)
    );
    let (status, _) = env.alice.raw(reqwest::Method::PUT, &path, Some(json!({"typing": true, "timeout": 10000}))).await;
    assert_eq!(status, 200);
    let typing = bob
        .wait_for("Alice typing", |e| {
            e["args"][0] == PUPPET && e["args"][1].as_array().is_some_and(|a| a.iter().any(|x| x == "user-typing"))
        })
        .await;
    assert_eq!(typing["eventName"], format!("{rid}/user-activity"));
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn impersonation_sends_as_the_bot_with_an_alias() {
    let env = RocketChatEnv::start_with(Backend::Sqlite, &["fk"], Puppets::Impersonate).await;
    let ws = env.ws();
    env.alice.set_display_name("Alice A.").await;
    let (rid, room) = env.linked_channel(ws, "alias").await;

    env.alice.send_text(&room, "as the bot").await;
    let sent = env.rc_sees(ws, &rid, "Alice's message", |m| m.msg == "as the bot").await;
    assert_eq!(sent.u["username"], ws.bot.username.as_str());
    assert_eq!(sent.alias.as_deref(), Some("Alice A."));
    assert!(!ws.rc.usernames().iter().any(|u| u == PUPPET), "no puppet user is created");

    ws.rc.post_message(&ws.bob, &rid, "hello alias").unwrap();
    env.matrix_sees(&room, "hello alias").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.matrix_texts(&room).await, ["as the bot", "hello alias"], "the bot's own message is no echo");
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_chat_opened_from_rocket_chat_reaches_the_matrix_user() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "lobby").await;
    // Alice's puppet comes to be when she first speaks.
    env.alice.send_text(&room, "hello everyone").await;
    env.rc_sees(ws, &rid, "Alice's message", |m| m.msg == "hello everyone").await;

    // Bob opens a direct chat with her puppet, as any Rocket.Chat client does.
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/im.create", ws.rc.url()))
        .header("X-User-Id", &ws.bob.id)
        .header("X-Auth-Token", &ws.bob.token)
        .json(&json!({"username": PUPPET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dm = answer["room"]["_id"].as_str().or(answer["room"]["rid"].as_str()).expect("a direct chat").to_owned();
    ws.rc.post_message(&ws.bob, &dm, "psst, alice").unwrap();

    let bob_ghost = ghost_id("fk", "bob");
    let dm_room = env.alice.wait_invite(&bob_ghost, WAIT).await;
    env.alice.join(&dm_room).await;
    let got = env.matrix_sees(&dm_room, "psst, alice").await;
    assert_eq!(got["sender"], bob_ghost.as_str());

    env.alice.send_text(&dm_room, "psst, bob").await;
    let reply = env.rc_sees(ws, &dm, "Alice's answer", |m| m.msg == "psst, bob").await;
    assert_eq!(reply.u["username"], PUPPET);
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_bridge_catches_up_from_history() {
    let mut env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let (rid, room) = env.linked_channel(env.ws(), "restart").await;
    env.ws().rc.post_message(&env.ws().bob, &rid, "before").unwrap();
    env.matrix_sees(&room, "before").await;
    // Let the catch-up point reach the adapter state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.bridge.kill();

    let ws = env.ws();
    for i in 0..20 {
        ws.rc.post_message(&ws.bob, &rid, &format!("while down {i}")).unwrap();
    }
    env.bridge.start().await;
    env.matrix_sees(&room, "while down 19").await;
    let mut expected = vec!["before".to_owned()];
    expected.extend((0..20).map(|i| format!("while down {i}")));
    assert_eq!(env.matrix_texts(&room).await, expected);
    env.ws().rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_matrix_message_arrives_in_parts_within_the_size_limit() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "long").await;
    let words: Vec<String> = (0..2000).map(|i| format!("w{i:04}")).collect();
    let long = words.join(" ");
    env.alice.send_text(&room, &long).await;
    env.rc_sees(ws, &rid, "the last part", |m| m.msg.ends_with("w1999")).await;
    let parts: Vec<String> =
        ws.rc.messages(&rid).into_iter().filter(|m| m.msg.starts_with('w')).map(|m| m.msg).collect();
    assert_eq!(parts.len(), 3, "12,000 characters in parts of at most 5,000");
    assert!(parts.iter().all(|p| p.chars().count() <= 5000));
    assert_eq!(parts.join(" "), long);
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_the_matrix_room_takes_the_puppet_out_of_the_channel() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "leaving").await;
    env.alice.send_text(&room, "bye soon").await;
    env.rc_sees(ws, &rid, "Alice's message", |m| m.msg == "bye soon").await;
    let puppet = ws.rc.user_id(PUPPET).expect("the puppet exists");
    assert!(ws.rc.members(&rid).contains(&puppet));

    let path = format!("/rooms/{}/leave", brygga_e2e::matrix_user::enc(&room));
    let (status, _) = env.alice.raw(reqwest::Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, 200);
    let left = env.rc_sees(ws, &rid, "the puppet leaving", |m| m.t.as_deref() == Some("ul")).await;
    assert_eq!(left.u["username"], PUPPET);
    assert!(!ws.rc.members(&rid).contains(&puppet));
    ws.rc.assert_schemas_ok();
}
