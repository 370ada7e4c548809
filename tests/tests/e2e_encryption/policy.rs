//! A tenant that requires encryption, against real Synapse: its new portals
//! are encrypted from the start and say so in their bridge info; a room that
//! is not encrypted cannot be linked; a room that turns encryption off stops
//! being bridged, visibly, both ways; a direct chat opened in clear is
//! declined. Under the default policy a room that
//! turns encryption on keeps bridging, encrypted. The bot answers commands
//! in an encrypted management room.

use brygga_e2e::e2ee_env::{E2eeEnv, NET, WAIT};
use brygga_e2e::env::TestEnv;
use brygga_e2e::env::events::text;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_requiring_encryption_bridges_only_encrypted_rooms() {
    let env = E2eeEnv::start("    encryption: require\n").await;
    let alice = env.alice().await;
    let bob = E2eeEnv::ghost("bob");

    // A new portal: the bridge creates it encrypted, Alice is invited and
    // gets the ghost's message sealed.
    env.remote.inject(NET, text("news", "n1", "bob", "first news"));
    let alias = TestEnv::portal_alias("fk", "news");
    let room = alice.room_of_alias(&alias, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    let first = alice.next_event(&room, &bob, WAIT).await.expect("first news");
    assert!(first.was_encrypted(), "{first:#?}");
    assert_eq!(first.body(), Some("first news"));
    let encryption = alice.state(&room, "m.room.encryption", "").await.unwrap().expect("encrypted room");
    assert_eq!(encryption["algorithm"], "m.megolm.v1.aes-sha2");
    let info = alice.state(&room, "m.bridge", "loopback/fk/news").await.unwrap().expect("bridge info");
    assert_eq!(info["io.brygga.encryption"], "end-to-bridge", "{info}");
    alice.send_text(&room, "alice reads the news").await.unwrap();
    env.remote_gets("alice reads the news").await;

    // A room without encryption is not linked, and the refusal says why.
    let clear = alice.create_room("clear", &["@brygga:localhost"]).await.unwrap();
    let refused = env.bridge.cli_failure(&["portal", "link", "fk", "loopback", "clear", &clear]);
    assert!(refused.contains("bridges only encrypted rooms"), "{refused}");

    // A direct chat opened in clear is declined by the ghost, saying why;
    // an encrypted one is taken.
    let carl = E2eeEnv::ghost("carl");
    let clear_dm = alice.create_room("clear dm", &[&carl]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let declined = loop {
        let member = alice.state(&clear_dm, "m.room.member", &carl).await.unwrap();
        if let Some(member) = member.filter(|m| m["membership"] == "leave") {
            break member;
        }
        assert!(tokio::time::Instant::now() < deadline, "the ghost never declined\n{}", env.bridge.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(declined["reason"].as_str().unwrap_or_default().contains("only encrypted rooms"), "{declined}");
    let sealed_dm = alice.create_encrypted_dm(&carl).await.unwrap();
    alice.wait_for_member(&sealed_dm, &carl, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));

    // An encrypted room of Alice's is linked; when she turns encryption
    // "off", the room is told it is no longer bridged, and nothing crosses.
    let own = alice.create_encrypted_room("own", &["@brygga:localhost"]).await.unwrap();
    let linked = env.bridge.cli(&["portal", "link", "fk", "loopback", "own", &own]);
    assert!(linked.contains("linked"), "{linked}");
    env.ghost_says(&alice, ("own", &own), ("bob", "o1"), "bob in alice's room").await;
    alice.send_state(&own, "m.room.encryption", "", json!({})).await.unwrap();
    let notice = alice
        .next_event_where(&own, "@brygga:localhost", WAIT, |e| {
            e.body().is_some_and(|b| b.contains("no longer bridged"))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(notice.body().unwrap().contains("turned encryption off"), "{notice:#?}");

    alice.send_text(&own, "alice after turning it off").await.unwrap();
    let refused = alice
        .next_event_where(&own, "@brygga:localhost", WAIT, |e| e.body().is_some_and(|b| b.contains("was not bridged")))
        .await
        .expect("a notice for alice's message");
    assert!(refused.body().unwrap().contains("@alice:localhost"), "{refused:#?}");
    env.remote.inject(NET, text("own", "o2", "bob", "bob after"));
    let kept_out = alice
        .next_event_where(&own, "@brygga:localhost", WAIT, |e| e.body().is_some_and(|b| b.contains("from bob")))
        .await
        .expect("a notice for bob's message");
    assert!(kept_out.body().unwrap().contains("was not bridged"), "{kept_out:#?}");
    assert!(!env.remote_got("alice after turning it off"));
    assert!(alice.received(&own, &bob).iter().all(|e| e.body() != Some("bob after")));
}

/// The bridge bot in an encrypted direct chat (as Element makes them): it
/// greets, reads commands and answers, all encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bot_answers_commands_in_an_encrypted_management_room() {
    let env = E2eeEnv::start("    matrix_admins: [\"@alice:localhost\"]\n").await;
    let alice = env.alice().await;
    let bot = "@brygga:localhost";
    let room = alice.create_encrypted_dm(bot).await.unwrap();
    let greeting = alice.next_event(&room, bot, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(greeting.was_encrypted(), "{greeting:#?}");
    assert!(greeting.body().unwrap().contains("I am the bridge bot"), "{greeting:#?}");

    alice.send_text(&room, "status fk").await.unwrap();
    let answer = alice.next_event(&room, bot, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(answer.was_encrypted(), "{answer:#?}");
    assert!(answer.body().unwrap().contains("loopback"), "{answer:#?}");
}

/// A clear portal room whose Matrix side turns encryption on later keeps
/// bridging, now encrypted, and its bridge info says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bridged_room_that_turns_encryption_on_keeps_bridging() {
    let env = E2eeEnv::start("").await;
    let alice = env.alice().await;
    let bot = "@brygga:localhost";
    let room = alice.create_room("later", &[bot]).await.unwrap();
    // The bot may set state (its bridge info) in Alice's room.
    let power = json!({"users": {bot: 50}, "users_default": 0, "events_default": 0,
        "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0});
    alice.send_state(&room, "m.room.power_levels", "", power).await.unwrap();
    let linked = env.bridge.cli(&["portal", "link", "fk", "loopback", "later", &room]);
    assert!(linked.contains("linked"), "{linked}");
    env.remote.inject(NET, text("later", "l1", "bob", "bob in clear"));
    let clear = alice.next_event(&room, &E2eeEnv::ghost("bob"), WAIT).await.unwrap();
    assert!(!clear.was_encrypted() && clear.body() == Some("bob in clear"), "{clear:#?}");

    alice.enable_encryption(&room).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = alice.state(&room, "m.bridge", "loopback/fk/later").await.unwrap();
        if info.as_ref().is_some_and(|i| i["io.brygga.encryption"] == "end-to-bridge") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "bridge info not updated: {info:?}\n{}", env.bridge.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    env.ghost_says(&alice, ("later", &room), ("bob", "l2"), "bob sealed now").await;
    alice.send_text(&room, "alice sealed now").await.unwrap();
    env.remote_gets("alice sealed now").await;
}
