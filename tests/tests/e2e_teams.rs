//! The Teams adapter end to end: the Graph double as Microsoft Graph,
//! real Synapse, the bridge as a process (Graph posting to its webhook
//! route) and a Matrix client.

use std::time::Duration;

use brygga_e2e::env::Backend;
use brygga_e2e::teams_env::{TeamsEnv, WAIT, ghost_id, room_of};
use brygga_graph_double::{Draft, LifecycleEvent, SentVia};
use serde_json::{Value, json};

fn find(timeline: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    timeline.iter().find(|e| pred(e))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_conversation_with_threads_edits_reactions_deletes_images_and_presence() {
    let env = TeamsEnv::start(Backend::Sqlite, &["fk"]).await;
    let agency = env.agency();
    let channel = env.channel(agency, "General");
    let room = env.link(agency, &channel, "general").await;

    // Teams to Matrix: Bob's ghost speaks, mentioning Carol, with hostile HTML stripped.
    let hostile = "<p>hello <b>Matrix</b> <a href=\"javascript:alert(1)\">x</a><img src=x onerror=alert(2)>\
                   <script>alert(3)</script></p>";
    let bob_id = env.graph.send(&agency.bob, &channel, Draft::html(hostile).with_mention(&agency.carol)).unwrap();
    let bob_event = env
        .alice
        .wait_timeline(&room, WAIT, "Bob's message", |t| {
            find(t, |e| e["content"]["body"].as_str().is_some_and(|b| b.starts_with("hello Matrix"))).is_some()
        })
        .await;
    let bob_event =
        find(&bob_event, |e| e["content"]["body"].as_str().is_some_and(|b| b.starts_with("hello"))).unwrap();
    assert_eq!(bob_event["sender"], ghost_id("fk", &agency.bob));
    let formatted = bob_event["content"]["formatted_body"].as_str().unwrap();
    assert!(formatted.contains("<b>Matrix</b>"), "{formatted}");
    for bad in ["javascript", "onerror", "<script", "alert(3)", "<img"] {
        assert!(!formatted.contains(bad), "{bad} reached Matrix: {formatted}");
    }
    assert!(formatted.contains(&format!("https://matrix.to/#/{}", ghost_id("fk", &agency.carol))), "{formatted}");
    let bob_event_id = bob_event["event_id"].as_str().unwrap().to_owned();

    // Matrix to Teams: Alice (not linked) speaks through the relay, named.
    let alice_event = env.alice.send_text(&room, "hello from matrix").await;
    let relayed = env.teams_sees(&channel, "Alice's message", |m| m.content.contains("hello from matrix")).await;
    assert_eq!(relayed.via, SentVia::Delegated { user: agency.relay.id.clone() });
    assert!(relayed.content.contains("alice"), "the sender is named: {}", relayed.content);

    // A thread reply in Teams is a Matrix thread; Alice's thread reply lands in the Teams thread.
    env.graph.reply(&agency.carol, &channel, &bob_id, Draft::text("carol in the thread")).unwrap();
    let reply = env.matrix_sees(&room, "carol in the thread").await;
    assert_eq!(reply["content"]["m.relates_to"]["rel_type"], "m.thread", "{reply}");
    assert_eq!(reply["content"]["m.relates_to"]["event_id"], bob_event_id.as_str());
    let thread = json!({"msgtype": "m.text", "body": "alice in the thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": bob_event_id, "is_falling_back": true,
                         "m.in_reply_to": {"event_id": bob_event_id}}});
    env.alice.send(&room, "m.room.message", thread).await;
    let threaded =
        env.teams_sees(&channel, "Alice's thread reply", |m| m.content.contains("alice in the thread")).await;
    assert_eq!(threaded.reply_to.as_deref(), Some(bob_id.as_str()));

    // Edits, reactions and deletes from Teams.
    env.graph.edit(&agency.bob, &channel, &bob_id, "<p>hello, edited</p>").unwrap();
    env.alice
        .wait_timeline(&room, WAIT, "Bob's edit", |t| {
            find(t, |e| e["content"]["m.new_content"]["body"] == "hello, edited").is_some()
        })
        .await;
    env.graph.react(&agency.bob, &channel, &relayed.id, "like").unwrap();
    env.alice
        .wait_timeline(&room, WAIT, "Bob's reaction", |t| {
            find(t, |e| {
                e["type"] == "m.reaction"
                    && e["content"]["m.relates_to"]["event_id"] == alice_event.as_str()
                    && e["content"]["m.relates_to"]["key"] == "👍"
            })
            .is_some()
        })
        .await;
    env.graph.delete(&agency.bob, &channel, &bob_id).unwrap();
    env.alice
        .wait_timeline(&room, WAIT, "Bob's delete", |t| {
            find(t, |e| {
                e["event_id"] == bob_event_id.as_str() && e["content"].as_object().is_some_and(|c| c.is_empty())
            })
            .is_some()
        })
        .await;

    // An inline image from Teams is re-uploaded to Matrix.
    let png = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    env.graph.send(&agency.carol, &channel, Draft::html("<p>look</p>").with_image(png.clone(), "image/png")).unwrap();
    let images = env
        .alice
        .wait_timeline(&room, WAIT, "Carol's image", |t| find(t, |e| e["content"]["msgtype"] == "m.image").is_some())
        .await;
    let image = find(&images, |e| e["content"]["msgtype"] == "m.image").unwrap();
    assert_eq!(env.alice.download(image["content"]["url"].as_str().unwrap()).await, png);

    // Presence of people in the portal is polled.
    env.graph.set_presence(&agency.carol, "Busy", "InAMeeting");
    let carol = ghost_id("fk", &agency.carol);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = env
            .alice
            .raw(reqwest::Method::GET, &format!("/presence/{}/status", brygga_e2e::matrix_user::enc(&carol)), None)
            .await;
        if status == 200 && body["presence"] == "unavailable" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "Carol's presence never showed: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Nothing echoes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let texts = env.matrix_texts(&room).await;
    assert_eq!(texts.iter().filter(|t| t.contains("hello from matrix")).count(), 1, "{texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_conversation_missed_notifications_and_a_bridge_down_for_a_while() {
    let mut env = TeamsEnv::start(Backend::Sqlite, &["fk"]).await;
    let (bob, carol, relay) = (env.agency().bob.clone(), env.agency().carol.clone(), env.agency().relay.clone());
    let chat = env.graph.add_chat(&env.agency().entra, Some("Ops"), &[&bob, &carol, &relay]);
    let room = env.link(env.agency(), &chat, "ops").await;
    let first = env.graph.send(&bob, &chat, Draft::text("first")).unwrap();
    env.matrix_sees(&room, "first").await;
    env.alice.send_text(&room, "from matrix").await;
    env.teams_sees(&chat, "Alice's chat message", |m| m.content.contains("from matrix")).await;

    // A Matrix file is offered to Teams as a link the bridge serves.
    let pdf = b"%PDF-1.4 a report".to_vec();
    let mxc = env.alice.upload(pdf.clone(), "application/pdf", "report.pdf").await;
    let file = json!({"msgtype": "m.file", "body": "report.pdf", "url": mxc,
                      "info": {"mimetype": "application/pdf", "size": pdf.len()}});
    env.alice.send(&room, "m.room.message", file).await;
    let linked = env.teams_sees(&chat, "Alice's file", |m| m.content.contains("report.pdf")).await;
    let href = linked.content.split("href=\"").nth(1).and_then(|h| h.split('"').next()).expect("a link");
    let fetched = reqwest::get(href.replace("&amp;", "&")).await.unwrap().bytes().await.unwrap();
    assert_eq!(fetched.to_vec(), pdf);

    // A 429 storm costs time, never a message, either way.
    env.graph.throttle_next(8, 1);
    env.graph.send(&bob, &chat, Draft::text("during the storm")).unwrap();
    env.alice.send_text(&room, "matrix in the storm").await;
    env.matrix_sees(&room, "during the storm").await;
    env.teams_sees(&chat, "Alice in the storm", |m| m.content.contains("matrix in the storm")).await;

    // Graph drops notifications, then says it missed some: caught up once.
    let sub = env.wait_subscribed(&chat).await;
    env.graph.pause_notifications();
    for n in 0..3 {
        env.graph.send(&bob, &chat, Draft::text(format!("missed {n}"))).unwrap();
    }
    env.graph.resume_notifications();
    env.graph.fire_lifecycle(&sub, LifecycleEvent::Missed).unwrap();
    env.matrix_sees(&room, "missed 2").await;

    // reauthorizationRequired is answered.
    env.graph.fire_lifecycle(&sub, LifecycleEvent::ReauthorizationRequired).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.graph.subscriptions().iter().any(|s| s.id == sub && s.needs_reauthorization) {
        assert!(tokio::time::Instant::now() < deadline, "never reauthorized");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A reaction taken back while the bridge is down is removed after it.
    env.graph.react(&bob, &chat, &first, "like").unwrap();
    let is_like = |e: &Value| e["type"] == "m.reaction" && e["content"]["m.relates_to"]["key"] == "👍";
    let timeline = env.alice.wait_timeline(&room, WAIT, "Bob's reaction", |t| find(t, is_like).is_some()).await;
    let like = find(&timeline, is_like).unwrap()["event_id"].as_str().unwrap().to_owned();

    // The bridge is down for a while: Teams goes on, and it catches up after.
    env.bridge.kill();
    env.graph.pause_notifications();
    for n in 0..5 {
        env.graph.send(&carol, &chat, Draft::text(format!("while down {n}"))).unwrap();
    }
    env.graph.unreact(&bob, &chat, &first, "like").unwrap();
    env.graph.resume_notifications();
    env.bridge.start().await;
    env.matrix_sees(&room, "while down 4").await;
    env.alice
        .wait_timeline(&room, WAIT, "the reaction removed", |t| {
            find(t, |e| e["event_id"] == like.as_str() && e["content"].as_object().is_some_and(|c| c.is_empty()))
                .is_some()
        })
        .await;
    env.graph.send(&bob, &chat, Draft::text("back")).unwrap();
    env.matrix_sees(&room, "back").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts: Vec<String> = env
        .matrix_texts(&room)
        .await
        .into_iter()
        .filter(|t| !t.contains("from matrix") && !t.contains("report.pdf") && !t.contains("storm"))
        .collect();
    let expected: Vec<String> = ["first", "missed 0", "missed 1", "missed 2"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..5).map(|n| format!("while down {n}")))
        .chain(["back".to_owned()])
        .collect();
    assert_eq!(texts, expected, "no loss, no duplicates, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tenants_do_not_cross_and_forged_notifications_have_no_effect() {
    let env = TeamsEnv::start(Backend::Sqlite, &["fk", "sk"]).await;
    let (a, b) = (&env.agencies[0], &env.agencies[1]);
    let (chan_a, chan_b) = (env.channel(a, "General"), env.channel(b, "General"));
    let room_a = env.link(a, &chan_a, "a").await;
    let room_b = env.link(b, &chan_b, "b").await;
    env.graph.send(&a.bob, &chan_a, Draft::text("only in a")).unwrap();
    env.graph.send(&b.bob, &chan_b, Draft::text("only in b")).unwrap();
    env.matrix_sees(&room_a, "only in a").await;
    env.matrix_sees(&room_b, "only in b").await;
    env.alice.send_text(&room_b, "matrix to b").await;
    env.teams_sees(&chan_b, "Alice in b", |m| m.content.contains("matrix to b")).await;

    // A notification with the wrong clientState, or one for tenant b's
    // subscription sent to tenant a's webhook, is refused and does nothing.
    let sub_b = env.wait_subscribed(&chan_b).await;
    let secret = env.graph.send(&b.carol, &chan_b, Draft::text("never via a")).unwrap();
    env.matrix_sees(&room_b, "never via a").await;
    let as_url = &env.listener;
    let http = reqwest::Client::new();
    let resource =
        format!("teams('{}')/channels('{}')/messages('{secret}')", b.team, room_of(&chan_b).split('/').nth(1).unwrap());
    let client_state = env.graph.subscriptions().into_iter().find(|s| s.id == sub_b).unwrap().client_state.unwrap();
    for (tenant, state) in [("fk", client_state.as_str()), ("sk", "wrong")] {
        let body = json!({"value": [{"subscriptionId": sub_b, "clientState": state, "changeType": "created",
                                     "resource": resource, "tenantId": b.entra}]});
        let answer =
            http.post(format!("{as_url}/_brygga/webhook/{tenant}/teams/notify")).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 403, "forged notification to {tenant}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.matrix_texts(&room_a).await, ["only in a"]);
    assert_eq!(env.matrix_texts(&room_b).await.iter().filter(|t| *t == "never via a").count(), 1);
}
