//! Subscriptions: the validation handshake against a webhook playing the
//! bridge, change notification delivery, renewal, expiry, pause and lifecycle events.

mod support;

use brygga_graph_double::{Draft, GraphDouble, LifecycleEvent, Outcome, RetryPolicy};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::schemas::assert_valid;
use support::{Client, Mode, Webhook, app_token, world};

fn in_minutes(m: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(m)).to_rfc3339()
}

async fn subscribe(app: &Client, hook: &Webhook, resource: &str) -> (u16, Value) {
    app.post(
        "/subscriptions",
        json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": hook.url,
            "lifecycleNotificationUrl": hook.lifecycle_url(),
            "resource": resource,
            "expirationDateTime": in_minutes(55),
            "clientState": "s3cret-state",
        }),
    )
    .await
}

#[tokio::test]
async fn handshake_then_created_updated_deleted_notifications() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);

    let (status, sub) = subscribe(&app, &hook, &w.channel.resource()).await;
    assert_eq!(status, 201, "{sub}");
    assert_valid("Subscription", &sub);
    let validations = hook.validations();
    assert_eq!(validations.len(), 2, "the notification and lifecycle URLs are both validated");
    assert!(
        validations[0].contains(' ') && validations[0].contains(':'),
        "Graph's tokens need URL decoding: {}",
        validations[0]
    );

    let id = graph.send(&w.alice, &w.channel, Draft::html("<p>hi</p>")).unwrap();
    graph.reply(&w.bob, &w.channel, &id, Draft::text("re")).unwrap();
    graph.edit(&w.alice, &w.channel, &id, "<p>hi!</p>").unwrap();
    graph.delete(&w.alice, &w.channel, &id).unwrap();
    let items = hook.wait_for("four notifications", |i| i.len() == 4).await;
    for body in hook.bodies() {
        assert_valid("ChangeNotificationCollection", &body);
    }
    let kinds: Vec<&str> = items.iter().map(|i| i["changeType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "created", "updated", "deleted"], "delivered in order");
    let first = &items[0];
    assert_eq!(first["subscriptionId"], sub["id"]);
    assert_eq!(first["clientState"], "s3cret-state");
    assert_eq!(first["tenantId"], w.tenant);
    assert_eq!(first["resourceData"]["id"], id);
    let Some(team) = Some(&w.team) else { unreachable!() };
    assert!(first["resource"].as_str().unwrap().starts_with(&format!("teams('{team}')/channels(")));
    assert!(items[1]["resource"].as_str().unwrap().contains(&format!("/messages('{id}')/replies(")));

    // The notification's resource is a path Graph answers (OData key syntax).
    let (status, fetched) = app.get(&format!("/{}", items[1]["resource"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["replyToId"], id);

    // A chat message does not reach a channel subscription.
    graph.send(&w.alice, &w.chat, Draft::text("elsewhere")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.items().len(), 4);
}

#[tokio::test]
async fn failed_handshakes_are_refused_like_graph() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    for (mode, code, text) in [
        (Mode::WrongEcho, "ValidationError", "Response must exactly match validationToken query parameter."),
        (Mode::JsonEcho, "ValidationError", "Response must exactly match validationToken query parameter."),
    ] {
        hook.set_mode(mode);
        let (status, body) = subscribe(&app, &hook, &w.chat.resource()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code);
        assert!(body["error"]["message"].as_str().unwrap().ends_with(text), "{body}");
    }
    let (status, body) = app
        .post(
            "/subscriptions",
            json!({"changeType": "created", "notificationUrl": "http://127.0.0.1:9/nowhere",
                   "resource": w.chat.resource(), "expirationDateTime": in_minutes(30)}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("must respond with 200 OK"), "{body}");
    assert!(graph.subscriptions().is_empty());

    graph.update_settings(|s| s.validation_timeout = Duration::from_millis(300));
    hook.set_mode(Mode::Slow);
    let (status, body) = subscribe(&app, &hook, &w.chat.resource()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Subscription validation request timed out.");

    hook.set_mode(Mode::Healthy);
    let (status, body) = app
        .post(
            "/subscriptions",
            json!({"changeType": "created", "notificationUrl": hook.url, "resource": w.chat.resource(),
                   "expirationDateTime": in_minutes(61)}),
        )
        .await;
    assert_eq!(status, 400, "chatMessage subscriptions live at most 60 minutes: {body}");
}

#[tokio::test]
async fn renewal_expiry_and_deletion() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (_, sub) = subscribe(&app, &hook, &w.chat.resource()).await;
    let id = sub["id"].as_str().unwrap();

    let renewed_to = in_minutes(59);
    let (status, renewed) =
        app.send(Method::PATCH, &format!("/subscriptions/{id}"), json!({"expirationDateTime": renewed_to})).await;
    assert_eq!(status, 200, "{renewed}");
    assert_valid("Subscription", &renewed);
    let (_, list) = app.get("/subscriptions").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    graph.expire_subscription(id).unwrap();
    graph.send(&w.alice, &w.chat, Draft::text("after expiry")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hook.items().is_empty(), "an expired subscription delivers nothing");
    let (status, _) =
        app.send(Method::PATCH, &format!("/subscriptions/{id}"), json!({"expirationDateTime": in_minutes(30)})).await;
    assert_eq!(status, 404, "an expired subscription cannot be renewed");

    let (_, sub) = subscribe(&app, &hook, &w.chat.resource()).await;
    let id = sub["id"].as_str().unwrap();
    let (status, _) = app.send(Method::DELETE, &format!("/subscriptions/{id}"), Value::Null).await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/subscriptions/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn paused_delivery_drops_and_failing_endpoint_is_retried() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    graph.set_retry_policy(RetryPolicy::new(3, Duration::from_millis(20)));
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    subscribe(&app, &hook, &w.chat.resource()).await;

    graph.pause_notifications();
    let lost = graph.send(&w.alice, &w.chat, Draft::text("while down")).unwrap();
    graph.resume_notifications();
    hook.set_mode(Mode::Failing);
    let failed = graph.send(&w.alice, &w.chat, Draft::text("endpoint failing")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    hook.set_mode(Mode::Healthy);
    let ok = graph.send(&w.alice, &w.chat, Draft::text("back")).unwrap();
    let items = hook.wait_for("the last message", |i| i.len() == 1).await;
    assert_eq!(items[0]["resourceData"]["id"], ok);

    let outcomes: Vec<(Option<String>, Outcome)> =
        graph.deliveries().into_iter().map(|d| (d.message, d.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (Some(lost), Outcome::Dropped),
            (Some(failed), Outcome::Failed { attempts: 3 }),
            (Some(ok), Outcome::Delivered)
        ]
    );
}

#[tokio::test]
async fn lifecycle_events_reach_the_lifecycle_url() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (_, sub) = subscribe(&app, &hook, &w.channel.resource()).await;
    let id = sub["id"].as_str().unwrap();

    graph.fire_lifecycle(id, LifecycleEvent::ReauthorizationRequired).unwrap();
    graph.fire_lifecycle(id, LifecycleEvent::Missed).unwrap();
    let items = hook.wait_for("two lifecycle notifications", |i| i.len() == 2).await;
    for body in hook.bodies() {
        assert_valid("ChangeNotificationCollection", &body);
    }
    assert_eq!(items[0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(items[1]["lifecycleEvent"], "missed");
    assert_eq!(items[0]["subscriptionId"], id);
    assert_eq!(items[0]["clientState"], "s3cret-state");
    assert!(graph.subscriptions()[0].needs_reauthorization);
    let (status, _) = app.post(&format!("/subscriptions/{id}/reauthorize"), json!({})).await;
    assert_eq!(status, 204);
    assert!(!graph.subscriptions()[0].needs_reauthorization);

    graph.fire_lifecycle(id, LifecycleEvent::SubscriptionRemoved).unwrap();
    hook.wait_for("the removal", |i| i.len() == 3).await;
    assert!(graph.subscriptions().is_empty());
    graph.send(&w.alice, &w.channel, Draft::text("after removal")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.items().len(), 3);
}

#[tokio::test]
async fn a_delegated_subscription_needs_membership() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let outsider = graph.add_user(&w.tenant, "Olle Outsider");
    let outsider = Client::new(&graph, graph.delegated_token(&outsider));
    let (status, body) = subscribe(&outsider, &hook, &w.chat.resource()).await;
    assert_eq!(status, 403, "{body}");
    let alice = Client::new(&graph, graph.delegated_token(&w.alice));
    let (status, body) = subscribe(&alice, &hook, &w.chat.resource()).await;
    assert_eq!(status, 201, "{body}");
}
