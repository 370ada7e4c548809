//! Self-test of the XMPP test kit: the harness's Prosody, its component port
//! and the slixmpp-driven `XmppUser`, without the bridge.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use brygga_e2e::xmpp_user::XmppUser;
use brygga_harness::prosody::{Prosody, ProsodyOptions, xmpp_venv_dir};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const COMPONENT: &str = "bridge.localhost";
const ROOM: &str = "lobby@conference.localhost";

fn options() -> ProsodyOptions {
    ProsodyOptions {
        components: vec![(COMPONENT.to_owned(), "component-secret".to_owned())],
        users: vec![("alice".to_owned(), "alice-pw".to_owned()), ("bob".to_owned(), "bob-pw".to_owned())],
        ..Default::default()
    }
}

fn message_with_body(body: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["type"] == "message" && e["body"] == body
}

#[tokio::test(flavor = "multi_thread")]
async fn prosody_and_xmpp_users_work_end_to_end() {
    let mut prosody = tokio::task::block_in_place(|| Prosody::start(options())).expect("Prosody starts");
    let alice = XmppUser::connect(&prosody, "alice", "alice-pw").await;
    let bob = XmppUser::connect(&prosody, "bob", "bob-pw").await;
    assert!(alice.jid().starts_with("alice@localhost/"));

    alice.join_muc(ROOM, "Alice").await;
    let joined = bob.join_muc(ROOM, "Bob").await;
    assert_eq!(joined["occupants"][0]["nick"], "Alice", "{joined}");

    // Groupchat: the room stamps its own stanza-id; the origin-id survives.
    let sent = alice.send_groupchat(ROOM, "hello room").await;
    let got = bob.wait_for(WAIT, message_with_body("hello room")).await;
    assert_eq!(got["from"], format!("{ROOM}/Alice"));
    assert_eq!(got["msg_type"], "groupchat");
    assert_eq!(got["origin_id"].as_str(), sent.origin_id.as_deref());
    let stanza_id = got["stanza_id"].as_str().expect("room stanza-id").to_owned();
    assert_eq!(got["stanza_ids"][0]["by"], ROOM);

    // Correction and reaction arrive parsed.
    alice.correct(ROOM, "groupchat", &sent.id, "hello room!").await;
    let fix = bob.wait_for(WAIT, message_with_body("hello room!")).await;
    assert_eq!(fix["replace_id"], sent.id.as_str());
    bob.react(ROOM, "groupchat", &stanza_id, &["👍", "🎉"]).await;
    let reaction = alice.wait_for(WAIT, |e| e["reactions"]["id"] == stanza_id.as_str()).await;
    assert_eq!(reaction["reactions"]["values"], json!(["👍", "🎉"]));

    // Direct chat, with the receipt slixmpp sends back by itself.
    let chat =
        alice.send(json!({ "to": bob.bare_jid(), "type": "chat", "body": "psst", "request_receipt": true })).await;
    let got = bob.wait_for(WAIT, message_with_body("psst")).await;
    assert_eq!((got["msg_type"].as_str(), got["receipt_request"].as_bool()), (Some("chat"), Some(true)));
    alice.wait_for(WAIT, |e| e["received_id"] == chat.id.as_str()).await;

    // HTTP upload: the GET URL serves the same bytes.
    let url = alice.upload(b"file body \x00\xff", "f.bin", "application/octet-stream").await;
    assert!(url.starts_with(&format!("http://127.0.0.1:{}/", prosody.http_port())), "{url}");
    let bytes = reqwest::get(&url).await.expect("GET upload").bytes().await.expect("body");
    assert_eq!(&bytes[..], b"file body \x00\xff");

    // The room archive has the messages with their stanza-ids.
    let archive = bob.mam_room(ROOM, 10).await;
    assert!(archive.iter().any(|m| m["stanza_id"] == stanza_id.as_str() && m["body"] == "hello room"), "{archive:?}");

    // A failing command is reported and the driver keeps going.
    assert!(alice.command("no_such_command", json!({})).await.is_err());
    assert!(alice.disco_info("conference.localhost").await.expect("disco")["features"].to_string().contains("muc"));

    component_handshakes(&prosody, &bob).await;

    // Restart on the same ports: streams drop, the data stays, users can log in again.
    tokio::task::block_in_place(|| prosody.restart(Duration::from_secs(5))).expect("restart");
    alice.wait_for(WAIT, |e| e["type"] == "disconnected").await;
    let alice = XmppUser::connect(&prosody, "alice", "alice-pw").await;
    alice.join_muc(ROOM, "Alice").await;
    let archive = alice.mam_room(ROOM, 10).await;
    assert!(archive.iter().any(|m| m["body"] == "hello room"), "archive lost over restart: {archive:?}");
    tokio::task::block_in_place(|| prosody.register("carol", "carol-pw")).expect("register while running");
    XmppUser::connect(&prosody, "carol", "carol-pw").await.quit().await;
}

/// A wrong secret is refused with not-authorized; the right one is accepted and
/// the component can address a user.
async fn component_handshakes(prosody: &Prosody, bob: &XmppUser) {
    let port = prosody.component_port();
    let (mut stream, _) = open_component_stream(port);
    stream.write_all(format!("<handshake>{}</handshake>", "0".repeat(40)).as_bytes()).unwrap();
    let reply = read_until(&mut stream, |t| t.contains("</stream:stream>"));
    assert!(reply.contains("not-authorized"), "wrong secret not refused: {reply}");

    let (mut stream, stream_id) = open_component_stream(port);
    let digest = sha1_hex(&format!("{stream_id}component-secret"));
    stream.write_all(format!("<handshake>{digest}</handshake>").as_bytes()).unwrap();
    let reply = read_until(&mut stream, |t| t.contains("<handshake/>") || t.contains("</stream:stream>"));
    assert!(reply.contains("<handshake/>"), "right secret refused: {reply}");
    let message = format!(
        "<message from='ghost@{COMPONENT}' to='{}' type='chat' id='c1'><body>from the component</body></message>",
        bob.bare_jid()
    );
    stream.write_all(message.as_bytes()).unwrap();
    let got = bob.wait_for(WAIT, message_with_body("from the component")).await;
    assert_eq!(got["from"], format!("ghost@{COMPONENT}"));
}

fn open_component_stream(port: u16) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("component port");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{COMPONENT}'>"
    );
    stream.write_all(header.as_bytes()).unwrap();
    // The header is complete once a '>' follows its start.
    let opening = read_until(&mut stream, |t| t.find("<stream:stream").is_some_and(|i| t[i..].contains('>')));
    let id = opening.split(" id=").nth(1).and_then(|s| s.get(1..)).and_then(|s| s.split(['\'', '"']).next());
    (stream, id.unwrap_or_else(|| panic!("no stream id in {opening}")).to_owned())
}

/// Reads until the text read so far satisfies `done`, or the peer closes or times out.
fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        if done(&text) {
            return text;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return text,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

/// SHA-1 in hex via the venv's Python, which the XMPP tests need anyway.
fn sha1_hex(input: &str) -> String {
    let mut child = Command::new(xmpp_venv_dir().join("bin/python"))
        .args(["-c", "import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_owned()
}
