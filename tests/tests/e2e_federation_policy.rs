//! A tenant's federation policy against a real Synapse: its portal rooms
//! carry a server ACL, and invites to its ghosts from servers it does not
//! federate with are refused with a reason.

use std::time::Duration;

use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv};
use brygga_e2e::matrix_user::membership_of;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

brygga_e2e::both_backends!(portal_rooms_get_a_server_acl_and_foreign_invites_are_refused);

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
