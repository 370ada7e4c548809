//! Error responses in Graph's and the identity platform's shapes, and the
//! error type of the test-side control API.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A Graph error response: `{"error": {"code", "message", "innerError": {...}}}`.
#[derive(Clone, Debug)]
pub struct GraphError {
    /// HTTP status.
    pub status: StatusCode,
    /// Graph's error `code`, e.g. `Forbidden`.
    pub code: String,
    /// Graph's error `message`.
    pub message: String,
    /// `Retry-After` seconds, for 429s.
    pub retry_after: Option<u64>,
}

impl GraphError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), retry_after: None }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 401 `InvalidAuthenticationToken`.
    pub fn invalid_token(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    /// 404 `NotFound` for an entity the caller cannot see.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", format!("{what} not found"))
    }

    /// 429 `TooManyRequests` with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The JSON body Graph sends.
    pub fn body(&self) -> Value {
        json!({ "error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": crate::time::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": crate::ids::guid(),
                "client-request-id": crate::ids::guid(),
            },
        }})
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                "www-authenticate",
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response
    }
}

/// An identity platform error: `{"error", "error_description", "error_codes", ...}` (RFC 6749 plus Entra's fields).
#[derive(Clone, Debug)]
pub struct IdentityError {
    /// HTTP status (400 or 401).
    pub status: StatusCode,
    /// The OAuth `error`, e.g. `invalid_client`.
    pub error: &'static str,
    /// The `AADSTS` number.
    pub aadsts: u32,
    /// The human text after `AADSTSnnnn: `.
    pub description: String,
}

impl IdentityError {
    /// A 400 identity error.
    pub fn new(error: &'static str, aadsts: u32, description: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, aadsts, description: description.into() }
    }

    /// 401 `invalid_client` (a wrong or expired client secret).
    pub fn invalid_client(aadsts: u32, description: impl Into<String>) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, ..Self::new("invalid_client", aadsts, description) }
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.error,
            "error_description": format!("AADSTS{}: {} Trace ID: {} Correlation ID: {} Timestamp: {}",
                self.aadsts, self.description, crate::ids::guid(), crate::ids::guid(),
                crate::time::now().format("%Y-%m-%d %H:%M:%SZ")),
            "error_codes": [self.aadsts],
            "timestamp": crate::time::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": crate::ids::guid(),
            "correlation_id": crate::ids::guid(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.aadsts),
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Why a control call on the double failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoubleError {
    /// Graph refused, exactly as it would have over REST.
    #[error("Graph answered {status} {code}: {message}")]
    Graph {
        /// HTTP status.
        status: u16,
        /// Graph error code.
        code: String,
        /// Graph error message.
        message: String,
    },
    /// The double could not start.
    #[error("the Graph double could not start: {0}")]
    Startup(String),
}

impl From<GraphError> for DoubleError {
    fn from(e: GraphError) -> Self {
        DoubleError::Graph { status: e.status.as_u16(), code: e.code, message: e.message }
    }
}
