//! What must survive a restart of the bridge: the reactions a message had
//! (so removals made while it was down are bridged), and posts whose answer
//! was lost (so a retried send does not post twice).

mod support;

use std::time::Duration;

use brygga_core::{
    Adapter, EventBody, InboundEvent, MatrixSender, MatrixUserId, Message, OutboundEvent, RemoteMessageId,
    RemoteRoomId, Text,
};
use brygga_graph_double::{Conversation, Draft, GraphDouble, SentVia};
use support::{Bridge, eventually, room_of, subscribed};

/// (user, key, removed) of each stored reaction event, in order.
fn reactions(events: &[InboundEvent]) -> Vec<(String, String, bool)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Reaction { key, removed, .. } => Some((e.sender.id.to_string(), key.clone(), *removed)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn reactions_removed_while_the_bridge_was_down_are_removed_once_after_it_restarts() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, bo, relay) =
        (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Bo"), graph.add_user(&tenant, "Relay"));
    let team = graph.add_team(&tenant, "Agency", &[&alice, &bo, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&channel]).await;
    let adapter = bridge.start().await;
    let id = graph.send(&alice, &channel, Draft::text("react to me")).unwrap();
    eventually("the message", || bridge.sink.texts() == ["react to me"]).await;
    graph.react(&alice, &channel, &id, "👍").unwrap();
    graph.react(&bo, &channel, &id, "❤️").unwrap();
    let stored = || reactions(&bridge.sink.events.lock().unwrap());
    eventually("both reactions", || stored().len() == 2).await;
    // Let the worker finish the second reaction's notification before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bridge.stop(&adapter).await;
    drop(adapter);

    // While the bridge is down: Alice takes hers back, Bo adds another.
    graph.unreact(&alice, &channel, &id, "👍").unwrap();
    graph.react(&bo, &channel, &id, "😮").unwrap();
    let adapter = bridge.start().await;
    eventually("the removal and the new reaction", || stored().len() == 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = stored();
    let (a, b) = (alice.id.clone(), bo.id.clone());
    // One read of a message pushes its reactions in no particular order.
    let sorted = |mut v: Vec<(String, String, bool)>| {
        v.sort();
        v
    };
    let first = vec![(a.clone(), "👍".to_owned(), false), (b.clone(), "❤️".to_owned(), false)];
    assert_eq!(sorted(all[..2].to_vec()), sorted(first));
    let expected = vec![(a.clone(), "👍".to_owned(), true), (b.clone(), "😮".to_owned(), false)];
    assert_eq!(sorted(all[2..].to_vec()), sorted(expected), "only what changed while down, once");
    let removal = bridge.sink.matching(|e| matches!(e.body, EventBody::Reaction { removed: true, .. }));
    let EventBody::Reaction { target, .. } = &removal[0].body else { unreachable!() };
    assert_eq!(target.as_str(), id, "the removal names the reacted message");

    // Live after the restart, and once more across a second restart.
    graph.unreact(&bo, &channel, &id, "❤️").unwrap();
    eventually("Bo's live removal", || stored().len() == 5).await;
    assert_eq!(stored()[4], (b.clone(), "❤️".into(), true));
    bridge.stop(&adapter).await;
    let adapter = bridge.start().await;
    graph.unreact(&bo, &channel, &id, "😮").unwrap();
    eventually("the last removal", || stored().len() == 6).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stored().len(), 6, "nothing bridged twice");
    assert_eq!(stored()[5], (b, "😮".into(), true));
    assert_eq!(bridge.state.get(&format!("reactions/{}/{id}", support::room_of(&channel))).await.unwrap(), None);
    bridge.stop(&adapter).await;
}

/// Bob (unlinked, so through the relay) says `text` in `conversation`, in the thread of `root` if any.
fn bob_says(conversation: &Conversation, txn: &str, text: &str, root: Option<&str>) -> OutboundEvent {
    let mut message = Message::text(Text::plain(text));
    message.thread_root = root.map(|r| RemoteMessageId::new(r).unwrap());
    OutboundEvent {
        room: RemoteRoomId::new(room_of(conversation)).unwrap(),
        txn_id: txn.into(),
        sender: MatrixSender {
            user_id: MatrixUserId::new("@bob:hub.example").unwrap(),
            display_name: Some("Bob".into()),
        },
        target: None,
        target_remote: None,
        body: EventBody::Message(message),
        target_aliases: Vec::new(),
    }
}

