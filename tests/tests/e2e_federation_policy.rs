//! A tenant's federation policy against a real Synapse: its portal rooms
//! carry a server ACL, invites to its ghosts from servers it does not
//! federate with are refused with a reason, and files over its limit do
//! not cross.

use std::time::Duration;

use brygga_core::{Attachment, EventBody, MediaSource, Message, RemoteMessageId, Text};
use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::env::events::{remote, text};
use brygga_e2e::env::{Backend, TestEnv};
use brygga_e2e::matrix_user::{enc, membership_of};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

brygga_e2e::both_backends!(
    portal_rooms_get_a_server_acl_and_foreign_invites_are_refused,
    files_over_the_tenants_limit_do_not_cross,
);

async fn portal_rooms_get_a_server_acl_and_foreign_invites_are_refused(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.remote.inject("tv", text("r1", "tv-hello", "anna", "hello"));
    let room = env.alice.join_alias(&TestEnv::portal_alias("tv", "r1"), WAIT).await;
    let (status, acl) =
        env.alice.raw(reqwest::Method::GET, &format!("/rooms/{room}/state/m.room.server_acl/"), None).await;
    assert_eq!(status, 200, "{acl}");
    assert_eq!(acl, json!({"allow": ["agency.example", "localhost"], "deny": [], "allow_ip_literals": false}));
    // fk sets no policy: no ACL.
    env.remote.inject("fk", text("r1", "fk-hello", "anna", "hello"));
    let open = env.alice.join_alias(&TestEnv::portal_alias("fk", "r1"), WAIT).await;
    let (status, _) =
        env.alice.raw(reqwest::Method::GET, &format!("/rooms/{open}/state/m.room.server_acl/"), None).await;
    assert_eq!(status, 404);

    // An invite of tv's ghost from a server tv does not federate with is
    // refused: the ghost rejects it with the reason. (One homeserver runs
    // here, so the homeserver's transaction is replayed as if from there.)
    let ghost = TestEnv::ghost_id("tv", "anna");
    let private = env.alice.create_room("Elsewhere", &[&ghost]).await;
    let invite = json!({"events": [{
        "type": "m.room.member", "event_id": "$foreign-invite", "room_id": private, "sender": "@eve:evil.example",
        "state_key": ghost, "origin_server_ts": 1, "content": {"membership": "invite"}
    }]});
    let response = reqwest::Client::new()
        .put(format!("{}/_matrix/app/v1/transactions/foreign-1", env.appservice_url))
        .bearer_auth(&env.hs_token)
        .json(&invite)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let timeline = env
        .alice
        .wait_timeline(&private, WAIT, "the ghost refusing", |t| membership_of(t, &ghost) == Some("leave"))
        .await;
    let refusal =
        timeline.iter().rev().find(|e| e["type"] == "m.room.member" && e["state_key"] == ghost.as_str()).unwrap();
    let reason = refusal["content"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("does not federate with evil.example"), "{refusal}");
}

fn file(name: &str, size: usize, locator: &str) -> Attachment {
    Attachment {
        name: name.into(),
        mime: "application/octet-stream".into(),
        size: Some(size as u64),
        source: MediaSource::Remote { locator: locator.into() },
    }
}

