//! Rendering and sending each event kind, and the retry behaviour.

mod common;

use std::time::{Duration, Instant};

use axum::http::Method;
use brygga_core::{
    Attachment, BridgeError, EventBody, FileKey, MatrixEventId, MatrixFile, MatrixRoomId, MatrixSide, MatrixUserId,
    MediaSource, Membership, Message, Presence, Text,
};
use serde_json::{Value, json};

fn room() -> MatrixRoomId {
    MatrixRoomId::new("!r:hs").unwrap()
}

fn ghost() -> MatrixUserId {
    MatrixUserId::new("@ghost:hs").unwrap()
}

fn eid(id: &str) -> MatrixEventId {
    MatrixEventId::new(id).unwrap()
}

/// Sends one event and returns the result and the single request it made.
async fn send_one(body: EventBody<MatrixEventId>) -> (Option<MatrixEventId>, common::Recorded) {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let result = client.send(&room(), &ghost(), "txn1", &body).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].query("user_id"), Some("@ghost:hs"));
    (result, requests[0].clone())
}

fn content(request: &common::Recorded) -> Value {
    request.json()
}

#[tokio::test]
async fn text_with_sanitised_html() {
    let text = Text {
        body: "hi".into(),
        html: Some("<b>hi</b><script>alert(1)</script><a href=\"javascript:x\">l</a>".into()),
    };
    let (id, request) = send_one(EventBody::Message(Message::text(text))).await;
    assert_eq!(id, Some(eid("$txn1")));
    assert_eq!(request.method, Method::PUT);
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/send/m.room.message/txn1");
    assert_eq!(
        content(&request),
        json!({"msgtype": "m.text", "body": "hi", "format": "org.matrix.custom.html", "formatted_body": "<b>hi</b><a>l</a>"})
    );
}

