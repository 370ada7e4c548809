//! Linking a Teams account through the bridge bot end to end: a Matrix
//! user says `link teams` in a DM with the bot, signs in (the Graph double
//! approves the device code as a Teams user), and from then on their
//! messages reach Teams as that user with their delegated token; `unlink
//! teams` sends them through the relay again.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::MatrixUser;
use brygga_e2e::teams_env::{BOT, TeamsEnv, WAIT};
use brygga_graph_double::SentVia;

/// Waits for the bot's `n`th notice in a room (counting from 1); returns it.
async fn nth_notice(user: &MatrixUser, room: &str, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let notices: Vec<String> = user
            .timeline(room)
            .await
            .iter()
            .filter(|e| e["sender"] == BOT && e["content"]["msgtype"] == "m.notice")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect();
        if let Some(notice) = notices.get(n - 1) {
            return notice.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no notice #{n} from the bot; seen {notices:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matrix_user_links_their_teams_account_with_the_bot_and_then_speaks_as_themselves() {
    let env = TeamsEnv::start(Backend::Sqlite, &["fk"]).await;
    let agency = env.agency();
    let channel = env.channel(agency, "General");
    let room = env.link(agency, &channel, "general").await;
    let alice = &env.alice;

    let dm = alice.create_dm(BOT).await;
    nth_notice(alice, &dm, 1).await;
    alice.send_text(&dm, "link teams").await;
    let prompt = nth_notice(alice, &dm, 2).await;
    let codes = env.graph.pending_device_codes();
    assert_eq!(codes.len(), 1, "one sign-in waits: {codes:?}");
    assert!(prompt.contains(&codes[0]) && prompt.contains("https://microsoft.com/devicelogin"), "{prompt}");

    // Bob signs in with the code: the bot reports it.
    assert!(env.graph.complete_device_login(&codes[0], &agency.bob));
    let done = nth_notice(alice, &dm, 3).await;
    assert_eq!(done, "Linked: your messages now reach Teams as Bob Berg.");

    // Alice's message now reaches Teams as Bob, not through the relay.
    alice.send_text(&room, "now as myself").await;
    let sent = env.teams_sees(&channel, "Alice's linked message", |m| m.content.contains("now as myself")).await;
    assert_eq!(sent.via, SentVia::Delegated { user: agency.bob.id.clone() });
    assert_eq!(sent.from_user.as_deref(), Some(agency.bob.id.as_str()));

    // Unlinked again: the relay carries her messages, with her name.
    alice.send_text(&dm, "unlink teams").await;
    assert!(nth_notice(alice, &dm, 4).await.contains("unlinked"));
    alice.send_text(&room, "through the relay again").await;
    let relayed = env.teams_sees(&channel, "the relayed message", |m| m.content.contains("relay again")).await;
    assert_eq!(relayed.via, SentVia::Delegated { user: agency.relay.id.clone() });
    alice.send_text(&dm, "unlink teams").await;
    assert_eq!(nth_notice(alice, &dm, 5).await, "You have no linked Teams account.");

    // A declined sign-in is reported as a failure.
    alice.send_text(&dm, "link teams").await;
    nth_notice(alice, &dm, 6).await;
    let code = env.graph.pending_device_codes().pop().expect("a new sign-in waits");
    assert!(env.graph.decline_device_login(&code));
    let failed = nth_notice(alice, &dm, 7).await;
    assert!(failed.starts_with("Linking your Teams account failed"), "{failed}");
}
