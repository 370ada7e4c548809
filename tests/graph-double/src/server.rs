//! Startup: binds the listener and serves the identity platform and Graph routes.

use crate::error::DoubleError;
use crate::model::AppRegistration;
use crate::state::Shared;
use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Application permissions the default app registration gets on admin consent (the `roles` claim).
pub const DEFAULT_ROLES: &[&str] = &[
    "ChannelMessage.Read.All",
    "Chat.Read.All",
    "ChannelMember.Read.All",
    "ChatMember.Read.All",
    "User.Read.All",
    "Presence.Read.All",
    "Team.ReadBasic.All",
    "Channel.ReadBasic.All",
    "Chat.ReadBasic.All",
];

/// Delegated permissions the default app registration gets on consent (the `scp` claim).
pub const DEFAULT_SCOPES: &[&str] = &[
    "ChannelMessage.Send",
    "ChannelMessage.ReadWrite",
    "ChannelMessage.Read.All",
    "Chat.ReadWrite",
    "ChatMessage.Send",
    "User.Read",
    "User.ReadBasic.All",
    "Presence.Read.All",
    "ChannelMember.Read.All",
    "ChatMember.Read",
    "Team.ReadBasic.All",
    "Channel.ReadBasic.All",
    "Chat.ReadBasic",
    "offline_access",
];

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub stop: oneshot::Sender<()>,
}

/// Binds `addr` and serves on a background task.
pub async fn start(addr: SocketAddr, client_id: &str, client_secret: &str) -> Result<Running, DoubleError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| DoubleError::Startup(format!("binding {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| DoubleError::Startup(e.to_string()))?;
    let shared = Arc::new(Shared::new(format!("http://{addr}")));
    shared.with(|w| {
        let app = AppRegistration {
            secrets: vec![client_secret.to_owned()],
            certificates: Vec::new(),
            roles: DEFAULT_ROLES.iter().map(|r| (*r).to_owned()).collect(),
            scopes: DEFAULT_SCOPES.iter().map(|r| (*r).to_owned()).collect(),
        };
        w.apps.insert(client_id.to_owned(), app);
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(crate::identity::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(crate::identity::devicecode))
        .route("/{tenant}/discovery/v2.0/keys", get(crate::rich::keys))
        .merge(crate::graph::router())
        .route_layer(axum::middleware::from_fn_with_state(shared.clone(), crate::throttle::gate))
        .with_state(shared.clone());
    let app = tower::ServiceExt::map_request(app, odata_keys);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(app)).with_graceful_shutdown(
            async move {
                let _ = stopped.await;
            },
        );
        if let Err(e) = served.await {
            tracing::warn!(error = %e, "Graph double stopped serving");
        }
    });
    Ok(Running { addr, shared, stop })
}

/// Rewrites OData key segments (`/teams('t')/channels('c')/messages('m')`, as
/// notifications name resources and Graph accepts them) to the plain path form the routes use.
fn odata_keys(mut request: Request) -> Request {
    let path = request.uri().path();
    if !path.starts_with("/v1.0/") || !(path.contains("('") || path.contains("%27")) {
        return request;
    }
    let normal = path.replace("%28", "(").replace("%29", ")").replace("%27", "'").replace("('", "/").replace("')", "");
    let rebuilt = match request.uri().query() {
        Some(query) => format!("{normal}?{query}"),
        None => normal,
    };
    if let Ok(uri) = rebuilt.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}