/// tv lets files up to 1 KiB cross: a bigger one is named instead, both ways.
async fn files_over_the_tenants_limit_do_not_cross(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.remote.inject("tv", text("files", "tv-hello", "anna", "hello"));
    let room = env.alice.join_alias(&TestEnv::portal_alias("tv", "files"), WAIT).await;

    env.remote.put_media("tv", "small", vec![1; 100]);
    env.remote.put_media("tv", "big", vec![2; 2048]);
    let mut message = Message::text(Text::plain("two files"));
    message.attachments = vec![file("small.bin", 100, "small"), file("big.bin", 2048, "big")];
    env.remote.inject("tv", remote("files", "two-files", "anna", EventBody::Message(message)));
    // The big one lies about its size: the bytes are checked too.
    let mut liar = Message::text(Text::plain(""));
    liar.attachments = vec![file("liar.bin", 10, "big")];
    env.remote.inject("tv", remote("files", "liar", "anna", EventBody::Message(liar)));
    let timeline = env
        .alice
        .wait_timeline(&room, WAIT, "the liar's file named", |t| {
            t.iter().any(|e| e["content"]["body"].as_str().is_some_and(|b| b.contains("liar.bin")))
        })
        .await;
    let files: Vec<&str> = timeline
        .iter()
        .filter(|e| e["content"]["msgtype"] == "m.file")
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(files, ["small.bin"], "only the small file crossed");
    let named = |name: &str| {
        timeline
            .iter()
            .any(|e| e["content"]["body"].as_str().is_some_and(|b| b.contains(&format!("[file not bridged: {name}]"))))
    };
    assert!(named("big.bin") && named("liar.bin"), "the files left out are named");

    // Matrix to remote: the same limit.
    for (name, size) in [("tiny.txt", 10usize), ("huge.txt", 4096)] {
        let mxc = env.alice.upload(vec![b'x'; size], "text/plain", name).await;
        let content =
            json!({"msgtype": "m.file", "body": name, "url": mxc, "info": {"mimetype": "text/plain", "size": size}});
        env.alice.send(&room, "m.room.message", content).await;
    }
    env.remote
        .wait_for("tv", WAIT, "both files' messages", |s| {
            s.iter().filter(|e| matches!(&e.body, EventBody::Message(_))).count() >= 2
        })
        .await;
    let sent = env.remote.sent("tv");
    let messages: Vec<&Message<RemoteMessageId>> =
        sent.iter().filter_map(|e| if let EventBody::Message(m) = &e.body { Some(m) } else { None }).collect();
    // tv's platform takes no files, so the small one still arrives as its
    // name (degraded); the big one was already kept out by the policy.
    assert_eq!(messages[0].text.body, "[file: tiny.txt]", "tiny.txt passed the policy");
    assert_eq!(messages[1].text.body, "[file not bridged: huge.txt]", "huge.txt did not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_rooms_get_the_policy_and_a_new_policy_reaches_every_portal() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let api = AdminApi::new(env.admin_url());
    let op = Some(env.operator_token.as_str());
    let bot = "@brygga:localhost";
    let room = env.alice.create_room("Linked", &[bot]).await;
    let link = json!({"kind": "loopback", "remote_room": "linked-1", "room_id": room});

    // The bot may not change the ACL here: tv's policy cannot hold, so no link.
    let refused = api.call(op, "POST", "/tenants/tv/portals", Some(link.clone())).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    assert_eq!(refused.body["errcode"], "BOT_CANNOT_SET_ACL", "{:?}", refused.body);
    assert!(refused.body["error"].as_str().unwrap().contains("m.room.server_acl"), "{:?}", refused.body);

    // Given the power, it links and the room carries tv's policy.
    let path = format!("/rooms/{}/state/m.room.power_levels/", enc(&room));
    let (_, mut levels) = env.alice.raw(reqwest::Method::GET, &path, None).await;
    levels["users"][bot] = json!(100);
    let (status, _) = env.alice.raw(reqwest::Method::PUT, &path, Some(levels)).await;
    assert_eq!(status, 200);
    let linked = api.call(op, "POST", "/tenants/tv/portals", Some(link)).await;
    assert_eq!(linked.status, 201, "{:?}", linked.body);
    let acl_path = format!("/rooms/{}/state/m.room.server_acl/", enc(&room));
    let (_, acl) = env.alice.raw(reqwest::Method::GET, &acl_path, None).await;
    assert_eq!(acl["allow"], json!(["agency.example", "localhost"]));

    // A new policy is set in every portal room at once; only the operator may change it.
    let change = json!({"allowed_servers": ["agency.example", "partner.example"]});
    let token = api.call(op, "POST", "/tenants/tv/tokens", Some(json!({"label": "tv admin"}))).await;
    let tv_admin = token.body["token"].as_str().unwrap().to_owned();
    let denied = api.call(Some(&tv_admin), "PATCH", "/tenants/tv", Some(change.clone())).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    let bad = api.call(op, "PATCH", "/tenants/tv", Some(json!({"allowed_servers": "everyone"}))).await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let changed = api.call(op, "PATCH", "/tenants/tv", Some(change)).await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["tenant"]["allowed_servers"], json!(["agency.example", "partner.example"]));
    assert_eq!(changed.body["server_acl_failed"], json!([]));
    let (_, acl) = env.alice.raw(reqwest::Method::GET, &acl_path, None).await;
    assert_eq!(acl["allow"], json!(["agency.example", "localhost", "partner.example"]));
}
