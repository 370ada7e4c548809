//! The admin and provisioning API (`/api/v1`, on the admin listener),
//! described by `openapi.yaml` at the crate root. Every route takes a
//! bearer token: the operator's (everything) or a tenant admin's (only
//! that tenant).

mod adapters;
mod auth;
mod error;
mod portals;
mod tenants;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use brygga_core::{AdapterHost, MatrixSide, Router as BridgeRouter, Store};

pub use self::auth::hash_token;

/// The OpenAPI document of the API.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// What the API works on.
pub struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) host: Arc<AdapterHost>,
    pub(crate) matrix: Arc<dyn MatrixSide>,
    pub(crate) router: BridgeRouter,
    pub(crate) operator_token: Option<String>,
}

impl ApiState {
    /// The API over the bridge's store and adapter host; without an
    /// operator token only tenant admins can call it.
    pub fn new(
        store: Arc<dyn Store>,
        host: Arc<AdapterHost>,
        matrix: Arc<dyn MatrixSide>,
        router: BridgeRouter,
        operator_token: Option<String>,
    ) -> Self {
        Self { store, host, matrix, router, operator_token: operator_token.filter(|t| !t.is_empty()) }
    }
}

/// The API routes.
pub fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/openapi.yaml", get(openapi))
        .route("/api/v1/whoami", get(auth::whoami))
        .route("/api/v1/tenants", get(tenants::list).post(tenants::create))
        .route("/api/v1/tenants/{tenant}", get(tenants::show).patch(tenants::update).delete(tenants::delete))
        .route("/api/v1/tenants/{tenant}/suspend", post(tenants::suspend))
        .route("/api/v1/tenants/{tenant}/resume", post(tenants::resume))
        .route("/api/v1/tenants/{tenant}/adapters", get(adapters::list))
        .route("/api/v1/tenants/{tenant}/adapters/{kind}", get(adapters::show).put(adapters::configure))
        .route("/api/v1/tenants/{tenant}/adapters/{kind}/enable", post(adapters::enable))
        .route("/api/v1/tenants/{tenant}/adapters/{kind}/disable", post(adapters::disable))
        .route("/api/v1/tenants/{tenant}/portals", get(portals::list).post(portals::create))
        .route("/api/v1/tenants/{tenant}/portals/{kind}/{room}", delete(portals::remove))
        .route("/api/v1/tenants/{tenant}/ghosts", get(portals::ghosts))
        .route("/api/v1/tenants/{tenant}/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tenants/{tenant}/tokens/{id}", delete(tokens::revoke))
        .fallback(error::not_found)
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}
