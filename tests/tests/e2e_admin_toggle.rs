//! The admin API against a real Synapse: adapters toggled while messages
//! flow both ways (nothing queued is lost or repeated, and the other tenant
//! keeps flowing), and portals linked, listed and unlinked.

use std::time::Duration;

use brygga_core::{EventBody, OutboundEvent};
use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv};

const WAIT: Duration = Duration::from_secs(30);

/// Creates the portal of remote room `r1` of `tenant` and joins alice.
async fn portal(env: &TestEnv, tenant: &str) -> String {
    env.remote.inject(tenant, text("r1", &format!("{tenant}-hello"), "anna", "hello"));
    let room = env.alice.join_alias(&TestEnv::portal_alias(tenant, "r1"), WAIT).await;
    env.alice
        .wait_timeline(&room, WAIT, "the first message", |t| t.iter().any(|e| e["content"]["body"] == "hello"))
        .await;
    room
}

fn bodies(sent: &[OutboundEvent]) -> Vec<String> {
    sent.iter()
        .filter_map(|e| match &e.body {
            EventBody::Message(m) => Some(m.text.body.clone()),
            _ => None,
        })
        .collect()
}

async fn set_enabled(api: &AdminApi, token: &str, on: bool) {
    let path = format!("/tenants/fk/adapters/loopback/{}", if on { "enable" } else { "disable" });
    let answer = api.call(Some(token), "POST", &path, None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

brygga_e2e::both_backends!(
    disabling_an_adapter_during_traffic_keeps_its_queue_and_spares_other_tenants,
    portals_are_linked_listed_and_unlinked_and_ghosts_searched_through_the_api,
    adapters_report_health_and_take_webhooks,
);

async fn disabling_an_adapter_during_traffic_keeps_its_queue_and_spares_other_tenants(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let api = AdminApi::new(env.admin_url());
    let (fk_room, tv_room) = (portal(&env, "fk").await, portal(&env, "tv").await);
    let expected = |prefix: &str| (0..30).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();

    for i in 0..30 {
        if i == 10 {
            set_enabled(&api, &env.operator_token, false).await;
            // Remote messages of fk wait on the platform while its adapter is off.
            for n in 0..5 {
                env.remote.inject("fk", text("r1", &format!("fk-in-{n}"), "anna", &format!("in {n}")));
            }
        }
        env.alice.send_text(&fk_room, &format!("fk{i}")).await;
        env.alice.send_text(&tv_room, &format!("tv{i}")).await;
    }
    // tv flowed all along; fk's adapter delivered only what came before it stopped.
    env.remote.wait_for("tv", WAIT, "tv's 30 messages", |s| bodies(s).len() >= 30).await;
    let before = bodies(&env.remote.sent("fk"));
    assert!(before.len() <= 10, "a disabled adapter delivered: {before:?}");
    let timeline = env.alice.timeline(&fk_room).await;
    assert!(!timeline.iter().any(|e| e["content"]["body"] == "in 0"), "a disabled adapter received");

    set_enabled(&api, &env.operator_token, true).await;
    env.remote.wait_for("fk", WAIT, "fk's 30 messages", |s| bodies(s).len() >= 30).await;
    env.alice
        .wait_timeline(&fk_room, WAIT, "fk's remote messages", |t| t.iter().any(|e| e["content"]["body"] == "in 4"))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bodies(&env.remote.sent("fk")), expected("fk"), "fk's messages lost, repeated or reordered");
    assert_eq!(bodies(&env.remote.sent("tv")), expected("tv"));
    let inbound: Vec<String> = env
        .alice
        .timeline(&fk_room)
        .await
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().filter(|b| b.starts_with("in ")).map(str::to_owned))
        .collect();
    assert_eq!(inbound, (0..5).map(|n| format!("in {n}")).collect::<Vec<_>>());
}

