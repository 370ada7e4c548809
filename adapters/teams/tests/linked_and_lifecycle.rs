//! A linked Teams account (edits, deletes and reactions both ways), the
//! subscription lifecycle (`missed`, `reauthorizationRequired`,
//! `subscriptionRemoved`) and a 429 storm, against the Graph double.

mod support;

use std::time::Duration;

use brygga_core::{
    Adapter, EventBody, MatrixSender, MatrixUserId, Message, OutboundEvent, RemoteMessageId, RemoteRoomId, Text,
};
use brygga_graph_double::{Draft, GraphDouble, LifecycleEvent, SentVia};
use support::{Bridge, eventually, eventually_for, room_of, subscribed};

fn event(room: &str, txn: &str, user: &str, body: EventBody<RemoteMessageId>) -> OutboundEvent {
    OutboundEvent {
        room: RemoteRoomId::new(room).unwrap(),
        txn_id: txn.into(),
        sender: MatrixSender { user_id: MatrixUserId::new(user).unwrap(), display_name: Some("Carol".into()) },
        target: None,
        target_remote: None,
        body,
        target_aliases: Vec::new(),
    }
}

fn id(s: &str) -> RemoteMessageId {
    RemoteMessageId::new(s).unwrap()
}

#[tokio::test]
async fn a_linked_user_sends_edits_reacts_and_deletes_as_themselves_both_ways() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, carol, relay) =
        (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Carol"), graph.add_user(&tenant, "Relay"));
    let chat = graph.add_chat(&tenant, Some("Ops"), &[&alice, &carol, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    let matrix_carol = MatrixUserId::new("@carol:hub.example").unwrap();
    let refresh = graph.refresh_token(&carol);
    adapter.link_with_refresh_token(&matrix_carol, &carol.id, &refresh).await.unwrap();
    // Kept sealed, never in the clear.
    let kept = bridge.state.get("account/@carol:hub.example").await.unwrap().unwrap();
    assert!(kept.contains("\"sealed\":\"v1:") && !kept.contains(&refresh), "{kept}");
    let room = room_of(&chat);
    let carol_says = |txn: &str, body| event(&room, txn, "@carol:hub.example", body);

    // Matrix to Teams, as Carol herself.
    let text = |s: &str| EventBody::Message(Message::text(Text::plain(s)));
    let sent = adapter.send(&carol_says("m1", text("from Carol"))).await.unwrap().remote_ids[0].to_string();
    let record = graph.message(&chat, &sent).unwrap();
    assert_eq!(record.via, SentVia::Delegated { user: carol.id.clone() });
    assert!(!record.content.contains("<b>Carol</b>"), "no relay name line: {}", record.content);
    adapter.send(&carol_says("m2", EventBody::Edit { target: id(&sent), text: Text::plain("fixed") })).await.unwrap();
    assert!(graph.message(&chat, &sent).unwrap().content.contains("fixed"));
    let like = EventBody::Reaction { target: id(&sent), key: "👍".into(), removed: false };
    adapter.send(&carol_says("m3", like)).await.unwrap();
    let reactions = graph.message(&chat, &sent).unwrap().reactions;
    assert_eq!((reactions[0].user.as_str(), reactions[0].reaction_type.as_str()), (carol.id.as_str(), "👍"));
    adapter.send(&carol_says("m4", EventBody::Redaction { target: id(&sent), reason: None })).await.unwrap();
    assert!(graph.message(&chat, &sent).unwrap().deleted.is_some());

    // Teams to Matrix: Alice writes, edits, reacts, deletes.
    let hers = graph.send(&alice, &chat, Draft::text("from Alice")).unwrap();
    eventually("Alice's message", || bridge.sink.texts().contains(&"from Alice".to_owned())).await;
    graph.edit(&alice, &chat, &hers, "from Alice, edited").unwrap();
    graph.react(&alice, &chat, &hers, "❤️").unwrap();
    eventually("Alice's edit and reaction", || {
        let edited = bridge
            .sink
            .matching(|e| matches!(&e.body, EventBody::Edit { text, .. } if text.body == "from Alice, edited"));
        let reacted =
            bridge.sink.matching(|e| matches!(&e.body, EventBody::Reaction { key, removed: false, .. } if key == "❤️"));
        edited.len() == 1 && reacted.len() == 1
    })
    .await;
    graph.unreact(&alice, &chat, &hers, "❤️").unwrap();
    eventually("Alice's unreaction", || {
        bridge.sink.matching(|e| matches!(&e.body, EventBody::Reaction { removed: true, .. })).len() == 1
    })
    .await;
    graph.delete(&alice, &chat, &hers).unwrap();
    eventually("Alice's delete", || {
        bridge
            .sink
            .matching(|e| matches!(&e.body, EventBody::Redaction { target, .. } if target.as_str() == hers))
            .len()
            == 1
    })
    .await;
    // Carol's own changes made from Matrix were not bridged back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let echoes = bridge.sink.matching(|e| {
        e.sender.id.as_str() == carol.id && !matches!(e.body, EventBody::Message(_)) && !e.body.is_ephemeral()
    });
    assert!(echoes.is_empty(), "echoes of Carol's own changes: {echoes:?}");
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn missed_notifications_are_caught_up_once_and_lifecycle_events_handled() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let team = graph.add_team(&tenant, "Agency", &[&alice, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&channel]).await;
    let adapter = bridge.start().await;
    let sub = subscribed(&graph, &tenant, 1).await[0]["id"].as_str().unwrap().to_owned();
    graph.send(&alice, &channel, Draft::text("live")).unwrap();
    eventually("the live message", || bridge.sink.texts() == ["live"]).await;

    graph.pause_notifications();
    for n in 0..3 {
        graph.send(&alice, &channel, Draft::text(format!("lost {n}"))).unwrap();
    }
    graph.resume_notifications();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bridge.sink.texts(), ["live"], "the dropped notifications did not arrive");
    graph.fire_lifecycle(&sub, LifecycleEvent::Missed).unwrap();
    eventually("the caught-up messages", || bridge.sink.texts() == ["live", "lost 0", "lost 1", "lost 2"]).await;

    graph.fire_lifecycle(&sub, LifecycleEvent::ReauthorizationRequired).unwrap();
    eventually("the reauthorized subscription", || {
        graph.subscriptions().iter().any(|s| s.id == sub && !s.needs_reauthorization)
    })
    .await;

    graph.pause_notifications();
    graph.fire_lifecycle(&sub, LifecycleEvent::SubscriptionRemoved).unwrap();
    graph.resume_notifications();
    graph.fire_lifecycle(&sub, LifecycleEvent::SubscriptionRemoved).ok();
    tokio::time::sleep(Duration::from_millis(200)).await;
    bridge.stop(&adapter).await;
    let adapter = bridge.start().await;
    let new = subscribed(&graph, &tenant, 1).await[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(new, sub);
    graph.send(&alice, &channel, Draft::text("after")).unwrap();
    eventually("a message through the new subscription", || bridge.sink.texts().len() == 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bridge.sink.texts(), ["live", "lost 0", "lost 1", "lost 2", "after"], "no loss, no duplicates");
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn a_subscription_removed_by_graph_is_made_again_and_caught_up() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    let sub = subscribed(&graph, &tenant, 1).await[0]["id"].as_str().unwrap().to_owned();
    graph.fire_lifecycle(&sub, LifecycleEvent::SubscriptionRemoved).unwrap();
    graph.send(&alice, &chat, Draft::text("while removed")).unwrap();
    eventually("a new subscription", || graph.subscriptions().iter().any(|s| s.id != sub)).await;
    eventually("the message said while it was gone", || bridge.sink.texts() == ["while removed"]).await;
    graph.send(&alice, &chat, Draft::text("after")).unwrap();
    eventually("a live message", || bridge.sink.texts() == ["while removed", "after"]).await;
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn subscriptions_are_renewed_before_they_expire() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let mut bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    bridge.config["subscription_minutes"] = serde_json::json!(1);
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    let first = graph.subscriptions()[0].clone();
    // Renewed in the last quarter of its minute, before it expires.
    eventually_for(Duration::from_secs(70), "a renewal", || {
        graph.subscriptions().iter().any(|s| s.id == first.id && s.expires > first.expires)
    })
    .await;
    assert!(chrono::Utc::now() < first.expires + chrono::Duration::seconds(1), "renewed only after expiry");
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(2)).await;
    graph.send(&alice, &chat, Draft::text("still subscribed")).unwrap();
    eventually("a message through the renewed subscription", || bridge.sink.texts() == ["still subscribed"]).await;
    assert_eq!(graph.subscriptions().len(), 1, "renewed, not made anew");
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn a_429_storm_costs_time_never_a_message() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    let room = room_of(&chat);
    graph.throttle_next(6, 1);
    for n in 0..3 {
        graph.send(&alice, &chat, Draft::text(format!("teams {n}"))).unwrap();
    }
    for n in 0..3 {
        let body = EventBody::Message(Message::text(Text::plain(format!("matrix {n}"))));
        adapter.send(&event(&room, &format!("s{n}"), "@dan:hub.example", body)).await.unwrap();
    }
    eventually("every Teams message", || bridge.sink.texts() == ["teams 0", "teams 1", "teams 2"]).await;
    let posted: Vec<String> = graph.messages(&chat).iter().map(|m| m.content.clone()).collect();
    for n in 0..3 {
        assert_eq!(posted.iter().filter(|c| c.contains(&format!("matrix {n}"))).count(), 1, "{posted:?}");
    }
    assert!(graph.stats().throttled >= 6);
    bridge.stop(&adapter).await;
}
