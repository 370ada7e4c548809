//! Router-level tests with a recording handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use brygga_core::{AppserviceHandler, BridgeError, EventBody, MatrixEvent, MatrixUserId};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ServerSettings, router};

const TOKEN: &str = "hs-secret";

#[derive(Default)]
struct Recorder {
    txns: Mutex<Vec<(String, Vec<MatrixEvent>)>>,
    ephemeral: Mutex<Vec<MatrixEvent>>,
    fail: AtomicBool,
}

#[async_trait]
impl AppserviceHandler for Recorder {
    async fn transaction(&self, txn_id: &str, events: Vec<MatrixEvent>) -> Result<(), BridgeError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BridgeError::transient("store down"));
        }
        self.txns.lock().unwrap().push((txn_id.to_owned(), events));
        Ok(())
    }

    async fn ephemeral(&self, events: Vec<MatrixEvent>) {
        self.ephemeral.lock().unwrap().extend(events);
    }

    async fn user_exists(&self, user: &MatrixUserId) -> bool {
        user.localpart().starts_with("ghost_")
    }

    async fn alias_exists(&self, alias: &str) -> bool {
        alias.starts_with("#portal_")
    }
}

fn app_with(recorder: &Arc<Recorder>, max_body_bytes: usize) -> Router {
    let settings = ServerSettings { max_body_bytes, ..ServerSettings::new(TOKEN) };
    router(recorder.clone(), settings)
}

fn app(recorder: &Arc<Recorder>) -> Router {
    app_with(recorder, super::DEFAULT_MAX_BODY_BYTES)
}

async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.header("content-type", "application/json").body(Body::from(body.to_owned())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn put_txn(app: &Router, id: &str, body: &Value) -> (StatusCode, Value) {
    let uri = format!("/_matrix/app/v1/transactions/{id}");
    call(app, "PUT", &uri, Some(TOKEN), &body.to_string()).await
}

fn text_event(id: &str, body: &str) -> Value {
    json!({
        "type": "m.room.message", "event_id": id, "room_id": "!r:hs", "sender": "@alice:hs",
        "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body}
    })
}

#[tokio::test]
async fn auth_codes() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let (status, body) = call(&app, "POST", "/_matrix/app/v1/ping", None, "{}").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::UNAUTHORIZED, Some("M_MISSING_TOKEN")));
    let (status, body) = call(&app, "POST", "/_matrix/app/v1/ping", Some("wrong"), "{}").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::FORBIDDEN, Some("M_FORBIDDEN")));
    let (status, body) = call(&app, "POST", "/_matrix/app/v1/ping", Some(TOKEN), "{}").await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let uri = format!("/_matrix/app/v1/ping?access_token={TOKEN}");
    let (status, _) = call(&app, "POST", &uri, None, "{}").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "PUT", "/_matrix/app/v1/transactions/1", Some("nope"), "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(rec.txns.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_unrecognized() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let (status, body) = call(&app, "GET", "/_matrix/app/v1/nothing", Some(TOKEN), "").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::NOT_FOUND, Some("M_UNRECOGNIZED")));
    let (status, body) = call(&app, "GET", "/_matrix/app/v1/ping", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");
}

#[tokio::test]
async fn user_and_alias_queries() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let (status, _) = call(&app, "GET", "/_matrix/app/v1/users/@ghost_1:hs", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, "GET", "/_matrix/app/v1/users/@bob:hs", Some(TOKEN), "").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::NOT_FOUND, Some("M_NOT_FOUND")));
    let (status, body) = call(&app, "GET", "/_matrix/app/v1/users/bob", Some(TOKEN), "").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::BAD_REQUEST, Some("M_INVALID_PARAM")));
    let (status, _) = call(&app, "GET", "/_matrix/app/v1/rooms/%23portal_x:hs", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "GET", "/_matrix/app/v1/rooms/%23other:hs", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, "GET", "/_matrix/app/v1/rooms/portal", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn malformed_and_misshapen_bodies() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let uri = "/_matrix/app/v1/transactions/t1";
    let (status, body) = call(&app, "PUT", uri, Some(TOKEN), "{not json").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::BAD_REQUEST, Some("M_NOT_JSON")));
    let (status, body) = call(&app, "PUT", uri, Some(TOKEN), "[1,2]").await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::BAD_REQUEST, Some("M_BAD_JSON")));
    let (status, body) = call(&app, "PUT", uri, Some(TOKEN), r#"{"events": "x"}"#).await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::BAD_REQUEST, Some("M_BAD_JSON")));
    assert!(rec.txns.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_events_do_not_lose_good_ones() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let body = json!({"events": [
        text_event("$1", "first"),
        {"type": "m.room.message", "event_id": "$2", "room_id": "!r:hs", "sender": "@a:hs", "content": {"msgtype": 5}},
        "not an object",
        {"type": "org.example.custom", "event_id": "$3", "room_id": "!r:hs", "sender": "@a:hs", "content": {}},
        {"type": "m.room.message", "event_id": "no-sigil", "room_id": "!r:hs", "sender": "@a:hs", "content": {"msgtype": "m.text", "body": "x"}},
        text_event("$4", "second"),
    ]});
    let (status, reply) = put_txn(&app, "t1", &body).await;
    assert_eq!((status, reply), (StatusCode::OK, json!({})));
    let txns = rec.txns.lock().unwrap();
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0].0, "t1");
    let ids: Vec<&str> = txns[0].1.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["$1", "$4"]);
}

