//! Catching up after downtime: channel delta with nextLink/deltaLink paging,
//! and chat listings filtered by lastModifiedDateTime.

mod support;

use brygga_graph_double::{Draft, GraphDouble};
use serde_json::Value;
use support::schemas::assert_collection;
use support::{Client, app_token, path, world};

/// Follows nextLinks to the deltaLink; returns every row's id and the deltaLink.
async fn drain(app: &Client, first: &str) -> (Vec<Value>, String, usize) {
    let (mut rows, mut url, mut pages) = (Vec::new(), first.to_owned(), 0);
    loop {
        let (status, page) = app.get(&url).await;
        assert_eq!(status, 200, "{page}");
        assert_collection("ChatMessage", &page);
        pages += 1;
        rows.extend(page["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page["@odata.nextLink"].as_str() {
            assert!(page.get("@odata.deltaLink").is_none());
            url = next.to_owned();
        } else {
            return (rows, page["@odata.deltaLink"].as_str().expect("the last page has a deltaLink").to_owned(), pages);
        }
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn channel_delta_pages_then_reports_only_changes() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let roots: Vec<String> =
        (0..7).map(|i| graph.send(&w.alice, &w.channel, Draft::text(format!("m{i}"))).unwrap()).collect();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);

    let (rows, delta_link, pages) = drain(&app, &format!("{}/messages/delta?$top=3", path(&w.channel))).await;
    assert_eq!(pages, 3);
    assert_eq!(ids(&rows), roots, "every root once, oldest change first");
    let (rows, delta_link, _) = drain(&app, &delta_link).await;
    assert!(rows.is_empty(), "nothing changed since the deltaLink");

    // Downtime: an edit, a reply, a delete, a new root.
    graph.edit(&w.alice, &w.channel, &roots[2], "m2 edited").unwrap();
    graph.reply(&w.bob, &w.channel, &roots[0], Draft::text("reply")).unwrap();
    graph.delete(&w.alice, &w.channel, &roots[4]).unwrap();
    let new = graph.send(&w.bob, &w.channel, Draft::text("new")).unwrap();
    let (rows, _, _) = drain(&app, &delta_link).await;
    assert_eq!(ids(&rows), [roots[2].clone(), roots[0].clone(), roots[4].clone(), new], "changed roots, once each");
    assert_eq!(rows[0]["body"]["content"], "m2 edited");
    assert!(rows[2]["deletedDateTime"].is_string());
}

#[tokio::test]
async fn a_change_while_paging_shows_up_in_the_next_round() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let roots: Vec<String> =
        (0..4).map(|i| graph.send(&w.alice, &w.channel, Draft::text(format!("m{i}"))).unwrap()).collect();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (status, first) = app.get(&format!("{}/messages/delta?$top=2", path(&w.channel))).await;
    assert_eq!(status, 200);
    assert_eq!(ids(first["value"].as_array().unwrap()), roots[..2]);
    graph.edit(&w.alice, &w.channel, &roots[3], "changed mid-round").unwrap();
    let (rest, delta_link, _) = drain(&app, first["@odata.nextLink"].as_str().unwrap()).await;
    assert_eq!(ids(&rest), [roots[2].clone()], "the changed message moved past this round's bound");
    let (next_round, _, _) = drain(&app, &delta_link).await;
    assert_eq!(ids(&next_round), [roots[3].clone()]);
    assert_eq!(next_round[0]["body"]["content"], "changed mid-round");
}

#[tokio::test]
async fn chat_listing_by_last_modified() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let old: Vec<String> =
        (0..3).map(|i| graph.send(&w.alice, &w.chat, Draft::text(format!("c{i}"))).unwrap()).collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mark = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    graph.react(&w.bob, &w.chat, &old[0], "❤️").unwrap();
    let new = graph.send(&w.bob, &w.chat, Draft::text("later")).unwrap();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let query = format!(
        "{}/messages?$orderby=lastModifiedDateTime desc&$filter=lastModifiedDateTime gt {mark}&$top=1",
        path(&w.chat)
    );
    let (status, page) = app.get(&query).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(page["value"].as_array().unwrap()), [new]);
    let (status, page2) = app.get(page["@odata.nextLink"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(ids(page2["value"].as_array().unwrap()), [old[0].clone()], "a reaction counts as a modification");
    assert!(page2.get("@odata.nextLink").is_none());

    let (status, all) = app.get(&format!("{}/messages", path(&w.chat))).await;
    assert_eq!(status, 200);
    assert_eq!(all["value"].as_array().unwrap().len(), 4);
    let (status, _) = app.get(&format!("{}/messages?$orderby=createdDateTime asc", path(&w.chat))).await;
    assert_eq!(status, 400, "only the documented orderings");
    let (status, _) = app.get(&format!("{}/messages?$top=51", path(&w.chat))).await;
    assert_eq!(status, 400, "page size is capped at 50");
}
