//! End-to-end behaviour against a real Synapse, through the test adapter.
//! Every scenario runs once with SQLite and once with PostgreSQL.

use std::time::Duration;

use brygga_core::{
    Attachment, EventBody, MediaSource, Membership, Message, OutboundEvent, RemoteSender, RemoteUserId, Text,
};
use brygga_e2e::env::events::{remote, rid, text};
use brygga_e2e::env::{Backend, TestEnv};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

brygga_e2e::both_backends!(
    homeserver_ping_round_trips_through_the_bridge,
    hs_token_is_checked_and_replayed_transactions_are_not_reprocessed,
    inbound_message_creates_ghost_and_portal,
    edits_redactions_replies_and_reactions_map_both_ways,
    matrix_messages_reach_the_adapter_once_in_order,
    files_and_avatars_cross_both_ways,
    membership_and_typing_cross_both_ways,
    unsupported_features_degrade_visibly,
);

async fn homeserver_ping_round_trips_through_the_bridge(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let response = reqwest::Client::new()
        .post(format!("{}/_matrix/client/v1/appservice/brygga/ping", env.synapse.base_url()))
        .bearer_auth(&env.as_token)
        .json(&json!({"transaction_id": "ping-1"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["duration_ms"].is_u64(), "{body}");
}

async fn put_txn(env: &TestEnv, txn: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().put(format!("{}/_matrix/app/v1/transactions/{txn}", env.appservice_url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn message_event(room: &str, id: &str, body: &str) -> Value {
    json!({
        "type": "m.room.message", "event_id": id, "room_id": room, "sender": "@alice:localhost",
        "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body}
    })
}

/// Creates the portal of remote room `room` of tenant fk and joins alice.
async fn portal(env: &TestEnv, room: &str) -> String {
    env.remote.inject("fk", text(room, &format!("{room}-hello"), "anna", "hello"));
    let alias = TestEnv::portal_alias("fk", room);
    let room_id = env.alice.join_alias(&alias, WAIT).await;
    env.alice
        .wait_timeline(&room_id, WAIT, "the first message", |t| t.iter().any(|e| e["content"]["body"] == "hello"))
        .await;
    room_id
}

async fn hs_token_is_checked_and_replayed_transactions_are_not_reprocessed(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let room = portal(&env, "r1").await;

    let (status, body) = put_txn(&env, "a1", None, json!({"events": []})).await;
    assert_eq!((status, body["errcode"].as_str()), (401, Some("M_MISSING_TOKEN")));
    let (status, body) = put_txn(&env, "a1", Some("wrong-token"), json!({"events": []})).await;
    assert_eq!((status, body["errcode"].as_str()), (403, Some("M_FORBIDDEN")));

    let first = json!({"events": [message_event(&room, "$injected-1", "first")]});
    assert_eq!(put_txn(&env, "replay-1", Some(&env.hs_token), first).await.0, 200);
    // The same transaction id again, with different content: it must not be processed.
    let replay = json!({"events": [message_event(&room, "$injected-2", "second")]});
    assert_eq!(put_txn(&env, "replay-1", Some(&env.hs_token), replay).await.0, 200);
    env.remote
        .wait_for("fk", WAIT, "the first injected message", |s| s.iter().any(|e| body_of(&e.body) == "first"))
        .await;
    // Give a wrongly processed replay time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = env.remote.sent("fk");
    assert_eq!(sent.iter().filter(|e| body_of(&e.body) == "first").count(), 1);
    assert!(sent.iter().all(|e| body_of(&e.body) != "second"), "replayed transaction was processed");
}

/// The sends that carry content (not membership changes).
fn content(sent: &[OutboundEvent]) -> Vec<OutboundEvent> {
    sent.iter().filter(|e| !matches!(e.body, EventBody::Membership { .. })).cloned().collect()
}

fn body_of(body: &EventBody<brygga_core::RemoteMessageId>) -> String {
    match body {
        EventBody::Message(m) => m.text.body.clone(),
        EventBody::Edit { text, .. } => format!("edit:{}", text.body),
        other => other.kind_name().to_owned(),
    }
}

async fn inbound_message_creates_ghost_and_portal(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut message =
        Message::text(Text { body: "Hej **alla**".into(), html: Some("Hej <strong>alla</strong>".into()) });
    message.notice = false;
    env.remote.inject("fk", remote("Plenum", "m-1", "Anna.B", EventBody::Message(message)));
    let room = env.alice.join_alias(&TestEnv::portal_alias("fk", "Plenum"), WAIT).await;
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the bridged message", |t| t.iter().any(|e| e["type"] == "m.room.message"))
        .await;
    let ghost = TestEnv::ghost_id("fk", "Anna.B");
    let msg = timeline.iter().find(|e| e["type"] == "m.room.message").unwrap();
    assert_eq!(msg["sender"], ghost.as_str());
    assert_eq!(msg["content"]["body"], "Hej **alla**");
    assert_eq!(msg["content"]["format"], "org.matrix.custom.html");
    assert_eq!(msg["content"]["formatted_body"], "Hej <strong>alla</strong>");
    let member = timeline
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == ghost.as_str())
        .expect("ghost joined the portal");
    assert_eq!(member["content"]["displayname"], "Anna.B (remote)");
    let (status, state) = env
        .alice
        .raw(reqwest::Method::GET, &format!("/rooms/{}/state", brygga_e2e::matrix_user::enc(&room)), None)
        .await;
    assert_eq!(status, 200);
    let bridge = state.as_array().unwrap().iter().find(|e| e["type"] == "m.bridge").expect("m.bridge state");
    assert_eq!(bridge["content"]["channel"]["id"], "Plenum");
    assert!(state.as_array().unwrap().iter().any(|e| e["type"] == "uk.half-shot.bridge"));
}

async fn edits_redactions_replies_and_reactions_map_both_ways(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let room = portal(&env, "r2").await;
    let remote_hello = "r2-hello";

    // Remote to Matrix: reply, edit, reaction, redaction of the reply.
    let mut reply = Message::text(Text::plain("a reply"));
    reply.reply_to = Some(rid(remote_hello));
    env.remote.inject("fk", remote("r2", "m-reply", "bo", EventBody::Message(reply)));
    env.remote.inject(
        "fk",
        remote(
            "r2",
            "m-edit",
            "anna",
            EventBody::Edit { target: rid(remote_hello), text: Text::plain("hello, edited") },
        ),
    );
    env.remote.inject(
        "fk",
        remote(
            "r2",
            "m-react",
            "bo",
            EventBody::Reaction { target: rid(remote_hello), key: "👍".into(), removed: false },
        ),
    );
    env.remote
        .inject("fk", remote("r2", "m-redact", "bo", EventBody::Redaction { target: rid("m-reply"), reason: None }));
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "edit, reaction and redaction", |t| {
            t.iter().any(|e| e["type"] == "m.reaction") && t.iter().any(|e| e["type"] == "m.room.redaction")
        })
        .await;
    let hello = timeline.iter().find(|e| e["content"]["body"] == "hello").expect("hello").clone();
    let hello_id = hello["event_id"].as_str().unwrap();
    let edit = timeline.iter().find(|e| e["content"]["m.relates_to"]["rel_type"] == "m.replace").expect("edit");
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], hello_id);
    assert_eq!(edit["content"]["m.new_content"]["body"], "hello, edited");
    let reaction = timeline.iter().find(|e| e["type"] == "m.reaction").expect("reaction");
    assert_eq!(reaction["content"]["m.relates_to"]["event_id"], hello_id);
    assert_eq!(reaction["content"]["m.relates_to"]["key"], "👍");
    assert_eq!(reaction["sender"], TestEnv::ghost_id("fk", "bo").as_str());
    let redaction = timeline.iter().find(|e| e["type"] == "m.room.redaction").expect("redaction");
    let reply_event = timeline
        .iter()
        .find(|e| {
            e["type"] == "m.room.message" && e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == hello_id
        })
        .or_else(|| timeline.iter().find(|e| e["event_id"] == redaction["redacts"]))
        .expect("the reply (redacted or not)");
    let redacted_id = redaction["redacts"].as_str().or(redaction["content"]["redacts"].as_str()).unwrap();
    assert_eq!(redacted_id, reply_event["event_id"].as_str().unwrap());

    // Matrix to remote: reply, edit, reaction, redaction of the reaction.
    let reply_id = env
        .alice
        .send(&room, "m.room.message", json!({"msgtype": "m.text", "body": "matrix reply", "m.relates_to": {"m.in_reply_to": {"event_id": hello_id}}}))
        .await;
    env.alice
        .send(&room, "m.room.message", json!({"msgtype": "m.text", "body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"}, "m.relates_to": {"rel_type": "m.replace", "event_id": reply_id}}))
        .await;
    let reaction_id = env
        .alice
        .send(
            &room,
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello_id, "key": "🎉"}}),
        )
        .await;
    env.alice.redact(&room, &reaction_id).await;
    env.alice.redact(&room, &reply_id).await;
    env.remote.wait_for("fk", WAIT, "all five Matrix events", |s| content(s).len() >= 5).await;
    let sent = content(&env.remote.sent("fk"));
    assert!(
        env.remote.sent("fk").iter().any(|e| matches!(e.body, EventBody::Membership { .. })),
        "alice's join was bridged as membership"
    );
    let reply_remote = match &sent[0].body {
        EventBody::Message(m) => {
            assert_eq!(m.text.body, "matrix reply");
            assert_eq!(m.reply_to, Some(rid(remote_hello)));
            sent[0].clone()
        }
        other => panic!("expected the reply first, got {other:?}"),
    };
    let reply_remote_id = {
        // The fake network numbers messages rm-1, rm-2, ... in arrival order.
        assert_eq!(reply_remote.sender.user_id.as_str(), "@alice:localhost");
        rid("rm-1")
    };
    assert_eq!(sent[1].body, EventBody::Edit { target: reply_remote_id.clone(), text: Text::plain("fixed") });
    assert_eq!(sent[2].body, EventBody::Reaction { target: rid(remote_hello), key: "🎉".into(), removed: false });
    assert_eq!(sent[3].body, EventBody::Reaction { target: rid(remote_hello), key: "🎉".into(), removed: true });
    assert_eq!(sent[4].body, EventBody::Redaction { target: reply_remote_id, reason: None });
}

