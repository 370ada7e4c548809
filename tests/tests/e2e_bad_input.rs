//! Bad input from either side gets a clear error or is skipped, never
//! crashes the bridge, and never loses the other events around it.

use std::time::Duration;

use brygga_core::{EventBody, Message, Text};
use brygga_e2e::env::events::{remote, text};
use brygga_e2e::env::{Backend, TestEnv};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn put_raw(env: &TestEnv, txn: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/_matrix/app/v1/transactions/{txn}", env.appservice_url))
        .bearer_auth(&env.hs_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn healthy(env: &TestEnv) {
    let status = reqwest::get(format!("{}/health", env.admin_url())).await.unwrap().status();
    assert_eq!(status, 200, "the bridge must still be up");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_matrix_input_is_refused_or_skipped_without_losing_good_events() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.remote.inject("fk", text("bad", "bad-open", "anna", "open"));
    let room = env.alice.join_alias(&TestEnv::portal_alias("fk", "bad"), WAIT).await;

    let (status, body) = put_raw(&env, "bad-1", b"{not json".to_vec()).await;
    assert_eq!((status, body["errcode"].as_str()), (400, Some("M_NOT_JSON")));
    let (status, body) = put_raw(&env, "bad-2", b"[1,2,3]".to_vec()).await;
    assert_eq!((status, body["errcode"].as_str()), (400, Some("M_BAD_JSON")));
    let huge = format!("{{\"events\":[],\"pad\":\"{}\"}}", "x".repeat(33 * 1024 * 1024));
    let (status, body) = put_raw(&env, "bad-3", huge.into_bytes()).await;
    assert_eq!((status, body["errcode"].as_str()), (413, Some("M_TOO_LARGE")));

    let mixed = json!({"events": [
        {"type": "org.example.unknown", "event_id": "$u1", "room_id": room, "sender": "@alice:localhost", "origin_server_ts": 1, "content": {}},
        {"type": "m.room.message", "event_id": "$u2", "room_id": room, "sender": "not a user id", "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "bad sender"}},
        {"type": "m.room.message", "event_id": "$u3", "room_id": room, "sender": "@alice:localhost", "origin_server_ts": 1, "content": {"msgtype": "m.text"}},
        "not even an object",
        {"type": "m.room.message", "event_id": "$u4", "room_id": room, "sender": "@alice:localhost", "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "the good one"}}
    ]});
    let (status, _) = put_raw(&env, "bad-4", serde_json::to_vec(&mixed).unwrap()).await;
    assert_eq!(status, 200);
    env.remote
        .wait_for("fk", WAIT, "the good event", |s| {
            s.iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == "the good one"))
        })
        .await;
    let bodies: Vec<String> = env
        .remote
        .sent("fk")
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message(m) => Some(m.text.body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["the good one"], "only the valid message is bridged");

    // A reaction key no platform can carry is set aside; the portal goes on.
    let opened = env
        .alice
        .wait_timeline(&room, WAIT, "the opening message", |t| t.iter().any(|e| e["content"]["body"] == "open"));
    let opened = opened.await;
    let target = opened.iter().find(|e| e["content"]["body"] == "open").unwrap()["event_id"].clone();
    let hostile = json!({"events": [
        {"type": "m.reaction", "event_id": "$evil", "room_id": room, "sender": "@alice:localhost", "origin_server_ts": 2,
         "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "a\u{7}b"}}},
        {"type": "m.room.message", "event_id": "$after-evil", "room_id": room, "sender": "@alice:localhost", "origin_server_ts": 3,
         "content": {"msgtype": "m.text", "body": "after the hostile reaction"}}
    ]});
    let (status, _) = put_raw(&env, "bad-5", serde_json::to_vec(&hostile).unwrap()).await;
    assert_eq!(status, 200);
    env.remote
        .wait_for("fk", WAIT, "the message after the hostile reaction", |s| {
            s.iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == "after the hostile reaction"))
        })
        .await;
    assert!(!env.remote.sent("fk").iter().any(|e| matches!(e.body, EventBody::Reaction { .. })));

    let query = |path: String| {
        let token = env.hs_token.clone();
        async move {
            let response = reqwest::Client::new().get(path).bearer_auth(token).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = query(format!("{}/_matrix/app/v1/users/not-a-user", env.appservice_url)).await;
    assert_eq!((status, body["errcode"].as_str()), (400, Some("M_INVALID_PARAM")));
    let (status, _) =
        query(format!("{}/_matrix/app/v1/users/%40loopback_nosuchtenant_x%3Alocalhost", env.appservice_url)).await;
    assert_eq!(status, 404, "a ghost of an unknown tenant does not exist");
    let (status, _) =
        query(format!("{}/_matrix/app/v1/users/%40loopback_fk_newcomer%3Alocalhost", env.appservice_url)).await;
    assert_eq!(status, 200, "a ghost of a configured tenant and adapter exists");
    healthy(&env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_event_the_homeserver_refuses_does_not_block_its_portal() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.remote.inject("fk", text("big", "big-open", "anna", "open"));
    let room = env.alice.join_alias(&TestEnv::portal_alias("fk", "big"), WAIT).await;
    // Matrix events are limited to 64 KiB: the homeserver refuses this one for good.
    let huge = Message::text(Text::plain("x".repeat(100 * 1024)));
    env.remote.inject("fk", remote("big", "big-huge", "anna", EventBody::Message(huge)));
    env.remote.inject("fk", text("big", "big-after", "anna", "after the huge one"));
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the message after the refused one", |t| {
            t.iter().any(|e| e["content"]["body"] == "after the huge one")
        })
        .await;
    assert!(timeline.iter().all(|e| e["content"]["body"].as_str().is_none_or(|b| b.len() < 64 * 1024)));
    healthy(&env).await;
}