/// Ids of the relay's messages in `conversation`, as the bridge writes them, oldest first.
fn relay_posts(graph: &GraphDouble, conversation: &Conversation, relay: &str) -> Vec<String> {
    graph
        .messages(conversation)
        .into_iter()
        .filter(|m| m.via == SentVia::Delegated { user: relay.to_owned() })
        .map(|m| match m.reply_to {
            Some(root) => format!("{root}/{}", m.id),
            None => m.id,
        })
        .collect()
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_in_a_crash_is_adopted_by_the_retry_not_posted_again() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let team = graph.add_team(&tenant, "Agency", &[&alice, &relay]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let root = graph.send(&alice, &channel, Draft::text("a thread")).unwrap();
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&channel, &chat]).await;
    let mut adapter = bridge.start().await;
    subscribed(&graph, &tenant, 2).await;
    let places = [(&channel, None), (&channel, Some(root.as_str())), (&chat, None)];
    for (n, (conversation, thread)) in places.into_iter().enumerate() {
        let posts = || relay_posts(&graph, conversation, &relay.id);
        let before = posts().len();
        let event = bob_says(conversation, &format!("crash-{n}"), "see you at 12:30", thread);
        // Graph makes the message, but the bridge dies before it hears back.
        graph.leave_posts_unanswered(1);
        let sending = adapter.clone();
        let first = event.clone();
        let attempt = tokio::spawn(async move { sending.send(&first).await });
        eventually("the first attempt's message at Graph", || posts().len() == before + 1).await;
        attempt.abort();
        bridge.stop(&adapter).await;
        drop(adapter);

        // A new process retries the same transaction: it adopts the message.
        adapter = bridge.start().await;
        let receipt = adapter.send(&event).await.unwrap();
        let made = posts();
        assert_eq!(made.len(), before + 1, "posted once ({n})");
        assert_eq!(receipt.remote_ids[0].as_str(), made[before], "the retry answers with the message made ({n})");
        assert_eq!(adapter.send(&event).await.unwrap(), receipt, "and so does a further retry");
        // Someone says the same again later: a new message, not swallowed.
        let again = adapter.send(&bob_says(conversation, &format!("later-{n}"), "see you at 12:30", thread)).await;
        let made = posts();
        assert_eq!(made.len(), before + 2, "the later message is posted ({n})");
        assert_eq!(again.unwrap().remote_ids[0].as_str(), made[before + 1]);
    }
    bridge.stop(&adapter).await;
}

#[tokio::test]
async fn a_post_graph_never_made_is_made_once_by_the_retry_in_this_process_or_the_next() {
    let graph = GraphDouble::start().await;
    let tenant = graph.add_tenant();
    let (alice, relay) = (graph.add_user(&tenant, "Alice"), graph.add_user(&tenant, "Relay"));
    let chat = graph.add_chat(&tenant, None, &[&alice, &relay]);
    let bridge = Bridge::new(&graph, &tenant, &relay, &[&chat]).await;
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = || relay_posts(&graph, &chat, &relay.id);
    let lists = || graph.stats().requests.get("GET /v1.0/chats/{chat}/messages").copied().unwrap_or_default();

    // (Catch-up lists the chat at a start; count from here.)
    let listed = lists();
    // The normal path posts once and lists nothing.
    let normal = adapter.send(&bob_says(&chat, "n1", "hello", None)).await.unwrap();
    assert_eq!(posts(), [normal.remote_ids[0].to_string()]);
    assert_eq!(lists(), listed);

    // Throttled past the adapter's patience: Graph made nothing; the same
    // process retries without reconciling.
    // (More than the adapter's tries: other calls, like presence polls, may take some.)
    graph.throttle_next(100, 0);
    assert!(adapter.send(&bob_says(&chat, "n2", "hello", None)).await.is_err());
    graph.throttle_next(0, 0);
    assert_eq!(posts().len(), 1);
    let retried = adapter.send(&bob_says(&chat, "n2", "hello", None)).await.unwrap();
    assert_eq!(posts().len(), 2);
    assert_eq!(retried.remote_ids[0].as_str(), posts()[1], "not the earlier message with the same text");
    assert_eq!(lists(), listed);

    // The same, but the retry comes from a new process: it finds the
    // intent, looks, finds no message of that attempt, and posts.
    graph.throttle_next(100, 0);
    assert!(adapter.send(&bob_says(&chat, "n3", "hello", None)).await.is_err());
    graph.throttle_next(0, 0);
    bridge.stop(&adapter).await;
    drop(adapter);
    let adapter = bridge.start().await;
    subscribed(&graph, &tenant, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = lists();
    let third = adapter.send(&bob_says(&chat, "n3", "hello", None)).await.unwrap();
    assert_eq!(lists(), listed + 1, "the new process reconciled once");
    let made = posts();
    assert_eq!(made.len(), 3);
    assert_eq!(third.remote_ids[0].as_str(), made[2]);
    bridge.stop(&adapter).await;
}
