//! The XMPP adapter against hostile input: real
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
use brygga_e2e::xmpp_checks::*;
use brygga_e2e::xmpp_env::{XmppEnv, ghost_id};
use brygga_e2e::xmpp_user::XmppUser;
use serde_json::Value;

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
