//! The Rocket.Chat adapter under stress: a dropped websocket mid-exchange,
//! rate-limit storms, two workspaces side by side, hostile input and a
//! revoked bot token.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::MatrixUser;
use brygga_e2e::rocketchat_env::{RocketChatEnv, ghost_id};
use brygga_rocketchat_double::RateLimit;

const LONG: Duration = Duration::from_secs(180);

/// Waits until Alice's room shows `last`; returns the bodies starting with `prefix`, in order.
async fn matrix_bodies(env: &RocketChatEnv, room: &str, prefix: &str, last: &str) -> Vec<String> {
    let timeline = env.alice.wait_timeline(room, LONG, last, |t| t.iter().any(|e| e["content"]["body"] == last)).await;
    timeline
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str())
        .filter(|b| b.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Waits until `rid` has `count` messages starting with `prefix`; returns them in order.
async fn rc_bodies(env: &RocketChatEnv, rid: &str, prefix: &str, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let bodies: Vec<String> =
            env.ws().rc.messages(rid).into_iter().map(|m| m.msg).filter(|m| m.starts_with(prefix)).collect();
        if bodies.len() >= count || tokio::time::Instant::now() > deadline {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_websocket_mid_exchange_loses_and_duplicates_nothing() {
    const N: usize = 500;
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "relay").await;

    // Matrix to Rocket.Chat runs throughout.
    let alice = MatrixUser::new(&env.alice.base, &env.alice.user_id, env.alice.token());
    let matrix_room = room.clone();
    let matrix_side = tokio::spawn(async move {
        for i in 0..N {
            alice.send_text(&matrix_room, &format!("m-{i}")).await;
        }
    });
    // Rocket.Chat to Matrix, with the realtime connections dropped twice on the way.
    for i in 0..N {
        ws.rc.post_message(&ws.bob, &rid, &format!("r-{i}")).unwrap();
        if i == N / 3 || i == 2 * N / 3 {
            // Once the bridge is back from the previous drop, drop it again.
            let deadline = tokio::time::Instant::now() + LONG;
            while ws.rc.realtime_connections() == 0 {
                assert!(tokio::time::Instant::now() < deadline, "the bridge never reconnected");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(ws.rc.drop_realtime_connections() > 0);
        }
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    matrix_side.await.expect("Matrix sender");

    let expected: Vec<String> = (0..N).map(|i| format!("r-{i}")).collect();
    assert_eq!(matrix_bodies(&env, &room, "r-", &format!("r-{}", N - 1)).await, expected);
    let expected: Vec<String> = (0..N).map(|i| format!("m-{i}")).collect();
    assert_eq!(rc_bodies(&env, &rid, "m-", N).await, expected);
    assert!(ws.rc.realtime_connections() > 0, "the bridge reconnected");
    // The gaps were filled from history after each reconnect.
    let history_reads = ws.rc.request_counts().get("GET channels.history").copied().unwrap_or(0);
    assert!(history_reads >= 2, "history was read {history_reads} times");
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_storm_is_waited_out_without_loss() {
    const N: usize = 40;
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "storm").await;
    ws.rc.set_rate_limit(Some(RateLimit::new(5, Duration::from_secs(1))));
    ws.rc.force_rate_limited(10);
    for i in 0..N {
        env.alice.send_text(&room, &format!("s-{i}")).await;
    }
    let expected: Vec<String> = (0..N).map(|i| format!("s-{i}")).collect();
    assert_eq!(rc_bodies(&env, &rid, "s-", N).await, expected);
    assert!(ws.rc.rate_limited_responses() >= 10, "the storm happened: {}", ws.rc.rate_limited_responses());
    let metrics = reqwest::get(format!("{}/metrics", env.bridge.admin_url())).await.unwrap().text().await.unwrap();
    let throttled = metrics
        .lines()
        .find(|l| l.starts_with(r#"brygga_remote_throttled{tenant="fk",adapter="rocketchat"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(throttled.is_some_and(|n| n >= 10), "the throttling shows in the metrics: {throttled:?}");
    // Rocket.Chat to Matrix goes on meanwhile (the realtime API is not rate-limited).
    ws.rc.post_message(&ws.bob, &rid, "after the storm").unwrap();
    env.matrix_sees(&room, "after the storm").await;
    ws.rc.set_rate_limit(None);
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workspaces_do_not_cross_talk() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk", "sk"]).await;
    let (fk, sk) = (&env.workspaces[0], &env.workspaces[1]);
    let (fk_rid, fk_room) = env.linked_channel(fk, "shared-name").await;
    let (sk_rid, sk_room) = env.linked_channel(sk, "shared-name").await;

    fk.rc.post_message(&fk.bob, &fk_rid, "from fk").unwrap();
    sk.rc.post_message(&sk.bob, &sk_rid, "from sk").unwrap();
    let fk_event = env.matrix_sees(&fk_room, "from fk").await;
    let sk_event = env.matrix_sees(&sk_room, "from sk").await;
    assert_eq!(fk_event["sender"], ghost_id("fk", "bob"));
    assert_eq!(sk_event["sender"], ghost_id("sk", "bob"));
    env.alice.send_text(&fk_room, "to fk").await;
    env.alice.send_text(&sk_room, "to sk").await;
    env.rc_sees(fk, &fk_rid, "Alice in fk", |m| m.msg == "to fk").await;
    env.rc_sees(sk, &sk_rid, "Alice in sk", |m| m.msg == "to sk").await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.matrix_texts(&fk_room).await, ["from fk", "to fk"]);
    assert_eq!(env.matrix_texts(&sk_room).await, ["from sk", "to sk"]);
    let texts = |ws: &brygga_e2e::rocketchat_env::Workspace, rid: &str| -> Vec<String> {
        ws.rc.messages(rid).into_iter().filter(|m| m.t.is_none()).map(|m| m.msg).collect()
    };
    assert_eq!(texts(fk, &fk_rid), ["from fk", "to fk"]);
    assert_eq!(texts(sk, &sk_rid), ["from sk", "to sk"]);
    fk.rc.assert_schemas_ok();
    sk.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_workspace_input_does_not_stop_the_bridge() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "hostile").await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let frames = [
        "{not json".to_owned(),
        "[1, 2, 3]".to_owned(),
        r#"{"msg": "teleport", "to": "mars"}"#.to_owned(),
        r#"{"msg": "changed", "collection": "stream-room-messages"}"#.to_owned(),
        r#"{"msg": "changed", "collection": "stream-room-messages", "fields": {"eventName": "__my_messages__", "args": [42]}}"#.to_owned(),
        format!(r#"{{"msg": "changed", "collection": "stream-room-messages", "fields": {{"eventName": "__my_messages__", "args": [{{"_id": "evil", "rid": "{rid}"}}]}}}}"#),
        format!(r#"{{"msg": "changed", "collection": "stream-notify-room", "fields": {{"eventName": "{rid}/deleteMessage", "args": [{{"_id": 7}}]}}}}"#),
        r#"{"msg": "changed", "collection": "stream-notify-logged", "fields": {"eventName": "user-status", "args": ["nope"]}}"#.to_owned(),
        format!(r#"{{"msg": "ping", "pad": "{huge}"}}"#),
    ];
    for frame in &frames {
        assert!(ws.rc.send_raw_realtime(frame) > 0);
    }
    // A message of a type from the future, and an empty one.
    let future = format!(
        r#"{{"msg": "changed", "collection": "stream-room-messages", "fields": {{"eventName": "__my_messages__", "args": [{{"_id": "future1", "rid": "{rid}", "msg": "x", "t": "some-future-type", "u": {{"_id": "{}", "username": "bob"}}}}]}}}}"#,
        ws.bob.id
    );
    assert!(ws.rc.send_raw_realtime(&future) > 0);
    ws.rc.post_message(&ws.bob, &rid, "").ok();
    // A very long message, through the workspace itself.
    ws.rc.set_max_message_size(200_000);
    let long = format!("long {}", "y".repeat(100_000));
    ws.rc.post_message(&ws.bob, &rid, &long).unwrap();
    ws.rc.post_message(&ws.bob, &rid, "still here").unwrap();

    env.matrix_sees(&room, "still here").await;
    let texts = env.matrix_texts(&room).await;
    assert_eq!(
        texts.len(),
        2,
        "only the long and the last message: {:?}",
        texts.iter().map(|t| t.len()).collect::<Vec<_>>()
    );
    assert!(
        texts[0].starts_with("long yyy") && texts[0].ends_with('…') && texts[0].len() < 50 * 1024,
        "{}",
        texts[0].len()
    );
    // The bridge still works the other way too.
    env.alice.send_text(&room, "and back").await;
    env.rc_sees(ws, &rid, "Alice after the hostile input", |m| m.msg == "and back").await;
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_bot_token_is_reported_once_and_the_bridge_keeps_running() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (_rid, room) = env.linked_channel(ws, "revoked").await;
    ws.rc.revoke_all_tokens(&ws.bot);
    env.alice.send_text(&room, "into the void").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let log = env.bridge.log();
    let reports = log.matches("refused the bot's token").count();
    assert_eq!(reports, 1, "reported once, not in a loop:\n{log}");
    let health = reqwest::get(format!("{}/health", env.bridge.admin_url())).await.expect("bridge alive");
    assert!(health.status().is_success());
    // The tenant's adapter says why, through the admin API.
    let api = brygga_e2e::admin_api::AdminApi::new(env.bridge.admin_url());
    let shown = api.call(Some(&env.operator_token), "GET", "/tenants/fk/adapters/rocketchat", None).await.body;
    assert_eq!(shown["status"], "bad_credentials", "{shown}");
    assert!(shown["last_error"].as_str().unwrap().contains("refused the bot's token"), "{shown}");
    ws.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_outage_is_ridden_out_both_ways() {
    let env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let ws = env.ws();
    let (rid, room) = env.linked_channel(ws, "outage").await;
    ws.rc.set_available(false);
    for i in 0..5 {
        env.alice.send_text(&room, &format!("o-{i}")).await;
    }
    // The workspace's own users go on meanwhile; the bridge cannot reach it.
    for i in 0..5 {
        ws.rc.post_message(&ws.bob, &rid, &format!("b-{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(ws.rc.messages(&rid).iter().all(|m| !m.msg.starts_with("o-")), "nothing got through the outage");
    ws.rc.set_available(true);

    let expected: Vec<String> = (0..5).map(|i| format!("o-{i}")).collect();
    assert_eq!(rc_bodies(&env, &rid, "o-", 5).await, expected);
    let expected: Vec<String> = (0..5).map(|i| format!("b-{i}")).collect();
    assert_eq!(matrix_bodies(&env, &room, "b-", "b-4").await, expected);
    ws.rc.assert_schemas_ok();
}

/// Waits until Alice's timeline of `room` shows `what`.
async fn matrix_shows(env: &RocketChatEnv, room: &str, what: &str, pred: impl Fn(&[serde_json::Value]) -> bool) {
    env.alice.wait_timeline(room, Duration::from_secs(60), what, |t| pred(t)).await;
}

fn edited_to(text: &'static str) -> impl Fn(&[serde_json::Value]) -> bool {
    move |t| t.iter().any(|e| e["content"]["m.new_content"]["body"] == text)
}

fn redacted(event: String) -> impl Fn(&[serde_json::Value]) -> bool {
    move |t| t.iter().any(|e| e["type"] == "m.room.redaction" && e["redacts"] == event.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_to_older_messages_during_a_gap_are_caught_up() {
    let mut env = RocketChatEnv::start(Backend::Sqlite, &["fk"]).await;
    let (rid, room) = {
        let ws = env.ws();
        env.linked_channel(ws, "gaps").await
    };
    let ws = env.ws();
    let ids: Vec<String> = (1..=3).map(|i| ws.rc.post_message(&ws.bob, &rid, &format!("m{i}")).unwrap().id).collect();
    let mut events = Vec::new();
    for i in 1..=3 {
        events.push(env.matrix_sees(&room, &format!("m{i}")).await["event_id"].as_str().unwrap().to_owned());
    }

    // The workspace is out of reach while Bob edits, deletes and reacts to
    // older messages: after the reconnect the room's sync brings them.
    ws.rc.set_available(false);
    ws.rc.edit_message(&ws.bob, &ids[0], "m1, edited in the gap").unwrap();
    ws.rc.delete_message(&ws.bob, &ids[1]).unwrap();
    ws.rc.react(&ws.carol, &ids[2], ":tada:", Some(true)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    ws.rc.set_available(true);
    matrix_shows(&env, &room, "the edit made in the gap", edited_to("m1, edited in the gap")).await;
    matrix_shows(&env, &room, "the deletion made in the gap", redacted(events[1].clone())).await;
    matrix_shows(&env, &room, "the reaction made in the gap", |t| {
        t.iter().any(|e| e["type"] == "m.reaction" && e["content"]["m.relates_to"]["key"] == "🎉")
    })
    .await;

    // The bridge itself is down (its memory of messages gone) while more changes happen.
    env.bridge.kill();
    let ws = env.ws();
    ws.rc.edit_message(&ws.bob, &ids[2], "m3, edited while the bridge was down").unwrap();
    ws.rc.delete_message(&ws.bob, &ids[0]).unwrap();
    env.bridge.start().await;
    matrix_shows(&env, &room, "the edit made while down", edited_to("m3, edited while the bridge was down")).await;
    matrix_shows(&env, &room, "the deletion made while down", redacted(events[0].clone())).await;
    let timeline = env.alice.timeline(&room).await;
    let edits = timeline.iter().filter(|e| e["content"]["m.new_content"]["body"] == "m1, edited in the gap").count();
    assert_eq!(edits, 1, "an edit caught up twice");
    env.ws().rc.assert_schemas_ok();
}
