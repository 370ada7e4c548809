//! The realtime API over a real websocket: streams, login, drops and raw frames.

mod support;

use brygga_rocketchat_double::{Presence, RocketChatDouble};
use serde_json::json;
use std::time::Duration;
use support::{Ddp, call};

#[tokio::test]
async fn send_edit_react_and_delete_reach_my_messages_and_notify_room() {
    let rc = RocketChatDouble::start().await;
    let bot = rc.create_user("bot");
    let alice = rc.create_user("alice");
    let rid = rc.create_channel("general", &alice, &[&bot]);
    let mut ddp = Ddp::login(&rc, &bot).await;
    assert_eq!(ddp.sub("stream-room-messages", "__my_messages__").await["msg"], "ready");
    assert_eq!(ddp.sub("stream-notify-room", &format!("{rid}/deleteMessage")).await["msg"], "ready");

    let body = json!({ "message": { "_id": "m-1", "rid": rid, "msg": "hello @bot" } });
    let (status, _, _) = call(&rc, Some(&alice), "POST", "/api/v1/chat.sendMessage", Some(body)).await;
    assert_eq!(status, 200);
    let new = ddp.changed("stream-room-messages").await;
    assert_eq!(new["fields"]["eventName"], json!(rid));
    let message = &new["fields"]["args"][0];
    assert_eq!(message["_id"], "m-1");
    assert_eq!(message["u"]["username"], "alice");
    assert!(message["ts"]["$date"].is_i64(), "DDP dates are EJSON: {message}");
    assert_eq!(message["mentions"][0]["username"], "bot");

    let edit = json!({ "roomId": rid, "msgId": "m-1", "text": "hello again" });
    assert_eq!(call(&rc, Some(&alice), "POST", "/api/v1/chat.update", Some(edit)).await.0, 200);
    let edited = ddp.changed("stream-room-messages").await;
    assert_eq!(edited["fields"]["args"][0]["msg"], "hello again");
    assert_eq!(edited["fields"]["args"][0]["editedBy"]["username"], "alice");

    let react = json!({ "messageId": "m-1", "emoji": ":smile:", "shouldReact": true });
    assert_eq!(call(&rc, Some(&bot), "POST", "/api/v1/chat.react", Some(react)).await.0, 200);
    let reacted = ddp.changed("stream-room-messages").await;
    assert_eq!(reacted["fields"]["args"][0]["reactions"][":smile:"]["usernames"], json!(["bot"]));

    let delete = json!({ "roomId": rid, "msgId": "m-1" });
    assert_eq!(call(&rc, Some(&alice), "POST", "/api/v1/chat.delete", Some(delete)).await.0, 200);
    let deleted = ddp.changed("stream-notify-room").await;
    assert_eq!(deleted["fields"]["eventName"], json!(format!("{rid}/deleteMessage")));
    assert_eq!(deleted["fields"]["args"], json!([{ "_id": "m-1" }]));
    assert!(rc.messages(&rid).is_empty());
    rc.assert_schemas_ok();
}

#[tokio::test]
async fn joins_typing_and_presence_are_published() {
    let rc = RocketChatDouble::start().await;
    let bot = rc.create_user("bot");
    let alice = rc.create_user("alice");
    let rid = rc.create_group("team", &bot, &[]);
    let mut ddp = Ddp::login(&rc, &bot).await;
    ddp.sub("stream-room-messages", "__my_messages__").await;
    ddp.sub("stream-notify-room", &format!("{rid}/user-activity")).await;
    ddp.sub("stream-notify-logged", "user-status").await;

    rc.join(&alice, &rid).unwrap();
    let joined = ddp.changed("stream-room-messages").await;
    assert_eq!(joined["fields"]["args"][0]["t"], "uj");
    assert_eq!(joined["fields"]["args"][0]["u"]["username"], "alice");

    rc.set_typing(&alice, &rid, true).unwrap();
    let typing = ddp.changed("stream-notify-room").await;
    assert_eq!(typing["fields"]["args"], json!(["alice", ["user-typing"], {}]));

    rc.set_presence(&alice, Presence::Away).unwrap();
    let status = ddp.changed("stream-notify-logged").await;
    assert_eq!(status["fields"]["args"][0][0], json!(alice.id));
    assert_eq!(status["fields"]["args"][0][2], 2);

    rc.leave(&alice, &rid).unwrap();
    let left = ddp.changed("stream-room-messages").await;
    assert_eq!(left["fields"]["args"][0]["t"], "ul");
}

#[tokio::test]
async fn streams_need_a_login_and_bad_tokens_are_refused() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let mut ddp = Ddp::connect(&rc).await;
    let refused = ddp.sub("stream-room-messages", "__my_messages__").await;
    assert_eq!(refused["msg"], "nosub");
    assert_eq!(refused["error"]["error"], "not-allowed");
    let login = ddp.call("login", json!([{ "resume": "wrong" }])).await;
    assert_eq!(login["error"]["error"], 403);
    let login = ddp.call("login", json!([{ "resume": alice.token }])).await;
    assert_eq!(login["result"]["type"], "resume");
    assert!(
        !rc.wait_for_subscription(&alice.id, "stream-room-messages", "__my_messages__", Duration::from_millis(50))
            .await
    );
    ddp.sub("stream-room-messages", "__my_messages__").await;
    assert!(
        rc.wait_for_subscription(&alice.id, "stream-room-messages", "__my_messages__", Duration::from_secs(2)).await
    );
}

#[tokio::test]
async fn dropped_connections_close_and_new_ones_work() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let rid = rc.create_channel("general", &alice, &[]);
    let mut ddp = Ddp::login(&rc, &alice).await;
    ddp.sub("stream-room-messages", "__my_messages__").await;
    assert_eq!(rc.drop_realtime_connections(), 1);
    assert!(ddp.try_next(Duration::from_secs(2)).await.is_none(), "the connection is gone");
    let mut again = Ddp::login(&rc, &alice).await;
    again.sub("stream-room-messages", "__my_messages__").await;
    rc.post_message(&alice, &rid, "after the drop").unwrap();
    assert_eq!(again.changed("stream-room-messages").await["fields"]["args"][0]["msg"], "after the drop");
}

#[tokio::test]
async fn raw_frames_reach_clients_verbatim_and_bad_client_frames_get_errors() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let mut ddp = Ddp::login(&rc, &alice).await;
    assert_eq!(rc.send_raw_realtime("{not json"), 1);
    assert_eq!(ddp.next().await, json!("{not json"));
    let huge = format!(
        "{{\"msg\":\"changed\",\"collection\":\"stream-room-messages\",\"fields\":{{\"args\":[\"{}\"]}}}}",
        "x".repeat(2_000_000)
    );
    rc.send_raw_realtime(&huge);
    assert_eq!(ddp.next().await["fields"]["args"][0].as_str().unwrap().len(), 2_000_000);
    ddp.send(json!({ "msg": "bogus" })).await;
    assert_eq!(ddp.next().await["msg"], "error");
    ddp.send(json!({ "msg": "ping", "id": "p1" })).await;
    assert_eq!(ddp.next().await, json!({ "msg": "pong", "id": "p1" }));
}

#[tokio::test]
async fn a_revoked_token_ends_its_realtime_session() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let mut ddp = Ddp::login(&rc, &alice).await;
    rc.revoke_token(&alice, &alice.token);
    assert!(ddp.try_next(Duration::from_secs(2)).await.is_none());
}
