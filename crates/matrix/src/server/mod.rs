//! The application service HTTP server (`/_matrix/app/v1/*`).
//!
//! The homeserver pushes transactions here; they are parsed leniently, one
//! event at a time, into canonical events and handed to an
//! [`AppserviceHandler`], which persists them before the 200 goes out.

mod auth;
mod ephemeral;
mod parse;
mod parse_media;
mod transactions;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_parse;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use brygga_core::{AppserviceHandler, MatrixUserId};
use ruma::{RoomAliasId, UserId};

pub use ephemeral::PRESENCE_ROOM;
pub(crate) use parse::room_event as parse_room_event;

/// Default largest accepted request body: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Settings of the appservice HTTP server.
#[derive(Clone)]
pub struct ServerSettings {
    /// The token the homeserver authenticates with (`hs_token` of the registration).
    pub hs_token: String,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// The client's encryption state, fed from transactions (`None`: no encryption).
    pub e2ee: Option<Arc<crate::e2ee::E2ee>>,
}

impl ServerSettings {
    /// Settings with the default body limit.
    pub fn new(hs_token: impl Into<String>) -> Self {
        Self { hs_token: hs_token.into(), max_body_bytes: DEFAULT_MAX_BODY_BYTES, e2ee: None }
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("ServerSettings")
            .field("hs_token", &"<redacted>")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("e2ee", &self.e2ee.is_some())
            .finish()
    }
}

/// Shared state of the server's handlers.
pub(crate) struct AppState {
    pub(crate) handler: Arc<dyn AppserviceHandler>,
    pub(crate) hs_token: String,
    pub(crate) ephemeral: ephemeral::EphemeralState,
    pub(crate) e2ee: Option<Arc<crate::e2ee::E2ee>>,
}

/// Builds the appservice router; serve it with `axum::serve`.
pub fn router(handler: Arc<dyn AppserviceHandler>, settings: ServerSettings) -> Router {
    let state = Arc::new(AppState {
        handler,
        hs_token: settings.hs_token,
        ephemeral: ephemeral::EphemeralState::new(),
        e2ee: settings.e2ee,
    });
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transactions::put_transaction))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{room_alias}", get(query_alias))
        .route("/_matrix/app/v1/ping", post(ping))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_hs_token))
        .fallback(unrecognized)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(state)
}

/// A Matrix-style JSON error response.
pub(crate) fn matrix_error(status: StatusCode, errcode: &str, error: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "errcode": errcode, "error": error }))).into_response()
}

/// The empty JSON object every successful appservice answer carries.
pub(crate) fn ok_empty() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
}

async fn unrecognized() -> Response {
    matrix_error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request")
}

async fn method_not_allowed() -> Response {
    matrix_error(StatusCode::METHOD_NOT_ALLOWED, "M_UNRECOGNIZED", "Unrecognized request")
}

fn bad_path() -> Response {
    matrix_error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "Invalid path parameter")
}

async fn query_user(State(state): State<Arc<AppState>>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(raw)) = path else {
        return bad_path();
    };
    // Both ruma's grammar and the core's own check must accept the id.
    let user = match UserId::parse(raw.as_str()).ok().and_then(|_| MatrixUserId::new(raw).ok()) {
        Some(user) => user,
        None => return matrix_error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "Invalid user id"),
    };
    if state.handler.user_exists(&user).await {
        ok_empty()
    } else {
        matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such user")
    }
}

async fn query_alias(State(state): State<Arc<AppState>>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(raw)) = path else {
        return bad_path();
    };
    if RoomAliasId::parse(raw.as_str()).is_err() {
        return matrix_error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "Invalid room alias");
    }
    if state.handler.alias_exists(&raw).await {
        ok_empty()
    } else {
        matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such room alias")
    }
}

async fn ping() -> Response {
    // The homeserver only checks reachability and authentication here.
    ok_empty()
}
