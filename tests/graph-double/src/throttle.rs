//! Throttling: Graph's per-app, per-channel (or chat) request limit and
//! forced 429 storms, answered with `Retry-After` and the `TooManyRequests`
//! error body. Also counts requests per route.

use crate::error::GraphError;
use crate::state::{Shared, lock};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rate limits and forced throttling.
#[derive(Debug)]
pub struct Throttle {
    /// Requests per second one app may make on one channel or chat (`None`: unlimited).
    pub per_conversation: Option<u32>,
    /// Requests still to be answered 429 regardless of rate.
    pub forced: u32,
    /// `Retry-After` of forced 429s, in seconds.
    pub forced_retry_after: u64,
    windows: HashMap<(String, String), (Instant, u32)>,
    /// 429s answered so far.
    pub throttled: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self { per_conversation: Some(4), forced: 0, forced_retry_after: 1, windows: HashMap::new(), throttled: 0 }
    }
}

impl Throttle {
    /// `Some(retry_after)` when this request must be refused.
    fn check(&mut self, app: &str, conversation: Option<&str>, now: Instant) -> Option<u64> {
        if self.forced > 0 {
            self.forced -= 1;
            return Some(self.forced_retry_after);
        }
        let (limit, conversation) = (self.per_conversation?, conversation?);
        let window = self.windows.entry((app.to_owned(), conversation.to_owned())).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        (window.1 > limit).then_some(1)
    }
}

/// The channel or chat a Graph path addresses, if any.
fn conversation_of(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches("/v1.0/").split('/').collect();
    match parts[..] {
        ["teams", team, "channels", channel, ..] => Some(format!("{team}/{channel}")),
        ["chats", chat, ..] => Some(chat.to_owned()),
        _ => None,
    }
}

/// Middleware on every matched route: counts it, and on Graph routes applies the throttle.
pub async fn gate(State(s): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("?", MatchedPath::as_str).to_owned();
    s.count_request(&format!("{} {route}", request.method()));
    if !route.starts_with("/v1.0/") {
        return next.run(request).await;
    }
    let bearer = request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = bearer.strip_prefix("Bearer ").unwrap_or_default().trim();
    // Limits are per app: key on the token's client id (an unknown token fails auth later).
    let app = s.with(|w| w.tokens.get(token).map(|t| t.client_id.clone())).unwrap_or_default();
    let conversation = conversation_of(request.uri().path());
    let refused = {
        let mut throttle = lock(&s.throttle);
        let refused = throttle.check(&app, conversation.as_deref(), Instant::now());
        if refused.is_some() {
            throttle.throttled += 1;
        }
        refused
    };
    match refused {
        Some(retry_after) => GraphError::too_many_requests(retry_after).into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_app_and_conversation_within_a_second() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(t.check("app", Some("c1"), now), None);
        }
        assert_eq!(t.check("app", Some("c1"), now), Some(1));
        assert_eq!(t.check("app", Some("c2"), now), None, "another channel has its own budget");
        assert_eq!(t.check("other", Some("c1"), now), None, "another app has its own budget");
        assert_eq!(t.check("app", Some("c1"), now + Duration::from_secs(1)), None, "a new second resets it");
    }

    #[test]
    fn forced_storm_then_normal() {
        let mut t = Throttle { forced: 2, forced_retry_after: 3, ..Throttle::default() };
        let now = Instant::now();
        assert_eq!(t.check("app", None, now), Some(3));
        assert_eq!(t.check("app", None, now), Some(3));
        assert_eq!(t.check("app", None, now), None);
    }

    #[test]
    fn conversation_from_path() {
        assert_eq!(conversation_of("/v1.0/teams/t/channels/c/messages/1").as_deref(), Some("t/c"));
        assert_eq!(conversation_of("/v1.0/chats/19:x@thread.v2/messages").as_deref(), Some("19:x@thread.v2"));
        assert_eq!(conversation_of("/v1.0/users/u"), None);
    }
}