async fn matrix_messages_reach_the_adapter_once_in_order(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let room = portal(&env, "r3").await;
    for i in 0..30 {
        env.alice.send_text(&room, &format!("m{i}")).await;
    }
    env.remote.wait_for("fk", WAIT, "30 messages", |s| content(s).len() >= 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bodies: Vec<String> = content(&env.remote.sent("fk")).iter().map(|e| body_of(&e.body)).collect();
    let expected: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
    assert!(env.remote.sent("tv").is_empty(), "another tenant received fk's messages");
}

async fn files_and_avatars_cross_both_ways(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let room = portal(&env, "files").await;

    // Remote to Matrix: a file from a sender with an avatar.
    let report: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    env.remote.put_media("fk", "report-1", report.clone());
    env.remote.put_media("fk", "avatar-cecilia", b"\x89PNG fake avatar".to_vec());
    let mut message = Message::text(Text::plain("the report"));
    message.attachments.push(Attachment {
        name: "report.pdf".into(),
        mime: "application/pdf".into(),
        size: Some(report.len() as u64),
        source: MediaSource::Remote { locator: "report-1".into() },
    });
    let mut event = remote("files", "file-1", "cecilia", EventBody::Message(message));
    event.sender = RemoteSender {
        id: RemoteUserId::new("cecilia").unwrap(),
        display_name: Some("Cecilia".into()),
        avatar: Some("avatar-cecilia".into()),
    };
    env.remote.inject("fk", event);
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the file", |t| t.iter().any(|e| e["content"]["msgtype"] == "m.file"))
        .await;
    let text_part = timeline.iter().find(|e| e["content"]["body"] == "the report").expect("the text part");
    let file = timeline.iter().find(|e| e["content"]["msgtype"] == "m.file").expect("the file part");
    assert_eq!(text_part["sender"], file["sender"]);
    assert_eq!(file["content"]["body"], "report.pdf");
    assert_eq!(file["content"]["info"]["mimetype"], "application/pdf");
    let mxc = file["content"]["url"].as_str().expect("mxc url");
    assert_eq!(env.alice.download(mxc).await, report);
    let profile = env.alice.profile(&TestEnv::ghost_id("fk", "cecilia")).await;
    assert_eq!(profile["displayname"], "Cecilia");
    let avatar = profile["avatar_url"].as_str().expect("ghost avatar");
    assert_eq!(env.alice.download(avatar).await, b"\x89PNG fake avatar");

    // Matrix to remote: alice sends an image; the adapter re-uploads it.
    let image: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mxc = env.alice.upload(image.clone(), "image/png", "chart.png").await;
    env.alice
        .send(&room, "m.room.message", json!({"msgtype": "m.image", "body": "chart.png", "url": mxc, "info": {"mimetype": "image/png", "size": image.len()}}))
        .await;
    env.remote
        .wait_for("fk", WAIT, "the image", |s| {
            s.iter().any(|e| matches!(&e.body, EventBody::Message(m) if !m.attachments.is_empty()))
        })
        .await;
    let sent = env.remote.sent("fk");
    let attachment = sent
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Message(m) => m.attachments.first().cloned(),
            _ => None,
        })
        .unwrap();
    assert_eq!((attachment.name.as_str(), attachment.mime.as_str()), ("chart.png", "image/png"));
    let MediaSource::Remote { locator } = &attachment.source else { panic!("not re-uploaded: {attachment:?}") };
    assert_eq!(env.remote.media("fk", locator).as_deref(), Some(image.as_slice()));
}

