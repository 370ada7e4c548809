use serde_json::json;

use super::*;

fn msg(value: serde_json::Value) -> RcMessage {
    RcMessage::from_value(&value).unwrap()
}

fn base() -> serde_json::Value {
    json!({"_id": "m1", "rid": "GENERAL", "msg": "hello *all*", "ts": {"$date": 1000},
           "u": {"_id": "u1", "username": "bob", "name": "Bob"}})
}

fn convert(memory: &mut Memory, value: serde_json::Value) -> Vec<InboundEvent> {
    let room = RemoteRoomId::new("GENERAL").unwrap();
    let mention = |u: &str| (u == "carol").then(|| "@rocketchat_t_carol:hs".to_owned());
    let ours = |u: &str| u.starts_with("matrix.");
    let echo = value["u"]["username"].as_str().is_some_and(ours);
    let ctx = Context { room: &room, mention: &mention, ours: &ours, echo, max_body_bytes: 64, file_owner: None };
    events(memory, &msg(value), &ctx)
}

#[test]
fn a_new_message_is_bridged_once() {
    let mut memory = Memory::default();
    let first = convert(&mut memory, base());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event_id.as_str(), "m1");
    assert_eq!(first[0].sender.id.as_str(), "bob");
    assert_eq!(first[0].sender.display_name.as_deref(), Some("Bob"));
    let EventBody::Message(m) = &first[0].body else { panic!("{:?}", first[0].body) };
    assert_eq!(m.text.body, "hello *all*");
    assert!(m.text.html.as_deref().unwrap().contains("<strong>all</strong>"));
    // The same message again (a thread count change, a catch-up overlap): nothing.
    assert!(convert(&mut memory, base()).is_empty());
}

#[test]
fn edits_and_reaction_changes_become_their_own_events() {
    let mut memory = Memory::default();
    convert(&mut memory, base());
    let mut edited = base();
    edited["msg"] = json!("fixed");
    edited["editedAt"] = json!({"$date": 2000});
    let events = convert(&mut memory, edited.clone());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id.as_str(), "m1/edit/2000");
    assert!(matches!(&events[0].body, EventBody::Edit { text, .. } if text.body == "fixed"));
    let mut reacted = edited.clone();
    reacted["reactions"] = json!({":tada:": {"usernames": ["carol"]}});
    reacted["_updatedAt"] = json!({"$date": 3000});
    let events = convert(&mut memory, reacted.clone());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].sender.id.as_str(), "carol");
    assert!(matches!(&events[0].body, EventBody::Reaction { key, removed: false, .. } if key == "🎉"));
    let mut unreacted = reacted;
    unreacted["reactions"] = json!({});
    unreacted["_updatedAt"] = json!({"$date": 4000});
    let events = convert(&mut memory, unreacted);
    assert!(matches!(&events[0].body, EventBody::Reaction { removed: true, .. }));
    assert_ne!(events[0].event_id, RemoteMessageId::new("m1").unwrap());
}

#[test]
fn deletions_threads_quotes_and_mentions() {
    let mut memory = Memory::default();
    let mut reply = base();
    reply["_id"] = json!("m2");
    reply["tmid"] = json!("m1");
    reply["msg"] = json!("[ ](https://c.example/channel/general?msg=m0) hi @carol");
    reply["attachments"] = json!([{"message_link": "https://c.example/channel/general?msg=m0", "text": "quoted"}]);
    let events = convert(&mut memory, reply.clone());
    let EventBody::Message(m) = &events[0].body else { panic!() };
    assert_eq!(m.thread_root.as_ref().map(|r| r.as_str()), Some("m1"));
    assert_eq!(m.reply_to.as_ref().map(|r| r.as_str()), Some("m0"));
    assert_eq!(m.text.body, "hi @carol");
    assert!(m.text.html.as_deref().unwrap().contains("matrix.to/#/@rocketchat_t_carol:hs"));
    reply["t"] = json!("rm");
    let events = convert(&mut memory, reply.clone());
    assert!(matches!(&events[0].body, EventBody::Redaction { target, .. } if target.as_str() == "m2"));
    assert!(convert(&mut memory, reply).is_empty(), "a deletion is bridged once");
}

#[test]
fn system_messages_map_to_membership_or_nothing() {
    let mut memory = Memory::default();
    let mut joined = base();
    joined["t"] = json!("uj");
    let events = convert(&mut memory, joined);
    assert!(matches!(events[0].body, EventBody::Membership { membership: Membership::Join, .. }));
    let mut added = base();
    added["_id"] = json!("m3");
    added["t"] = json!("au");
    added["msg"] = json!("dave");
    let events = convert(&mut memory, added);
    assert_eq!(events[0].sender.id.as_str(), "dave");
    let mut odd = base();
    odd["_id"] = json!("m4");
    odd["t"] = json!("room_changed_topic");
    assert!(convert(&mut memory, odd).is_empty());
}

#[test]
fn files_and_huge_texts() {
    let mut memory = Memory::default();
    let mut file = base();
    file["msg"] = json!("");
    file["file"] = json!({"_id": "f1", "name": "a.png", "type": "image/png", "size": 3});
    file["attachments"] = json!([{"title": "a.png", "title_link": "/file-upload/f1/a.png", "image_type": "image/png", "description": "look"}]);
    let events = convert(&mut memory, file);
    let EventBody::Message(m) = &events[0].body else { panic!() };
    assert_eq!(m.text.body, "look");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].mime, "image/png");
    assert_eq!(m.attachments[0].source, MediaSource::Remote { locator: "/file-upload/f1/a.png".into() });
    let mut huge = base();
    huge["_id"] = json!("m9");
    huge["msg"] = json!("é".repeat(100));
    let events = convert(&mut memory, huge);
    let EventBody::Message(m) = &events[0].body else { panic!() };
    assert!(m.text.body.len() <= 64 + '…'.len_utf8(), "{}", m.text.body.len());
}

#[test]
fn echoes_bridge_only_others_reactions() {
    let mut memory = Memory::default();
    let mut ours = base();
    ours["u"] = json!({"_id": "p1", "username": "matrix.alice.hs"});
    assert!(convert(&mut memory, ours.clone()).is_empty(), "our own message is not bridged back");
    ours["reactions"] = json!({":+1:": {"usernames": ["matrix.alice.hs", "bob"]}});
    ours["_updatedAt"] = json!({"$date": 5000});
    let events = convert(&mut memory, ours.clone());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].sender.id.as_str(), "bob");
    ours["editedAt"] = json!({"$date": 6000});
    assert!(convert(&mut memory, ours).is_empty(), "our own edit is not bridged back");
}

#[test]
fn empty_messages_are_not_bridged() {
    let mut memory = Memory::default();
    let mut empty = base();
    empty["msg"] = json!("  ");
    assert!(convert(&mut memory, empty).is_empty());
}
