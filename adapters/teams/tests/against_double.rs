//! The Teams adapter against the Graph double, without Matrix: what it
//! pushes into the bridge, what it sends, and what its webhook refuses,
//! through the real code paths (tokens, subscriptions, notifications).

mod support;

use std::time::Duration;

use brygga_core::{Adapter, EventBody, MatrixSender, MatrixUserId, Message, OutboundEvent, RemoteRoomId, Text};
use brygga_graph_double::{Draft, GraphDouble, SentVia};
use serde_json::json;
use support::{Bridge, eventually, eventually_for, room_of, subscribed};

fn outbound(room: &str, txn: &str, user: &str, name: &str, text: &str) -> OutboundEvent {
    OutboundEvent {
        room: RemoteRoomId::new(room).unwrap(),
        txn_id: txn.into(),
        sender: MatrixSender { user_id: MatrixUserId::new(user).unwrap(), display_name: Some(name.into()) },
        target: None,
        target_remote: None,
        body: EventBody::Message(Message::text(Text::plain(text))),
        target_aliases: Vec::new(),
    }
}

#[tokio::test]
async fn messages_cross_both_ways_through_a_channel_subscription() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice Andersson");
    let relay = graph.add_user(&tenant, "Matrix Relay");
    let team = graph.add_team(&tenant, "Agency", &[&alice, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&channel]).await;
    let adapter = bridge.start().await;
    let subs = subscribed(&graph, &tenant, 1).await;
    assert_eq!(subs[0]["resource"], json!(format!("/{}", channel.resource().trim_start_matches('/'))));
    assert_eq!(subs[0]["changeType"], "created,updated,deleted");

    let id = graph.send(&alice, &channel, Draft::html("<p>hello <b>Matrix</b><script>x()</script></p>")).unwrap();
    eventually("Alice's message in the sink", || bridge.sink.texts() == ["hello Matrix"]).await;
    let stored = bridge.sink.matching(|e| matches!(e.body, EventBody::Message(_)));
    assert_eq!(stored[0].event_id.as_str(), id);
    assert_eq!(stored[0].sender.id.as_str(), alice.id);
    let EventBody::Message(message) = &stored[0].body else { unreachable!() };
    assert_eq!(message.text.html.as_deref(), Some("<p>hello <b>Matrix</b></p>"));

    let room = room_of(&channel);
    let receipt = adapter.send(&outbound(&room, "t1", "@bob:hub.example", "Bob", "hi from Matrix")).await.unwrap();
    let sent_id = receipt.remote_ids[0].to_string();
    let record = graph.message(&channel, &sent_id).expect("posted to the channel");
    assert_eq!(record.via, SentVia::Delegated { user: relay.id.clone() });
    assert!(record.content.contains("<b>Bob</b>") && record.content.contains("hi from Matrix"), "{}", record.content);
    // A retried send is answered from the kept receipt, not posted twice.
    let again = adapter.send(&outbound(&room, "t1", "@bob:hub.example", "Bob", "hi from Matrix")).await.unwrap();
    assert_eq!(again, receipt);
    assert_eq!(graph.messages(&channel).len(), 2);
    // The relay's own message is not bridged back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bridge.sink.texts(), ["hello Matrix"]);
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn forged_notifications_are_refused_without_effect() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice");
    let relay = graph.add_user(&tenant, "Relay");
    let chat = graph.add_chat(&tenant, Some("Ops"), &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    let subs = subscribed(&graph, &tenant, 1).await;
    let sub_id = subs[0]["id"].as_str().unwrap().to_owned();
    let id = graph.send(&alice, &chat, Draft::text("real")).unwrap();
    eventually("the real message", || bridge.sink.texts() == ["real"]).await;
    let before = bridge.sink.events.lock().unwrap().len();
    let http = reqwest::Client::new();
    let resource = format!("chats('{}')/messages('{id}')", room_of(&chat));
    for (sub, state) in [(sub_id.as_str(), "wrong-state"), ("unknown-subscription", "x"), (sub_id.as_str(), "")] {
        let body = json!({"value": [{"subscriptionId": sub, "clientState": state, "changeType": "updated",
                                     "resource": resource, "tenantId": tenant}]});
        let answer = http.post(format!("{}notify", bridge.hook_base)).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 403, "forged notification for {sub} with {state:?}");
    }
    let validation =
        http.post(format!("{}notify?validationToken=Validation%3A%20abc%2B1", bridge.hook_base)).send().await.unwrap();
    assert_eq!(validation.status(), 200);
    assert!(validation.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(validation.text().await.unwrap(), "Validation: abc+1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bridge.sink.events.lock().unwrap().len(), before);
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn a_restarted_bridge_catches_up_without_loss_or_duplicates() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice");
    let relay = graph.add_user(&tenant, "Relay");
    let team = graph.add_team(&tenant, "Agency", &[&alice, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&channel, &chat]).await;
    let adapter = bridge.start().await;
    let root = graph.send(&alice, &channel, Draft::text("before")).unwrap();
    eventually("the first message", || bridge.sink.texts() == ["before"]).await;
    bridge.stop(&adapter).await;

    // While the bridge is down: new messages, a thread reply, an edit, in both conversations.
    graph.send(&alice, &channel, Draft::text("down 1")).unwrap();
    graph.reply(&alice, &channel, &root, Draft::text("down reply")).unwrap();
    graph.edit(&alice, &channel, &root, "before (edited)").unwrap();
    graph.send(&alice, &chat, Draft::text("chat down")).unwrap();

    let adapter = bridge.start().await;
    eventually("the missed messages", || bridge.sink.texts().len() == 4).await;
    let mut texts = bridge.sink.texts();
    texts.sort();
    assert_eq!(texts, ["before", "chat down", "down 1", "down reply"]);
    let reply = bridge.sink.matching(|e| matches!(&e.body, EventBody::Message(m) if m.text.body == "down reply"));
    let EventBody::Message(m) = &reply[0].body else { unreachable!() };
    assert_eq!(m.thread_root.as_ref().map(|r| r.to_string()), Some(root.clone()));
    eventually("the missed edit", || {
        !bridge
            .sink
            .matching(|e| matches!(&e.body, EventBody::Edit { text, .. } if text.body == "before (edited)"))
            .is_empty()
    })
    .await;
    // Live again: a new message arrives once.
    graph.send(&alice, &chat, Draft::text("after")).unwrap();
    eventually("the live message", || bridge.sink.texts().len() == 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bridge.sink.texts().len(), 5, "no message pushed twice");
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn revoked_consent_is_reported_and_nothing_is_lost_once_it_is_granted_again() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice");
    let relay = graph.add_user(&tenant, "Relay");
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    eventually("connected", || bridge.health() == Some(brygga_core::Health::Connected)).await;

    // The tenant's admin withdraws consent; the app's tokens stop working.
    graph.revoke_consent(&tenant);
    graph.expire_tokens(&tenant);
    graph.send(&alice, &chat, Draft::text("during the outage")).unwrap();
    eventually("bad credentials", || bridge.health() == Some(brygga_core::Health::BadCredentials)).await;
    let shown = bridge.board.get(&bridge.tenant, &brygga_core::AdapterKind::new("teams").unwrap()).unwrap();
    assert!(shown.last_error.unwrap().contains("unauthorized_client"), "the reason is named");
    assert!(bridge.sink.texts().is_empty());

    graph.grant_consent(&tenant);
    eventually_for(Duration::from_secs(90), "the held message", || bridge.sink.texts() == ["during the outage"]).await;
    eventually("connected again", || bridge.health() == Some(brygga_core::Health::Connected)).await;
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn a_wrong_secret_fails_the_start_with_a_clear_error() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let relay = graph.add_user(&tenant, "Relay");
    let mut bridge = Bridge::new(&graph, &tenant, &relay, &[]).await;
    bridge.config["client_secret"] = json!("not-the-secret");
    let err = bridge.try_start().await.err().expect("refused");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert_eq!(bridge.health(), Some(brygga_core::Health::BadCredentials));
}
