//! Tests of Matrix event parsing into canonical events.

use brygga_core::{EventBody, FileKey, MatrixEvent, MatrixFile, MediaSource, Membership, Text};
use serde_json::{Value, json};

use super::parse::{room_event, strip_reply_fallback};

fn parse(kind: &str, content: Value) -> Option<MatrixEvent> {
    parse_full(json!({
        "type": kind, "event_id": "$e", "room_id": "!r:hs", "sender": "@alice:hs",
        "origin_server_ts": 42, "content": content
    }))
}

fn parse_full(event: Value) -> Option<MatrixEvent> {
    let raw = serde_json::value::to_raw_value(&event).unwrap();
    room_event(&raw)
}

fn message(content: Value) -> brygga_core::Message<brygga_core::MatrixEventId> {
    match parse("m.room.message", content).expect("parsed").body {
        EventBody::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn text_notice_emote_and_html() {
    let m = message(json!({"msgtype": "m.text", "body": "hi *you*",
        "format": "org.matrix.custom.html", "formatted_body": "hi <em>you</em>"}));
    assert_eq!(m.text.body, "hi *you*");
    assert_eq!(m.text.html.as_deref(), Some("hi <em>you</em>"));
    assert!(!m.emote && !m.notice);
    assert!(message(json!({"msgtype": "m.notice", "body": "n"})).notice);
    let emote = message(json!({"msgtype": "m.emote", "body": "waves"}));
    assert!(emote.emote);
    assert_eq!(emote.text.html, None);
    let event = parse("m.room.message", json!({"msgtype": "m.text", "body": "x"})).unwrap();
    assert_eq!((event.origin_server_ts, event.sender.as_str()), (42, "@alice:hs"));
}

#[test]
fn replies_are_stripped_of_fallbacks() {
    let m = message(json!({
        "msgtype": "m.text",
        "body": "> <@bob:hs> original\n> second line\n\nmy answer",
        "format": "org.matrix.custom.html",
        "formatted_body": "<mx-reply><blockquote><a href=\"https://matrix.to/#/!r:hs/$orig\">In reply to</a> <a href=\"https://matrix.to/#/@bob:hs\">@bob:hs</a><br>original</blockquote></mx-reply>my <b>answer</b>",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}
    }));
    assert_eq!(m.reply_to.as_ref().map(|r| r.as_str()), Some("$orig"));
    assert_eq!(m.text.body, "my answer");
    assert_eq!(m.text.html.as_deref(), Some("my <b>answer</b>"));
    assert!(!m.text.body.contains("@bob") && !m.text.html.unwrap().contains("@bob"));
}

#[test]
fn quotes_without_fallback_shape_are_kept() {
    let kept = Text::plain("> just a quote");
    assert_eq!(strip_reply_fallback(kept.clone()), kept);
    let no_separator = Text::plain("> quote\nand text");
    assert_eq!(strip_reply_fallback(no_separator.clone()), no_separator);
    let plain = message(json!({"msgtype": "m.text", "body": "> quoted\n\nnot a reply"}));
    assert_eq!(plain.text.body, "> quoted\n\nnot a reply");
}

#[test]
fn threads_distinguish_fallback_from_real_replies() {
    let fallback = message(json!({"msgtype": "m.text", "body": "in thread", "m.relates_to": {
        "rel_type": "m.thread", "event_id": "$root",
        "is_falling_back": true, "m.in_reply_to": {"event_id": "$latest"}}}));
    assert_eq!(fallback.thread_root.as_ref().map(|r| r.as_str()), Some("$root"));
    assert_eq!(fallback.reply_to, None);
    let reply = message(json!({"msgtype": "m.text", "body": "answer", "m.relates_to": {
        "rel_type": "m.thread", "event_id": "$root", "m.in_reply_to": {"event_id": "$other"}}}));
    assert_eq!(reply.thread_root.as_ref().map(|r| r.as_str()), Some("$root"));
    assert_eq!(reply.reply_to.as_ref().map(|r| r.as_str()), Some("$other"));
}

#[test]
fn edits_use_new_content() {
    let event = parse("m.room.message", json!({
        "msgtype": "m.text", "body": "* fixed",
        "m.new_content": {"msgtype": "m.text", "body": "fixed", "format": "org.matrix.custom.html", "formatted_body": "<b>fixed</b>"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"}
    }))
    .unwrap();
    match event.body {
        EventBody::Edit { target, text } => {
            assert_eq!(target.as_str(), "$old");
            assert_eq!(text.body, "fixed");
            assert_eq!(text.html.as_deref(), Some("<b>fixed</b>"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn media_becomes_attachments() {
    let m = message(json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/abc",
        "info": {"mimetype": "image/png", "size": 1234}}));
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!((a.name.as_str(), a.mime.as_str(), a.size), ("cat.png", "image/png", Some(1234)));
    assert_eq!(a.source, MediaSource::Matrix(MatrixFile::plain("mxc://hs/abc")));
    assert_eq!(m.text.body, "");
    let captioned = message(json!({"msgtype": "m.file", "body": "see this", "filename": "r.pdf",
        "url": "mxc://hs/f"}));
    assert_eq!(captioned.attachments[0].name, "r.pdf");
    assert_eq!(captioned.attachments[0].mime, "application/octet-stream");
    assert_eq!(captioned.text.body, "see this");
    for kind in ["m.audio", "m.video"] {
        let m = message(json!({"msgtype": kind, "body": "clip", "url": "mxc://hs/c"}));
        assert_eq!(m.attachments.len(), 1, "{kind}");
    }
}

fn encrypted_file() -> Value {
    json!({"url": "mxc://hs/e", "key": {"kty": "oct", "key_ops": ["encrypt", "decrypt"], "alg": "A256CTR",
        "k": "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA", "ext": true}, "iv": "X85+XgHN+HEAAAAAAAAAAA",
        "hashes": {"sha256": "5qG4fFnbbVdlAB1Q72JDKwCagV6Dbkx9uds4rSak37c"}, "v": "v2"})
}

#[test]
fn encrypted_media_keeps_its_key() {
    let m = message(json!({"msgtype": "m.file", "body": "secret.bin", "file": encrypted_file(),
        "info": {"mimetype": "application/pdf", "size": 99}}));
    let a = &m.attachments[0];
    assert_eq!((a.name.as_str(), a.mime.as_str(), a.size), ("secret.bin", "application/pdf", Some(99)));
    let key = FileKey::new(
        "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA",
        "X85+XgHN+HEAAAAAAAAAAA",
        "5qG4fFnbbVdlAB1Q72JDKwCagV6Dbkx9uds4rSak37c",
    );
    assert_eq!(a.source, MediaSource::Matrix(MatrixFile::encrypted("mxc://hs/e", key)));
    let image = message(json!({"msgtype": "m.image", "body": "cat.png", "file": encrypted_file()}));
    let MediaSource::Matrix(file) = &image.attachments[0].source else { panic!("{image:?}") };
    assert!(file.is_encrypted());
}

#[test]
fn encrypted_media_with_a_garbled_key_is_named_not_dropped() {
    let mut short_key = encrypted_file();
    short_key["key"]["k"] = json!("c2hvcnQ");
    let mut no_hash = encrypted_file();
    no_hash["hashes"] = json!({});
    let mut no_iv = encrypted_file();
    no_iv.as_object_mut().unwrap().remove("iv");
    for file in [short_key, no_hash, no_iv, json!("not an object")] {
        let m = message(json!({"msgtype": "m.video", "body": "clip.mp4", "file": file}));
        assert!(m.attachments.is_empty(), "{m:?}");
        assert_eq!(m.text.body, "[file not bridged: clip.mp4]");
    }
    // A caption stays, with the file named after it.
    let mut no_hash = encrypted_file();
    no_hash["hashes"] = json!({});
    let m = message(json!({"msgtype": "m.file", "body": "see this", "filename": "r.pdf", "file": no_hash}));
    assert_eq!(m.text.body, "see this\n[file not bridged: r.pdf]");
    // Other invalid messages are still skipped.
    assert_eq!(parse("m.room.message", json!({"msgtype": "m.file", "body": 7})), None);
}

#[test]
fn reactions_and_redactions() {
    let event =
        parse("m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$t", "key": "👍"}}));
    assert_eq!(
        event.unwrap().body,
        EventBody::Reaction {
            target: brygga_core::MatrixEventId::new("$t").unwrap(),
            key: "👍".into(),
            removed: false
        }
    );
    let v11 = parse("m.room.redaction", json!({"redacts": "$gone", "reason": "oops"})).unwrap();
    assert!(matches!(v11.body, EventBody::Redaction { ref target, ref reason }
        if target.as_str() == "$gone" && reason.as_deref() == Some("oops")));
    let legacy = parse_full(json!({"type": "m.room.redaction", "event_id": "$e", "room_id": "!r:hs",
        "sender": "@a:hs", "origin_server_ts": 1, "redacts": "$old", "content": {}}))
    .unwrap();
    assert!(matches!(legacy.body, EventBody::Redaction { ref target, .. } if target.as_str() == "$old"));
    assert_eq!(parse("m.room.redaction", json!({})), None);
}

fn member(sender: &str, state_key: &str, content: Value) -> Option<MatrixEvent> {
    parse_full(json!({"type": "m.room.member", "event_id": "$m", "room_id": "!r:hs", "sender": sender,
        "state_key": state_key, "origin_server_ts": 1, "content": content}))
}

#[test]
fn membership_changes() {
    let join = member("@a:hs", "@a:hs", json!({"membership": "join", "displayname": "Anna"})).unwrap();
    assert_eq!(join.state_key.as_deref(), Some("@a:hs"));
    assert!(!join.direct);
    let dm = member("@a:hs", "@bot:hs", json!({"membership": "invite", "is_direct": true})).unwrap();
    assert!(dm.direct, "an invite into a direct chat says so");
    assert_eq!(
        join.body,
        EventBody::Membership { membership: Membership::Join, display_name: Some("Anna".into()), reason: None }
    );
    let leave = member("@a:hs", "@a:hs", json!({"membership": "leave"})).unwrap();
    assert!(matches!(leave.body, EventBody::Membership { membership: Membership::Leave, .. }));
    let kick = member("@mod:hs", "@a:hs", json!({"membership": "leave", "reason": "spam"})).unwrap();
    assert!(matches!(kick.body, EventBody::Membership { membership: Membership::Kick, .. }));
    let ban = member("@mod:hs", "@a:hs", json!({"membership": "ban"})).unwrap();
    assert!(matches!(ban.body, EventBody::Membership { membership: Membership::Ban, .. }));
    assert_eq!(member("@a:hs", "@a:hs", json!({"membership": "knock"})), None);
}

fn state(kind: &str, state_key: &str, content: Value) -> Option<MatrixEvent> {
    parse_full(json!({"type": kind, "event_id": "$s", "room_id": "!r:hs", "sender": "@a:hs",
        "state_key": state_key, "origin_server_ts": 1, "content": content}))
}

#[test]
fn room_names_and_topics() {
    let name = state("m.room.name", "", json!({"name": "Town hall"})).unwrap();
    assert_eq!(name.body, EventBody::RoomDetails { name: Some("Town hall".into()), topic: None });
    let topic = state("m.room.topic", "", json!({"topic": "Budget"})).unwrap();
    assert_eq!(topic.body, EventBody::RoomDetails { name: None, topic: Some("Budget".into()) });
    let cleared = state("m.room.topic", "", json!({})).unwrap();
    assert_eq!(cleared.body, EventBody::RoomDetails { name: None, topic: Some(String::new()) });
    assert_eq!(state("m.room.name", "x", json!({"name": "not the room's"})), None);
    assert_eq!(state("m.room.name", "", json!("not an object")), None);
}

#[test]
fn encryption_turned_on_and_off() {
    let on = state("m.room.encryption", "", json!({"algorithm": "m.megolm.v1.aes-sha2"})).unwrap();
    assert_eq!(on.body, EventBody::RoomEncryption { enabled: true });
    let off = state("m.room.encryption", "", json!({})).unwrap();
    assert_eq!(off.body, EventBody::RoomEncryption { enabled: false });
    let unknown = state("m.room.encryption", "", json!({"algorithm": "m.rot13"})).unwrap();
    assert_eq!(unknown.body, EventBody::RoomEncryption { enabled: false });
    assert_eq!(state("m.room.encryption", "x", json!({"algorithm": "m.megolm.v1.aes-sha2"})), None);
}

#[test]
fn unknown_and_broken_events_are_skipped() {
    assert_eq!(parse("m.room.topic", json!({"topic": "t"})), None, "a topic without a state key");
    assert_eq!(parse("m.room.message", json!({"body": 3})), None);
    assert_eq!(parse_full(json!({"type": "m.room.message"})), None);
    assert_eq!(parse_full(json!([1])), None);
}
