//! Forwarding to a tenant's owner what only the owner can answer: the
//! tenant's admin API (adapter status and toggles act on running adapters),
//! its platforms' webhooks and alias queries for its portals.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brygga_core::{AppserviceHandler, BridgeError, MatrixEvent, MatrixUserId, Router, TenantId};

use super::{Owner, Shard};

/// Marks a forwarded request: the receiver serves it itself.
const FORWARDED: &str = "x-brygga-forwarded";
/// Largest request body forwarded.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Middleware for the admin listener: `/api/v1/tenants/{tenant}…` goes to
/// the tenant's owner when that is another node.
pub async fn forward_admin(State(shard): State<Arc<Shard>>, request: Request, next: Next) -> Response {
    let tenant = tenant_in(request.uri().path(), "/api/v1/tenants/");
    route(&shard, tenant, request, next, |node| &node.admin_url).await
}

/// Middleware for the appservice listener: `/_brygga/webhook/{tenant}/…`
/// goes to the tenant's owner when that is another node.
pub async fn forward_webhooks(State(shard): State<Arc<Shard>>, request: Request, next: Next) -> Response {
    let tenant = tenant_in(request.uri().path(), "/_brygga/webhook/");
    route(&shard, tenant, request, next, |node| &node.appservice_url).await
}

async fn route(
    shard: &Shard,
    tenant: Option<TenantId>,
    request: Request,
    next: Next,
    base: fn(&brygga_core::Node) -> &String,
) -> Response {
    if request.headers().contains_key(FORWARDED) {
        return next.run(request).await;
    }
    let owner = match tenant {
        Some(tenant) => shard.owner(&tenant).await,
        None => Owner::Nobody,
    };
    match owner {
        Owner::Peer(node) => forward(&shard.http, base(&node), request).await,
        _ => next.run(request).await,
    }
}

/// The tenant id right after `prefix` in a path, if it is one.
fn tenant_in(path: &str, prefix: &str) -> Option<TenantId> {
    let rest = path.strip_prefix(prefix)?;
    TenantId::new(rest.split('/').next()?).ok()
}

/// Sends `request` to the same path under `base` and relays the answer.
async fn forward(http: &reqwest::Client, base: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large to forward").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut headers = parts.headers;
    for hop in [header::HOST, header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING] {
        headers.remove(hop);
    }
    headers.insert(HeaderName::from_static(FORWARDED), HeaderValue::from_static("1"));
    let sent = http.request(parts.method, url).headers(headers).body(body).send().await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(error = %err, "forwarding to the tenant's owner failed");
            let body = serde_json::json!({
                "errcode": "OWNER_UNAVAILABLE",
                "error": "the process owning this tenant did not answer; retry shortly",
            });
            return (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response();
        }
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for hop in [header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING] {
        headers.remove(hop);
    }
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The router as the appservice handler of a node: alias queries for
/// another node's tenant are asked of that node (its adapter decides).
pub struct ShardedAppservice {
    router: Router,
    shard: Arc<Shard>,
    hs_token: String,
}

impl ShardedAppservice {
    /// Wraps `router`; `hs_token` authenticates forwarded queries.
    pub fn new(router: Router, shard: Arc<Shard>, hs_token: String) -> Self {
        Self { router, shard, hs_token }
    }
}

#[async_trait]
impl AppserviceHandler for ShardedAppservice {
    async fn transaction(&self, txn_id: &str, events: Vec<MatrixEvent>) -> Result<(), BridgeError> {
        self.router.transaction(txn_id, events).await
    }

    async fn ephemeral(&self, events: Vec<MatrixEvent>) {
        self.router.ephemeral(events).await
    }

    async fn user_exists(&self, user: &MatrixUserId) -> bool {
        self.router.user_exists(user).await
    }

    async fn alias_exists(&self, alias: &str) -> bool {
        let owner = match self.router.portal_of_alias(alias) {
            Some(key) => self.shard.owner(&key.tenant).await,
            None => Owner::Nobody,
        };
        let Owner::Peer(node) = owner else {
            return self.router.alias_exists(alias).await;
        };
        let encoded = percent_encoding::utf8_percent_encode(alias, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/_matrix/app/v1/rooms/{encoded}", node.appservice_url.trim_end_matches('/'));
        match self.shard.http.get(url).bearer_auth(&self.hs_token).send().await {
            Ok(answer) => answer.status().is_success(),
            Err(err) => {
                tracing::warn!(error = %err, "asking the tenant's owner about an alias failed");
                false
            }
        }
    }
}
