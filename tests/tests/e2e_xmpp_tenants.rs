//! Several tenants on one XMPP server: each with its own component domain,
//! their portals, puppets and ghosts never mix, and two tenants can bridge
//! the same group chat side by side (real Prosody and Synapse).

use brygga_e2e::env::Backend;
use brygga_e2e::xmpp_checks::*;
use brygga_e2e::xmpp_env::{XmppEnv, ghost_id};
use brygga_e2e::xmpp_user::XmppUser;
use serde_json::Value;

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
