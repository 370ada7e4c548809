//! The XMPP adapter against hostile input and next to other tenants: real
//! Prosody, real Synapse, the bridge as a process, slixmpp clients on the
//! XMPP side (sending raw XML where a well-behaved client would not).
//!
//! Everything an XMPP client sends passes through Prosody before the bridge's
//! component sees it. Prosody stamps the session's own JID as `from` on every
//! stanza a client sends and closes a client's stream on XML that is not
//! well-formed, so forged senders and broken XML are tested as what actually
//! reaches the component: stanzas from the (real) sender, and nothing at all.

use std::time::{Duration, Instant};

use brygga_e2e::env::Backend;
use brygga_e2e::matrix_user::enc;
use brygga_e2e::xmpp_env::{XmppEnv, ghost_id};
use brygga_e2e::xmpp_user::XmppUser;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// How long the bridge gets to act on something it should ignore.
const SETTLE: Duration = Duration::from_secs(3);

fn body_is(body: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "message" && e["body"] == body
}

/// The puppet JID (bare) of Matrix user `@<localpart>:localhost` for `tenant`.
fn puppet(tenant: &str, localpart: &str) -> String {
    format!("{localpart}\\3alocalhost@matrix-{tenant}.localhost")
}

/// The listener's JID of `tenant` (the component domain with its resource).
fn listener(tenant: &str) -> String {
    format!("matrix-{tenant}.localhost/bridge")
}

/// Escapes text for an XML attribute or text node.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// A raw `<message/>` with the given attributes' values escaped and `inner` as is.
fn raw_message(to: &str, kind: &str, id: Option<&str>, inner: &str) -> String {
    let id = id.map(|id| format!(" id='{}'", xml_escape(id))).unwrap_or_default();
    format!("<message to='{}' type='{kind}'{id}>{inner}</message>", xml_escape(to))
}

/// Asserts the bridge process is alive and its admin listener says it is healthy.
async fn assert_healthy(env: &XmppEnv) {
    let url = format!("{}/health", env.bridge.admin_url());
    let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("{url} unreachable: {e}\n{}", env.bridge.log()));
    assert!(response.status().is_success(), "{url} answered {}:\n{}", response.status(), env.bridge.log());
    let log = env.bridge.log();
    assert!(!log.contains("panicked"), "the bridge panicked:\n{log}");
}

/// A message crosses both ways in a group chat portal.
async fn crosses_both_ways(env: &XmppEnv, room: &str, muc: &str, user: &XmppUser, tag: &str) {
    let to_xmpp = format!("{tag}: matrix to xmpp");
    env.alice.send_text(room, &to_xmpp).await;
    let got = user.wait_for(WAIT, body_is(&to_xmpp)).await;
    assert!(got["from"].as_str().is_some_and(|f| f.starts_with(&format!("{muc}/"))), "{got}");
    let to_matrix = format!("{tag}: xmpp to matrix");
    user.send_groupchat(muc, &to_matrix).await;
    env.matrix_sees(room, &to_matrix).await;
}

/// The bridge is healthy and a group chat portal still works both ways.
async fn still_works(env: &XmppEnv, room: &str, muc: &str, user: &XmppUser, tag: &str) {
    assert_healthy(env).await;
    crosses_both_ways(env, room, muc, user, tag).await;
    assert_healthy(env).await;
}

/// A portal of tenant fk whose MUC Bob is in, with the bridge's listener and
/// Alice's puppet seated (Alice spoke first, and Bob saw it).
async fn portal_with_bob(env: &XmppEnv, muc: &str) -> (String, XmppUser) {
    let room = env.linked_room("fk", muc).await;
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let hello = format!("alice opens {muc}");
    env.alice.send_text(&room, &hello).await;
    bob.wait_for(WAIT, body_is(&hello)).await;
    (room, bob)
}

