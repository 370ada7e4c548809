//! API errors: a status and a JSON body `{errcode, error}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brygga_core::{HostError, StoreError};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"errcode": self.code, "error": self.message}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::not_found(what),
            other => {
                tracing::error!(error = %other, "store failed during an API call");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE", "the store failed; try again")
            }
        }
    }
}

impl From<HostError> for ApiError {
    fn from(err: HostError) -> Self {
        match err {
            HostError::UnknownKind(..) => Self::not_found(err.to_string()),
            HostError::UnknownTenant(..) | HostError::NoConfig(..) => Self::not_found(err.to_string()),
            HostError::InvalidConfig { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_CONFIG", err.to_string())
            }
            HostError::Store(store) => store.into(),
            other => Self::new(StatusCode::BAD_GATEWAY, "ADAPTER_FAILED", other.to_string()),
        }
    }
}

/// Answers routes that do not exist.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such API route")
}
