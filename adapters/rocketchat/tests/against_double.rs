//! The adapter against the Rocket.Chat double, without Matrix: what it
//! pushes into the bridge and what it sends, through the real code paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::{
    Ack, Adapter, AdapterContext, AdapterFactory, BridgeError, EventBody, InboundEvent, InboundSink, MatrixMedia,
    MatrixSender, MatrixUserId, MediaBytes, Message, OutboundEvent, PortalDirectory, RemoteRoomId, TenantId, Text,
};
use brygga_rocketchat::RocketChatFactory;
use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use serde_json::json;

/// Keeps every push, repeats included: the adapter itself must not repeat.
#[derive(Default)]
struct Sink(Mutex<Vec<InboundEvent>>);

#[async_trait]
impl InboundSink for Sink {
    async fn push(&self, event: InboundEvent) -> Result<Ack, BridgeError> {
        self.0.lock().unwrap().push(event);
        Ok(Ack::Stored)
    }
}

impl Sink {
    fn texts(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Message(m) => Some(m.text.body.clone()),
                _ => None,
            })
            .collect()
    }
}

struct NoMedia;

#[async_trait]
impl MatrixMedia for NoMedia {
    async fn download(&self, _file: &brygga_core::MatrixFile) -> Result<MediaBytes, BridgeError> {
        Err(BridgeError::permanent("no media in this test"))
    }
}

struct Portals(Vec<RemoteRoomId>);

#[async_trait]
impl PortalDirectory for Portals {
    async fn rooms(&self) -> Result<Vec<RemoteRoomId>, BridgeError> {
        Ok(self.0.clone())
    }
}

struct Setup {
    rc: RocketChatDouble,
    bot: TestUser,
    bob: TestUser,
    rid: String,
    sink: Arc<Sink>,
    adapter: Arc<dyn Adapter>,
}

async fn setup() -> Setup {
    let rc = RocketChatDouble::start().await;
    let bot = rc.create_user_with_roles("bridge", &["admin", "bot", "user"]);
    let bob = rc.create_user("bob");
    let rid = rc.create_channel("general", &bob, &[&bot]);
    let config = json!({"url": rc.url(), "user_id": bot.id, "token": bot.token,
                        "create_tokens_secret": rc.create_tokens_secret()});
    RocketChatFactory.validate(&config).unwrap();
    let sink = Arc::new(Sink::default());
    let portals = Arc::new(Portals(vec![RemoteRoomId::new(rid.clone()).unwrap()]));
    let ctx = AdapterContext::new(TenantId::new("fk").unwrap(), config, sink.clone(), Arc::new(NoMedia))
        .with_portals(portals);
    let adapter = RocketChatFactory.build(ctx).unwrap();
    adapter.start().await.unwrap();
    let listening = rc
        .wait_for_subscription(&bot.id, "stream-notify-room", &format!("{rid}/deleteMessage"), Duration::from_secs(10))
        .await;
    assert!(listening);
    // The first catch-up marks where bridging starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Setup { rc, bot, bob, rid, sink, adapter }
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn outbound(rid: &str, txn: &str, text: &str) -> OutboundEvent {
    OutboundEvent {
        room: RemoteRoomId::new(rid).unwrap(),
        txn_id: txn.into(),
        sender: MatrixSender {
            user_id: MatrixUserId::new("@alice:hs.example").unwrap(),
            display_name: Some("Alice".into()),
        },
        target: None,
        target_remote: None,
        body: EventBody::Message(Message::text(Text::plain(text))),
        target_aliases: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_send_posts_the_message_once() {
    let s = setup().await;
    let event = outbound(&s.rid, "brygga.txn-1", "only once");
    let first = s.adapter.send(&event).await.unwrap();
    let again = s.adapter.send(&event).await.unwrap();
    assert_eq!(first, again, "the retry reports the same message");
    let copies: Vec<_> = s.rc.messages(&s.rid).into_iter().filter(|m| m.msg == "only once").collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].id, first.remote_ids[0].as_str());
    assert_eq!(copies[0].u["username"], "matrix.alice.hs.example");
    // The echo of our own message is not pushed back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.sink.texts().is_empty(), "{:?}", s.sink.texts());
    s.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_missed_while_disconnected_are_pushed_once_in_order() {
    let s = setup().await;
    s.rc.post_message(&s.bob, &s.rid, "live 1").unwrap();
    wait_until("the live message", || s.sink.texts() == ["live 1"]).await;
    s.rc.drop_realtime_connections();
    for i in 0..150 {
        s.rc.post_message(&s.bob, &s.rid, &format!("gap {i}")).unwrap();
    }
    let mut expected = vec!["live 1".to_owned()];
    expected.extend((0..150).map(|i| format!("gap {i}")));
    wait_until("the gap filled", || s.sink.texts().len() >= expected.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.sink.texts(), expected);
    s.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_within_a_send() {
    let s = setup().await;
    s.rc.force_rate_limited(3);
    let receipt = s.adapter.send(&outbound(&s.rid, "brygga.txn-429", "after the storm")).await.unwrap();
    assert_eq!(receipt.remote_ids.len(), 1);
    assert!(s.rc.rate_limited_responses() >= 3);
    assert_eq!(s.rc.messages(&s.rid).iter().filter(|m| m.msg == "after the storm").count(), 1);
    s.rc.assert_schemas_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_bot_token_fails_the_start_clearly_and_keeps_sends_queued() {
    let s = setup().await;
    let config = json!({"url": s.rc.url(), "user_id": s.bot.id, "token": "not-a-valid-token"});
    let ctx = AdapterContext::new(TenantId::new("fk").unwrap(), config, Arc::new(Sink::default()), Arc::new(NoMedia));
    let adapter = RocketChatFactory.build(ctx).unwrap();
    let err = adapter.start().await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("credentials"), "{err}");
    // A running adapter whose token is revoked keeps events for later.
    s.rc.revoke_all_tokens(&s.bot);
    let err = s.adapter.send(&outbound(&s.rid, "brygga.txn-401", "queued")).await.unwrap_err();
    assert!(matches!(err, BridgeError::Transient { retry_after: Some(_), .. }), "{err}");
}
