//! The Rocket.Chat adapter end to end: the Rocket.Chat double as the
//! workspace, real Synapse, the bridge as a process and a Matrix client.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::membership_of;
use brygga_e2e::rocketchat_env::{RocketChatEnv, WAIT, ghost_id};
use brygga_rocketchat_double::Presence;
use serde_json::{Value, json};

const PUPPET: &str = "matrix.alice.localhost";

fn find(timeline: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    timeline.iter().find(|e| pred(e))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_conversation_with_threads_edits_reactions_and_deletes() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "general").await;

    // Matrix to Rocket.Chat: Alice speaks as her puppet user.
    let alice_event = env.alice.send_text(&room, "hello from matrix").await;
    let alice_msg = env.rc_sees(ws, &rid, "Alice's message", |m| m.msg == "hello from matrix").await;
    assert_eq!(alice_msg.u["username"], PUPPET);

    // Rocket.Chat to Matrix: Bob's ghost speaks, with his formatting.
    let bob_msg = ws.rc.post_message(&ws.bob, &rid, "hello *from* rocket").unwrap();
    let bob_event = env.matrix_sees(&room, "hello *from* rocket").await;
    assert_eq!(bob_event["sender"], ghost_id("fk", "bob"));
    assert!(bob_event["content"]["formatted_body"].as_str().unwrap().contains("<strong>from</strong>"), "{bob_event}");
    let bob_event_id = bob_event["event_id"].as_str().unwrap().to_owned();

    // Nothing echoes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.matrix_texts(&room).await, ["hello from matrix", "hello *from* rocket"]);
    assert_eq!(ws.rc.messages(&rid).iter().filter(|m| m.msg == "hello from matrix").count(), 1);

    // Threads both ways.
    ws.rc.post_reply(&ws.carol, &rid, &alice_msg.id, "carol in the thread").unwrap();
    let reply = env.matrix_sees(&room, "carol in the thread").await;
    assert_eq!(reply["content"]["m.relates_to"]["rel_type"], "m.thread", "{reply}");
    assert_eq!(reply["content"]["m.relates_to"]["event_id"], alice_event.as_str());
    let thread = json!({"msgtype": "m.text", "body": "alice in bob's thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": bob_event_id, "is_falling_back": true,
                         "m.in_reply_to": {"event_id": bob_event_id}}});
    env.alice.send(&room, "m.room.message", thread).await;
    let threaded = env.rc_sees(ws, &rid, "Alice's thread reply", |m| m.msg == "alice in bob's thread").await;
    assert_eq!(threaded.tmid.as_deref(), Some(bob_msg.id.as_str()));

    // Replies both ways: Rocket.Chat quotes a message by a link to it.
    let reply = json!({"msgtype": "m.text", "body": "> <@rocketchat_fk_bob:localhost> hello\n\nalice replies",
        "m.relates_to": {"m.in_reply_to": {"event_id": bob_event_id}}});
    env.alice.send(&room, "m.room.message", reply).await;
    let quoted = env.rc_sees(ws, &rid, "Alice's reply", |m| m.msg.ends_with("alice replies")).await;
    assert!(quoted.msg.starts_with("[ ](") && quoted.msg.contains(&format!("?msg={})", bob_msg.id)), "{}", quoted.msg);
    let quote = format!("[ ]({}/channel/general?msg={}) bob quotes alice", ws.rc.url(), alice_msg.id);
    ws.rc.post_message(&ws.bob, &rid, &quote).unwrap();
    let quoting = env.matrix_sees(&room, "bob quotes alice").await;
    assert_eq!(quoting["content"]["m.relates_to"]["m.in_reply_to"]["event_id"], alice_event.as_str(), "{quoting}");

    // Edits both ways.
    ws.rc.edit_message(&ws.bob, &bob_msg.id, "hello, edited").unwrap();
    let edit = env
        .alice
        .wait_timeline(&room, WAIT, "Bob's edit", |t| {
            find(t, |e| e["content"]["m.new_content"]["body"] == "hello, edited").is_some()
        })
        .await;
    let edit = find(&edit, |e| e["content"]["m.new_content"]["body"] == "hello, edited").unwrap();
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], bob_event_id.as_str());
    let replace = json!({"msgtype": "m.text", "body": "* hello from matrix, edited",
        "m.new_content": {"msgtype": "m.text", "body": "hello from matrix, edited"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": alice_event}});
    env.alice.send(&room, "m.room.message", replace).await;
    env.rc_sees(ws, &rid, "Alice's edit", |m| m.id == alice_msg.id && m.msg == "hello from matrix, edited").await;

    // Reactions both ways.
    ws.rc.react(&ws.carol, &alice_msg.id, ":tada:", Some(true)).unwrap();
    let reacted = env
        .alice
        .wait_timeline(&room, WAIT, "Carol's reaction", |t| find(t, |e| e["type"] == "m.reaction").is_some())
        .await;
    let reaction = find(&reacted, |e| e["type"] == "m.reaction").unwrap();
    assert_eq!(reaction["sender"], ghost_id("fk", "carol"));
    assert_eq!(reaction["content"]["m.relates_to"]["key"], "🎉");
    assert_eq!(reaction["content"]["m.relates_to"]["event_id"], alice_event.as_str());
    let thumbs = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": bob_event_id, "key": "👍"}});
    env.alice.send(&room, "m.reaction", thumbs).await;
    env.rc_sees(ws, &rid, "Alice's reaction", |m| {
        m.id == bob_msg.id && m.reactions.get(":+1:").is_some_and(|users| users.iter().any(|u| u == PUPPET))
    })
    .await;

    // Deletes both ways.
    ws.rc.delete_message(&ws.bob, &bob_msg.id).unwrap();
    let redacted = |e: &Value| e["event_id"] == bob_event_id.as_str() && !e["unsigned"]["redacted_because"].is_null();
    env.alice.wait_timeline(&room, WAIT, "Bob's deletion", |t| t.iter().any(redacted)).await;
    env.alice.redact(&room, &alice_event).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while ws.rc.message(&alice_msg.id).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "Alice's deletion never reached Rocket.Chat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn files_typing_presence_and_membership() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "files").await;

    // A file from Rocket.Chat arrives as a Matrix file with the same bytes.
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n not really an image".to_vec();
    ws.rc.post_file(&ws.bob, &rid, "picture.png", "image/png", &png, "").unwrap();
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "Bob's file", |t| find(t, |e| e["content"]["msgtype"] == "m.image").is_some())
        .await;
    let image = find(&timeline, |e| e["content"]["msgtype"] == "m.image").unwrap();
    assert_eq!(image["content"]["body"], "picture.png");
    assert_eq!(env.alice.download(image["content"]["url"].as_str().unwrap()).await, png);

    // A file from Matrix arrives as an upload of the same bytes.
    let pdf = b"%PDF-1.4 tiny".to_vec();
    let mxc = env.alice.upload(pdf.clone(), "application/pdf", "report.pdf").await;
    let file = json!({"msgtype": "m.file", "body": "report.pdf", "url": mxc, "info": {"mimetype": "application/pdf", "size": pdf.len()}});
    env.alice.send(&room, "m.room.message", file).await;
    env.rc_sees(ws, &rid, "Alice's file", |m| m.files.iter().any(|f| f["name"] == "report.pdf")).await;
    let upload = ws.rc.uploads().into_iter().find(|u| u.name == "report.pdf").expect("uploaded");
    assert_eq!(upload.bytes, pdf);
    assert!(upload.confirmed);

    // Typing reaches the room as Bob's ghost typing.
    ws.rc.set_typing(&ws.bob, &rid, true).unwrap();
    let bob_ghost = ghost_id("fk", "bob");
    let typing = env
        .alice
        .wait_ephemeral(&room, WAIT, |e| {
            e["type"] == "m.typing"
                && e["content"]["user_ids"].as_array().is_some_and(|u| u.iter().any(|x| x == bob_ghost.as_str()))
        })
        .await;
    assert_eq!(typing["type"], "m.typing");

    // Presence: Bob goes away.
    ws.rc.set_presence(&ws.bob, Presence::Away).unwrap();
    let path = format!("/presence/{}/status", brygga_e2e::matrix_user::enc(&bob_ghost));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, presence) = env.alice.raw(reqwest::Method::GET, &path, None).await;
        if presence["presence"] == "unavailable" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "Bob's presence never became unavailable: {presence}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Alice (whose puppet exists since she sent a file) goes away on Matrix:
    // her puppet's status follows, with her status text.
    let path = format!("/presence/{}/status", brygga_e2e::matrix_user::enc("@alice:localhost"));
    let away = json!({"presence": "unavailable", "status_msg": "in a meeting"});
    let (status, body) = env.alice.raw(reqwest::Method::PUT, &path, Some(away)).await;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while ws.rc.status_of(PUPPET) != Some((Presence::Away, "in a meeting".to_owned())) {
        assert!(tokio::time::Instant::now() < deadline, "Alice's puppet: {:?}", ws.rc.status_of(PUPPET));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Join and leave.
    let dave = ws.rc.create_user("dave");
    ws.rc.join(&dave, &rid).unwrap();
    let dave_ghost = ghost_id("fk", "dave");
    env.alice.wait_timeline(&room, WAIT, "Dave joining", |t| membership_of(t, &dave_ghost) == Some("join")).await;
    ws.rc.leave(&dave, &rid).unwrap();
    env.alice.wait_timeline(&room, WAIT, "Dave leaving", |t| membership_of(t, &dave_ghost) == Some("leave")).await;
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_chat_opened_from_matrix_works_both_ways() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let bob_ghost = ghost_id("fk", "bob");
    let room = env.alice.create_dm(&bob_ghost).await;
    env.alice.wait_timeline(&room, WAIT, "Bob's ghost joining", |t| membership_of(t, &bob_ghost) == Some("join")).await;

    // Matrix to Rocket.Chat: Alice's puppet opens the direct chat with Bob.
    env.alice.send_text(&room, "hi bob, privately").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let rid = loop {
        if let Some(puppet) = ws.rc.user_id(PUPPET) {
            let mut pair = [puppet, ws.bob.id.clone()];
            pair.sort();
            let rid = pair.concat();
            if ws.rc.messages(&rid).iter().any(|m| m.msg == "hi bob, privately") {
                break rid;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the direct message never reached Rocket.Chat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ws.rc.members(&rid).len(), 2);

    // Rocket.Chat to Matrix: Bob answers in the same direct chat.
    ws.rc.post_message(&ws.bob, &rid, "hi alice, privately").unwrap();
    let answer = env.matrix_sees(&room, "hi alice, privately").await;
    assert_eq!(answer["sender"], bob_ghost.as_str());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.matrix_texts(&room).await, ["hi bob, privately", "hi alice, privately"]);

    // A file in the direct chat is fetched as Alice's puppet (the bot is no member).
    let notes = b"private notes".to_vec();
    ws.rc.post_file(&ws.bob, &rid, "notes.txt", "text/plain", &notes, "").unwrap();
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "Bob's file", |t| t.iter().any(|e| e["content"]["msgtype"] == "m.file"))
        .await;
    let file = timeline.iter().find(|e| e["content"]["msgtype"] == "m.file").unwrap();
    assert_eq!(env.alice.download(file["content"]["url"].as_str().unwrap()).await, notes);
    ws.rc.assert_schemas_ok();
}
