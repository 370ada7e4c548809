//! The message map: Matrix events <-> remote messages, both ways.

use std::sync::Arc;

use brygga_core::{Direction, MappingKind, Store};

use super::{enqueue_new, entry, event, mapping, portal, remote_msg, tid};

/// Mappings resolve both ways, parts in order whatever the insert order.
pub async fn message_map_both_ways_ordered_by_part(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conf");
    // One Matrix event split into three remote messages.
    let seq = enqueue_new(&*store, entry(Direction::ToRemote, &p, "out-1")).await;
    let parts = vec![
        mapping(&p, "$long", "r-c", 2, MappingKind::Message),
        mapping(&p, "$long", "r-a", 0, MappingKind::Message),
        mapping(&p, "$long", "r-b", 1, MappingKind::Message),
    ];
    store.complete(seq, parts).await.unwrap();
    let by_matrix = store.messages_by_matrix(&tid("fk"), &event("$long")).await.unwrap();
    let remote: Vec<(String, u32)> = by_matrix.iter().map(|m| (m.remote_id.to_string(), m.part)).collect();
    assert_eq!(remote, [("r-a".into(), 0), ("r-b".into(), 1), ("r-c".into(), 2)]);
    assert!(by_matrix.iter().all(|m| m.portal == p && m.kind == MappingKind::Message));
    let back = store.messages_by_remote(&p, &remote_msg("r-b")).await.unwrap();
    assert_eq!(back, vec![mapping(&p, "$long", "r-b", 1, MappingKind::Message)]);

    // One remote message (text and an image) became two Matrix events.
    let seq = enqueue_new(&*store, entry(Direction::ToMatrix, &p, "in-1")).await;
    let parts = vec![
        mapping(&p, "$image", "m-1", 1, MappingKind::Message),
        mapping(&p, "$text", "m-1", 0, MappingKind::Message),
    ];
    store.complete(seq, parts).await.unwrap();
    let by_remote = store.messages_by_remote(&p, &remote_msg("m-1")).await.unwrap();
    let events: Vec<String> = by_remote.iter().map(|m| m.matrix_event.to_string()).collect();
    assert_eq!(events, ["$text", "$image"]);

    assert!(store.messages_by_remote(&p, &remote_msg("unknown")).await.unwrap().is_empty());
    assert!(store.messages_by_matrix(&tid("fk"), &event("$unknown")).await.unwrap().is_empty());
    let other_room = portal("fk", "xmpp", "other@conf");
    assert!(store.messages_by_remote(&other_room, &remote_msg("m-1")).await.unwrap().is_empty());
}

/// Reaction mappings keep their kind.
pub async fn reactions_keep_their_kind(store: Arc<dyn Store>) {
    let p = portal("fk", "rocketchat", "GENERAL");
    let seq = enqueue_new(&*store, entry(Direction::ToRemote, &p, "react-1")).await;
    let reaction = mapping(&p, "$reaction", "msg-9|@bob:hs|👍", 0, MappingKind::Reaction);
    store.complete(seq, vec![reaction.clone()]).await.unwrap();
    assert_eq!(store.messages_by_matrix(&tid("fk"), &event("$reaction")).await.unwrap(), vec![reaction.clone()]);
    assert_eq!(store.messages_by_remote(&p, &reaction.remote_id).await.unwrap(), vec![reaction]);
}

/// A message known by a second id is found by either, and the alias keeps its kind.
pub async fn aliases_map_to_the_same_event(store: Arc<dyn Store>) {
    let p = portal("fk", "xmpp", "room@conference.example");
    let seq = enqueue_new(&*store, entry(Direction::ToMatrix, &p, "stanza-1")).await;
    let message = mapping(&p, "$msg", "stanza-1", 0, MappingKind::Message);
    let alias = mapping(&p, "$msg", "room@conference.example/Bob#origin-1", 0, MappingKind::Alias);
    store.complete(seq, vec![message.clone(), alias.clone()]).await.unwrap();
    assert_eq!(store.messages_by_remote(&p, &alias.remote_id).await.unwrap(), vec![alias.clone()]);
    let mut by_event = store.messages_by_matrix(&tid("fk"), &event("$msg")).await.unwrap();
    by_event.sort_by_key(|m| m.kind.as_str());
    assert_eq!(by_event, vec![alias, message]);
}