/// Polls everything `user` has seen (consumed or not) for an event matching `pred`.
async fn seen_within(user: &XmppUser, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
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
async fn bodies_from(env: &XmppEnv, room: &str, sender_prefix: &str) -> Vec<String> {
    env.alice
        .messages(room)
        .await
        .iter()
        .filter(|e| e["sender"].as_str().is_some_and(|s| s.starts_with(sender_prefix)))
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

/// Every user (sender or member) of a room's timeline that is a ghost of any tenant.
async fn ghosts_in(env: &XmppEnv, room: &str) -> Vec<String> {
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
async fn user_exists(env: &XmppEnv, user: &str) -> bool {
    let (status, _) = env.alice.raw(reqwest::Method::GET, &format!("/profile/{}", enc(user)), None).await;
    status == 200
}

/// Alice's pending invites as (room, inviter).
async fn invites(env: &XmppEnv) -> Vec<(String, String)> {
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
fn portal_rooms(env: &XmppEnv, tenant: &str) -> Vec<String> {
    let out = tokio::task::block_in_place(|| env.bridge.cli(&["portal", "list", tenant]));
    out.lines().filter_map(|l| l.split('\t').nth(1)).map(str::to_owned).collect()
}

/// The real JIDs of a room's occupants by nick, as Bob (an owner, so a
/// moderator who sees real JIDs) saw them in presence.
fn occupants_seen(user: &XmppUser, muc: &str) -> Vec<(String, String)> {
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

#[tokio::test(flavor = "multi_thread")]
async fn two_tenants_on_one_prosody_do_not_cross_talk() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk", "tv"]).await;
    let (fk_muc, tv_muc) = ("fk-only@conference.localhost", "tv-only@conference.localhost");
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    for muc in [fk_muc, tv_muc] {
        bob.join_muc(muc, "Bob").await;
    }
    let fk_room = env.linked_room("fk", fk_muc).await;
    let tv_room = env.linked_room("tv", tv_muc).await;
    assert_eq!(portal_rooms(&env, "fk"), [fk_muc]);
    assert_eq!(portal_rooms(&env, "tv"), [tv_muc]);

    // Matrix to XMPP: each room speaks into its own tenant's MUC only, from that tenant's puppet.
    for (room, muc, tenant, text) in
        [(&fk_room, fk_muc, "fk", "fk room to fk-only"), (&tv_room, tv_muc, "tv", "tv room to tv-only")]
    {
        env.alice.send_text(room, text).await;
        let got = bob.wait_for(WAIT, body_is(text)).await;
        assert_eq!(got["from"], format!("{muc}/alice"), "{text}: {got}");
        let jid = occupants_seen(&bob, muc).into_iter().find(|(nick, _)| nick == "alice").map(|(_, jid)| jid);
        assert_eq!(jid, Some(format!("{}/matrix", puppet(tenant, "alice"))), "who spoke in {muc}");
    }
    tokio::time::sleep(SETTLE).await;
    let seen = bob.events_seen();
    for text in ["fk room to fk-only", "tv room to tv-only"] {
        let copies: Vec<&Value> = seen.iter().filter(|e| body_is(text)(e)).collect();
        assert_eq!(copies.len(), 1, "{text} reached Bob {} times: {copies:?}", copies.len());
    }
    // Each tenant listens in its own room only.
    for (muc, ours, theirs) in [(fk_muc, "fk", "tv"), (tv_muc, "tv", "fk")] {
        let occupants = occupants_seen(&bob, muc);
        assert!(occupants.iter().any(|(_, j)| *j == listener(ours)), "{ours} does not listen in {muc}: {occupants:?}");
        let foreign: Vec<&(String, String)> =
            occupants.iter().filter(|(_, j)| j.contains(&format!("matrix-{theirs}.localhost"))).collect();
        assert!(foreign.is_empty(), "{theirs} sits in {muc}: {foreign:?}");
    }

    // XMPP to Matrix: a MUC reaches only the portal of the tenant bridging it.
    bob.send_groupchat(fk_muc, "bob in fk-only").await;
    bob.send_groupchat(tv_muc, "bob in tv-only").await;
    for (room, tenant, text) in [(&fk_room, "fk", "bob in fk-only"), (&tv_room, "tv", "bob in tv-only")] {
        let event = env.matrix_sees(room, text).await;
        let sender = event["sender"].as_str().unwrap();
        assert!(sender.starts_with(&format!("@xmpp_{tenant}_")), "{tenant}'s room got {text} from {sender}");
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bodies_from(&env, &fk_room, "@xmpp_").await, ["bob in fk-only"]);
    assert_eq!(bodies_from(&env, &tv_room, "@xmpp_").await, ["bob in tv-only"]);

    // One-to-one: a message to fk's puppet of Alice opens a DM for fk only, and one to tv's for tv only.
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    carol.send_chat(&puppet("fk", "alice"), "carol to alice via fk").await;
    let fk_carol = ghost_id("fk", "carol@localhost");
    let tv_carol = ghost_id("tv", "carol@localhost");
    let fk_dm = env.alice.wait_invite(&fk_carol, WAIT).await;
    env.alice.join(&fk_dm).await;
    let event = env.matrix_sees(&fk_dm, "carol to alice via fk").await;
    assert_eq!(event["sender"], fk_carol.as_str());
    tokio::time::sleep(SETTLE).await;
    assert!(!user_exists(&env, &tv_carol).await, "tenant tv made a ghost for a message to fk's puppet");
    assert!(invites(&env).await.is_empty(), "unexpected invites: {:?}", invites(&env).await);

    carol.send_chat(&puppet("tv", "alice"), "carol to alice via tv").await;
    let tv_dm = env.alice.wait_invite(&tv_carol, WAIT).await;
    assert_ne!(tv_dm, fk_dm);
    env.alice.join(&tv_dm).await;
    let event = env.matrix_sees(&tv_dm, "carol to alice via tv").await;
    assert_eq!(event["sender"], tv_carol.as_str());

    // Answers leave through the right tenant's puppet.
    env.alice.send_text(&fk_dm, "alice answers via fk").await;
    env.alice.send_text(&tv_dm, "alice answers via tv").await;
    let got = carol.wait_for(WAIT, body_is("alice answers via fk")).await;
    assert!(got["from"].as_str().unwrap().starts_with(&format!("{}/", puppet("fk", "alice"))), "{got}");
    let got = carol.wait_for(WAIT, body_is("alice answers via tv")).await;
    assert!(got["from"].as_str().unwrap().starts_with(&format!("{}/", puppet("tv", "alice"))), "{got}");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(carol.events_seen().iter().filter(|e| e["type"] == "message" && e["body"].is_string()).count(), 2);
    assert_eq!(bodies_from(&env, &fk_dm, "@xmpp_").await, ["carol to alice via fk"]);
    assert_eq!(bodies_from(&env, &tv_dm, "@xmpp_").await, ["carol to alice via tv"]);

    // No ghost of one tenant is ever in the other tenant's rooms.
    for (room, tenant) in [(&fk_room, "fk"), (&fk_dm, "fk"), (&tv_room, "tv"), (&tv_dm, "tv")] {
        let ghosts = ghosts_in(&env, room).await;
        let foreign: Vec<&String> = ghosts.iter().filter(|g| !g.starts_with(&format!("@xmpp_{tenant}_"))).collect();
        assert!(foreign.is_empty(), "{tenant}'s room {room} has other tenants' ghosts: {foreign:?}");
    }
    assert_healthy(&env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tenants_bridging_one_muc_each_sit_in_it_under_their_own_domain() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk", "tv"]).await;
    let muc = "both@conference.localhost";
    // Bob makes the room (so he owns it and, as a moderator, sees who is who).
    let bob = XmppUser::connect(&env.prosody, "bob", "bob-pw").await;
    bob.join_muc(muc, "Bob").await;
    let fk_room = env.linked_room("fk", muc).await;
    let tv_room = env.linked_room("tv", muc).await;

    // Each tenant's room speaks through its own puppet of Alice, once.
    for (room, tenant, text) in [(&fk_room, "fk", "fk room to both"), (&tv_room, "tv", "tv room to both")] {
        env.alice.send_text(room, text).await;
        let got = seen_within(&bob, WAIT, body_is(text)).await.unwrap_or_else(|| {
            panic!(
                "{text} never reached {muc} from tenant {tenant}'s puppet; occupants Bob saw: {:?}\n\
                 (a seat of {tenant}'s whose nick another tenant already holds cannot join; see the bridge log)",
                occupants_seen(&bob, muc)
            )
        });
        let nick = got["from"].as_str().unwrap().split_once('/').unwrap().1.to_owned();
        let occupants = occupants_seen(&bob, muc);
        let jid = occupants.iter().rev().find(|(n, _)| *n == nick).map(|(_, j)| j.clone());
        assert_eq!(jid, Some(format!("{}/matrix", puppet(tenant, "alice"))), "{text} came from {nick}: {occupants:?}");
    }
    // Both tenants listen, each under its own domain.
    let occupants = occupants_seen(&bob, muc);
    for tenant in ["fk", "tv"] {
        assert!(occupants.iter().any(|(_, j)| *j == listener(tenant)), "{tenant} does not listen: {occupants:?}");
    }
    tokio::time::sleep(SETTLE).await;
    for text in ["fk room to both", "tv room to both"] {
        let copies = bob.events_seen().iter().filter(|e| body_is(text)(e)).count();
        assert_eq!(copies, 1, "{text} reached Bob {copies} times");
    }

    // Bob's message reaches both portals, each from its own tenant's ghost,
    // and neither tenant bridges the other's puppet back as a ghost.
    bob.send_groupchat(muc, "bob in both").await;
    for (room, tenant) in [(&fk_room, "fk"), (&tv_room, "tv")] {
        let event = env.matrix_sees(room, "bob in both").await;
        let sender = event["sender"].as_str().unwrap();
        assert!(sender.starts_with(&format!("@xmpp_{tenant}_")), "{tenant}'s room got Bob's message from {sender}");
    }
    // Each tenant sees the other's puppet as just another occupant: what the
    // other tenant's room said may reach this room (once, from this tenant's
    // ghost), but no room gets its own words back.
    tokio::time::sleep(SETTLE).await;
    for (room, tenant, own, other) in
        [(&fk_room, "fk", "fk room to both", "tv room to both"), (&tv_room, "tv", "tv room to both", "fk room to both")]
    {
        let bodies = bodies_from(&env, room, "@xmpp_").await;
        let count = |text: &str| bodies.iter().filter(|b| *b == text).count();
        assert_eq!(count("bob in both"), 1, "Bob's message in {tenant}'s room: {bodies:?}");
        assert_eq!(count(own), 0, "{tenant}'s room got its own message back: {bodies:?}");
        assert!(count(other) <= 1, "{tenant}'s room got the other tenant's message twice: {bodies:?}");
        let ghosts = ghosts_in(&env, room).await;
        let foreign: Vec<&String> = ghosts.iter().filter(|g| !g.starts_with(&format!("@xmpp_{tenant}_"))).collect();
        assert!(foreign.is_empty(), "{tenant}'s room has other tenants' ghosts: {foreign:?}");
    }
    assert_healthy(&env).await;
}

// ---------------------------------------------------------------------------
// Hostile stanzas
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_body_is_refused_and_later_messages_still_cross() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "huge@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;

    // 200 KB: over the adapter's default max_body_bytes (48 KiB), under
    // Prosody's c2s stanza limit (256 KiB), so the room does pass it on.
    let huge = format!("huge-start {} huge-end", "x".repeat(200 * 1024));
    bob.send_groupchat(muc, &huge).await;
    bob.wait_for(WAIT, |e| e["type"] == "message" && e["body"].as_str().is_some_and(|b| b.starts_with("huge-start")))
        .await;
    // Just under the limit still crosses, whole.
    let big = format!("big-start {} big-end", "y".repeat(40 * 1024));
    bob.send_groupchat(muc, &big).await;
    bob.send_groupchat(muc, "after the huge one").await;
    env.matrix_sees(&room, "after the huge one").await;
    let bodies = bodies_from(&env, &room, "@xmpp_fk_").await;
    assert!(bodies.iter().all(|b| !b.starts_with("huge-start")), "the 200 KB body was bridged");
    assert_eq!(bodies.iter().filter(|b| **b == big).count(), 1, "the 40 KiB body did not cross whole, once");

    // The same in a one-to-one chat.
    let alice_puppet = puppet("fk", "alice");
    bob.send_chat(&alice_puppet, &huge).await;
    bob.send_chat(&alice_puppet, "after the huge direct one").await;
    let dm = env.alice.wait_invite(&ghost_id("fk", "bob@localhost"), WAIT).await;
    env.alice.join(&dm).await;
    env.matrix_sees(&dm, "after the huge direct one").await;
    assert_eq!(bodies_from(&env, &dm, "@xmpp_fk_").await, ["after the huge direct one"]);

    still_works(&env, &room, muc, &bob, "after huge bodies").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_payloads_and_odd_ids_do_not_disturb_bridging() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "odd@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;
    let alice_puppet = puppet("fk", "alice");
    let unknown = "<frobnicate xmlns='urn:example:hostile' level='9'><deep><deeper a='&amp;'/></deep></frobnicate>";
    let long_id = "l".repeat(5000);
    let odd_ids: [(&str, &str); 5] = [
        ("empty", ""),
        ("empty again", ""),
        ("long", &long_id),
        ("non-ascii", "ïd-ünïcødé-🦀-\u{202e}rtl"),
        ("markup", "id with spaces & <angle> 'quotes' /slash#hash"),
    ];

    // An unknown namespace next to a body: the body crosses. Alone: nothing does.
    bob.raw(&raw_message(muc, "groupchat", Some("u1"), &format!("{unknown}<body>unknown payload with body</body>")))
        .await;
    bob.raw(&raw_message(muc, "groupchat", Some("u2"), unknown)).await;
    bob.raw(&raw_message(&alice_puppet, "chat", Some("u3"), &format!("{unknown}<body>unknown payload direct</body>")))
        .await;
    bob.raw(&raw_message(&alice_puppet, "chat", Some("u4"), unknown)).await;
    // Odd `id`s and origin-ids, in the room and one to one.
    for (name, id) in odd_ids {
        let origin = format!("<origin-id xmlns='urn:xmpp:sid:0' id='{}'/>", xml_escape(id));
        let group = format!("<body>odd id {name}</body>{origin}");
        bob.raw(&raw_message(muc, "groupchat", Some(id), &group)).await;
        let direct = format!("<body>odd direct id {name}</body>{origin}");
        bob.raw(&raw_message(&alice_puppet, "chat", Some(id), &direct)).await;
    }
    // And no id at all.
    bob.raw(&raw_message(muc, "groupchat", None, "<body>no id at all</body>")).await;
    bob.raw(&raw_message(&alice_puppet, "chat", None, "<body>no direct id at all</body>")).await;
    bob.send_groupchat(muc, "odd ids done").await;
    bob.send_chat(&alice_puppet, "odd direct ids done").await;

    env.matrix_sees(&room, "odd ids done").await;
    let mut expected = vec!["unknown payload with body".to_owned()];
    expected.extend(odd_ids.iter().map(|(name, _)| format!("odd id {name}")));
    expected.extend(["no id at all".to_owned(), "odd ids done".to_owned()]);
    assert_eq!(bodies_from(&env, &room, "@xmpp_fk_").await, expected, "what Matrix saw in the room");

    let dm = env.alice.wait_invite(&ghost_id("fk", "bob@localhost"), WAIT).await;
    env.alice.join(&dm).await;
    env.matrix_sees(&dm, "odd direct ids done").await;
    let mut expected = vec!["unknown payload direct".to_owned()];
    expected.extend(odd_ids.iter().map(|(name, _)| format!("odd direct id {name}")));
    expected.extend(["no direct id at all".to_owned(), "odd direct ids done".to_owned()]);
    assert_eq!(bodies_from(&env, &dm, "@xmpp_fk_").await, expected, "what Matrix saw in the direct chat");

    // Alice's answer reaches Bob one to one, too.
    env.alice.send_text(&dm, "direct still works").await;
    bob.wait_for(WAIT, body_is("direct still works")).await;
    still_works(&env, &room, muc, &bob, "after odd ids").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_senders_are_rewritten_by_the_server_or_ignored_by_the_bridge() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "forged@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;
    let alice_puppet = puppet("fk", "alice");
    let bob_ghost = ghost_id("fk", "bob@localhost");

    // A client's `from` is never its own choice: Prosody stamps the session's
    // JID on whatever it claims (outside the component domain, the component
    // itself, another puppet), so all three arrive as Bob, to Alice's puppet.
    for (i, from) in ["mallory@evil.example/x", "matrix-fk.localhost", &puppet("fk", "carol")].iter().enumerate() {
        let xml = format!(
            "<message type='chat' from='{}' to='{}' id='forged-{i}'><body>forged direct {i}</body></message>",
            xml_escape(from),
            xml_escape(&alice_puppet)
        );
        bob.raw(&xml).await;
    }
    // Group chat messages that do not come from a room: typed groupchat,
    // straight to the listener and to a puppet's session, claiming an
    // occupant's JID and carrying a stanza id "by" Bob.
    for to in [listener("fk"), format!("{alice_puppet}/matrix")] {
        let xml = format!(
            "<message type='groupchat' from='{muc}/Mallory' to='{}' id='not-a-room'>\
             <body>groupchat not from a room</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged-sid'/></message>",
            xml_escape(&to)
        );
        bob.raw(&xml).await;
    }
    // An archive result nobody asked for, "from" the room in its forwarded copy.
    let forwarded = format!(
        "<result xmlns='urn:xmpp:mam:2' queryid='mam-1' id='forged-archive-id'>\
         <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/>\
         <message xmlns='jabber:client' type='groupchat' from='{muc}/Mallory' to='{}'>\
         <body>injected from a forged archive</body></message></forwarded></result>",
        listener("fk")
    );
    for (i, query) in ["mam-1", "mam-2", "mam-3"].iter().enumerate() {
        bob.raw(&raw_message(
            &listener("fk"),
            "normal",
            Some(&format!("mam-forge-{i}")),
            &forwarded.replace("mam-1", query),
        ))
        .await;
    }
    // Iq answers nobody asked for (a result and an error to ids the bridge uses).
    for id in ["disco-1", "disco-2", "mam-1", "barrier-1", "keepalive-1"] {
        bob.raw(&format!("<iq type='result' id='{id}' to='{}'/>", listener("fk"))).await;
        bob.raw(&format!(
            "<iq type='error' id='{id}' to='matrix-fk.localhost'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ))
        .await;
    }
    bob.send_groupchat(muc, "forgeries done in the room").await;
    bob.send_chat(&alice_puppet, "forgeries done one to one").await;

    // The direct chat is Bob's, with exactly what he sent, from his ghost.
    let dm = env.alice.wait_invite(&bob_ghost, WAIT).await;
    env.alice.join(&dm).await;
    env.matrix_sees(&dm, "forgeries done one to one").await;
    let senders: Vec<String> = env
        .alice
        .messages(&dm)
        .await
        .iter()
        .filter_map(|e| e["sender"].as_str().map(str::to_owned))
        .filter(|s| s.starts_with("@xmpp_"))
        .collect();
    assert!(senders.iter().all(|s| *s == bob_ghost), "senders in the direct chat: {senders:?}");
    assert_eq!(
        bodies_from(&env, &dm, "@xmpp_").await,
        ["forged direct 0", "forged direct 1", "forged direct 2", "forgeries done one to one"]
    );

    // Nothing forged reached the portal, and no other portal, room or ghost was made.
    env.matrix_sees(&room, "forgeries done in the room").await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bodies_from(&env, &room, "@xmpp_").await, ["forgeries done in the room"]);
    let mut portals = portal_rooms(&env, "fk");
    portals.sort();
    assert_eq!(
        portals,
        ["bob@localhost @alice:localhost".to_owned(), muc.to_owned()],
        "fk's portals: a groupchat-typed message sent straight to the component made a portal"
    );
    for ghost in [
        ghost_id("fk", "mallory@evil.example"),
        ghost_id("fk", "mallory@evil.example/x"),
        ghost_id("fk", &format!("{muc}/Mallory")),
        ghost_id("fk", bob.jid()),
        ghost_id("fk", "matrix-fk.localhost"),
    ] {
        assert!(!user_exists(&env, &ghost).await, "a forgery made the ghost {ghost}");
    }
    assert!(invites(&env).await.is_empty(), "unexpected invites: {:?}", invites(&env).await);
    still_works(&env, &room, muc, &bob, "after forgeries").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_known_extensions_is_ignored() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "garbage@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;
    bob.send_groupchat(muc, "anchor message").await;
    let anchor = env.matrix_sees(&room, "anchor message").await;

    let garbage = [
        // XEP-0308 without an id, and of a message nobody knows.
        "<body>replace without id</body><replace xmlns='urn:xmpp:message-correct:0'/>",
        "<body>replace of nothing</body><replace xmlns='urn:xmpp:message-correct:0' id='no-such-message'/>",
        // XEP-0444 without an id, of nothing, and empty.
        "<reactions xmlns='urn:xmpp:reactions:0'><reaction>👍</reaction></reactions>",
        "<reactions xmlns='urn:xmpp:reactions:0' id='no-such-message'><reaction>👎</reaction></reactions>",
        "<reactions xmlns='urn:xmpp:reactions:0' id=''><reaction/></reactions>",
        // XEP-0424 of nothing, without an id, and the older fastened draft without an id.
        "<retract xmlns='urn:xmpp:message-retract:1' id='no-such-message'/>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>",
        "<retract xmlns='urn:xmpp:message-retract:1'/>",
        "<apply-to xmlns='urn:xmpp:fasten:0'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>",
        "<retract xmlns='urn:xmpp:message-retract:1' id=''/>",
        // XEP-0461 to an empty id and to an unknown one, with nonsense fallback ranges.
        "<body>reply to nothing</body><reply xmlns='urn:xmpp:reply:0' id=''/>",
        "<body>reply to unknown</body><reply xmlns='urn:xmpp:reply:0' id='no-such-message' to='garbage@conference.localhost/Nobody'/>",
        "<body>bad fallback ranges</body><reply xmlns='urn:xmpp:reply:0' id='no-such-message'/>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='999' end='5'/>\
         <body start='-1' end='abc'/><body start='3' end='99999999999999999999999'/></fallback>",
        // Markers, receipts and chat states that name nothing or do not exist.
        "<displayed xmlns='urn:xmpp:chat-markers:0'/>",
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='no-such-message'/>",
        "<received xmlns='urn:xmpp:receipts' id=''/>",
        "<dancing xmlns='http://jabber.org/protocol/chatstates'/>",
        // A link that is no link.
        "<body>oob garbage</body><x xmlns='jabber:x:oob'><url>javascript:alert(1)</url></x><x xmlns='jabber:x:oob'/>",
    ];
    for (i, inner) in garbage.iter().enumerate() {
        bob.raw(&raw_message(muc, "groupchat", Some(&format!("garbage-{i}")), inner)).await;
    }
    bob.send_groupchat(muc, "garbage done").await;
    env.matrix_sees(&room, "garbage done").await;
    tokio::time::sleep(SETTLE).await;

    let timeline = env.alice.timeline(&room).await;
    // The anchor still stands; nothing was redacted, reacted to or edited.
    let anchor_now = timeline.iter().find(|e| e["event_id"] == anchor["event_id"]).expect("the anchor");
    assert_eq!(anchor_now["content"]["body"], "anchor message", "the anchor was redacted: {anchor_now}");
    let kinds: Vec<&str> = timeline
        .iter()
        .filter(|e| e["sender"].as_str().is_some_and(|s| s.starts_with("@xmpp_")))
        .filter_map(|e| e["type"].as_str())
        .filter(|t| *t != "m.room.message" && *t != "m.room.member")
        .collect();
    assert!(kinds.is_empty(), "garbage became Matrix events of kinds {kinds:?}");
    let edits: Vec<&Value> = timeline.iter().filter(|e| !e["content"]["m.new_content"].is_null()).collect();
    assert!(edits.is_empty(), "garbage became edits: {edits:?}");
    let replies: Vec<&Value> =
        timeline.iter().filter(|e| !e["content"]["m.relates_to"]["m.in_reply_to"].is_null()).collect();
    assert!(replies.is_empty(), "replies to nothing point somewhere: {replies:?}");
    // What a client ignorant of the broken extension would show: the bodies,
    // and a correction of an unknown message as a new, marked message.
    assert_eq!(
        bodies_from(&env, &room, "@xmpp_").await,
        [
            "anchor message",
            "replace without id",
            "* replace of nothing",
            "reply to nothing",
            "reply to unknown",
            "bad fallback ranges",
            "oob garbage",
            "garbage done"
        ]
    );
    still_works(&env, &room, muc, &bob, "after garbage").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_with_invalid_muc_status_codes_changes_nothing() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "codes@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;
    bob.send_groupchat(muc, "bob is here").await;
    let bob_ghost = env.matrix_sees(&room, "bob is here").await["sender"].as_str().unwrap().to_owned();
    let ghosts_before = ghosts_in(&env, &room).await;
    assert!(ghosts_before.contains(&bob_ghost), "{ghosts_before:?}");
    let alice_puppet = puppet("fk", "alice");
    let muc_user = "http://jabber.org/protocol/muc#user";
    let codes = "<status code='110'/><status code='307'/><status code='301'/><status code='303'/>\
                 <status code='abc'/><status code='-1'/><status code='99999999999'/><status/>";

    // To the room: the room builds the presence it broadcasts, so these reach
    // the bridge only as whatever the room makes of them.
    bob.raw(&format!(
        "<presence to='{muc}/Bob'><show>dnd</show><status>codes</status><x xmlns='{muc_user}'>{codes}\
         <item role='none' affiliation='outcast' nick='Evil' jid='{alice_puppet}/matrix'><reason>x</reason></item></x></presence>"
    ))
    .await;
    // Straight to the listener and to Alice's puppet session: "self-presence",
    // kicks, bans and nick changes, available, unavailable and as errors.
    for to in [listener("fk"), format!("{alice_puppet}/matrix"), "matrix-fk.localhost".to_owned()] {
        for kind in ["", " type='unavailable'", " type='error'", " type='subscribe'", " type='bogus'"] {
            bob.raw(&format!(
                "<presence to='{}'{kind}><x xmlns='{muc_user}'>{codes}<item nick='Renamed' role='none'/></x>\
                 <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
                xml_escape(&to)
            ))
            .await;
        }
    }
    bob.send_groupchat(muc, "presence done").await;
    env.matrix_sees(&room, "presence done").await;
    tokio::time::sleep(SETTLE).await;

    // Nobody was kicked, banned, renamed or made to leave on Matrix.
    let timeline = env.alice.timeline(&room).await;
    let changes: Vec<(String, String)> = timeline
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| Some((e["state_key"].as_str()?.to_owned(), e["content"]["membership"].as_str()?.to_owned())))
        .filter(|(_, m)| m != "invite" && m != "join")
        .collect();
    assert!(changes.is_empty(), "membership changed: {changes:?}");
    assert_eq!(ghosts_in(&env, &room).await, ghosts_before, "ghosts in the room");
    assert_eq!(bodies_from(&env, &room, "@xmpp_").await, ["bob is here", "presence done"]);
    // Alice's puppet is still seated under her nick: her message comes from it.
    env.alice.send_text(&room, "alice still seated").await;
    let got = bob.wait_for(WAIT, body_is("alice still seated")).await;
    assert_eq!(got["from"], format!("{muc}/alice"));
    still_works(&env, &room, muc, &bob, "after bad presence").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_in_one_room_does_not_hold_up_another() {
    const N: usize = 3000;
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let (flood_muc, quiet_muc) = ("flood@conference.localhost", "quiet@conference.localhost");
    let (flood_room, bob) = portal_with_bob(&env, flood_muc).await;
    let quiet_room = env.linked_room("fk", quiet_muc).await;
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    carol.join_muc(quiet_muc, "Carol").await;
    env.alice.send_text(&quiet_room, "alice opens the quiet room").await;
    carol.wait_for(WAIT, body_is("alice opens the quiet room")).await;

    // The whole flood in one write, as fast as the server takes it.
    let flood: String = (0..N)
        .map(|i| {
            raw_message(flood_muc, "groupchat", Some(&format!("flood-{i}")), &format!("<body>flood {i:04}</body>"))
        })
        .collect();
    bob.raw(&flood).await;
    let first = "flood 0000";
    env.matrix_sees(&flood_room, first).await;

    // Meanwhile the quiet room works both ways, promptly.
    let started = Instant::now();
    carol.send_groupchat(quiet_muc, "quiet room during the flood").await;
    env.matrix_sees(&quiet_room, "quiet room during the flood").await;
    let to_matrix = started.elapsed();
    let started = Instant::now();
    env.alice.send_text(&quiet_room, "alice answers during the flood").await;
    carol.wait_for(WAIT, body_is("alice answers during the flood")).await;
    let to_xmpp = started.elapsed();
    let bridged_so_far = latest_flood_index(&env, &flood_room).await;
    eprintln!(
        "during the flood (at flood {bridged_so_far:?}): XMPP to Matrix {to_matrix:?}, Matrix to XMPP {to_xmpp:?}"
    );
    assert!(to_matrix < Duration::from_secs(10), "the quiet room's message took {to_matrix:?} to reach Matrix");
    assert!(to_xmpp < Duration::from_secs(10), "the quiet room's answer took {to_xmpp:?} to reach XMPP");
    assert_healthy(&env).await;

    // The flood itself arrives whole, once, in order.
    let deadline = Instant::now() + Duration::from_secs(180);
    while latest_flood_index(&env, &flood_room).await != Some(N - 1) {
        assert!(
            Instant::now() < deadline,
            "the flood never finished: at {:?}",
            latest_flood_index(&env, &flood_room).await
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let expected: Vec<String> = (0..N).map(|i| format!("flood {i:04}")).collect();
    let got: Vec<String> =
        bodies_from(&env, &flood_room, "@xmpp_fk_").await.into_iter().filter(|b| b.starts_with("flood ")).collect();
    assert!(
        got == expected,
        "the flood arrived as {} messages, first differences: {:?}",
        got.len(),
        first_diff(&got, &expected)
    );
    still_works(&env, &quiet_room, quiet_muc, &carol, "after the flood").await;
    crosses_both_ways(&env, &flood_room, flood_muc, &bob, "flooded room after the flood").await;
}

/// The index of the newest flood message in the room, from its last page only.
async fn latest_flood_index(env: &XmppEnv, room: &str) -> Option<usize> {
    let path = format!("/rooms/{}/messages?dir=b&limit=20", enc(room));
    let (status, page) = env.alice.raw(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{page}");
    page["chunk"]
        .as_array()?
        .iter()
        .filter_map(|e| e["content"]["body"].as_str()?.strip_prefix("flood ")?.parse().ok())
        .max()
}

fn first_diff(got: &[String], expected: &[String]) -> Option<(usize, Option<String>, Option<String>)> {
    (0..got.len().max(expected.len()))
        .find(|&i| got.get(i) != expected.get(i))
        .map(|i| (i, got.get(i).cloned(), expected.get(i).cloned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_xml_from_a_client_closes_only_that_clients_stream() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "broken@conference.localhost";
    let (room, bob) = portal_with_bob(&env, muc).await;
    let dave = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    dave.join_muc(muc, "Dave").await;
    let carol = XmppUser::connect(&env.prosody, "carol", "carol-pw").await;
    carol.join_muc(muc, "Carol").await;
    dave.send_groupchat(muc, "dave before").await;
    env.matrix_sees(&room, "dave before").await;

    // Broken XML never reaches the component: Prosody's parser rejects it and
    // closes the offending client's stream, which is what we can check here.
    // Mismatched tags from Dave, a DTD with an entity (forbidden in XMPP) from Carol.
    dave.raw(&format!("<message to='{muc}' type='groupchat'><body>unclosed</message>")).await;
    carol.raw("<!DOCTYPE boom [<!ENTITY lol 'lol'>]><message><body>&lol;</body></message>").await;
    for (user, name) in [(&dave, "dave"), (&carol, "carol")] {
        user.wait_for(WAIT, |e| e["type"] == "disconnected").await;
        eprintln!("{name}'s stream was closed");
    }

    // Bob and the bridge carry on; nothing of the broken stanzas crossed.
    still_works(&env, &room, muc, &bob, "after invalid xml").await;
    let bodies = bodies_from(&env, &room, "@xmpp_").await;
    assert!(bodies.iter().all(|b| b != "unclosed" && b != "lol"), "broken XML crossed: {bodies:?}");

    // Dave can come back and speak again.
    let dave = XmppUser::connect(&env.prosody, "dave", "dave-pw").await;
    dave.join_muc(muc, "Dave").await;
    dave.send_groupchat(muc, "dave is back").await;
    env.matrix_sees(&room, "dave is back").await;
    assert_healthy(&env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_puppet_joining_a_room_never_comes_back_as_a_ghost() {
    let env = XmppEnv::start(Backend::Sqlite, &["fk"]).await;
    let muc = "echo@conference.localhost";
    // The listener joins with Alice's first message, her puppet right after it.
    let (room, bob) = portal_with_bob(&env, muc).await;
    bob.send_groupchat(muc, "bob speaks").await;
    let bob_ghost = env.matrix_sees(&room, "bob speaks").await["sender"].as_str().unwrap().to_owned();
    tokio::time::sleep(SETTLE).await;
    let mut named = Vec::new();
    for ghost in ghosts_in(&env, &room).await {
        let name = env.alice.profile(&ghost).await["displayname"].as_str().unwrap_or_default().to_owned();
        named.push((ghost, name));
    }
    // Bob is the only XMPP occupant who is not the bridge's own.
    assert_eq!(
        named,
        [(bob_ghost, "Bob".to_owned())],
        "ghosts in the portal; one named after Alice is her own puppet, bridged back as an XMPP occupant"
    );
}
