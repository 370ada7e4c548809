//! `SynapseOptions::appservice_encryption`: Synapse delivers to-device messages
//! and one-time-key counts for an appservice's ghost devices, and lets the
//! appservice create and masquerade as those devices.

use brygga_harness::http;
use brygga_harness::synapse::{Synapse, SynapseOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

const AS_TOKEN: &str = "as_token_encryption_test";
const GHOST: &str = "@harness_ghost:localhost";
const GHOST_DEVICE: &str = "GHOSTDEV";

fn registration(url: &str) -> String {
    format!(
        r#"id: harness-encryption
url: "{url}"
as_token: "{AS_TOKEN}"
hs_token: "hs_token_encryption_test"
sender_localpart: "harnessbot"
rate_limited: false
receive_ephemeral: true
org.matrix.msc3202: true
io.element.msc4190: true
namespaces:
  users:
    - exclusive: true
      regex: "@harness_.*:localhost"
  aliases: []
  rooms: []
"#
    )
}

/// Answers every request with `{}` and forwards transaction bodies.
fn serve_appservice(listener: TcpListener, transactions: Sender<Value>) {
    for stream in listener.incoming().flatten() {
        if let Some((path, body)) = read_request(&stream)
            && path.starts_with("/_matrix/app/v1/transactions/")
            && let Ok(value) = serde_json::from_slice(&body)
        {
            let _ = transactions.send(value);
        }
        let mut stream = stream;
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
    }
}

fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

/// The first transaction that `matches`, within 30 s.
fn wait_for_transaction(transactions: &Receiver<Value>, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let txn = transactions.recv_timeout(left).expect("a matching transaction within 30 s");
        if matches(&txn) {
            return txn;
        }
    }
}

fn call(hs: &Synapse, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = http::send_json(method, &format!("{}{path}", hs.base_url()), Some(token), body).unwrap();
    let value = response.json().unwrap_or(Value::Null);
    (response.status, value)
}

#[test]
fn ghost_devices_get_to_device_messages_and_key_counts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sender, transactions) = channel();
    std::thread::spawn(move || serve_appservice(listener, sender));
    let hs = Synapse::start(SynapseOptions {
        registration_yaml: Some(registration(&url)),
        appservice_encryption: true,
        ..Default::default()
    })
    .unwrap();
    let config = std::fs::read_to_string(hs.dir().join("homeserver.yaml")).unwrap();
    assert!(config.contains("msc2409_to_device_messages_enabled: true"), "{config}");

    // MSC4190: ghosts are registered without a device, then the appservice creates one.
    let register = json!({"type": "m.login.application_service", "username": "harness_ghost", "inhibit_login": true});
    let (status, body) = call(&hs, "POST", "/_matrix/client/v3/register", AS_TOKEN, &register);
    assert_eq!(status, 200, "{body}");
    let as_ghost = format!("user_id={}&device_id={GHOST_DEVICE}", GHOST.replace('@', "%40").replace(':', "%3A"));
    let device_path = format!("/_matrix/client/v3/devices/{GHOST_DEVICE}?{}", as_ghost.split('&').next().unwrap());
    let (status, body) = call(&hs, "PUT", &device_path, AS_TOKEN, &json!({"display_name": "ghost"}));
    assert!(status == 200 || status == 201, "{status} {body}");

    // MSC3202 device masquerading: the appservice acts as the ghost's device.
    let (status, me) = call(&hs, "GET", &format!("/_matrix/client/v3/account/whoami?{as_ghost}"), AS_TOKEN, &json!({}));
    assert_eq!((status, me["device_id"].as_str()), (200, Some(GHOST_DEVICE)), "{me}");
    let otks = json!({"one_time_keys": {"signed_curve25519:AAAAAQ": {"key": "a2V5", "signatures": {}}}});
    let (status, counts) = call(&hs, "POST", &format!("/_matrix/client/v3/keys/upload?{as_ghost}"), AS_TOKEN, &otks);
    assert_eq!((status, counts["one_time_key_counts"]["signed_curve25519"].as_u64()), (200, Some(1)), "{counts}");

    // MSC2409: a to-device message to the ghost's device reaches the appservice,
    // with the device's one-time-key count beside it.
    let (_, alice_token) = hs.register_user("alice", "alice-password").unwrap();
    let to_device = json!({"messages": {GHOST: {GHOST_DEVICE: {"ping": 1}}}});
    let (status, body) = call(&hs, "PUT", "/_matrix/client/v3/sendToDevice/m.test.ping/t1", &alice_token, &to_device);
    assert_eq!(status, 200, "{body}");
    let txn = wait_for_transaction(&transactions, |txn| {
        txn["de.sorunome.msc2409.to_device"].as_array().is_some_and(|messages| !messages.is_empty())
    });
    let message = &txn["de.sorunome.msc2409.to_device"][0];
    assert_eq!(message["type"], "m.test.ping", "{txn}");
    assert_eq!(message["to_user_id"], GHOST, "{txn}");
    assert_eq!(message["to_device_id"], GHOST_DEVICE, "{txn}");
    assert_eq!(message["content"]["ping"], 1, "{txn}");
    let count = &txn["org.matrix.msc3202.device_one_time_keys_count"][GHOST][GHOST_DEVICE]["signed_curve25519"];
    assert_eq!(count, 1, "{txn}");
}
