//! Group chats hosted by the bridge's component itself: a Matrix room linked
//! to `town@<component domain>` is a MUC served by the bridge, joined by
//! ordinary XMPP clients (slixmpp here) against real Prosody and Synapse.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::membership_of;
use brygga_e2e::xmpp_env::{LEAVE_GRACE_SECS, XmppEnv, ghost_id};
use brygga_e2e::xmpp_user::XmppUser;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const TOWN: &str = "town@matrix-fk.localhost";

fn body_is(body: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["type"] == "message" && e["body"] == body
}

/// The index of the first event seen matching `predicate`.
fn position(events: &[Value], what: &str, predicate: impl Fn(&Value) -> bool) -> usize {
    events.iter().position(predicate).unwrap_or_else(|| panic!("never saw {what}"))
}

fn presence_of(nick: &str, kind: &str) -> impl Fn(&Value) -> bool {
    let from = format!("{TOWN}/{nick}");
    let kind = kind.to_owned();
    move |e| e["type"] == "presence" && e["from"] == from.as_str() && e["presence_type"] == kind.as_str()
}

/// Waits until the room's archive (asked over MAM, which anyone may) holds `body`.
async fn archived(user: &XmppUser, body: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !user.mam_room(TOWN, 50).await.iter().any(|m| m["body"] == body) {
        assert!(tokio::time::Instant::now() < deadline, "{body:?} never reached the archive");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_component_hosts_group_chats_for_matrix_rooms() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    env.alice.set_display_name("Alice A.").await;
    let room = env.linked_room("fk", TOWN).await;
    let alice_nick = format!("{TOWN}/Alice A.");
    let bob_ghost = ghost_id("fk", "bob@localhost");

    // Alice speaks first: she is an occupant and the room has history.
    env.alice.send_text(&room, "welcome to town").await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    archived(&bob, "welcome to town").await;

    // Bob joins: occupants, then his self-presence (110, and 100: real JIDs
    // are shown), then history with its delay, then the subject.
    let joined = bob.join_muc(TOWN, "Bob").await;
    let codes = joined["self"]["status_codes"].as_array().unwrap().clone();
    assert!(codes.contains(&json!(110)) && codes.contains(&json!(100)), "{joined}");
    assert!(joined["occupants"].as_array().unwrap().iter().any(|o| o["nick"] == "Alice A."), "{joined}");
    let seen = bob.events_seen();
    let alice_at = position(&seen, "Alice's presence", presence_of("Alice A.", "available"));
    let self_at = position(&seen, "the self-presence", |e| {
        e["type"] == "presence" && e["muc"]["status_codes"].as_array().is_some_and(|c| c.contains(&json!(110)))
    });
    let history_at = position(&seen, "the history", body_is("welcome to town"));
    let subject_at = position(&seen, "the subject", |e| e["type"] == "message" && !e["subject"].is_null());
    assert!(alice_at < self_at && self_at < history_at && history_at < subject_at, "join sequence out of order");
    let history = &seen[history_at];
    assert!(!history["delay"].is_null() && history["from"] == alice_nick.as_str(), "{history}");

    // Messages both ways: Bob's reaches Matrix from his ghost (and comes
    // back to him with the room's stanza id), Alice's reaches Bob from her nick.
    let b1 = bob.send_groupchat(TOWN, "hello from bob").await;
    let b1_matrix = env.matrix_sees(&room, "hello from bob").await;
    assert_eq!(b1_matrix["sender"], bob_ghost.as_str());
    assert_eq!(env.alice.profile(&bob_ghost).await["displayname"], "Bob");
    let b1_echo = bob.wait_for(WAIT, body_is("hello from bob")).await;
    let b1_stanza = b1_echo["stanza_id"].as_str().expect("the room stamps a stanza id").to_owned();
    assert_eq!(b1_echo["from"], format!("{TOWN}/Bob"));
    let m1 = env.alice.send_text(&room, "hi bob").await;
    let m1_xmpp = bob.wait_for(WAIT, body_is("hi bob")).await;
    assert_eq!(m1_xmpp["from"], alice_nick.as_str());
    let m1_stanza = m1_xmpp["stanza_id"].as_str().expect("stanza id").to_owned();

    // Carol joins and sees both; Bob sees her arrive.
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    let joined = carol.join_muc(TOWN, "Carol").await;
    let nicks: Vec<&str> = joined["occupants"].as_array().unwrap().iter().filter_map(|o| o["nick"].as_str()).collect();
    assert!(nicks.contains(&"Bob") && nicks.contains(&"Alice A."), "{nicks:?}");
    bob.wait_for(WAIT, presence_of("Carol", "available")).await;

    // Corrections both ways.
    bob.correct(TOWN, "groupchat", &b1.id, "hello from bob (fixed)").await;
    let edit = env.matrix_sees_edit(&room, "hello from bob (fixed)").await;
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], b1_matrix["event_id"]);
    let edit = json!({
        "msgtype": "m.text", "body": "* hi bob!",
        "m.new_content": {"msgtype": "m.text", "body": "hi bob!"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": m1},
    });
    env.alice.send(&room, "m.room.message", edit).await;
    let fixed = carol.wait_for(WAIT, body_is("hi bob!")).await;
    assert_eq!(fixed["replace_id"], m1_xmpp["id"], "{fixed}");

    // Retractions both ways, by the room's ids; nobody retracts another's message.
    carol.retract(TOWN, "groupchat", &b1_stanza).await;
    let refused = carol.wait_for(WAIT, |e| e["type"] == "message" && e["msg_type"] == "error").await;
    assert_eq!(refused["error"]["condition"], "forbidden", "{refused}");
    bob.retract(TOWN, "groupchat", &b1_stanza).await;
    let b1_event = b1_matrix["event_id"].as_str().unwrap().to_owned();
    env.matrix_sees_redaction(&room, &b1_event).await;
    env.alice.redact(&room, &m1).await;
    let gone = carol.wait_for(WAIT, |e| e["retract_id"] == m1_stanza.as_str()).await;
    assert_eq!(gone["from"], alice_nick.as_str());
    env.alice.send_text(&room, "still here").await;
    carol.wait_for(WAIT, body_is("still here")).await;

    // Dave: an unknown room of the domain and a nick held by someone else are refused.
    let dave = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    let missing = dave.command("join_muc", json!({"room": "nowhere@matrix-fk.localhost", "nick": "Dave"})).await;
    assert!(missing.as_ref().is_err_and(|e| e.contains("item-not-found")), "{missing:?}");
    let taken = dave.command("join_muc", json!({"room": TOWN, "nick": "Bob"})).await;
    assert!(taken.as_ref().is_err_and(|e| e.contains("conflict")), "{taken:?}");

    // Discovery: the room is a conference with MAM; the domain lists it and is a conference service too.
    let info = dave.disco_info(TOWN).await.expect("disco#info of the room");
    let identities = info["identities"].as_array().unwrap();
    assert!(identities.iter().any(|i| i["category"] == "conference" && i["type"] == "text"), "{info}");
    let features = info["features"].as_array().unwrap();
    for feature in ["http://jabber.org/protocol/muc", "urn:xmpp:mam:2", "urn:xmpp:sid:0", "muc_nonanonymous"] {
        assert!(features.contains(&json!(feature)), "{feature} missing: {info}");
    }
    let gateway = dave.disco_info("matrix-fk.localhost").await.expect("disco#info of the domain");
    assert!(gateway["identities"].as_array().unwrap().iter().any(|i| i["category"] == "conference"), "{gateway}");
    let items = dave.disco_items("matrix-fk.localhost").await.expect("disco#items of the domain");
    assert!(items.iter().any(|i| i["jid"] == TOWN), "{items:?}");

    // A late joiner sees history on join and through MAM, in order; the
    // retracted messages are gone from both.
    dave.join_muc(TOWN, "Dave").await;
    let history: Vec<String> = dave
        .events_seen()
        .iter()
        .filter(|e| e["type"] == "message" && !e["delay"].is_null() && e["body"].is_string())
        .map(|e| e["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(history.starts_with(&["welcome to town".to_owned()]), "{history:?}");
    assert!(history.contains(&"still here".to_owned()), "{history:?}");
    assert!(!history.iter().any(|b| b == "hello from bob" || b == "hi bob"), "retracted in history: {history:?}");
    let all = dave.mam_room_all(TOWN).await;
    let bodies: Vec<&str> = all.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies.first(), Some(&"welcome to town"), "{bodies:?}");
    assert_eq!(bodies.last(), Some(&"still here"), "{bodies:?}");
    assert!(all.iter().all(|m| !m["delay"].is_null() && m["stanza_id"].is_string()), "{all:?}");
    let newest = dave.mam_room(TOWN, 1).await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0]["body"], "still here");

    // Bob with a second session under the same nick: no new occupant for the others.
    let bob2 = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob2.join_muc(TOWN, "Bob").await;
    // One session leaving is no leave, on XMPP or on Matrix.
    bob.leave_muc(TOWN).await;
    bob.wait_for(WAIT, |e| {
        presence_of("Bob", "unavailable")(e)
            && e["muc"]["status_codes"].as_array().is_some_and(|c| c.contains(&json!(110)))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(LEAVE_GRACE_SECS + 2)).await;
    let carol_saw = |kind: &str| carol.events_seen().iter().filter(|e| presence_of("Bob", kind)(e)).count();
    assert_eq!(carol_saw("available"), 1, "Bob's second session was announced as a new occupant");
    assert_eq!(carol_saw("unavailable"), 0, "Bob's first session leaving was announced as a leave");
    assert_eq!(membership_of(&env.alice.timeline(&room).await, &bob_ghost), Some("join"));
    bob2.send_groupchat(TOWN, "from the other session").await;
    env.matrix_sees(&room, "from the other session").await;

    // The last session leaving is a leave, on both sides.
    bob2.leave_muc(TOWN).await;
    carol.wait_for(WAIT, presence_of("Bob", "unavailable")).await;
    env.alice
        .wait_timeline(&room, WAIT, "Bob's ghost leaving", |t| membership_of(t, &bob_ghost) == Some("leave"))
        .await;
}

