//! Two bridge processes share one real PostgreSQL store behind one address
//! for the homeserver. Tenants are split between them by leases; either
//! process takes the homeserver's transactions and the owner delivers.
//! One process is SIGKILLed during traffic in both directions: the other
//! takes its tenants over within the lease time, and nothing is lost or
//! delivered twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use brygga_core::{EventBody, LeaseStore, RemoteRoomId};
use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::bridge::{BridgeProcess, BridgeSetup};
use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv, start_synapse};
use brygga_e2e::front::Front;
use brygga_e2e::matrix_user::enc;
use brygga_e2e::remote::FakeRemote;
use brygga_harness::TempDir;
use brygga_harness::ports;

const TENANTS: [&str; 4] = ["t1", "t2", "t3", "t4"];
const LEASE_SECONDS: u64 = 6;
const PER_BURST: usize = 30;

fn room(tenant: &str) -> String {
    format!("shared-{tenant}")
}

/// Who holds which tenant now (live leases only).
async fn owners(store: &brygga_store::SqlStore) -> BTreeMap<String, String> {
    let leases = store.leases().await.expect("read leases");
    leases.into_iter().filter(|l| l.live()).map(|l| (l.tenant.to_string(), l.node)).collect()
}

async fn wait_owners(
    store: &brygga_store::SqlStore,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = owners(store).await;
        if pred(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; leases: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shows both processes' logs when the test fails.
struct LogsOnFailure(Vec<std::path::PathBuf>);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in &self.0 {
                eprintln!("---- {} ----\n{}", log.display(), brygga_harness::tail(log, 2000));
            }
        }
    }
}

