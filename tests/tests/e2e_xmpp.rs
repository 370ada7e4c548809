//! The XMPP adapter end to end: real Prosody, real Synapse, the bridge as a
//! process, a slixmpp client on the XMPP side and a Matrix client on the other.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::membership_of;
use brygga_e2e::xmpp_env::{LEAVE_GRACE_SECS, XmppEnv, component_domain, ghost_id};
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

    // XMPP to Matrix: Bob's ghost speaks, named after his nick. The room
    // vouches for occupant ids, so the ghost is his occupant id, not his nick.
    bob.send_groupchat(muc, "hello from xmpp").await;
    let event = env.matrix_sees(&room, "hello from xmpp").await;
    let bob_ghost = event["sender"].as_str().expect("sender").to_owned();
    assert!(bob_ghost.starts_with(&ghost_id("fk", &format!("{muc}#"))[..30]), "{bob_ghost}");
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

    // Presence and a nick change reach the same ghost.
    // Presence in a group chat is directed at the room.
    bob.must("presence", serde_json::json!({"show": "away", "status": "at lunch", "to": format!("{muc}/Bob")})).await;
    let presence = wait_presence(&env, &bob_ghost, "unavailable").await;
    assert_eq!(presence["status_msg"], "at lunch");
    bob.join_muc(muc, "Robert").await;
    wait_display_name(&env, &bob_ghost, "Robert").await;

    // Alice's presence reaches the room through her puppet.
    let path = format!("/presence/{}/status", brygga_e2e::matrix_user::enc(&env.alice.user_id));
    let away = serde_json::json!({"presence": "unavailable", "status_msg": "in a meeting"});
    let (status, _) = env.alice.raw(reqwest::Method::PUT, &path, Some(away)).await;
    assert_eq!(status, 200);
    let seen = bob
        .wait_for(WAIT, |e| e["type"] == "presence" && e["from"] == format!("{muc}/Alice A.") && e["show"] == "away")
        .await;
    assert_eq!(seen["status"], "in a meeting");

    // A leave is bridged once the grace period has passed.
    bob.leave_muc(muc).await;
    env.alice
        .wait_timeline(&room, WAIT, "Bob's ghost leaving", |t| membership_of(t, &bob_ghost) == Some("leave"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_sessions_and_brief_absences_do_not_churn_membership() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "sessions@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    env.alice.send_text(&room, "bridge, join please").await;
    let phone = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    let laptop = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    phone.join_muc(muc, "Dave").await;
    laptop.join_muc(muc, "Dave").await;
    phone.send_groupchat(muc, "from the phone").await;
    let event = env.matrix_sees(&room, "from the phone").await;
    let dave_ghost = event["sender"].as_str().unwrap().to_owned();

    // One session leaving is no leave; a quick leave and return is none either.
    phone.leave_muc(muc).await;
    laptop.leave_muc(muc).await;
    laptop.join_muc(muc, "Dave").await;
    tokio::time::sleep(Duration::from_secs(LEAVE_GRACE_SECS + 2)).await;
    let timeline = env.alice.timeline(&room).await;
    let changes: Vec<&str> = timeline
        .iter()
        .filter(|e| e["type"] == "m.room.member" && e["state_key"] == dave_ghost.as_str())
        .filter_map(|e| e["content"]["membership"].as_str())
        .collect();
    assert_eq!(changes, ["invite", "join"], "Dave's ghost churned: {changes:?}");
}

async fn wait_presence(env: &XmppEnv, user: &str, state: &str) -> Value {
    let path = format!("/_matrix/client/v3/presence/{}/status", brygga_e2e::matrix_user::enc(user));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, presence) = env.alice.raw(reqwest::Method::GET, &path.replace("/_matrix/client/v3", ""), None).await;
        if presence["presence"] == state {
            return presence;
        }
        assert!(tokio::time::Instant::now() < deadline, "presence of {user} never became {state}: {presence}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_display_name(env: &XmppEnv, user: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.alice.profile(user).await["displayname"] != name {
        assert!(tokio::time::Instant::now() < deadline, "{user} was never renamed to {name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
    let edit = env.matrix_sees_edit(&room, "hi alice (corrected)").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn matrix_users_open_group_chats_by_alias() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc("coffee@conference.localhost", "Bob").await;

    // The alias of a room that exists opens a portal at once; one that does not is refused.
    let started = std::time::Instant::now();
    let alias = "#xmpp_fk_coffee_conference.localhost:localhost";
    let (status, joined) =
        env.alice.raw(reqwest::Method::POST, &format!("/join/{}", brygga_e2e::matrix_user::enc(alias)), None).await;
    assert_eq!(status, 200, "{joined}");
    assert!(started.elapsed() < Duration::from_secs(10), "opening took {:?}", started.elapsed());
    let room = joined["room_id"].as_str().unwrap().to_owned();
    let missing = "#xmpp_fk_nosuchroom_conference.localhost:localhost";
    let (status, _) =
        env.alice.raw(reqwest::Method::POST, &format!("/join/{}", brygga_e2e::matrix_user::enc(missing)), None).await;
    assert_eq!(status, 404);

    env.alice.send_text(&room, "coffee, anyone?").await;
    let got = bob.wait_for(WAIT, body_is("coffee, anyone?")).await;
    assert_eq!(got["from"], "coffee@conference.localhost/alice");
    bob.send_groupchat("coffee@conference.localhost", "yes please").await;
    env.matrix_sees(&room, "yes please").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prosody_restart_mid_exchange_loses_and_duplicates_nothing() {
    const N: usize = 500;
    let mut env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "relay@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    env.alice.send_text(&room, "start").await;
    bob.wait_for(WAIT, body_is("start")).await;

    // Matrix to XMPP runs throughout; XMPP to Matrix pauses for the restart.
    let alice = brygga_e2e::matrix_user::MatrixUser::new(&env.alice.base, &env.alice.user_id, env.alice.token());
    let matrix_room = room.clone();
    let matrix_side = tokio::spawn(async move {
        for i in 0..N {
            alice.send_text(&matrix_room, &format!("m-{i}")).await;
        }
    });
    for i in 0..N / 2 {
        bob.send_groupchat(muc, &format!("x-{i}")).await;
    }
    let last = format!("x-{}", N / 2 - 1);
    bob.wait_for(WAIT, |e| e["type"] == "message" && e["body"] == last.as_str()).await;
    tokio::task::block_in_place(|| env.prosody.restart(Duration::from_secs(5))).expect("Prosody restarts");
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    for i in N / 2..N {
        bob.send_groupchat(muc, &format!("x-{i}")).await;
    }
    matrix_side.await.expect("Matrix sender");

    // Matrix got every XMPP message once, in order.
    let expected_x: Vec<String> = (0..N).map(|i| format!("x-{i}")).collect();
    let done = format!("x-{}", N - 1);
    let timeline = env
        .alice
        .wait_timeline(&room, Duration::from_secs(120), "the last XMPP message", |t| {
            t.iter().any(|e| e["content"]["body"] == done.as_str())
        })
        .await;
    let got_x: Vec<String> = timeline
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .filter(|b| b.starts_with("x-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(got_x, expected_x);

    // The room got every Matrix message once, in order.
    let expected_m: Vec<String> = (0..N).map(|i| format!("m-{i}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let archive = bob.mam_room_all(muc).await;
        let got_m: Vec<String> = archive
            .iter()
            .filter_map(|m| m["body"].as_str())
            .filter(|b| b.starts_with("m-"))
            .map(str::to_owned)
            .collect();
        if got_m.len() >= N || tokio::time::Instant::now() > deadline {
            let head: Vec<&str> = archive.iter().take(12).filter_map(|m| m["body"].as_str()).collect();
            assert_eq!(got_m, expected_m, "archive starts {head:?}");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn files_travel_both_ways() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "files@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;

    // Matrix to XMPP: a signed link to the file, which serves its bytes.
    let picture = brygga_harness::random_bytes(40_000);
    let mxc = env.alice.upload(picture.clone(), "image/png", "holiday.png").await;
    let content = serde_json::json!({
        "msgtype": "m.image", "body": "holiday.png", "url": mxc,
        "info": {"mimetype": "image/png", "size": picture.len()},
    });
    env.alice.send(&room, "m.room.message", content).await;
    let got = bob.wait_for(WAIT, |e| e["type"] == "message" && !e["oob_url"].is_null()).await;
    let url = got["oob_url"].as_str().unwrap().to_owned();
    assert_eq!(got["body"], url.as_str());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().to_vec(), picture);
    let forged = url.replacen("/_brygga/media/localhost/", "/_brygga/media/localhost/x", 1);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);

    // XMPP to Matrix: an uploaded file shared by link is re-uploaded to Matrix.
    let notes = b"minutes of the meeting\n".repeat(100);
    let link = bob.upload(&notes, "minutes.txt", "text/plain").await;
    bob.send(serde_json::json!({"to": muc, "type": "groupchat", "body": link, "oob_url": link})).await;
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the shared file", |t| t.iter().any(|e| e["content"]["msgtype"] == "m.file"))
        .await;
    let file = timeline.iter().find(|e| e["content"]["msgtype"] == "m.file").unwrap();
    assert_eq!(file["content"]["body"], "minutes.txt");
    let bytes = env.alice.download(file["content"]["url"].as_str().unwrap()).await;
    assert_eq!(bytes, notes);
}

#[tokio::test(flavor = "multi_thread")]
async fn occupant_avatars_come_from_their_vcards() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "faces@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    env.alice.send_text(&room, "show yourselves").await;
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    carol.join_muc(muc, "Carol").await;
    carol.send_groupchat(muc, "hi").await;
    let ghost = env.matrix_sees(&room, "hi").await["sender"].as_str().unwrap().to_owned();

    let face = brygga_harness::random_bytes(3_000);
    carol.vcard_avatar(&face, "image/png").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let avatar = loop {
        if let Some(mxc) = env.alice.profile(&ghost).await["avatar_url"].as_str() {
            break mxc.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "{ghost} never got an avatar");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(env.alice.download(&avatar).await, face);
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_retractions_and_replies_cross_a_group_chat_both_ways() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "edits@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;

    // A message from each side.
    let m1 = env.alice.send_text(&room, "m1 from matrix").await;
    let m1_xmpp = bob.wait_for(WAIT, body_is("m1 from matrix")).await;
    let m1_stanza = m1_xmpp["stanza_id"].as_str().unwrap().to_owned();
    let b1 = bob.send_groupchat(muc, "b1 from xmpp").await;
    let b1_matrix = env.matrix_sees(&room, "b1 from xmpp").await;
    let b1_event = b1_matrix["event_id"].as_str().unwrap().to_owned();
    let b1_stanza = bob.wait_for(WAIT, body_is("b1 from xmpp")).await["stanza_id"].as_str().unwrap().to_owned();

    // XMPP replies to the Matrix message (by the room's id), fallback stripped.
    let reply = serde_json::json!({"id": m1_stanza, "to": format!("{muc}/alice"), "fallback": "> m1 from matrix\n"});
    bob.send(serde_json::json!({"to": muc, "type": "groupchat", "body": "b2 replying", "reply_to": reply})).await;
    let b2 = env.matrix_sees(&room, "b2 replying").await;
    assert_eq!(b2["content"]["m.relates_to"]["m.in_reply_to"]["event_id"], m1.as_str(), "{b2}");

    // XMPP corrects its own message (by its own id).
    bob.correct(muc, "groupchat", &b1.id, "b1 corrected").await;
    let edit = env.matrix_sees_edit(&room, "b1 corrected").await;
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], b1_event.as_str());

    // Matrix edits and replies; XMPP sees a correction of the puppet's id and a reply by the room's id.
    let edit = serde_json::json!({
        "msgtype": "m.text", "body": "* m1 edited",
        "m.new_content": {"msgtype": "m.text", "body": "m1 edited"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": m1},
    });
    env.alice.send(&room, "m.room.message", edit).await;
    let fixed = bob.wait_for(WAIT, body_is("m1 edited")).await;
    assert_eq!(fixed["replace_id"], m1_xmpp["id"]);
    let answer = serde_json::json!({
        "msgtype": "m.text", "body": "m2 answering b1",
        "m.relates_to": {"m.in_reply_to": {"event_id": b1_event}},
    });
    env.alice.send(&room, "m.room.message", answer).await;
    let m2 = bob.wait_for(WAIT, body_is("m2 answering b1")).await;
    assert_eq!(m2["reply"]["id"], b1_stanza.as_str(), "{m2}");

    // Retractions both ways, by the room's ids.
    bob.retract(muc, "groupchat", &b1_stanza).await;
    env.matrix_sees_redaction(&room, &b1_event).await;
    env.alice.redact(&room, &m1).await;
    let gone = bob.wait_for(WAIT, |e| e["retract_id"] == m1_stanza.as_str()).await;
    assert!(gone["from"].as_str().unwrap().ends_with("/alice"), "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reaction_sets_become_single_reactions_and_back() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "reacts@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let m1 = env.alice.send_text(&room, "react to me").await;
    let m1_stanza = bob.wait_for(WAIT, body_is("react to me")).await["stanza_id"].as_str().unwrap().to_owned();
    bob.send_groupchat(muc, "and to me").await;
    let b1 = env.matrix_sees(&room, "and to me").await["event_id"].as_str().unwrap().to_owned();
    let b1_stanza = bob.wait_for(WAIT, body_is("and to me")).await["stanza_id"].as_str().unwrap().to_owned();

    // XMPP sets to Matrix reactions: a set of two, then one of them taken back.
    let live_reactions = |t: &[Value]| -> Vec<String> {
        let mut keys: Vec<String> = t
            .iter()
            .filter(|e| e["type"] == "m.reaction" && e["content"]["m.relates_to"]["event_id"] == m1.as_str())
            .filter(|e| e["unsigned"]["redacted_because"].is_null())
            .filter_map(|e| e["content"]["m.relates_to"]["key"].as_str().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    };
    bob.react(muc, "groupchat", &m1_stanza, &["👍", "🎉"]).await;
    env.alice.wait_timeline(&room, WAIT, "two reactions", |t| live_reactions(t) == ["🎉", "👍"]).await;
    bob.react(muc, "groupchat", &m1_stanza, &["🎉"]).await;
    env.alice.wait_timeline(&room, WAIT, "one reaction left", |t| live_reactions(t) == ["🎉"]).await;

    // Matrix reactions to XMPP sets: add two, take one back.
    let react =
        |key: &str| serde_json::json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": b1, "key": key}});
    let thumbs = env.alice.send(&room, "m.reaction", react("👍")).await;
    let set = |values: &'static [&'static str]| {
        let b1_stanza = b1_stanza.clone();
        move |e: &Value| {
            e["reactions"]["id"] == b1_stanza.as_str() && e["reactions"]["values"] == serde_json::json!(values)
        }
    };
    bob.wait_for(WAIT, set(&["👍"])).await;
    env.alice.send(&room, "m.reaction", react("❤")).await;
    bob.wait_for(WAIT, set(&["👍", "❤"])).await;
    env.alice.redact(&room, &thumbs).await;
    bob.wait_for(WAIT, set(&["❤"])).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_bridge_catches_up_with_what_was_said_while_it_was_down() {
    let mut env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "meanwhile@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    env.alice.send_text(&room, "listen here").await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    bob.wait_for(WAIT, body_is("listen here")).await;
    bob.send_groupchat(muc, "before").await;
    env.matrix_sees(&room, "before").await;

    env.bridge.kill();
    for i in 0..5 {
        bob.send_groupchat(muc, &format!("while down {i}")).await;
    }
    env.bridge.start().await;
    // The listener rejoins on its own (after a reconnect, or at the latest the periodic portal refresh).
    let timeline = env
        .alice
        .wait_timeline(&room, Duration::from_secs(60), "the messages sent meanwhile", |t| {
            t.iter().any(|e| e["content"]["body"] == "while down 4")
        })
        .await;
    let bodies: Vec<&str> = timeline
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    let expected: Vec<String> = ["listen here", "before"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..5).map(|i| format!("while down {i}")))
        .collect();
    assert_eq!(bodies, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matrix_kick_removes_the_occupant_from_the_group_chat() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "moderated@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    // The bridge's listener joins first, so the room's creator (and owner) is the bridge.
    env.alice.send_text(&room, "my room").await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    bob.send_groupchat(muc, "hello").await;
    let ghost = env.matrix_sees(&room, "hello").await["sender"].as_str().unwrap().to_owned();

    let path = format!("/rooms/{}/kick", brygga_e2e::matrix_user::enc(&room));
    let kick = serde_json::json!({"user_id": ghost, "reason": "off topic"});
    let (status, answer) = env.alice.raw(reqwest::Method::POST, &path, Some(kick)).await;
    assert_eq!(status, 200, "{answer}");
    let kicked = bob
        .wait_for(WAIT, |e| {
            e["type"] == "presence"
                && e["from"] == format!("{muc}/Bob")
                && e["muc"]["status_codes"].as_array().is_some_and(|c| c.iter().any(|c| c == 307 || c == "307"))
        })
        .await;
    assert_eq!(kicked["presence_type"], "unavailable", "{kicked}");
}

/// XEP-0425 on Debian's Prosody (`mod_muc_moderation`, the older draft):
/// a Matrix redaction of an XMPP occupant's message has the room retract it,
/// and an XMPP moderator's retraction of a Matrix user's message redacts it.
#[tokio::test(flavor = "multi_thread")]
async fn moderators_remove_each_others_messages_both_ways() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "moderation@conference.localhost";
    // Bob owns the room and makes the bridge an admin, so its seat moderates.
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let admin = format!(
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='{}'/></query>",
        component_domain("fk")
    );
    bob.must("iq", serde_json::json!({"to": muc, "iq_type": "set", "payload": admin})).await;
    let room = env.linked_room("fk", muc).await;
    // Once Alice's first message is in the room, the bridge is seated there.
    env.alice.send_text(&room, "the bridge is here").await;
    bob.wait_for(WAIT, body_is("the bridge is here")).await;

    // Matrix to XMPP: Alice (the room's admin in Matrix) redacts Bob's message.
    bob.send_groupchat(muc, "bob's off-topic post").await;
    let ghost_event = env.matrix_sees(&room, "bob's off-topic post").await["event_id"].as_str().unwrap().to_owned();
    let stanza_id = bob.wait_for(WAIT, body_is("bob's off-topic post")).await["stanza_id"].as_str().unwrap().to_owned();
    env.alice.redact(&room, &ghost_event).await;
    let retraction = bob.wait_for(WAIT, |e| e["moderated"]["id"] == stanza_id.as_str()).await;
    assert_eq!(retraction["from"], muc, "the room itself retracts: {retraction}");

    // XMPP to Matrix: Bob, a moderator, has the room retract Alice's message.
    // His ghost may not redact in Alice's room; the bot may, once she lets it.
    let bot = "@brygga:localhost";
    let power = serde_json::json!({"users": {bot: 50}, "users_default": 0,
        "events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0});
    let path = format!("/rooms/{}/state/m.room.power_levels/", brygga_e2e::matrix_user::enc(&room));
    let (status, answer) = env.alice.raw(reqwest::Method::PUT, &path, Some(power)).await;
    assert_eq!(status, 200, "{answer}");
    let alice_event = env.alice.send_text(&room, "alice's off-topic post").await;
    let alice_stanza =
        bob.wait_for(WAIT, body_is("alice's off-topic post")).await["stanza_id"].as_str().unwrap().to_owned();
    let moderate = format!(
        "<apply-to xmlns='urn:xmpp:fasten:0' id='{alice_stanza}'><moderate xmlns='urn:xmpp:message-moderate:0'>\
         <retract xmlns='urn:xmpp:message-retract:0'/><reason>off topic</reason></moderate></apply-to>"
    );
    bob.must("iq", serde_json::json!({"to": muc, "iq_type": "set", "payload": moderate})).await;
    env.matrix_sees_redaction(&room, &alice_event).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_and_read_markers_cross_both_ways() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    env.alice.set_display_name("Alice A.").await;
    let muc = "typing@conference.localhost";
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let from_matrix = env.alice.send_text(&room, "read me").await;
    let read_me = bob.wait_for(WAIT, body_is("read me")).await["stanza_id"].as_str().unwrap().to_owned();
    bob.send_groupchat(muc, "and me").await;
    let ghost = env.matrix_sees(&room, "and me").await["sender"].as_str().unwrap().to_owned();
    let and_me = env.alice.messages(&room).await.last().unwrap()["event_id"].as_str().unwrap().to_owned();

    // XMPP to Matrix: Bob's chat state and displayed marker.
    bob.chat_state(muc, "groupchat", "composing").await;
    env.alice
        .wait_ephemeral(&room, WAIT, |e| {
            e["type"] == "m.typing"
                && e["content"]["user_ids"].as_array().is_some_and(|u| u.iter().any(|u| u == ghost.as_str()))
        })
        .await;
    bob.displayed(muc, "groupchat", &read_me).await;
    env.alice
        .wait_ephemeral(&room, WAIT, |e| e["type"] == "m.receipt" && !e["content"][from_matrix.as_str()].is_null())
        .await;

    // Matrix to XMPP: Alice typing and her read receipt.
    let alice = brygga_e2e::matrix_user::enc(&env.alice.user_id);
    let typing = format!("/rooms/{}/typing/{alice}", brygga_e2e::matrix_user::enc(&room));
    let (status, _) =
        env.alice.raw(reqwest::Method::PUT, &typing, Some(serde_json::json!({"typing": true, "timeout": 10000}))).await;
    assert_eq!(status, 200);
    bob.wait_for(WAIT, |e| e["from"] == format!("{muc}/Alice A.") && e["chat_state"] == "composing").await;
    let receipt = format!(
        "/rooms/{}/receipt/m.read/{}",
        brygga_e2e::matrix_user::enc(&room),
        brygga_e2e::matrix_user::enc(&and_me)
    );
    let (status, _) = env.alice.raw(reqwest::Method::POST, &receipt, Some(serde_json::json!({}))).await;
    assert_eq!(status, 200);
    let marker = bob.wait_for(WAIT, |e| e["from"] == format!("{muc}/Alice A.") && !e["displayed_id"].is_null()).await;
    let and_me_stanza = bob.events_seen().iter().find(|e| body_is("and me")(e)).unwrap()["stanza_id"].clone();
    assert_eq!(marker["displayed_id"], and_me_stanza);
}
