//! Requests remote platforms make to the bridge (change notifications and
//! their validation handshakes), served on the appservice listener at
//! `/_brygga/webhook/{tenant}/{kind}/{path}` and handed to that tenant's
//! running adapter of that kind.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use brygga_core::{AdapterHost, AdapterKind, TenantId, WebhookRequest};

/// Largest webhook body taken.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The webhook routes.
pub fn routes(host: Arc<AdapterHost>) -> Router {
    Router::new()
        .route("/_brygga/webhook/{tenant}/{kind}/{*path}", any(handle))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(host)
}

async fn handle(
    State(host): State<Arc<AdapterHost>>,
    Path((tenant, kind, path)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let adapter = match (TenantId::new(tenant), AdapterKind::new(kind)) {
        (Ok(tenant), Ok(kind)) => host.adapter(&tenant, &kind),
        _ => None,
    };
    let Some(adapter) = adapter else {
        return (StatusCode::NOT_FOUND, "no running adapter takes this webhook").into_response();
    };
    let mut request = WebhookRequest::new(method.as_str(), path, uri.query().unwrap_or_default(), body.to_vec());
    request.headers = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let answer = adapter.webhook(request).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, answer.content_type)], answer.body).into_response()
}
