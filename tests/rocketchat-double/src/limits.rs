//! Outages and rate limiting in front of every request, with Rocket.Chat's
//! 429 body and `X-RateLimit-*` headers (it sends no `Retry-After`).

use crate::server::Shared;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A limit of `requests` per `window` for each REST route, as
/// `API_Enable_Rate_Limiter_Limit_Calls_Default`/`..._Time_Default` set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub fn new(requests: u32, window: Duration) -> Self {
        Self { requests, window }
    }
}

/// Rate limiter state.
#[derive(Debug, Default)]
pub struct Limiter {
    /// The configured limit, if any.
    pub limit: Option<RateLimit>,
    /// The next this many REST requests are refused with 429 regardless.
    pub forced: u32,
    /// Requests seen per route in the current window.
    windows: HashMap<String, (Instant, u32)>,
    /// How many 429s were served.
    pub refused: u64,
}

/// What the limiter decided for one request.
struct Verdict {
    allowed: bool,
    limit: u32,
    remaining: u32,
    reset_in: Duration,
}

impl Limiter {
    fn check(&mut self, route: &str) -> Option<Verdict> {
        if self.forced > 0 {
            self.forced -= 1;
            self.refused += 1;
            let window = self.limit.map_or(Duration::from_secs(1), |l| l.window);
            return Some(Verdict {
                allowed: false,
                limit: self.limit.map_or(0, |l| l.requests),
                remaining: 0,
                reset_in: window,
            });
        }
        let limit = self.limit?;
        let now = Instant::now();
        let entry = self.windows.entry(route.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= limit.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let reset_in = limit.window.saturating_sub(now.duration_since(entry.0));
        let allowed = entry.1 <= limit.requests;
        if !allowed {
            self.refused += 1;
        }
        Some(Verdict { allowed, limit: limit.requests, remaining: limit.requests.saturating_sub(entry.1), reset_in })
    }
}

/// Middleware: 503 while the workspace is unavailable; rate limits on `/api/`.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if !shared.available.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    let path = request.uri().path();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    // Rocket.Chat keys limits by route and method (and client IP, always 127.0.0.1 here).
    let route = format!("{} {}", request.method(), route_of(path));
    shared.count_request(&route);
    let verdict = shared.limiter().check(&route);
    let Some(verdict) = verdict else { return next.run(request).await };
    let reset_at =
        chrono::Utc::now().timestamp_millis() + i64::try_from(verdict.reset_in.as_millis()).unwrap_or(i64::MAX);
    let mut response = if verdict.allowed {
        next.run(request).await
    } else {
        let seconds = verdict.reset_in.as_millis().div_ceil(1000);
        let error = format!(
            "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying this endpoint again. [error-too-many-requests]"
        );
        let body = Body::from(json!({ "success": false, "error": error }).to_string());
        let mut r = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        r
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", verdict.limit.to_string()),
        ("x-ratelimit-remaining", verdict.remaining.to_string()),
        ("x-ratelimit-reset", reset_at.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

/// `/api/v1/rooms.media/abc` -> `rooms.media`: the route name without path parameters.
pub fn route_of(path: &str) -> &str {
    let rest = path.strip_prefix("/api/v1/").or_else(|| path.strip_prefix("/api/")).unwrap_or(path);
    rest.split('/').next().unwrap_or(rest)
}
