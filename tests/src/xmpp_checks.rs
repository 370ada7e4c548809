//! Checks shared by the XMPP end-to-end tests of hostile input and of
//! several tenants: raw stanzas, health, and what each side has seen.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::matrix_user::enc;
use crate::xmpp_env::XmppEnv;
use crate::xmpp_user::XmppUser;

pub const WAIT: Duration = Duration::from_secs(30);
/// How long the bridge gets to act on something it should ignore.
pub const SETTLE: Duration = Duration::from_secs(3);

pub fn body_is(body: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "message" && e["body"] == body
}

/// The puppet JID (bare) of Matrix user `@<localpart>:localhost` for `tenant`.
pub fn puppet(tenant: &str, localpart: &str) -> String {
    format!("{localpart}\\3alocalhost@matrix-{tenant}.localhost")
}

/// The listener's JID of `tenant` (the component domain with its resource).
pub fn listener(tenant: &str) -> String {
    format!("matrix-{tenant}.localhost/bridge")
}

/// Escapes text for an XML attribute or text node.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// A raw `<message/>` with the given attributes' values escaped and `inner` as is.
pub fn raw_message(to: &str, kind: &str, id: Option<&str>, inner: &str) -> String {
    let id = id.map(|id| format!(" id='{}'", xml_escape(id))).unwrap_or_default();
    format!("<message to='{}' type='{kind}'{id}>{inner}</message>", xml_escape(to))
}

/// Asserts the bridge process is alive and its admin listener says it is healthy.
pub async fn assert_healthy(env: &XmppEnv) {
    let url = format!("{}/health", env.bridge.admin_url());
    let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("{url} unreachable: {e}\n{}", env.bridge.log()));
    assert!(response.status().is_success(), "{url} answered {}:\n{}", response.status(), env.bridge.log());
    let log = env.bridge.log();
    assert!(!log.contains("panicked"), "the bridge panicked:\n{log}");
}

/// A message crosses both ways in a group chat portal.
pub async fn crosses_both_ways(env: &XmppEnv, room: &str, muc: &str, user: &XmppUser, tag: &str) {
    let to_xmpp = format!("{tag}: matrix to xmpp");
    env.alice.send_text(room, &to_xmpp).await;
    let got = user.wait_for(WAIT, body_is(&to_xmpp)).await;
    assert!(got["from"].as_str().is_some_and(|f| f.starts_with(&format!("{muc}/"))), "{got}");
    let to_matrix = format!("{tag}: xmpp to matrix");
    user.send_groupchat(muc, &to_matrix).await;
    env.matrix_sees(room, &to_matrix).await;
}

/// The bridge is healthy and a group chat portal still works both ways.
pub async fn still_works(env: &XmppEnv, room: &str, muc: &str, user: &XmppUser, tag: &str) {
    assert_healthy(env).await;
    crosses_both_ways(env, room, muc, user, tag).await;
    assert_healthy(env).await;
}

/// A portal of tenant fk whose MUC Bob is in, with the bridge's listener and
/// Alice's puppet seated (Alice spoke first, and Bob saw it).
pub async fn portal_with_bob(env: &XmppEnv, muc: &str) -> (String, XmppUser) {
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let hello = format!("alice opens {muc}");
    env.alice.send_text(&room, &hello).await;
    bob.wait_for(WAIT, body_is(&hello)).await;
    (room, bob)
}

/// Polls everything `user` has seen (consumed or not) for an event matching `pred`.
pub async fn seen_within(user: &XmppUser, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(event) = user.events_seen().into_iter().find(|e| pred(e)) {
            return Some(event);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bodies of the room's messages sent by `sender_prefix` (e.g. a tenant's
/// ghost prefix), oldest first.
pub async fn bodies_from(env: &XmppEnv, room: &str, sender_prefix: &str) -> Vec<String> {
    env.alice
        .messages(room)
        .await
        .iter()
        .filter(|e| e["sender"].as_str().is_some_and(|s| s.starts_with(sender_prefix)))
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

/// Every user (sender or member) of a room's timeline that is a ghost of any tenant.
pub async fn ghosts_in(env: &XmppEnv, room: &str) -> Vec<String> {
    let mut ghosts: Vec<String> = env
        .alice
        .timeline(room)
        .await
        .iter()
        .flat_map(|e| [e["sender"].as_str(), e["state_key"].as_str()])
        .flatten()
        .filter(|u| u.starts_with("@xmpp_"))
        .map(str::to_owned)
        .collect();
    ghosts.sort();
    ghosts.dedup();
    ghosts
}

/// Whether the homeserver knows a user at all (ghosts are registered on first use).
pub async fn user_exists(env: &XmppEnv, user: &str) -> bool {
    let (status, _) = env.alice.raw(reqwest::Method::GET, &format!("/profile/{}", enc(user)), None).await;
    status == 200
}

/// Alice's pending invites as (room, inviter).
pub async fn invites(env: &XmppEnv) -> Vec<(String, String)> {
    let (status, sync) = env.alice.raw(reqwest::Method::GET, "/sync?timeout=0", None).await;
    assert_eq!(status, 200, "{sync}");
    let invites = sync["rooms"]["invite"].as_object().cloned().unwrap_or_default();
    invites
        .into_iter()
        .flat_map(|(room, state)| {
            let events = state["invite_state"]["events"].as_array().cloned().unwrap_or_default();
            events
                .into_iter()
                .filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "invite")
                .filter_map(|e| e["sender"].as_str().map(str::to_owned))
                .map(move |inviter| (room.clone(), inviter))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The remote rooms of a tenant's portals, from the CLI.
pub fn portal_rooms(env: &XmppEnv, tenant: &str) -> Vec<String> {
    let out = tokio::task::block_in_place(|| env.bridge.cli(&["portal", "list", tenant]));
    out.lines().filter_map(|l| l.split('\t').nth(1)).map(str::to_owned).collect()
}

/// The real JIDs of a room's occupants by nick, as Bob (an owner, so a
/// moderator who sees real JIDs) saw them in presence.
pub fn occupants_seen(user: &XmppUser, muc: &str) -> Vec<(String, String)> {
    user.events_seen()
        .iter()
        .filter(|e| e["type"] == "presence" && e["presence_type"] == "available")
        .filter(|e| e["from"].as_str().is_some_and(|f| f.starts_with(&format!("{muc}/"))))
        .filter_map(|e| Some((e["muc"]["nick"].as_str()?.to_owned(), e["muc"]["jid"].as_str()?.to_owned())))
        .collect()
}

// ---------------------------------------------------------------------------
// Two tenants on one Prosody
// ---------------------------------------------------------------------------
