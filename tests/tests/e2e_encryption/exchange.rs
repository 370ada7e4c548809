//! Everything a conversation holds crosses an encrypted portal both ways, in
//! a group room and in a direct chat a Matrix user opens with a ghost: text,
//! replies, edits, reactions, redactions and files. What the ghosts send
//! reaches Alice encrypted (redactions, which Matrix never encrypts, aside),
//! and what she sends reaches the remote side decrypted and mapped.

use brygga_core::{EventBody, OutboundEvent, RemoteMessageId, Text};
use brygga_e2e::e2ee_env::{E2eeEnv, NET, WAIT};
use brygga_e2e::e2ee_user::E2eeUser;
use brygga_e2e::env::events::{remote, rid};

use crate::files::files_cross_both_ways;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_group_portal_carries_replies_edits_reactions_redactions_and_files() {
    let env = E2eeEnv::start("").await;
    let alice = env.alice().await;
    let room = env.linked_encrypted_room(&alice, "group").await;
    converse(&env, &alice, ("group", &room)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_direct_chat_with_a_ghost_carries_everything_both_ways() {
    let env = E2eeEnv::start("").await;
    let alice = env.alice().await;
    let bob = E2eeEnv::ghost("bob");
    // As Element does: a direct chat is encrypted from its creation.
    let room = alice.create_encrypted_dm(&bob).await.expect("the direct chat");
    alice.wait_for_member(&room, &bob, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    let direct = format!("dm bob {}", alice.user_id());
    converse(&env, &alice, (&direct, &room)).await;
}

/// Both directions of a whole conversation, then files.
async fn converse(env: &E2eeEnv, alice: &E2eeUser, portal: (&str, &str)) {
    let hello = from_remote(env, alice, portal).await;
    from_matrix(env, alice, portal, &hello).await;
    files_cross_both_ways(env, alice, portal).await;
    let checked = alice.assert_all_encrypted(portal.1, &E2eeEnv::ghost("bob")).await;
    assert!(checked >= 5, "only {checked} encrypted events from the ghost");
}

/// Bob says hello, replies to it, edits it, reacts to it and takes his reply
/// back; Alice gets each, encrypted where Matrix encrypts, pointing at the
/// right event. Returns the hello's event id.
async fn from_remote(env: &E2eeEnv, alice: &E2eeUser, (remote_room, room): (&str, &str)) -> String {
    let bob = E2eeEnv::ghost("bob");
    let hello = env.ghost_says(alice, (remote_room, room), ("bob", "h"), "hello from bob").await.event_id;
    let next =
        || async { alice.next_event(room, &bob, WAIT).await.unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log())) };

    let mut reply = brygga_core::Message::text(Text::plain("bob replies"));
    reply.reply_to = Some(rid("h"));
    env.remote.inject(NET, remote(remote_room, "r", "bob", EventBody::Message(reply)));
    let got = next().await;
    assert!(got.was_encrypted() && got.body() == Some("bob replies"), "{got:#?}");
    assert_eq!(got.relation(), Some(("m.in_reply_to", hello.as_str())));
    let reply_id = got.event_id;

    let edit = EventBody::Edit { target: rid("h"), text: Text::plain("hello, edited") };
    env.remote.inject(NET, remote(remote_room, "e", "bob", edit));
    let got = next().await;
    assert!(got.was_encrypted(), "{got:#?}");
    assert_eq!(got.relation(), Some(("m.replace", hello.as_str())));
    assert_eq!(got.content["m.new_content"]["body"], "hello, edited");

    let reaction = EventBody::Reaction { target: rid("h"), key: "👍".into(), removed: false };
    env.remote.inject(NET, remote(remote_room, "x", "bob", reaction));
    let got = next().await;
    assert!(got.was_encrypted() && got.event_type == "m.reaction", "{got:#?}");
    assert_eq!(got.relation(), Some(("m.annotation", hello.as_str())));
    assert_eq!(got.content["m.relates_to"]["key"], "👍");

    let redaction = EventBody::Redaction { target: rid("r"), reason: None };
    env.remote.inject(NET, remote(remote_room, "d", "bob", redaction));
    let got = next().await;
    assert_eq!(got.event_type, "m.room.redaction", "{got:#?}");
    assert_eq!(got.redacts(), Some(reply_id.as_str()));
    hello
}

/// Alice replies to bob's hello, edits her reply, reacts to the hello, takes
/// the reaction back and redacts her reply; the remote side gets each in
/// order, pointing at the right remote message.
async fn from_matrix(env: &E2eeEnv, alice: &E2eeUser, (remote_room, room): (&str, &str), hello: &str) {
    let reply = alice.send_reply(room, hello, "alice replies").await.expect("reply");
    alice.send_edit(room, &reply, "alice replies, fixed").await.expect("edit");
    let reaction = alice.send_reaction(room, hello, "🎉").await.expect("reaction");
    alice.redact(room, &reaction, None).await.expect("reaction taken back");
    alice.redact(room, &reply, None).await.expect("reply redacted");

    let in_room = |sent: &[OutboundEvent]| -> Vec<OutboundEvent> {
        sent.iter()
            .filter(|e| e.room.as_str() == remote_room && !matches!(e.body, EventBody::Membership { .. }))
            .filter(|e| e.sender.user_id.as_str() == alice.user_id())
            .cloned()
            .collect()
    };
    env.remote.wait_for(NET, WAIT, "alice's five events", |sent| in_room(sent).len() >= 5).await;
    let all = env.remote.sent(NET);
    let sent = in_room(&all);
    let EventBody::Message(message) = &sent[0].body else { panic!("the reply first: {sent:#?}") };
    assert_eq!((message.text.body.as_str(), message.reply_to.as_ref()), ("alice replies", Some(&rid("h"))));
    let reply_remote = remote_id_of(&all, &sent[0]);
    let fixed = EventBody::Edit { target: reply_remote.clone(), text: Text::plain("alice replies, fixed") };
    assert_eq!(sent[1].body, fixed);
    assert_eq!(sent[2].body, EventBody::Reaction { target: rid("h"), key: "🎉".into(), removed: false });
    assert_eq!(sent[3].body, EventBody::Reaction { target: rid("h"), key: "🎉".into(), removed: true });
    assert_eq!(sent[4].body, EventBody::Redaction { target: reply_remote, reason: None });
}

/// The id the fake network gave `message`: it numbers the messages it gets
/// `rm-1`, `rm-2`, ... in arrival order.
fn remote_id_of(all: &[OutboundEvent], message: &OutboundEvent) -> RemoteMessageId {
    let messages = all.iter().filter(|e| matches!(e.body, EventBody::Message(_)));
    let position = messages.take_while(|e| e.txn_id != message.txn_id).count();
    rid(&format!("rm-{}", position + 1))
}