/// The bot's notices in a room's timeline.
fn notices(timeline: &[serde_json::Value]) -> Vec<String> {
    timeline
        .iter()
        .filter(|e| e["content"]["msgtype"] == "m.notice")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

fn held_by(owners: &BTreeMap<String, String>, node: &str) -> Vec<String> {
    owners.iter().filter(|(_, n)| *n == node).map(|(t, _)| t.clone()).collect()
}

/// One node's config: the shared setup with its own listeners, the front
/// as the homeserver's URL, and its shard section.
fn node_config(shared: &BridgeSetup, node: &str, as_port: u16, admin_port: u16, front: &str, tenants: &str) -> String {
    let setup = BridgeSetup {
        hs_port: shared.hs_port,
        as_port,
        admin_port,
        hs_token: shared.hs_token.clone(),
        as_token: shared.as_token.clone(),
        db_url: shared.db_url.clone(),
        operator_token: shared.operator_token.clone(),
    };
    let own = format!("  url: \"http://127.0.0.1:{as_port}\"\n");
    let config = setup.config(tenants).replacen(&own, &format!("  url: \"{front}\"\n"), 1);
    assert!(config.contains(front), "the appservice URL is the front");
    format!(
        "{config}shard:\n  node_id: {node}\n  lease_seconds: {LEASE_SECONDS}\n  \
         admin_url: \"http://127.0.0.1:{admin_port}\"\n  appservice_url: \"http://127.0.0.1:{as_port}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_process_tenants_are_taken_over_without_loss_or_duplicates() {
    let dir = TempDir::new("brygga-shards").expect("temp dir");
    let remote = FakeRemote::start().await;
    let shared = BridgeSetup::new(Backend::Postgres.database_url(&dir).await);
    let tenants: String = TENANTS
        .iter()
        .map(|t| {
            format!(
                "  - id: {t}\n    invite: [\"@alice:localhost\"]\n    matrix_admins: [\"@alice:localhost\"]\n    adapters:\n      loopback:\n        config: {{ url: \"{}\", network: \"{t}\" }}\n",
                remote.url()
            )
        })
        .collect();
    let ports_a = (ports::free_port(), ports::free_port());
    let ports_b = (ports::free_port(), ports::free_port());
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let front = Front::start(vec![addr(ports_a.0), addr(ports_b.0)]).await;
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).expect("dir a");
    std::fs::create_dir_all(&dir_b).expect("dir b");
    let mut a =
        BridgeProcess::new(&dir_a, &node_config(&shared, "a", ports_a.0, ports_a.1, &front.url(), &tenants), ports_a.1);
    let mut b =
        BridgeProcess::new(&dir_b, &node_config(&shared, "b", ports_b.0, ports_b.1, &front.url(), &tenants), ports_b.1);
    let _logs = LogsOnFailure(vec![dir_a.join("bridge-1.log"), dir_b.join("bridge-1.log")]);
    let (_synapse, alice) = start_synapse(&shared, a.registration()).await;
    let store = brygga_store::SqlStore::connect(&shared.db_url).await.expect("open the shared store");

    // Alone, a takes every tenant; once b is up they split them evenly.
    a.start().await;
    wait_owners(&store, "a to own every tenant", Duration::from_secs(30), |o| held_by(o, "a").len() == TENANTS.len())
        .await;
    b.start().await;
    let split = wait_owners(&store, "an even split", Duration::from_secs(60), |o| {
        held_by(o, "a").len() == 2 && held_by(o, "b").len() == 2
    })
    .await;
    let (of_a, of_b) = (held_by(&split, "a"), held_by(&split, "b"));

    // Either node answers for any tenant: a forwards b's tenant's admin API to b,
    // which runs its adapter …
    let api = AdminApi::new(a.admin_url());
    let answer =
        api.call(Some(&shared.operator_token), "GET", &format!("/tenants/{}/adapters/loopback", of_b[0]), None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["running"], true, "shown by the owner: {:?}", answer.body);
    // … and an alias query reaching a for b's tenant is decided by b's adapter.
    let public = alice.join_alias(&TestEnv::portal_alias(&of_b[0], "public-square"), Duration::from_secs(60)).await;
    assert!(public.starts_with('!'));

    // A portal per tenant, joined by alice; deliveries to the platform are slow,
    // so the killed node leaves a backlog of stored, undelivered events.
    let mut rooms = BTreeMap::new();
    for t in TENANTS {
        remote.inject(t, text(&room(t), &format!("{t}-open"), "anna", "open"));
    }
    for t in TENANTS {
        let joined = alice.join_alias(&TestEnv::portal_alias(t, &room(t)), Duration::from_secs(60)).await;
        remote.set_slow(t, &RemoteRoomId::new(room(t)).unwrap(), Duration::from_millis(40));
        rooms.insert(t, joined);
    }

    // Each portal room carries its adapter's status, set by the owner.
    for t in TENANTS {
        let path = format!(
            "/rooms/{}/state/org.brygga.bridge.status/{}",
            enc(&rooms[t]),
            enc(&format!("loopback/{t}/{}", room(t)))
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, content) = alice.raw(reqwest::Method::GET, &path, None).await;
            if status == 200 && content["health"] == "connected" {
                break;
            }
            assert!(Instant::now() < deadline, "tenant {t}: no connected bridge status ({status} {content})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The bot's `status` reaches a, which answers for its tenants and hands
    // the others to b: each tenant's owner reports its running adapter.
    let dm = alice.create_dm("@brygga:localhost").await;
    alice.wait_timeline(&dm, Duration::from_secs(30), "the bot's greeting", |tl| notices(tl).len() == 1).await;
    alice.send_text(&dm, "status").await;
    // A process answers for all its tenants in one notice, a section each.
    let sections = |tl: &[serde_json::Value]| -> Vec<String> {
        notices(tl).iter().skip(1).flat_map(|n| n.split("\n\n").map(str::to_owned).collect::<Vec<_>>()).collect()
    };
    let timeline = alice
        .wait_timeline(&dm, Duration::from_secs(30), "a status of every tenant", |tl| {
            sections(tl).len() == TENANTS.len()
        })
        .await;
    let answers = sections(&timeline);
    for t in TENANTS {
        let of_t: Vec<&String> = answers.iter().filter(|n| n.starts_with(&format!("Tenant {t} "))).collect();
        assert_eq!(of_t.len(), 1, "one answer for {t}: {answers:?}");
        assert!(of_t[0].contains("loopback: connected"), "{t} answered by its owner: {}", of_t[0]);
    }

    let burst = |from: usize| from..from + PER_BURST;
    for i in burst(0) {
        for t in TENANTS {
            remote.inject(t, text(&room(t), &format!("{t}-{i}"), "anna", &format!("in:{i}")));
            alice.send_text(&rooms[t], &format!("out:{i}")).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    let killed = Instant::now();
    let taken = wait_owners(&store, "b to take a's tenants", Duration::from_secs(60), |o| {
        held_by(o, "b").len() == TENANTS.len()
    })
    .await;
    let takeover = killed.elapsed();
    println!("takeover after SIGKILL: {:.1} s (lease {LEASE_SECONDS} s)", takeover.as_secs_f64());
    assert!(
        takeover < Duration::from_secs(LEASE_SECONDS + 10),
        "taken over within the lease time and a round: {takeover:?}"
    );
    assert!(of_a.iter().all(|t| taken[t] == "b"));

    // The homeserver now reaches b through the same address.
    for i in burst(PER_BURST) {
        for t in TENANTS {
            remote.inject(t, text(&room(t), &format!("{t}-{i}"), "anna", &format!("in:{i}")));
            alice.send_text(&rooms[t], &format!("out:{i}")).await;
        }
    }

    let all = 2 * PER_BURST;
    for t in TENANTS {
        let expected_in: Vec<String> = (0..all).map(|i| format!("in:{i}")).collect();
        let timeline = alice
            .wait_timeline(&rooms[t], Duration::from_secs(120), "every inbound message", |tl| {
                tl.iter().filter(|e| e["content"]["body"].as_str().is_some_and(|b| b.starts_with("in:"))).count() >= all
            })
            .await;
        let got_in: Vec<String> = timeline
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str().filter(|b| b.starts_with("in:")).map(str::to_owned))
            .collect();
        assert_eq!(got_in, expected_in, "tenant {t}: inbound exactly once, in order");

        let expected_out: Vec<String> = (0..all).map(|i| format!("out:{i}")).collect();
        remote
            .wait_for(t, Duration::from_secs(120), "every outbound message", |sent| {
                sent.iter().filter(|e| matches!(&e.body, EventBody::Message(_))).count() >= all
            })
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got_out: Vec<String> = remote
            .sent(t)
            .iter()
            .filter(|e| e.room.as_str() == room(t))
            .filter_map(|e| match &e.body {
                EventBody::Message(m) => Some(m.text.body.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(got_out, expected_out, "tenant {t}: outbound exactly once, in order");
    }
    drop(b);
}