async fn membership_and_typing_cross_both_ways(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let room = portal(&env, "members").await;
    let dan = TestEnv::ghost_id("fk", "dan");
    let membership = |membership, reason: Option<&str>| EventBody::Membership {
        membership,
        display_name: None,
        reason: reason.map(str::to_owned),
    };
    env.remote.inject("fk", remote("members", "dan-join", "dan", membership(Membership::Join, None)));
    env.remote.inject("fk", remote("members", "dan-typing", "dan", EventBody::Typing { typing: true }));
    env.remote.inject("fk", remote("members", "dan-kick", "dan", membership(Membership::Kick, Some("spam"))));
    // Eve was never in the room: her leave must not make her ghost join first.
    env.remote.inject("fk", remote("members", "eve-leave", "eve", membership(Membership::Leave, None)));
    env.remote.inject("fk", text("members", "after-eve", "anna", "after eve"));
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "dan's kick and the message after eve's leave", |t| {
            t.iter().any(|e| e["state_key"] == dan.as_str() && e["content"]["membership"] == "leave")
                && t.iter().any(|e| e["content"]["body"] == "after eve")
        })
        .await;
    let eve = TestEnv::ghost_id("fk", "eve");
    assert!(!timeline.iter().any(|e| e["state_key"] == eve.as_str()), "eve's ghost never appears in the room");
    let dan_events: Vec<&Value> = timeline.iter().filter(|e| e["state_key"] == dan.as_str()).collect();
    let join = dan_events.iter().position(|e| e["sender"] == dan.as_str() && e["content"]["membership"] == "join");
    let kick = dan_events.iter().position(|e| e["content"]["membership"] == "leave");
    assert!(join.is_some() && join < kick, "dan joined, then was kicked: {dan_events:?}");
    let kick = dan_events[kick.unwrap()];
    assert_eq!(kick["sender"], "@brygga:localhost", "the bot removes the ghost");
    assert_eq!(kick["content"]["reason"], "spam");

    // Matrix typing reaches the adapter through the homeserver's ephemeral events.
    let path = format!(
        "/rooms/{}/typing/{}",
        brygga_e2e::matrix_user::enc(&room),
        brygga_e2e::matrix_user::enc(&env.alice.user_id)
    );
    let (status, body) =
        env.alice.raw(reqwest::Method::PUT, &path, Some(json!({"typing": true, "timeout": 20000}))).await;
    assert_eq!(status, 200, "{body}");
    env.remote
        .wait_for("fk", WAIT, "alice typing", |s| {
            s.iter().any(|e| {
                e.body == EventBody::Typing { typing: true } && e.sender.user_id.as_str() == "@alice:localhost"
            })
        })
        .await;
}

