//! Error responses in Rocket.Chat's shapes, and the error type of the
//! test-side control API.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A REST error response: status and JSON body exactly as Rocket.Chat sends them.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
}

impl ApiError {
    /// `API.v1.failure("text")`: 400 `{success:false, error}`.
    pub fn failure(text: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, body: json!({ "success": false, "error": text.into() }) }
    }

    /// A thrown `Meteor.Error(errorType, reason)`: 400 with `error: "reason [errorType]"` and `errorType`.
    pub fn meteor(error_type: &str, reason: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "success": false, "error": format!("{reason} [{error_type}]"), "errorType": error_type }),
        }
    }

    /// 401 for a missing or unknown `X-User-Id`/`X-Auth-Token` (8.x drops the old `status`/`message` pair).
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({ "success": false, "error": "You must be logged in to do this." }),
        }
    }

    /// 403 for a missing permission on a route that declares `permissionsRequired`.
    pub fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            body: json!({
                "success": false,
                "error": "User does not have the permissions required for this action [error-forbidden]",
            }),
        }
    }

    /// 404 for a path the API does not have.
    pub fn not_found() -> Self {
        Self { status: StatusCode::NOT_FOUND, body: json!({ "success": false, "error": "Resource not found" }) }
    }

    /// 400 `invalid-params`, as the router answers a request that fails its rest-typings validator.
    pub fn invalid_params(messages: &str) -> Self {
        Self::meteor("invalid-params", messages)
    }

    /// The `error` text of the body.
    pub fn message(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        response
    }
}

/// Why a control call on the double failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoubleError {
    /// The workspace refused, exactly as it would have over REST.
    #[error("rejected with {status}: {body}")]
    Rejected {
        /// HTTP status the REST API would have answered.
        status: u16,
        /// Its JSON body.
        body: Value,
    },
    /// The double could not start.
    #[error("the Rocket.Chat double could not start: {0}")]
    Startup(String),
}

impl From<ApiError> for DoubleError {
    fn from(e: ApiError) -> Self {
        DoubleError::Rejected { status: e.status.as_u16(), body: e.body }
    }
}
