use super::*;

const TEAM: &str = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b";

fn channel() -> Conversation {
    Conversation::Channel { team: TEAM.into(), channel: "19:c@thread.tacv2".into() }
}

fn parse(json: serde_json::Value) -> ChatMessage {
    serde_json::from_value(json).unwrap()
}

fn run(
    conversation: &Conversation,
    message: &ChatMessage,
    previous: Option<&BTreeSet<SeenReaction>>,
) -> (Vec<InboundEvent>, BTreeSet<SeenReaction>) {
    let pill = |aad: &str| Some(format!("@teams_t_{aad}:hub.example"));
    let hosted = |src: &str| src.starts_with("https://graph.microsoft.com/v1.0/") && src.contains("/hostedContents/");
    let ctx = MapCtx { conversation, relay_user: Some("aad-relay"), pill: &pill, hosted: &hosted };
    map_message(&ctx, message, previous)
}

fn ids(events: &[InboundEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.to_string()).collect()
}

#[test]
fn a_thread_reply_is_in_its_roots_thread() {
    let message = parse(serde_json::json!({
        "id": "200", "replyToId": "100", "messageType": "message",
        "from": {"user": {"id": "aad-bob", "displayName": "Bob"}},
        "body": {"contentType": "html", "content": "<p>hi <at id=\"0\">Ann</at></p>"},
        "mentions": [{"id": 0, "mentionText": "Ann", "mentioned": {"user": {"id": "aad-ann"}}}]
    }));
    let (events, _) = run(&channel(), &message, None);
    assert_eq!(ids(&events), vec!["100/200"]);
    assert_eq!(events[0].room.as_str(), format!("{TEAM}/19:c@thread.tacv2"));
    assert_eq!(events[0].sender.display_name.as_deref(), Some("Bob"));
    let EventBody::Message(body) = &events[0].body else { panic!("not a message") };
    assert_eq!(body.thread_root.as_ref().map(|r| r.as_str()), Some("100"));
    assert_eq!(body.text.body, "hi Ann");
    assert!(body.text.html.as_deref().unwrap().contains("https://matrix.to/#/@teams_t_aad-ann:hub.example"));
}

#[test]
fn edits_deletes_and_reactions_get_ids_of_their_own() {
    let mut json = serde_json::json!({
        "id": "100", "messageType": "message", "from": {"user": {"id": "aad-bob"}},
        "body": {"contentType": "text", "content": "fixed"},
        "lastEditedDateTime": "2026-01-01T10:00:00Z",
        "reactions": [{"reactionType": "like", "createdDateTime": "2026-01-01T10:01:00Z", "user": {"user": {"id": "aad-ann"}}}]
    });
    let (events, seen) = run(&channel(), &parse(json.clone()), None);
    assert_eq!(
        ids(&events),
        vec!["100", "100#edit@2026-01-01T10:00:00Z", "100#react:aad-ann:like@2026-01-01T10:01:00Z"]
    );
    assert!(matches!(&events[2].body, EventBody::Reaction { key, removed: false, .. } if key == "👍"));
    assert_eq!(events[2].sender.id.as_str(), "aad-ann");
    json["reactions"] = serde_json::json!([]);
    let (events, seen) = run(&channel(), &parse(json.clone()), Some(&seen));
    assert_eq!(ids(&events)[2], "100#unreact:aad-ann:like@2026-01-01T10:01:00Z");
    assert!(matches!(&events[2].body, EventBody::Reaction { removed: true, .. }));
    json["deletedDateTime"] = serde_json::json!("2026-01-01T11:00:00Z");
    let (events, _) = run(&channel(), &parse(json), Some(&seen));
    assert_eq!(ids(&events), vec!["100#deleted"]);
}

#[test]
fn the_relays_own_messages_are_not_bridged_back() {
    let message = parse(serde_json::json!({
        "id": "5", "from": {"user": {"id": "aad-relay"}}, "body": {"contentType": "text", "content": "Alice: hi"},
        "reactions": [{"reactionType": "❤️", "createdDateTime": "t", "user": {"user": {"id": "aad-bob"}}}]
    }));
    let (events, _) = run(&Conversation::Chat { chat: "19:x@thread.v2".into() }, &message, None);
    assert_eq!(ids(&events), vec!["5#react:aad-bob:❤️@t"]);
}

#[test]
fn inline_images_and_quotes_and_members() {
    let src = "https://graph.microsoft.com/v1.0/chats/19:x@thread.v2/messages/7/hostedContents/aWQ=/$value";
    let message = parse(serde_json::json!({
        "id": "7", "from": {"user": {"id": "aad-bob"}},
        "body": {"contentType": "html", "content": format!("<attachment id=\"6\"></attachment><p>see<img src=\"{src}\"></p>")},
        "attachments": [{"id": "6", "contentType": "messageReference"},
            {"id": "f", "contentType": "reference", "contentUrl": "https://contoso.sharepoint.com/a.docx", "name": "a.docx"}]
    }));
    let chat = Conversation::Chat { chat: "19:x@thread.v2".into() };
    let (events, _) = run(&chat, &message, None);
    let EventBody::Message(body) = &events[0].body else { panic!("not a message") };
    assert_eq!(body.reply_to.as_ref().map(|r| r.as_str()), Some("6"));
    assert_eq!(body.attachments.len(), 1);
    assert_eq!(body.attachments[0].source, MediaSource::Remote { locator: src.into() });
    assert_eq!(body.text.body, "see\na.docx: https://contoso.sharepoint.com/a.docx");
    let system = parse(serde_json::json!({
        "id": "8", "messageType": "systemEventMessage",
        "eventDetail": {"@odata.type": "#microsoft.graph.membersAddedEventMessageDetail", "members": [{"id": "aad-cy", "displayName": "Cy"}]}
    }));
    let (events, _) = run(&chat, &system, None);
    assert_eq!(ids(&events), vec!["8#member:aad-cy"]);
    assert!(matches!(events[0].body, EventBody::Membership { membership: Membership::Join, .. }));
}
