//! The identity platform's token endpoint: client credentials, device code,
//! refresh, and its errors; Graph's answers to bad or expired tokens.

mod support;

use brygga_graph_double::{GRAPH_DEFAULT_SCOPE, GraphDouble};
use serde_json::Value;
use support::{Client, path, world};

async fn form(url: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new().post(url).form(fields).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn client_credentials(graph: &GraphDouble, tenant: &str, secret: &str) -> (u16, Value) {
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_id", graph.client_id()),
        ("client_secret", secret),
        ("scope", GRAPH_DEFAULT_SCOPE),
    ];
    form(&graph.login_url(tenant), &fields).await
}

#[tokio::test]
async fn client_credentials_and_its_errors() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let (status, ok) = client_credentials(&graph, &w.tenant, graph.client_secret()).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["token_type"], "Bearer");
    assert!(ok["expires_in"].as_u64().unwrap() > 3000);

    let (status, bad) = client_credentials(&graph, &w.tenant, "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(bad["error"], "invalid_client");
    assert!(bad["error_description"].as_str().unwrap().starts_with("AADSTS7000215:"));
    assert_eq!(bad["error_codes"][0], 7000215);

    let (status, unknown) =
        client_credentials(&graph, "00000000-0000-0000-0000-000000000000", graph.client_secret()).await;
    assert_eq!((status, unknown["error"].as_str()), (400, Some("invalid_request")));

    graph.revoke_consent(&w.tenant);
    let (status, revoked) = client_credentials(&graph, &w.tenant, graph.client_secret()).await;
    assert_eq!(status, 400);
    assert_eq!(revoked["error"], "unauthorized_client");
    graph.grant_consent(&w.tenant);
    assert_eq!(client_credentials(&graph, &w.tenant, graph.client_secret()).await.0, 200);

    let scope = [
        ("grant_type", "client_credentials"),
        ("client_id", graph.client_id()),
        ("client_secret", graph.client_secret()),
        ("scope", "User.Read"),
    ];
    let (status, body) = form(&graph.login_url(&w.tenant), &scope).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test]
async fn device_code_sign_in_then_refresh() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let start = [("client_id", graph.client_id()), ("scope", "https://graph.microsoft.com/.default offline_access")];
    let (status, flow) = form(&graph.device_code_url("organizations"), &start).await;
    assert_eq!(status, 200, "{flow}");
    let device_code = flow["device_code"].as_str().unwrap();
    let user_code = flow["user_code"].as_str().unwrap();
    assert!(flow["message"].as_str().unwrap().contains(user_code));
    assert_eq!(flow["verification_uri"], "https://microsoft.com/devicelogin");
    assert_eq!(graph.pending_device_codes(), [user_code]);

    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", graph.client_id()),
        ("device_code", device_code),
    ];
    let token_url = graph.login_url("organizations");
    let (status, pending) = form(&token_url, &poll).await;
    assert_eq!((status, pending["error"].as_str()), (400, Some("authorization_pending")));

    assert!(graph.complete_device_login(user_code, &w.alice));
    let (status, tokens) = form(&token_url, &poll).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["scope"].as_str().unwrap().contains("ChannelMessage.Send"));
    let alice = Client::new(&graph, tokens["access_token"].as_str().unwrap().to_owned());
    let (status, _) = alice.get(&format!("{}/messages", path(&w.chat))).await;
    assert_eq!(status, 200, "the delegated token works for Alice's chat");
    let (status, _) = form(&token_url, &poll).await;
    assert_eq!(status, 400, "a device code is redeemed once");

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("client_id", graph.client_id()), ("refresh_token", refresh_token)];
    let (status, refreshed) = form(&graph.login_url(&w.tenant), &refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);

    graph.revoke_consent(&w.tenant);
    let (status, refused) = form(&graph.login_url(&w.tenant), &refresh).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")));
    graph.grant_consent(&w.tenant);
    graph.revoke_refresh_tokens(&w.alice);
    let (status, refused) = form(&graph.login_url(&w.tenant), &refresh).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_refresh_token_from_the_control_api_redeems() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let refresh_token = graph.refresh_token(&w.bob);
    let refresh =
        [("grant_type", "refresh_token"), ("client_id", graph.client_id()), ("refresh_token", refresh_token.as_str())];
    let (status, tokens) = form(&graph.login_url(&w.tenant), &refresh).await;
    assert_eq!(status, 200, "{tokens}");
    let bob = Client::new(&graph, tokens["access_token"].as_str().unwrap().to_owned());
    let (status, sent) =
        bob.post(&format!("{}/messages", path(&w.chat)), serde_json::json!({"body": {"content": "hi"}})).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["from"]["user"]["id"], w.bob.id);
}

#[tokio::test]
async fn declined_device_login() {
    let graph = GraphDouble::start().await;
    world(&graph);
    let (_, flow) =
        form(&graph.device_code_url("common"), &[("client_id", graph.client_id()), ("scope", "User.Read")]).await;
    assert!(graph.decline_device_login(flow["user_code"].as_str().unwrap()));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", graph.client_id()),
        ("device_code", flow["device_code"].as_str().unwrap()),
    ];
    let (status, body) = form(&graph.login_url("common"), &poll).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_declined")));
}

#[tokio::test]
async fn graph_refuses_missing_unknown_and_expired_tokens() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let url = format!("{}{}/messages", graph.url(), path(&w.chat));
    let r = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let (status, _) = Client::new(&graph, "made-up".into()).get(&format!("{}/messages", path(&w.chat))).await;
    assert_eq!(status, 401);

    let app = Client::new(&graph, graph.app_token(&w.tenant));
    assert_eq!(app.get(&format!("{}/messages", path(&w.chat))).await.0, 200);
    graph.expire_tokens(&w.tenant);
    let (status, body) = app.get(&format!("{}/messages", path(&w.chat))).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));
}