#[tokio::test]
async fn handler_failure_is_a_retryable_500() {
    let rec = Arc::new(Recorder::default());
    rec.fail.store(true, Ordering::SeqCst);
    let app = app(&rec);
    let (status, body) = put_txn(&app, "t1", &json!({"events": [text_event("$1", "x")]})).await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("M_UNKNOWN")));
}

#[tokio::test]
async fn body_too_large() {
    let rec = Arc::new(Recorder::default());
    let app = app_with(&rec, 256);
    let big = json!({"events": [text_event("$1", &"x".repeat(1000))]});
    let (status, body) = put_txn(&app, "t1", &big).await;
    assert_eq!((status, body["errcode"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("M_TOO_LARGE")));
    assert!(rec.txns.lock().unwrap().is_empty());
}

fn typing(users: &[&str]) -> Value {
    json!({"type": "m.typing", "room_id": "!r:hs", "content": {"user_ids": users}})
}

#[tokio::test]
async fn stable_and_unstable_ephemeral_are_merged_without_duplicates() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let receipt = json!({"type": "m.receipt", "room_id": "!r:hs",
        "content": {"$ev": {"m.read": {"@bob:hs": {"ts": 7}}}}});
    let body = json!({
        "events": [],
        "ephemeral": [typing(&["@alice:hs"]), receipt],
        "de.sorunome.msc2409.ephemeral": [typing(&["@alice:hs"]), receipt,
            {"type": "m.presence", "sender": "@carol:hs", "content": {"presence": "online"}}],
    });
    let (status, _) = put_txn(&app, "t1", &body).await;
    assert_eq!(status, StatusCode::OK);
    let eph = rec.ephemeral.lock().unwrap();
    let kinds: Vec<&str> = eph.iter().map(|e| e.body.kind_name()).collect();
    assert_eq!(kinds, ["typing", "read_receipt", "presence"]);
    assert_eq!(eph[1].sender.as_str(), "@bob:hs");
    assert_eq!(eph[1].origin_server_ts, 7);
    assert!(matches!(&eph[1].body, EventBody::ReadReceipt { up_to } if up_to.as_str() == "$ev"));
    assert_eq!(eph[2].room_id.as_str(), super::PRESENCE_ROOM);
    assert!(eph.iter().all(|e| e.event_id.as_str().starts_with('$')));
    assert_ne!(eph[0].event_id, eph[1].event_id);
}

#[tokio::test]
async fn typing_is_diffed_per_room() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    for (n, users) in
        [vec!["@a:hs"], vec!["@a:hs", "@b:hs"], vec!["@b:hs"], vec!["@b:hs"], vec![]].into_iter().enumerate()
    {
        let body = json!({"events": [], "ephemeral": [typing(&users)]});
        put_txn(&app, &format!("t{n}"), &body).await;
    }
    let eph = rec.ephemeral.lock().unwrap();
    let seen: Vec<(&str, bool)> = eph
        .iter()
        .map(|e| match e.body {
            EventBody::Typing { typing } => (e.sender.as_str(), typing),
            _ => panic!("unexpected event"),
        })
        .collect();
    assert_eq!(seen, [("@a:hs", true), ("@b:hs", true), ("@a:hs", false), ("@b:hs", false)]);
}

#[tokio::test]
async fn ephemeral_survives_bad_room_events() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let body = json!({"events": [{"garbage": true}], "ephemeral": [typing(&["@a:hs"]), {"type": "m.typing"}]});
    let (status, _) = put_txn(&app, "t1", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rec.ephemeral.lock().unwrap().len(), 1);
    assert!(rec.txns.lock().unwrap()[0].1.is_empty());
}

#[tokio::test]
async fn replies_arrive_stripped_through_the_router() {
    let rec = Arc::new(Recorder::default());
    let app = app(&rec);
    let reply = json!({
        "type": "m.room.message", "event_id": "$r", "room_id": "!r:hs", "sender": "@alice:hs",
        "origin_server_ts": 1, "content": {
            "msgtype": "m.text", "body": "> <@bob:hs> hi\n\nhello",
            "format": "org.matrix.custom.html",
            "formatted_body": "<mx-reply><blockquote>@bob:hs hi</blockquote></mx-reply>hello",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}
        }
    });
    let (status, _) = put_txn(&app, "t1", &json!({"events": [reply]})).await;
    assert_eq!(status, StatusCode::OK);
    let txns = rec.txns.lock().unwrap();
    match &txns[0].1[0].body {
        EventBody::Message(m) => {
            assert_eq!(m.text.body, "hello");
            assert_eq!(m.text.html.as_deref(), Some("hello"));
            assert_eq!(m.reply_to.as_ref().map(|r| r.as_str()), Some("$orig"));
        }
        other => panic!("{other:?}"),
    }
}