/// Sets a state event of the room as Alice.
async fn set_state(env: &XmppEnv, room: &str, kind: &str, content: Value) {
    let path = format!("/rooms/{room}/state/{kind}/");
    let (status, body) = env.alice.raw(reqwest::Method::PUT, &path, Some(content)).await;
    assert_eq!(status, 200, "{kind}: {body}");
}

/// Waits until the bridge's component answers again.
async fn component_back(user: &XmppUser) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while user.disco_info("matrix-fk.localhost").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the component never came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the ghost's display name is `name`.
async fn ghost_named(env: &XmppEnv, ghost: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.alice.profile(ghost).await["displayname"] != name {
        assert!(tokio::time::Instant::now() < deadline, "{ghost} never became {name:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_rooms_follow_nicks_and_topics_and_outlive_restarts() {
    let mut env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    env.alice.set_display_name("Alice A.").await;
    let room = env.linked_room("fk", TOWN).await;
    let bob_ghost = ghost_id("fk", "bob@localhost");
    let carol_ghost = ghost_id("fk", "carol@localhost");
    let dave_ghost = ghost_id("fk", "dave@localhost");

    // The Matrix room's name and topic are the group chat's name and subject.
    set_state(&env, &room, "m.room.name", json!({"name": "Town hall"})).await;
    set_state(&env, &room, "m.room.topic", json!({"topic": "Budget"})).await;
    env.alice.send_text(&room, "the agenda is out").await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    archived(&bob, "the agenda is out").await;
    let joined = bob.join_muc(TOWN, "Bob").await;
    assert_eq!(joined["subject"], "Budget", "{joined}");
    let info = bob.disco_info(TOWN).await.expect("disco#info of the room");
    assert!(info["identities"].as_array().unwrap().iter().any(|i| i["name"] == "Town hall"), "{info}");
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    carol.join_muc(TOWN, "Carol").await;
    set_state(&env, &room, "m.room.topic", json!({"topic": "Budget, second reading"})).await;
    let changed = carol.wait_for(WAIT, |e| e["subject"] == "Budget, second reading").await;
    assert_eq!(changed["from"], format!("{TOWN}/Alice A."), "{changed}");

    // Bob changes his nick: the room says so (303, then the new nick), and his ghost is renamed.
    bob.raw(&format!("<presence to='{TOWN}/Robert'/>")).await;
    let gone = carol
        .wait_for(WAIT, |e| presence_of("Bob", "unavailable")(e) && e["muc"]["status_codes"] == json!([303]))
        .await;
    assert_eq!(gone["muc"]["nick"], "Robert", "{gone}");
    carol.wait_for(WAIT, presence_of("Robert", "available")).await;
    bob.wait_for(WAIT, |e| presence_of("Robert", "available")(e) && e["muc"]["status_codes"] == json!([110])).await;
    ghost_named(&env, &bob_ghost, "Robert").await;
    bob.send_groupchat(TOWN, "call me Robert").await;
    let said = carol.wait_for(WAIT, body_is("call me Robert")).await;
    assert_eq!(said["from"], format!("{TOWN}/Robert"));
    env.matrix_sees(&room, "call me Robert").await;

    // Private messages: between XMPP occupants the room relays them (and
    // Matrix sees nothing); to a Matrix occupant they open a direct chat.
    bob.send_chat(&format!("{TOWN}/Carol"), "psst, carol").await;
    let private = carol.wait_for(WAIT, body_is("psst, carol")).await;
    assert_eq!(
        (private["from"].as_str(), private["msg_type"].as_str()),
        (Some(&*format!("{TOWN}/Robert")), Some("chat"))
    );
    bob.send_chat(&format!("{TOWN}/Alice A."), "psst, alice").await;
    let dm = env.alice.wait_invite(&bob_ghost, WAIT).await;
    env.alice.join(&dm).await;
    env.matrix_sees(&dm, "psst, alice").await;
    let timeline = env.alice.timeline(&room).await;
    assert!(!timeline.iter().any(|e| e["content"]["body"] == "psst, carol" || e["content"]["body"] == "psst, alice"));

    // A ban from Matrix survives a bridge restart, and so do the Matrix
    // occupants and the subject.
    let (status, body) = env
        .alice
        .raw(reqwest::Method::POST, &format!("/rooms/{room}/ban"), Some(json!({"user_id": carol_ghost})))
        .await;
    assert_eq!(status, 200, "{body}");
    carol.wait_for(WAIT, |e| e["type"] == "presence" && e["muc"]["status_codes"] == json!([110, 301])).await;
    env.bridge.kill();
    env.bridge.start().await;
    component_back(&carol).await;
    let refused = carol.command("join_muc", json!({"room": TOWN, "nick": "Carol"})).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("forbidden")), "{refused:?}");
    let dave = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    let joined = dave.join_muc(TOWN, "Dave").await;
    assert_eq!(joined["subject"], "Budget, second reading", "{joined}");
    assert!(joined["occupants"].as_array().unwrap().iter().any(|o| o["nick"] == "Alice A."), "{joined}");

    // The component's connection drops (Prosody restarts): every XMPP
    // occupant is gone; who rejoins within the grace period never left
    // Matrix, who does not leaves it.
    drop((bob, carol, dave));
    env.prosody.restart(Duration::from_secs(5)).expect("Prosody restarts");
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    component_back(&bob).await;
    // The adapter's status tells what happened, through the admin API.
    let api = brygga_e2e::admin_api::AdminApi::new(env.bridge.admin_url());
    let shown = api.call(Some(&env.operator_token), "GET", "/tenants/fk/adapters/xmpp", None).await.body;
    assert_eq!(shown["status"], "connected", "{shown}");
    assert!(
        shown["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "the restart shows as the last error: {shown}"
    );
    bob.join_muc(TOWN, "Robert").await;
    env.alice
        .wait_timeline(&room, WAIT, "Dave's ghost leaving", |t| membership_of(t, &dave_ghost) == Some("leave"))
        .await;
    assert_eq!(membership_of(&env.alice.timeline(&room).await, &bob_ghost), Some("join"));
    bob.send_groupchat(TOWN, "still here after the restart").await;
    env.matrix_sees(&room, "still here after the restart").await;
}
