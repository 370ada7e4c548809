//! Authentication, the server version and user endpoints.

mod support;

use brygga_rocketchat_double::RocketChatDouble;
use serde_json::json;
use support::call;

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_in_rocket_chat_shape() {
    let rc = RocketChatDouble::start().await;
    let mut alice = rc.create_user("alice");
    let (status, _, body) = call(&rc, None, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({ "success": false, "error": "You must be logged in to do this." }));
    alice.token = "not-a-token".into();
    let (status, _, _) = call(
        &rc,
        Some(&alice),
        "POST",
        "/api/v1/chat.sendMessage",
        Some(json!({ "message": { "rid": "x", "msg": "hi" } })),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn me_info_and_users_info_answer_for_a_valid_token() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    let (status, _, me) = call(&rc, Some(&alice), "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["success"], true);
    let (_, _, info) = call(&rc, None, "GET", "/api/info", None).await;
    assert_eq!(info["version"], "8.8.1");
    let (status, _, found) = call(&rc, Some(&alice), "GET", "/api/v1/users.info?username=alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(found["user"]["_id"], json!(alice.id));
    let (status, _, missing) = call(&rc, Some(&alice), "GET", "/api/v1/users.info?username=nobody", None).await;
    assert_eq!((status, missing["error"].as_str()), (400, Some("User not found.")));
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let rc = RocketChatDouble::start().await;
    let alice = rc.create_user("alice");
    rc.revoke_token(&alice, &alice.token);
    let (status, _, _) = call(&rc, Some(&alice), "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn users_create_and_create_token_need_admin_and_the_server_secret() {
    let rc = RocketChatDouble::start().await;
    let admin = rc.create_admin("admin");
    let alice = rc.create_user("alice");
    let new = json!({ "email": "p@example.org", "name": "Puppet", "password": "pw", "username": "puppet" });
    let (status, _, body) = call(&rc, Some(&alice), "POST", "/api/v1/users.create", Some(new.clone())).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = call(&rc, Some(&admin), "POST", "/api/v1/users.create", Some(new.clone())).await;
    assert_eq!(status, 200, "{body}");
    let puppet = body["user"]["_id"].as_str().unwrap().to_owned();
    let (status, _, body) = call(&rc, Some(&admin), "POST", "/api/v1/users.create", Some(new)).await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("error-field-unavailable")));

    let (status, _, body) = call(
        &rc,
        Some(&admin),
        "POST",
        "/api/v1/users.createToken",
        Some(json!({ "userId": puppet, "secret": "wrong" })),
    )
    .await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("error-not-authorized")));
    let secret = rc.create_tokens_secret().to_owned();
    let (status, _, body) = call(
        &rc,
        Some(&admin),
        "POST",
        "/api/v1/users.createToken",
        Some(json!({ "userId": puppet, "secret": secret })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["authToken"].as_str().unwrap();
    let client = reqwest::Client::new();
    let me = client
        .get(format!("{}/api/v1/me", rc.url()))
        .header("X-User-Id", &puppet)
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    rc.assert_schemas_ok();
}
