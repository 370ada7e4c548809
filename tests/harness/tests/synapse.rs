//! Starts a real Synapse (installed by `cargo xtask test`) with an appservice registered.

use brygga_harness::http;
use brygga_harness::synapse::{Synapse, SynapseOptions};
use serde_json::json;
use std::time::Instant;

const REGISTRATION: &str = r#"id: harness-test
url: "http://127.0.0.1:9"
as_token: "as_token_harness_test"
hs_token: "hs_token_harness_test"
sender_localpart: "harnessbot"
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: "@harness_.*:localhost"
  aliases: []
  rooms: []
"#;

#[test]
fn synapse_serves_clients_and_the_appservice() {
    let started = Instant::now();
    let hs = Synapse::start(SynapseOptions {
        registration_yaml: Some(REGISTRATION.to_owned()),
        relaxed_rate_limits: true,
        ..Default::default()
    })
    .unwrap();
    eprintln!("synapse ready on {} in {:?}", hs.base_url(), started.elapsed());
    assert_eq!(hs.server_name(), "localhost");
    assert!(hs.dir().join("homeserver.yaml").exists());

    let versions = http::get(&format!("{}/_matrix/client/versions", hs.base_url())).unwrap();
    assert_eq!(versions.status, 200);
    assert!(versions.json().unwrap()["versions"].as_array().is_some_and(|v| !v.is_empty()));

    let (user_id, token) = hs.register_user("alice", "alice-password").unwrap();
    assert_eq!(user_id, "@alice:localhost");
    let whoami_url = format!("{}/_matrix/client/v3/account/whoami", hs.base_url());
    let me = http::send_json("GET", &whoami_url, Some(&token), &json!({})).unwrap();
    assert_eq!(me.json().unwrap()["user_id"], "@alice:localhost", "{}", me.body);

    let bot = http::send_json("GET", &whoami_url, Some("as_token_harness_test"), &json!({})).unwrap();
    assert_eq!(bot.status, 200, "{}", bot.body);
    assert_eq!(bot.json().unwrap()["user_id"], "@harnessbot:localhost");

    // The exclusive namespace is the appservice's: ordinary registration inside it is refused.
    let err = hs.register_user("harness_ghost", "pw").unwrap_err();
    assert!(err.to_string().contains("M_EXCLUSIVE"), "{err}");
}

#[test]
fn synapse_stops_and_cleans_up_on_drop() {
    let hs = Synapse::start(SynapseOptions::default()).unwrap();
    let (dir, url) = (hs.dir().to_path_buf(), hs.base_url());
    drop(hs);
    assert!(!dir.exists());
    assert!(http::get(&format!("{url}/_matrix/client/versions")).is_err());
}