#[tokio::test]
async fn notice_emote_and_reply() {
    let mut notice = Message::text(Text::plain("n"));
    notice.notice = true;
    let (_, request) = send_one(EventBody::Message(notice)).await;
    assert_eq!(content(&request), json!({"msgtype": "m.notice", "body": "n"}));

    let mut emote = Message::text(Text::plain("waves"));
    emote.emote = true;
    emote.reply_to = Some(eid("$orig"));
    let (_, request) = send_one(EventBody::Message(emote)).await;
    assert_eq!(
        content(&request),
        json!({"msgtype": "m.emote", "body": "waves", "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}})
    );
}

#[tokio::test]
async fn threads_mark_fallback_replies() {
    let mut in_thread = Message::text(Text::plain("t"));
    in_thread.thread_root = Some(eid("$root"));
    let (_, request) = send_one(EventBody::Message(in_thread.clone())).await;
    assert_eq!(
        content(&request)["m.relates_to"],
        json!({"rel_type": "m.thread", "event_id": "$root", "is_falling_back": true, "m.in_reply_to": {"event_id": "$root"}})
    );
    in_thread.reply_to = Some(eid("$other"));
    let (_, request) = send_one(EventBody::Message(in_thread)).await;
    assert_eq!(
        content(&request)["m.relates_to"],
        json!({"rel_type": "m.thread", "event_id": "$root", "m.in_reply_to": {"event_id": "$other"}})
    );
}

#[tokio::test]
async fn edits_carry_new_content() {
    let body = EventBody::Edit { target: eid("$old"), text: Text::plain("fixed") };
    let (_, request) = send_one(body).await;
    assert_eq!(
        content(&request),
        json!({
            "msgtype": "m.text", "body": "* fixed",
            "m.new_content": {"msgtype": "m.text", "body": "fixed"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"}
        })
    );
}

#[tokio::test]
async fn attachments_become_one_media_event() {
    let mut message = Message::text(Text::plain("ignored caption"));
    message.attachments = vec![
        Attachment {
            name: "cat.png".into(),
            mime: "image/png".into(),
            size: Some(10),
            source: MediaSource::Matrix(MatrixFile::plain("mxc://hs/cat")),
        },
        Attachment {
            name: "second.pdf".into(),
            mime: "application/pdf".into(),
            size: None,
            source: MediaSource::Matrix(MatrixFile::plain("mxc://hs/pdf")),
        },
    ];
    let (_, request) = send_one(EventBody::Message(message.clone())).await;
    assert_eq!(
        content(&request),
        json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/cat", "info": {"mimetype": "image/png", "size": 10}})
    );
    message.attachments.remove(0);
    let (_, request) = send_one(EventBody::Message(message)).await;
    assert_eq!(content(&request)["msgtype"], "m.file");
}

#[tokio::test]
async fn an_encrypted_file_is_sent_with_its_key_and_no_url() {
    let key = FileKey::new(
        "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA",
        "X85+XgHN+HEAAAAAAAAAAA",
        "5qG4fFnbbVdlAB1Q72JDKwCagV6Dbkx9uds4rSak37c",
    );
    let mut message = Message::text(Text::plain("caption"));
    message.attachments = vec![Attachment {
        name: "plan.pdf".into(),
        mime: "application/pdf".into(),
        size: Some(5),
        source: MediaSource::Matrix(MatrixFile::encrypted("mxc://hs/sealed", key)),
    }];
    let (_, request) = send_one(EventBody::Message(message.clone())).await;
    let sent = content(&request);
    assert_eq!(sent["msgtype"], "m.file");
    assert_eq!(sent["body"], "plan.pdf");
    assert_eq!(sent.get("url"), None, "{sent}");
    assert_eq!(
        sent["file"],
        json!({"url": "mxc://hs/sealed", "v": "v2", "iv": "X85+XgHN+HEAAAAAAAAAAA",
            "key": {"kty": "oct", "alg": "A256CTR", "ext": true, "key_ops": ["decrypt", "encrypt"],
                "k": "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA"},
            "hashes": {"sha256": "5qG4fFnbbVdlAB1Q72JDKwCagV6Dbkx9uds4rSak37c"}})
    );
    assert_eq!(sent["info"], json!({"mimetype": "application/pdf", "size": 5}));

    // A key the spec's format cannot hold is refused before anything is sent.
    let MediaSource::Matrix(file) = &mut message.attachments[0].source else { unreachable!() };
    file.key = Some(FileKey::new("c2hvcnQ", "X85+XgHN+HEAAAAAAAAAAA", "x"));
    let (fake, base) = common::start().await;
    let err = common::client(&base).send(&room(), &ghost(), "t", &EventBody::Message(message)).await.unwrap_err();
    assert!(matches!(err, BridgeError::Permanent(_)), "{err}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn reactions_and_redactions() {
    let (id, request) = send_one(EventBody::Reaction { target: eid("$t"), key: "👍".into(), removed: false }).await;
    assert_eq!(id, Some(eid("$txn1")));
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/send/m.reaction/txn1");
    assert_eq!(content(&request), json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$t", "key": "👍"}}));

    let (id, request) = send_one(EventBody::Redaction { target: eid("$gone"), reason: Some("oops".into()) }).await;
    assert_eq!(id, Some(eid("$redaction-txn1")));
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/redact/$gone/txn1");
    assert_eq!(content(&request), json!({"reason": "oops"}));

    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let removed = EventBody::Reaction { target: eid("$t"), key: "x".into(), removed: true };
    let err = client.send(&room(), &ghost(), "t", &removed).await.unwrap_err();
    assert!(matches!(err, BridgeError::Permanent(_)));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn typing_presence_receipts_and_leave() {
    let (id, request) = send_one(EventBody::Typing { typing: true }).await;
    assert_eq!(id, None);
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/typing/@ghost:hs");
    assert_eq!(content(&request), json!({"typing": true, "timeout": 30000}));
    let (_, request) = send_one(EventBody::Typing { typing: false }).await;
    assert_eq!(content(&request), json!({"typing": false}));

    let (_, request) =
        send_one(EventBody::Presence { presence: Presence::Unavailable, status: Some("lunch".into()) }).await;
    assert_eq!(request.path, "/_matrix/client/v3/presence/@ghost:hs/status");
    assert_eq!(content(&request), json!({"presence": "unavailable", "status_msg": "lunch"}));

    let (_, request) = send_one(EventBody::ReadReceipt { up_to: eid("$read") }).await;
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/receipt/m.read/$read");

    let leave = EventBody::Membership { membership: Membership::Leave, display_name: None, reason: None };
    let (id, request) = send_one(leave).await;
    assert_eq!(id, None);
    assert_eq!(request.path, "/_matrix/client/v3/rooms/!r:hs/leave");
}

#[tokio::test]
async fn rate_limits_are_honoured_with_the_same_txn_id() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    fake.script(
        Method::PUT,
        "/send/",
        429,
        json!({"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 300}),
    );
    let started = Instant::now();
    let body = EventBody::Message(Message::text(Text::plain("hello")));
    let id = client.send(&room(), &ghost(), "stable-txn", &body).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "retry_after_ms honoured");
    assert_eq!(id, Some(eid("$stable-txn")));
    let sends = fake.matching("/send/");
    assert_eq!(sends.len(), 2);
    assert!(sends.iter().all(|r| r.path.ends_with("/send/m.room.message/stable-txn")));
    assert_eq!(sends[0].body, sends[1].body);
}

#[tokio::test]
async fn retry_after_header_is_honoured() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    fake.script_with_headers(
        Method::PUT,
        "/typing/",
        429,
        json!({"errcode": "M_LIMIT_EXCEEDED"}),
        vec![("retry-after", "1".into())],
    );
    let started = Instant::now();
    client.send(&room(), &ghost(), "t", &EventBody::Typing { typing: true }).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_back_off_then_succeed() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    for status in [502, 503] {
        fake.script(Method::PUT, "/send/", status, json!({"errcode": "M_UNKNOWN"}));
    }
    let body = EventBody::Message(Message::text(Text::plain("x")));
    let started = Instant::now();
    client.send(&room(), &ghost(), "t5", &body).await.unwrap();
    // 10 ms then 20 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(30));
    let sends = fake.matching("/send/");
    assert_eq!(sends.len(), 3);
    assert!(sends.iter().all(|r| r.path.ends_with("/t5")));
}

#[tokio::test]
async fn gives_up_after_the_budget_with_a_transient_error() {
    let (fake, base) = common::start().await;
    let client = common::client_with(&base, |s| s.retry_budget = Duration::from_millis(150));
    for _ in 0..100 {
        fake.script(Method::PUT, "/send/", 503, json!({"errcode": "M_UNKNOWN"}));
    }
    let body = EventBody::Message(Message::text(Text::plain("x")));
    let started = Instant::now();
    let err = client.send(&room(), &ghost(), "t", &body).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match err {
        BridgeError::Transient { retry_after, .. } => assert!(retry_after.is_some()),
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(fake.requests().len() >= 3);
}

#[tokio::test]
async fn unreachable_homeserver_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = common::client_with(&base, |s| s.retry_budget = Duration::from_millis(100));
    let err = client.send(&room(), &ghost(), "t", &EventBody::Typing { typing: true }).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn client_errors_are_permanent_and_name_the_errcode() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    fake.script(Method::PUT, "/send/", 400, json!({"errcode": "M_BAD_JSON", "error": "secret body text"}));
    let body = EventBody::Message(Message::text(Text::plain("private words")));
    let err = client.send(&room(), &ghost(), "t", &body).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BridgeError::Permanent(_)));
    assert!(message.contains("M_BAD_JSON"), "{message}");
    assert!(!message.contains("secret") && !message.contains("private") && !message.contains(common::AS_TOKEN));
    assert_eq!(fake.requests().len(), 1, "no retry on 4xx");
}
