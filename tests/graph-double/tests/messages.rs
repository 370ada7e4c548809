//! Channel and chat messages over REST, as the adapter drives them.

mod support;

use brygga_graph_double::{Draft, GraphDouble, SentVia};
use reqwest::Method;
use serde_json::json;
use support::schemas::{assert_collection, assert_valid};
use support::{Client, app_token, path, world};

#[tokio::test]
async fn app_only_reads_channel_messages_in_graph_shape() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let root = graph.send(&w.alice, &w.channel, Draft::html("<p>hello</p>").with_mention(&w.bob)).unwrap();
    graph.reply(&w.bob, &w.channel, &root, Draft::text("hi back")).unwrap();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);

    let (status, list) = app.get(&format!("{}/messages", path(&w.channel))).await;
    assert_eq!(status, 200, "{list}");
    assert_collection("ChatMessage", &list);
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 1, "a channel listing holds root messages only");
    let m = &items[0];
    assert_eq!(m["id"], root);
    assert_eq!(m["from"]["user"]["id"], w.alice.id);
    assert_eq!(m["from"]["user"]["displayName"], "Alice Andersson");
    assert_eq!(m["body"]["contentType"], "html");
    assert_eq!(m["mentions"][0]["mentioned"]["user"]["id"], w.bob.id);
    assert!(m["body"]["content"].as_str().unwrap().contains("<at id=\"0\">Bob Berg</at>"));
    assert_eq!(
        m["channelIdentity"]["channelId"],
        json!(match &w.channel {
            brygga_graph_double::Conversation::Channel { channel, .. } => channel.clone(),
            _ => unreachable!(),
        })
    );

    let (status, replies) = app.get(&format!("{}/messages/{root}/replies", path(&w.channel))).await;
    assert_eq!(status, 200);
    assert_collection("ChatMessage", &replies);
    assert_eq!(replies["value"][0]["replyToId"], root);
    assert_eq!(replies["value"][0]["body"]["content"], "hi back");
}

#[tokio::test]
async fn app_only_message_post_is_refused_as_graph_does() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    for c in [&w.channel, &w.chat] {
        let (status, body) = app.post(&format!("{}/messages", path(c)), json!({"body": {"content": "x"}})).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "Unauthorized");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Message POST is allowed in application-only context only for import purposes."),
            "{message}"
        );
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
    assert!(graph.messages(&w.channel).is_empty() && graph.messages(&w.chat).is_empty());
}

#[tokio::test]
async fn delegated_send_edit_react_delete_round_trip() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let alice = Client::new(&graph, graph.delegated_token(&w.alice));
    let base = format!("{}/messages", path(&w.chat));

    let (status, sent) = alice.post(&base, json!({"body": {"contentType": "html", "content": "<p>one</p>"}})).await;
    assert_eq!(status, 201, "{sent}");
    assert_valid("ChatMessage", &sent);
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["chatId"], path(&w.chat).trim_start_matches("/chats/"));
    let record = graph.message(&w.chat, &id).unwrap();
    assert_eq!(record.via, SentVia::Delegated { user: w.alice.id.clone() });

    let (status, _) = alice
        .send(Method::PATCH, &format!("{base}/{id}"), json!({"body": {"contentType": "html", "content": "<p>two</p>"}}))
        .await;
    assert_eq!(status, 204);
    let bob = Client::new(&graph, graph.delegated_token(&w.bob));
    let (status, refused) =
        bob.send(Method::PATCH, &format!("{base}/{id}"), json!({"body": {"content": "hijack"}})).await;
    assert_eq!(status, 403, "only the sender edits: {refused}");
    let (status, _) = bob.post(&format!("{base}/{id}/setReaction"), json!({"reactionType": "👍"})).await;
    assert_eq!(status, 204);

    let (status, got) = alice.get(&format!("{base}/{id}")).await;
    assert_eq!(status, 200);
    assert_valid("ChatMessage", &got);
    assert_eq!(got["body"]["content"], "<p>two</p>");
    assert!(got["lastEditedDateTime"].is_string());
    assert_eq!(got["reactions"][0]["reactionType"], "👍");
    assert_eq!(got["reactions"][0]["user"]["user"]["id"], w.bob.id);

    let (status, _) = bob.post(&format!("{base}/{id}/unsetReaction"), json!({"reactionType": "👍"})).await;
    assert_eq!(status, 204);
    let (status, _) = alice.post(&format!("{base}/{id}/softDelete"), json!({})).await;
    assert_eq!(status, 204);
    let (_, got) = alice.get(&format!("{base}/{id}")).await;
    assert!(got["deletedDateTime"].is_string());
    assert_eq!(got["body"]["content"], "");
    assert_eq!(got["reactions"], json!([]));
    let record = graph.message(&w.chat, &id).unwrap();
    assert!(record.deleted.is_some() && record.content == "<p>two</p>" && record.reactions.is_empty());

    let (status, _) = alice.post(&format!("{base}/{id}/undoSoftDelete"), json!({})).await;
    assert_eq!(status, 204);
    assert!(graph.message(&w.chat, &id).unwrap().deleted.is_none());
}