async fn portals_are_linked_listed_and_unlinked_and_ghosts_searched_through_the_api(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let api = AdminApi::new(env.admin_url());
    let op = Some(env.operator_token.as_str());
    portal(&env, "fk").await;

    // A room the bot is not invited to cannot be linked.
    let closed = env.alice.create_room("Closed", &[]).await;
    let link = |room: &str| serde_json::json!({"kind": "loopback", "remote_room": "linked", "room_id": room, "name": "Linked"});
    let refused = api.call(op, "POST", "/tenants/fk/portals", Some(link(&closed))).await;
    assert_eq!(refused.status, 502, "{refused:?}");

    let room = env.alice.create_room("Linked", &["@brygga:localhost"]).await;
    let linked = api.call(op, "POST", "/tenants/fk/portals", Some(link(&room))).await;
    assert_eq!((linked.status, linked.body["room_id"].as_str()), (201, Some(room.as_str())), "{linked:?}");
    let again = api
        .call(
            op,
            "POST",
            "/tenants/tv/portals",
            Some(serde_json::json!({"kind": "loopback", "remote_room": "x", "room_id": room})),
        )
        .await;
    assert_eq!(again.status, 409, "a room is one portal: {again:?}");
    let listed = api.call(op, "GET", "/tenants/fk/portals", None).await.body;
    let rooms: Vec<&str> =
        listed["portals"].as_array().unwrap().iter().filter_map(|p| p["remote_room"].as_str()).collect();
    assert_eq!(rooms, ["linked", "r1"]);

    env.alice.send_text(&room, "through the linked room").await;
    env.remote
        .wait_for("fk", WAIT, "the linked room's message", |s| s.iter().any(|e| e.room.as_str() == "linked"))
        .await;

    let ghosts = api.call(op, "GET", "/tenants/fk/ghosts?search=ANN", None).await.body;
    assert_eq!(ghosts["ghosts"][0]["user_id"], TestEnv::ghost_id("fk", "anna"), "{ghosts}");
    assert!(
        api.call(op, "GET", "/tenants/tv/ghosts?search=nobody", None).await.body["ghosts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    assert_eq!(api.call(op, "DELETE", "/tenants/fk/portals/loopback/linked", None).await.status, 204);
    env.alice.send_text(&room, "after the unlink").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !bodies(&env.remote.sent("fk")).contains(&"after the unlink".to_owned()),
        "an unlinked room is still bridged"
    );
}

/// Adapters report their health (shown by the API), and take the requests
/// their platform makes to the bridge's webhook URL.
async fn adapters_report_health_and_take_webhooks(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let api = AdminApi::new(env.admin_url());
    let op = Some(env.operator_token.as_str());
    let room = portal(&env, "fk").await;
    let shown = api.call(op, "GET", "/tenants/fk/adapters/loopback", None).await.body;
    assert_eq!(shown["status"], "connected", "{shown}");

    let http = reqwest::Client::new();
    let hook = |rest: &str| format!("{}/_brygga/webhook/{rest}", env.appservice_url);
    let echo = http.get(hook("fk/loopback/events?validationToken=abc%20d")).send().await.unwrap();
    assert_eq!(echo.status(), 200);
    assert_eq!(echo.text().await.unwrap(), "abc%20d");
    let event = text("r1", "hooked-1", "anna", "through the webhook");
    let pushed = http.post(hook("fk/loopback/events")).json(&event).send().await.unwrap();
    assert_eq!(pushed.status(), 202);
    env.alice
        .wait_timeline(&room, WAIT, "the webhook's message", |t| {
            t.iter().any(|e| e["content"]["body"] == "through the webhook")
        })
        .await;
    for (url, status) in [
        (hook("nosuch/loopback/events"), 404),
        (hook("fk/telex/events"), 404),
        (hook("Bad Tenant/loopback/events"), 404),
        (hook("fk/loopback/other"), 404),
    ] {
        assert_eq!(http.post(&url).body("{}").send().await.unwrap().status().as_u16(), status, "{url}");
    }
    let garbage = http.post(hook("fk/loopback/events")).body("{not json").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    let huge = http.post(hook("fk/loopback/events")).body(vec![b'x'; 2 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(huge.status(), 413, "an oversized webhook body is refused");

    // A disabled adapter takes no webhooks.
    api.call(op, "POST", "/tenants/fk/adapters/loopback/disable", None).await;
    assert_eq!(http.post(hook("fk/loopback/events")).json(&event).send().await.unwrap().status(), 404);
}
