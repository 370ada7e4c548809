//! 429 with Retry-After and Graph's TooManyRequests body: forced storms and
//! the per-app, per-channel limit.

mod support;

use brygga_graph_double::GraphDouble;
use support::{Client, path, world};

#[tokio::test]
async fn a_forced_storm_answers_429_with_retry_after_then_recovers() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let app = Client::new(&graph, graph.app_token(&w.tenant));
    graph.throttle_next(2, 3);
    for _ in 0..2 {
        let r = app
            .http
            .get(format!("{}{}/messages", graph.url(), path(&w.chat)))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "3");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    assert_eq!(app.get(&format!("{}/messages", path(&w.chat))).await.0, 200);
    let stats = graph.stats();
    assert_eq!(stats.throttled, 2);
    assert_eq!(stats.requests["GET /v1.0/chats/{chat}/messages"], 3, "{:?}", stats.requests);
}

#[tokio::test]
async fn the_per_channel_limit_is_per_app_and_per_channel() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    graph.set_conversation_rate_limit(Some(4));
    let app = Client::new(&graph, graph.app_token(&w.tenant));
    let channel = format!("{}/messages", path(&w.channel));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get(&channel).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    assert_eq!(app.get(&format!("{}/messages", path(&w.chat))).await.0, 200, "the chat has its own budget");
    assert_eq!(app.get(&format!("/users/{}", w.alice.id)).await.0, 200, "non-conversation routes are not limited");
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    assert_eq!(app.get(&channel).await.0, 200, "the next second has a fresh budget");
}
