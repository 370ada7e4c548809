//! Members, users, teams, chats and presence, checked against Graph's types.

mod support;

use brygga_graph_double::GraphDouble;
use serde_json::json;
use support::schemas::{assert_collection, assert_valid};
use support::{Client, app_token, path, world};

#[tokio::test]
async fn members_users_teams_and_chats() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    for c in [&w.channel, &w.chat] {
        let (status, members) = app.get(&format!("{}/members", path(c))).await;
        assert_eq!(status, 200, "{members}");
        assert_collection("AadUserConversationMember", &members);
        let users: Vec<&str> =
            members["value"].as_array().unwrap().iter().map(|m| m["userId"].as_str().unwrap()).collect();
        assert_eq!(users, [w.alice.id.as_str(), w.bob.id.as_str()]);
    }
    let (status, user) = app.get(&format!("/users/{}", w.bob.id)).await;
    assert_eq!(status, 200);
    assert_valid("User", &user);
    assert_eq!(user["displayName"], "Bob Berg");
    let (status, missing) = app.get("/users/00000000-0000-0000-0000-000000000000").await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    // `/me` is the signed-in user of a delegated token; app-only tokens have none.
    let (status, refused) = app.get("/me").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("BadRequest")), "{refused}");
    let bob = Client::new(&graph, graph.delegated_token(&w.bob));
    let (status, me) = bob.get("/me").await;
    assert_eq!(status, 200, "{me}");
    assert_valid("User", &me);
    assert_eq!((me["id"].as_str(), me["displayName"].as_str()), (Some(w.bob.id.as_str()), Some("Bob Berg")));

    let (status, team) = app.get(&format!("/teams/{}", w.team)).await;
    assert_eq!(status, 200);
    assert_valid("Team", &team);
    let (status, channel) = app.get(path(&w.channel).as_str()).await;
    assert_eq!(status, 200);
    assert_valid("Channel", &channel);
    assert_eq!(channel["displayName"], "General");
    let (status, chat) = app.get(path(&w.chat).as_str()).await;
    assert_eq!(status, 200);
    assert_valid("Chat", &chat);
    assert_eq!(chat["chatType"], "oneOnOne");
}

#[tokio::test]
async fn membership_changes_post_system_event_messages() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let carol = graph.add_user(&w.tenant, "Carol Carlsson");
    let group = graph.add_chat(&w.tenant, Some("Project"), &[&w.alice, &w.bob]);
    graph.add_member(&group, &carol).unwrap();
    graph.remove_member(&group, &w.bob).unwrap();
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (_, list) = app.get(&format!("{}/messages", path(&group))).await;
    assert_collection("ChatMessage", &list);
    let events: Vec<&str> =
        list["value"].as_array().unwrap().iter().map(|m| m["eventDetail"]["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["#microsoft.graph.membersDeletedEventMessageDetail", "#microsoft.graph.membersAddedEventMessageDetail"]
    );
    assert_eq!(list["value"][1]["messageType"], "systemEventMessage");
    assert_eq!(list["value"][1]["eventDetail"]["members"][0]["id"], carol.id);
}

#[tokio::test]
async fn presence_in_batches_of_at_most_650() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    graph.set_presence(&w.alice, "Busy", "InACall");
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (status, body) = app.post("/communications/getPresencesByUserId", json!({"ids": [w.alice.id, w.bob.id]})).await;
    assert_eq!(status, 200, "{body}");
    assert_collection("Presence", &body);
    assert_eq!(body["value"][0]["availability"], "Busy");
    assert_eq!(body["value"][0]["activity"], "InACall");
    assert_eq!(body["value"][1]["availability"], "Offline");
    let too_many: Vec<String> = (0..651).map(|i| format!("id-{i}")).collect();
    let (status, _) = app.post("/communications/getPresencesByUserId", json!({ "ids": too_many })).await;
    assert_eq!(status, 400);
}
