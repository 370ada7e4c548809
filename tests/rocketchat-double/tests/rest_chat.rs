//! Messages over REST: history, uploads, duplicate ids, rate limits and schema violations.

mod support;

use brygga_rocketchat_double::{RateLimit, RocketChatDouble};
use serde_json::json;
use std::time::Duration;
use support::call;

#[tokio::test]
async fn history_is_newest_first_and_bounded_by_oldest() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let rid = rc.create_channel("general", &alice, &[]);
    let first = rc.post_message(&alice, &rid, "one").unwrap();
    rc.post_message(&alice, &rid, "two").unwrap();
    rc.post_message(&alice, &rid, "three").unwrap();
    let (_, _, body) =
        call(&rc, Some(&alice), "GET", &format!("/api/v1/channels.history?roomId={rid}&count=10"), None).await;
    let texts: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap()).collect();
    assert_eq!(texts, ["three", "two", "one"]);
    let (_, _, first_json) =
        call(&rc, Some(&alice), "GET", &format!("/api/v1/chat.getMessage?msgId={}", first.id), None).await;
    let oldest = first_json["message"]["ts"].as_str().unwrap().to_owned();
    let (_, _, body) =
        call(&rc, Some(&alice), "GET", &format!("/api/v1/channels.history?roomId={rid}&oldest={oldest}"), None).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 2, "oldest is exclusive: {body}");
    let (status, _, body) = call(&rc, Some(&alice), "GET", &format!("/api/v1/groups.history?roomId={rid}"), None).await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("error-room-not-found")));
    rc.assert_schemas_ok();
}

#[tokio::test]
async fn a_second_send_with_the_same_id_is_rejected_and_not_stored() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let rid = rc.create_channel("general", &alice, &[]);
    let body = json!({ "message": { "_id": "fixed-id-1", "rid": rid, "msg": "once" } });
    let (status, _, sent) = call(&rc, Some(&alice), "POST", "/api/v1/chat.sendMessage", Some(body.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(sent["message"]["_id"], "fixed-id-1");
    let (status, _, again) = call(&rc, Some(&alice), "POST", "/api/v1/chat.sendMessage", Some(body)).await;
    assert_eq!(status, 400);
    assert_eq!(again["success"], false);
    assert_eq!(rc.messages(&rid).len(), 1);
}

#[tokio::test]
async fn a_body_off_the_schema_is_rejected_and_recorded() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let rid = rc.create_channel("general", &alice, &[]);
    let wrong = json!({ "message": { "rid": rid, "msg": "hi" }, "roomId": rid });
    let (status, _, body) = call(&rc, Some(&alice), "POST", "/api/v1/chat.sendMessage", Some(wrong)).await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("invalid-params")), "{body}");
    let violations = rc.schema_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].endpoint, "POST chat.sendMessage");
    assert_eq!(violations[0].validator, "isChatSendMessageProps");
    assert!(rc.messages(&rid).is_empty());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rc.assert_schemas_ok()));
    assert!(caught.is_err(), "assert_schemas_ok must fail after a violation");
}

#[tokio::test]
async fn rate_limits_answer_429_with_rocket_chat_headers() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    rc.set_rate_limit(Some(RateLimit::new(2, Duration::from_secs(60))));
    for _ in 0..2 {
        let (status, headers, _) = call(&rc, Some(&alice), "GET", "/api/v1/me", None).await;
        assert_eq!(status, 200);
        assert!(headers.contains_key("x-ratelimit-remaining"));
    }
    let (status, headers, body) = call(&rc, Some(&alice), "GET", "/api/v1/me", None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let reset: i64 = headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > chrono_now_ms());
    assert!(body["error"].as_str().unwrap().ends_with("[error-too-many-requests]"));
    rc.set_rate_limit(None);
    rc.force_rate_limited(1);
    assert_eq!(call(&rc, Some(&alice), "GET", "/api/v1/me", None).await.0, 429);
    assert_eq!(call(&rc, Some(&alice), "GET", "/api/v1/me", None).await.0, 200);
    assert_eq!(rc.rate_limited_responses(), 2);
}

fn chrono_now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test]
async fn an_outage_answers_503_until_the_workspace_is_back() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    rc.set_available(false);
    assert_eq!(call(&rc, Some(&alice), "GET", "/api/v1/me", None).await.0, 503);
    rc.set_available(true);
    assert_eq!(call(&rc, Some(&alice), "GET", "/api/v1/me", None).await.0, 200);
}

#[tokio::test]
async fn upload_confirm_and_download_a_file() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let rid = rc.create_group("team", &alice, &[]);
    let part = reqwest::multipart::Part::bytes(b"PNGDATA".to_vec()).file_name("cat.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let client = reqwest::Client::new();
    let uploaded: serde_json::Value = client
        .post(format!("{}/api/v1/rooms.media/{rid}", rc.url()))
        .header("X-User-Id", &alice.id)
        .header("X-Auth-Token", &alice.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = uploaded["file"]["_id"].as_str().expect("file id").to_owned();
    let confirm = json!({ "msg": "a cat", "description": "my cat" });
    let (status, _, body) =
        call(&rc, Some(&alice), "POST", &format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"), Some(confirm)).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["message"];
    assert_eq!(message["msg"], "a cat");
    assert_eq!(message["file"]["_id"], json!(file_id));
    let link = message["attachments"][0]["title_link"].as_str().unwrap().to_owned();
    assert_eq!(message["attachments"][0]["image_type"], "image/png");

    let anonymous = client.get(format!("{}{link}", rc.url())).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 403);
    let cookie = format!("rc_uid={}; rc_token={}", alice.id, alice.token);
    let download = client.get(format!("{}{link}", rc.url())).header("Cookie", cookie).send().await.unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"PNGDATA");

    let (status, _, _) = call(
        &rc,
        Some(&alice),
        "POST",
        &format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"),
        Some(json!({ "bogus": 1 })),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(rc.schema_violations().len(), 1, "unknown mediaConfirm keys are recorded");
}

#[tokio::test]
async fn impersonation_needs_the_permission() {
    let rc = RocketChatDouble::start().await;
    let admin = rc.create_admin("admin");
    let rid = rc.create_channel("general", &admin, &[]);
    let body = json!({ "message": { "rid": rid, "msg": "hi", "alias": "Matrix Mallory", "avatar": "https://example.org/a.png" } });
    let (status, _, refused) = call(&rc, Some(&admin), "POST", "/api/v1/chat.sendMessage", Some(body.clone())).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("Not enough permission")));
    rc.set_permission(&admin, "message-impersonate", true);
    let (status, _, sent) = call(&rc, Some(&admin), "POST", "/api/v1/chat.sendMessage", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(sent["message"]["alias"], "Matrix Mallory");
}

#[tokio::test]
async fn channels_join_and_rooms_leave_post_system_messages() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let bob = rc.create_user("bob");
    let rid = rc.create_channel("general", &alice, &[]);
    let (status, _, body) =
        call(&rc, Some(&bob), "POST", "/api/v1/channels.join", Some(json!({ "roomId": rid }))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(&rc, Some(&bob), "POST", "/api/v1/rooms.leave", Some(json!({ "roomId": rid }))).await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<Option<String>> = rc.messages(&rid).into_iter().map(|m| m.t).collect();
    assert_eq!(kinds, [Some("uj".to_owned()), Some("ul".to_owned())]);
    assert_eq!(rc.members(&rid), vec![alice.id]);
    rc.assert_schemas_ok();
}