async fn unsupported_features_degrade_visibly(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.remote.inject("tv", text("plain", "plain-open", "anna", "hello"));
    let room = env.alice.join_alias(&TestEnv::portal_alias("tv", "plain"), WAIT).await;
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the first message", |t| t.iter().any(|e| e["content"]["body"] == "hello"))
        .await;
    let hello =
        timeline.iter().find(|e| e["content"]["body"] == "hello").unwrap()["event_id"].as_str().unwrap().to_owned();
    let mine = env.alice.send_text(&room, "typo").await;
    env.alice
        .send(&room, "m.room.message", json!({"msgtype": "m.text", "body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"}, "m.relates_to": {"rel_type": "m.replace", "event_id": mine}}))
        .await;
    env.alice
        .send(
            &room,
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "👍"}}),
        )
        .await;
    env.alice.redact(&room, &mine).await;
    env.remote.wait_for("tv", WAIT, "four degraded events", |s| content(s).len() >= 4).await;
    let sent = content(&env.remote.sent("tv"));
    let messages: Vec<&Message<brygga_core::RemoteMessageId>> = sent
        .iter()
        .map(|e| match &e.body {
            EventBody::Message(m) => m,
            other => panic!("a platform without edits, reactions and deletions got {other:?}"),
        })
        .collect();
    assert_eq!(messages[0].text.body, "typo");
    assert_eq!(messages[1].text.body, "* fixed", "an edit becomes a marked message");
    assert_eq!(messages[2].text.body, "reacted with 👍", "a reaction becomes a text");
    assert_eq!(messages[2].reply_to, Some(rid("plain-open")), "replying to the message reacted to");
    assert!(messages[3].notice, "a deletion becomes a notice");
    assert!(
        !env.remote.sent("tv").iter().any(|e| matches!(e.body, EventBody::Membership { .. })),
        "membership is dropped"
    );
}
