//! Durability and isolation: messages survive SIGKILL of the bridge exactly
//! once and in order, and a slow portal does not hold up the others. Every
//! scenario runs with SQLite and with PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use brygga_core::{EventBody, RemoteRoomId};
use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv};

const PORTALS: usize = 10;
const PER_PORTAL: usize = 100;

brygga_e2e::both_backends!(
    inbound_survives_two_sigkills_exactly_once_in_order,
    outbound_survives_two_sigkills_exactly_once_in_order,
    a_slow_portal_does_not_delay_the_others,
);

fn room(p: usize) -> String {
    format!("durable-{p}")
}

/// Creates the portals and joins alice to each; returns their room ids.
async fn open_portals(env: &TestEnv) -> Vec<String> {
    for p in 0..PORTALS {
        env.remote.inject("fk", text(&room(p), &format!("{p}-open"), "anna", "open"));
    }
    let mut rooms = Vec::new();
    for p in 0..PORTALS {
        let alias = TestEnv::portal_alias("fk", &room(p));
        rooms.push(env.alice.join_alias(&alias, Duration::from_secs(60)).await);
    }
    rooms
}

async fn inbound_survives_two_sigkills_exactly_once_in_order(backend: Backend) {
    let mut env = TestEnv::start(backend).await;
    let rooms = open_portals(&env).await;
    for i in 0..PER_PORTAL {
        for p in 0..PORTALS {
            env.remote
                .inject("fk", text(&room(p), &format!("{p}-{i}"), &format!("user{}", i % 3), &format!("{p}:{i}")));
        }
    }
    for pause in [Duration::from_millis(1500), Duration::from_millis(2500)] {
        tokio::time::sleep(pause).await;
        env.kill_bridge();
        env.start_bridge().await;
    }
    let expected: Vec<String> = (0..PER_PORTAL).map(|i| i.to_string()).collect();
    for (p, room_id) in rooms.iter().enumerate() {
        let prefix = format!("{p}:");
        let timeline = env
            .alice
            .wait_timeline(room_id, Duration::from_secs(180), "all inbound messages", |t| {
                t.iter().filter(|e| e["content"]["body"].as_str().is_some_and(|b| b.starts_with(&prefix))).count()
                    >= PER_PORTAL
            })
            .await;
        let got: Vec<String> = timeline
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str()?.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        assert_eq!(got, expected, "portal {p}: every message exactly once, in order");
    }
    assert_eq!(env.remote.acked("fk"), (PORTALS * (PER_PORTAL + 1)) as u64, "every remote event acknowledged");
}

async fn outbound_survives_two_sigkills_exactly_once_in_order(backend: Backend) {
    let mut env = TestEnv::start(backend).await;
    let rooms = open_portals(&env).await;
    // A slow platform keeps a backlog in the bridge, so each kill lands in
    // the middle of deliveries (and of transactions still arriving).
    for p in 0..PORTALS {
        env.remote.set_slow("fk", &RemoteRoomId::new(room(p)).unwrap(), Duration::from_millis(40));
    }
    // Alice pauses while the bridge is down: Synapse's appservice recovery can
    // strand a transaction created while it is finishing recovery (it marks
    // the service up only after draining), and this test is about the bridge.
    let bursts = [0..34, 34..67, 67..PER_PORTAL];
    for (n, burst) in bursts.iter().enumerate() {
        for i in burst.clone() {
            for (p, room) in rooms.iter().enumerate() {
                env.alice.send_text(room, &format!("{p}:{i}")).await;
            }
        }
        if n + 1 < bursts.len() {
            tokio::time::sleep(Duration::from_millis(400)).await;
            env.kill_bridge();
            tokio::time::sleep(Duration::from_millis(500)).await;
            env.start_bridge().await;
            wait_until_delivered(&env, burst.end).await;
        }
    }
    wait_until_delivered(&env, PER_PORTAL).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_room = delivered_per_room(&env);
    assert_eq!(per_room.len(), PORTALS);
    for p in 0..PORTALS {
        let got = &per_room[&RemoteRoomId::new(room(p)).unwrap()];
        let expected: Vec<String> = (0..PER_PORTAL).map(|i| format!("{p}:{i}")).collect();
        assert_eq!(got, &expected, "portal {p}: every message exactly once, in order");
    }
}

/// Waits until messages `0..upto` of every portal reached the network,
/// naming the missing ones on timeout.
async fn wait_until_delivered(env: &TestEnv, upto: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let per_room = delivered_per_room(env);
        let missing: Vec<String> = (0..PORTALS)
            .flat_map(|p| {
                let got = per_room.get(&RemoteRoomId::new(room(p)).unwrap()).cloned().unwrap_or_default();
                (0..upto).map(move |i| format!("{p}:{i}")).filter(move |m| !got.contains(m))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} messages never arrived, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Message bodies the remote network received, per room, in arrival order.
fn delivered_per_room(env: &TestEnv) -> BTreeMap<RemoteRoomId, Vec<String>> {
    let mut per_room: BTreeMap<RemoteRoomId, Vec<String>> = BTreeMap::new();
    for event in env.remote.sent("fk") {
        if let EventBody::Message(m) = &event.body {
            per_room.entry(event.room.clone()).or_default().push(m.text.body.clone());
        }
    }
    per_room
}

async fn a_slow_portal_does_not_delay_the_others(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let rooms = open_portals(&env).await;
    let slow = RemoteRoomId::new(room(0)).unwrap();
    env.remote.set_slow("fk", &slow, Duration::from_secs(8));
    env.alice.send_text(&rooms[0], "slow one").await;
    for (p, room) in rooms.iter().enumerate().skip(1) {
        env.alice.send_text(room, &format!("fast {p}")).await;
    }
    env.remote
        .wait_for("fk", Duration::from_secs(30), "the fast portals", |s| {
            s.iter().filter(|e| matches!(&e.body, EventBody::Message(m) if m.text.body.starts_with("fast"))).count()
                == PORTALS - 1
        })
        .await;
    let slow_done =
        env.remote.sent("fk").iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == "slow one"));
    assert!(!slow_done, "the fast portals should not have waited for the slow one");
    env.remote
        .wait_for("fk", Duration::from_secs(30), "the slow portal", |s| {
            s.iter().any(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == "slow one"))
        })
        .await;
}
