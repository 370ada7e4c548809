//! The bridge bot against a real Synapse: a Matrix user DMs the bot and
//! gets its commands; a tenant admin's `status` shows the adapter's health
//! and last error while others are refused; and each portal room carries
//! the adapter's health as `org.brygga.bridge.status` state, updated when
//! the platform goes down, comes back and is disabled.

use std::time::Duration;

use brygga_e2e::admin_api::AdminApi;
use brygga_e2e::env::events::text;
use brygga_e2e::env::{Backend, TestEnv};
use brygga_e2e::matrix_user::{MatrixUser, enc};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const BOT: &str = "@brygga:localhost";

/// The bot's notices in a room, oldest first.
async fn notices(user: &MatrixUser, room: &str) -> Vec<String> {
    let timeline = user.timeline(room).await;
    timeline
        .iter()
        .filter(|e| e["sender"] == BOT && e["content"]["msgtype"] == "m.notice")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

/// Waits for the bot's `n`th notice in a room (counting from 1); returns it.
async fn nth_notice(user: &MatrixUser, room: &str, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = notices(user, room).await;
        if let Some(notice) = seen.get(n - 1) {
            return notice.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no notice #{n} from the bot; seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The portal's bridge status state, once `pred` holds for it.
async fn wait_status(user: &MatrixUser, room: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/rooms/{}/state/org.brygga.bridge.status/{}", enc(room), enc("loopback/fk/r1"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, content) = user.raw(reqwest::Method::GET, &path, None).await;
        if status == 200 && pred(&content) {
            return content;
        }
        assert!(tokio::time::Instant::now() < deadline, "the bridge status never showed {what}; last {content}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bot_answers_commands_and_portal_rooms_carry_the_bridge_status() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let alice = &env.alice;
    env.remote.inject("fk", text("r1", "fk-hello", "anna", "hello"));
    let portal = alice.join_alias(&TestEnv::portal_alias("fk", "r1"), WAIT).await;
    alice.wait_text(&portal, "hello", WAIT).await;
    let connected = wait_status(alice, &portal, "connected", |s| s["health"] == "connected").await;
    assert_eq!(connected["protocol"], "loopback");
    assert!(connected["since"].as_i64().is_some(), "{connected}");

    // A room the bot is invited into to become a portal is no management room.
    let plain = alice.create_room("To be linked", &[BOT]).await;
    // A DM with the bot: it joins and greets; `help` lists the commands again.
    let dm = alice.create_dm(BOT).await;
    let greeting = nth_notice(alice, &dm, 1).await;
    assert!(greeting.contains("status [tenant]") && greeting.contains("link <platform>"), "{greeting}");
    alice.send_text(&dm, "help").await;
    assert_eq!(nth_notice(alice, &dm, 2).await, greeting);
    assert!(notices(alice, &plain).await.is_empty(), "the bot greeted in a room that is no DM");
    alice.send_text(&dm, "teleport").await;
    assert!(nth_notice(alice, &dm, 3).await.contains("I do not know `teleport`"));

    // The platform goes down: the portal's state and the admin's status show it.
    env.remote.set_down("fk", true);
    let down = wait_status(alice, &portal, "transient_error", |s| s["health"] == "transient_error").await;
    let error = down["last_error"].as_str().expect("the last error is shown").to_owned();
    assert!(error.contains("503"), "{down}");
    assert!(down["last_error_at"].as_i64().is_some(), "{down}");
    alice.send_text(&dm, "status").await;
    let status = nth_notice(alice, &dm, 4).await;
    assert!(status.starts_with("Tenant fk (fk)\n• loopback: transient_error since "), "{status}");
    assert!(status.contains("last error at ") && status.contains("503"), "{status}");
    assert!(!status.contains("Tenant tv"), "alice administers fk only: {status}");
    alice.send_text(&dm, "status tv").await;
    assert!(nth_notice(alice, &dm, 5).await.contains("not an administrator of tenant tv"));

    // It comes back: connected again, the last error still shown.
    env.remote.set_down("fk", false);
    let back = wait_status(alice, &portal, "connected again", |s| s["health"] == "connected").await;
    assert_eq!(back["last_error"], down["last_error"], "{back}");

    // Disabled through the admin API.
    let api = AdminApi::new(env.admin_url());
    let disabled = api.call(Some(&env.operator_token), "POST", "/tenants/fk/adapters/loopback/disable", None).await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    wait_status(alice, &portal, "disabled", |s| s["health"] == "disabled").await;
    alice.send_text(&dm, "status fk").await;
    assert!(nth_notice(alice, &dm, 6).await.contains("• loopback: disabled"));

    // A platform without account linking says so (tv serves alice's server).
    alice.send_text(&dm, "link loopback").await;
    assert!(nth_notice(alice, &dm, 7).await.contains("no account linking"));

    // Someone who administers no tenant is refused.
    let (bob_id, bob_token) =
        tokio::task::block_in_place(|| env.synapse.register_user("bob", "bob-password")).expect("register bob");
    let bob = MatrixUser::new(&env.synapse.base_url(), &bob_id, &bob_token);
    let bob_dm = bob.create_dm(BOT).await;
    nth_notice(&bob, &bob_dm, 1).await;
    bob.send_text(&bob_dm, "status").await;
    assert!(nth_notice(&bob, &bob_dm, 2).await.contains("not an administrator of any tenant"));
    bob.send_text(&bob_dm, "status fk").await;
    assert!(nth_notice(&bob, &bob_dm, 3).await.contains("not an administrator of tenant fk"));
    // Commands are answered once each, and only to the room's owner.
    let invite = serde_json::json!({"user_id": alice.user_id});
    let (status, _) = bob.raw(reqwest::Method::POST, &format!("/rooms/{}/invite", enc(&bob_dm)), Some(invite)).await;
    assert_eq!(status, 200);
    alice.join(&bob_dm).await;
    alice.send_text(&bob_dm, "status").await;
    bob.send_text(&bob_dm, "help").await;
    nth_notice(&bob, &bob_dm, 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(notices(&bob, &bob_dm).await.len(), 4, "the bot answered someone else in bob's room");
    assert_eq!(notices(alice, &dm).await.len(), 7, "a reply was doubled");
}
