//! A Teams tenant configured with the app's certificate instead of a secret,
//! subscribed with encrypted resource data, end to end: real Synapse, the
//! bridge as a process, the Graph double. Messages from Teams reach Matrix
//! from the decrypted notifications (never read back with a GET), Matrix
//! messages reach Teams, and a batch with a bad validation token or
//! tampered content has no effect.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::teams_env::TeamsEnv;
use brygga_graph_double::{Draft, GraphDouble, SentVia, jwt};
use serde_json::{Value, json};

/// Graph reads of one message (what resource data saves).
fn single_gets(graph: &GraphDouble) -> u64 {
    let stats = graph.stats();
    ["GET /v1.0/teams/{team}/channels/{channel}/messages/{id}", "GET /v1.0/chats/{chat}/messages/{id}"]
        .iter()
        .map(|route| stats.requests.get(*route).copied().unwrap_or_default())
        .sum()
}

async fn post(url: &str, body: &Value) -> u16 {
    reqwest::Client::new().post(url).json(body).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_tenant_bridges_encrypted_notifications_and_ignores_forged_ones() {
    let env = TeamsEnv::start_with_certificate(Backend::Sqlite, &["fk"]).await;
    let agency = env.agency();
    let cert = env.certificate.as_ref().unwrap();
    let channel = env.channel(agency, "General");
    let chat = env.graph.add_chat(&agency.entra, Some("Coordination"), &[&agency.bob, &agency.carol, &agency.relay]);
    let room = env.link(agency, &channel, "general").await;
    let chat_room = env.link(agency, &chat, "coordination").await;
    let subs = env.graph.subscriptions();
    assert!(subs.iter().all(|s| s.encryption.as_ref().is_some_and(|e| e.der == cert.der)), "{subs:?}");
    let gets = single_gets(&env.graph);

    // Teams to Matrix from the encrypted resource data, in a channel and a chat.
    env.graph.send(&agency.bob, &channel, Draft::html("<p>hello from <b>Teams</b></p>")).unwrap();
    env.graph.send(&agency.carol, &chat, Draft::text("hello from the chat")).unwrap();
    env.matrix_sees(&room, "hello from Teams").await;
    env.matrix_sees(&chat_room, "hello from the chat").await;
    assert_eq!(single_gets(&env.graph), gets, "nothing was read back from Graph");

    // Matrix to Teams, through the relay (its token refreshed with a client assertion).
    env.alice.send_text(&room, "hello from matrix").await;
    let relayed = env.teams_sees(&channel, "Alice's message", |m| m.content.contains("hello from matrix")).await;
    assert_eq!(relayed.via, SentVia::Delegated { user: agency.relay.id.clone() });

    // A notification captured while delivery is paused, replayed forged: no effect.
    env.graph.pause_notifications();
    env.graph.send(&agency.bob, &channel, Draft::text("held back")).unwrap();
    let held = env.graph.deliveries().into_iter().last().unwrap().payload;
    env.graph.resume_notifications();
    let url = format!("{}/_brygga/webhook/fk/teams/notify", env.listener);
    let mut tampered = held.clone();
    let content = &mut tampered["value"][0]["encryptedContent"];
    let mut signature = content["dataSignature"].as_str().unwrap().to_owned();
    let other = if signature.as_bytes()[10] == b'A' { "B" } else { "A" };
    signature.replace_range(10..11, other);
    content["dataSignature"] = json!(signature);
    assert_eq!(post(&url, &tampered).await, 403, "tampered content");
    let token = jwt::parse(held["validationTokens"][0].as_str().unwrap()).unwrap();
    let mut forged = held.clone();
    forged["validationTokens"] = json!([jwt::sign(&cert.key, token.header.clone(), &token.claims)]);
    assert_eq!(post(&url, &forged).await, 403, "a validation token not signed by the identity platform");
    let mut claims = token.claims.clone();
    claims["aud"] = json!("another-app");
    forged["validationTokens"] = json!([jwt::sign(&brygga_graph_double::rich::issuer().key, token.header, &claims)]);
    assert_eq!(post(&url, &forged).await, 403, "a validation token for another app");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts = env.matrix_texts(&room).await;
    assert!(!texts.iter().any(|t| t.contains("held back")), "a forged batch had an effect: {texts:?}");

    // The genuine one is bridged, once.
    assert_eq!(post(&url, &held).await, 202);
    env.matrix_sees(&room, "held back").await;
    assert_eq!(post(&url, &held).await, 202, "a re-delivery is acknowledged");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let texts = env.matrix_texts(&room).await;
    assert_eq!(texts.iter().filter(|t| t.contains("held back")).count(), 1, "{texts:?}");
    assert_eq!(single_gets(&env.graph), gets);
}