#[tokio::test]
async fn delegated_reply_and_app_only_edit_refused() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let root = graph.send(&w.bob, &w.channel, Draft::html("<p>root</p>")).unwrap();
    let alice = Client::new(&graph, graph.delegated_token(&w.alice));
    let replies = format!("{}/messages/{root}/replies", path(&w.channel));
    let (status, reply) = alice.post(&replies, json!({"body": {"content": "a reply"}})).await;
    assert_eq!(status, 201, "{reply}");
    assert_valid("ChatMessage", &reply);
    assert_eq!(reply["replyToId"], root);
    assert_eq!(reply["body"]["contentType"], "text");

    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (status, body) =
        app.post(&format!("{}/messages/{root}/setReaction", path(&w.channel)), json!({"reactionType": "like"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "Forbidden");
}

#[tokio::test]
async fn hosted_contents_are_served_with_the_message() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
    let id = graph.send(&w.alice, &w.chat, Draft::html("<p>look</p>").with_image(png.clone(), "image/png")).unwrap();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (_, m) = app.get(&format!("{}/messages/{id}", path(&w.chat))).await;
    assert_valid("ChatMessage", &m);
    let html = m["body"]["content"].as_str().unwrap();
    let src = html.split("src=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(src.starts_with(&graph.url()) && src.ends_with("/$value"), "{src}");
    let (_, list) = app.get(&format!("{}/messages/{id}/hostedContents", path(&w.chat))).await;
    assert_collection("ChatMessageHostedContent", &list);
    let r = app.http.get(src).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let r = reqwest::Client::new().get(src).send().await.unwrap();
    assert_eq!(r.status(), 401, "hosted contents need a token too");
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let graph = GraphDouble::start().await;
    let a = world(&graph);
    let b = world(&graph);
    graph.send(&a.alice, &a.chat, Draft::text("secret")).unwrap();
    let b_app = Client::new(&graph, app_token(&graph, &b.tenant).await);
    let (status, body) = b_app.get(&format!("{}/messages", path(&a.chat))).await;
    assert_eq!(status, 404, "{body}");
    let b_user = Client::new(&graph, graph.delegated_token(&b.alice));
    let (status, _) = b_user.post(&format!("{}/messages", path(&a.channel)), json!({"body": {"content": "x"}})).await;
    assert_eq!(status, 404);
    let outsider = graph.add_user(&a.tenant, "Olle Outsider");
    let outsider = Client::new(&graph, graph.delegated_token(&outsider));
    let (status, _) = outsider.get(&format!("{}/messages", path(&a.chat))).await;
    assert_eq!(status, 403, "a non-member cannot read a chat");
}

#[tokio::test]
async fn an_unanswered_post_is_carried_out_and_the_next_one_answered() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let alice = Client::new(&graph, graph.delegated_token(&w.alice));
    graph.leave_posts_unanswered(1);
    let messages = format!("{}/messages", path(&w.chat));
    let first = alice.post(&messages, json!({"body": {"content": "lost answer"}}));
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), first).await;
    assert!(waited.is_err(), "the first post is never answered");
    let made = graph.messages(&w.chat);
    assert_eq!(made.len(), 1, "but its message exists");
    assert_eq!(made[0].content, "lost answer");
    let (status, second) = alice.post(&messages, json!({"body": {"content": "answered"}})).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(graph.messages(&w.chat).len(), 2);
}
