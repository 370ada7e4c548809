//! What must survive a restart of the bridge: the reactions a message had
//! (so removals made while it was down are bridged), and posts whose answer
//! was lost (so a retried send does not post twice).

mod support;

use std::time::Duration;

use brygga_core::{EventBody, InboundEvent};
use brygga_graph_double::{Draft, GraphDouble};
use support::{Bridge, eventually};

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
