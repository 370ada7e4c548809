//! A tenant whose app proves itself with a certificate (no secret) and
//! subscribes with encrypted resource data: messages arrive without reading
//! them back from Graph, and forged or tampered batches have no effect.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brygga_core::{Adapter, EventBody, MatrixSender, MatrixUserId, Message, OutboundEvent, RemoteRoomId, Text};
use brygga_graph_double::certs::TestCertificate;
use brygga_graph_double::{Draft, GraphDouble, SentVia, jwt};
use serde_json::{Value, json};
use support::{Bridge, eventually, room_of};

const SINGLE_GETS: [&str; 2] = [
    "GET /v1.0/teams/{team}/channels/{channel}/messages/{id}",
    "GET /v1.0/teams/{team}/channels/{channel}/messages/{id}/replies/{reply}",
];

fn single_gets(graph: &GraphDouble) -> u64 {
    let stats = graph.stats();
    SINGLE_GETS.iter().map(|r| stats.requests.get(*r).copied().unwrap_or_default()).sum()
}

async fn post(url: &str, body: &Value) -> u16 {
    reqwest::Client::new().post(url).json(body).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_tenant_gets_encrypted_messages_and_refuses_forged_ones() {
    let graph = GraphDouble::start().await;
    graph.set_conversation_rate_limit(None);
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice Andersson");
    let relay = graph.add_user(&tenant, "Matrix Relay");
    let team = graph.add_team(&tenant, "Agency", &[&alice, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let cert = TestCertificate::generate("brygga bridge");
    graph.add_client_certificate(&cert.der);
    graph.remove_client_secrets();
    let pem = std::env::temp_dir().join(format!("brygga-teams-rd-{}.pem", std::process::id()));
    std::fs::write(&pem, format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();

    let mut bridge = Bridge::new(&graph, &tenant, &relay, &[&channel]).await;
    let config = bridge.config.as_object_mut().unwrap();
    config.remove("client_secret");
    config.insert("client_certificate_file".into(), json!(pem));
    config.insert("include_resource_data".into(), json!(true));
    let adapter = bridge.start().await;
    eventually("a subscription with resource data", || {
        graph.subscriptions().iter().any(|s| s.encryption.as_ref().is_some_and(|e| e.der == cert.der))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gets_before = single_gets(&graph);

    // Teams to the bridge from the encrypted content, a thread reply too: nothing is read back.
    let root = graph.send(&alice, &channel, Draft::html("<p>encrypted hello</p>")).unwrap();
    graph.reply(&alice, &channel, &root, Draft::text("encrypted reply")).unwrap();
    eventually("both messages", || bridge.sink.texts() == ["encrypted hello", "encrypted reply"]).await;
    assert_eq!(single_gets(&graph), gets_before, "the messages came from the resource data");

    // Sending from Matrix goes through the relay, whose token is refreshed with a client assertion.
    let event = OutboundEvent {
        room: RemoteRoomId::new(room_of(&channel)).unwrap(),
        txn_id: "t1".into(),
        sender: MatrixSender { user_id: MatrixUserId::new("@bob:hub.example").unwrap(), display_name: None },
        target: None,
        target_remote: None,
        body: EventBody::Message(Message::text(Text::plain("hi with a certificate"))),
        target_aliases: Vec::new(),
    };
    let receipt = adapter.send(&event).await.unwrap();
    let sent = graph.message(&channel, receipt.remote_ids[0].as_str()).unwrap();
    assert_eq!(sent.via, SentVia::Delegated { user: relay.id.clone() });

    // A batch captured while delivery is paused, then replayed forged.
    graph.pause_notifications();
    graph.send(&alice, &channel, Draft::html("<p>held back</p>")).unwrap();
    let held = graph.deliveries().into_iter().last().unwrap().payload;
    graph.resume_notifications();
    let url = format!("{}notify", bridge.hook_base);
    let mut tampered = held.clone();
    let mut data = STANDARD.decode(held["value"][0]["encryptedContent"]["data"].as_str().unwrap()).unwrap();
    data[0] ^= 1;
    tampered["value"][0]["encryptedContent"]["data"] = json!(STANDARD.encode(data));
    assert_eq!(post(&url, &tampered).await, 403, "tampered data");
    let token = jwt::parse(held["validationTokens"][0].as_str().unwrap()).unwrap();
    let mut forged = held.clone();
    forged["validationTokens"] = json!([jwt::sign(&cert.key, token.header.clone(), &token.claims)]);
    assert_eq!(post(&url, &forged).await, 403, "a token not signed by the identity platform");
    let mut expired = held.clone();
    let mut claims = token.claims.clone();
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    expired["validationTokens"] = json!([jwt::sign(&brygga_graph_double::rich::issuer().key, token.header, &claims)]);
    assert_eq!(post(&url, &expired).await, 403, "an expired token");
    let mut tokenless = held.clone();
    tokenless.as_object_mut().unwrap().remove("validationTokens");
    assert_eq!(post(&url, &tokenless).await, 403, "no token");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!bridge.sink.texts().iter().any(|t| t == "held back"), "{:?}", bridge.sink.texts());

    // The genuine batch is accepted.
    assert_eq!(post(&url, &held).await, 202);
    eventually("the genuine message", || bridge.sink.texts().iter().any(|t| t == "held back")).await;
    assert_eq!(single_gets(&graph), gets_before);
    std::fs::remove_file(pem).unwrap();
}

#[tokio::test]
async fn a_certificate_the_app_does_not_have_fails_the_start_with_a_clear_error() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let relay = graph.add_user(&tenant, "Relay");
    let cert = TestCertificate::generate("not registered");
    let pem = std::env::temp_dir().join(format!("brygga-teams-unregistered-{}.pem", std::process::id()));
    std::fs::write(&pem, format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();
    let mut bridge = Bridge::new(&graph, &tenant, &relay, &[]).await;
    let config = bridge.config.as_object_mut().unwrap();
    config.remove("client_secret");
    config.insert("client_certificate_file".into(), json!(pem));
    let err = bridge.try_start().await.err().expect("refused");
    assert!(err.to_string().contains("invalid_client AADSTS700027"), "{err}");
    assert!(!err.to_string().contains("BEGIN"), "no key material in errors: {err}");
    assert_eq!(bridge.health(), Some(brygga_core::Health::BadCredentials));
    std::fs::remove_file(pem).unwrap();
}
