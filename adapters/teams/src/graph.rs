//! The Graph REST transport: tokens, pacing, throttling and error bodies.
//!
//! Graph answers throttling with 429 (sometimes 503) and `Retry-After` in
//! seconds; without it the call backs off exponentially. A throttled call is
//! retried here a few times and then handed back as a transient error with
//! the wait, so the event stays queued: throttling never drops a message.
//! Errors come as `{"error": {"code", "message"}}`.

use std::sync::Arc;
use std::time::Duration;

use brygga_core::{BridgeError, StatusReporter};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Secret, TeamsConfig};
use crate::limiter::RateLimiter;

/// How often one call waits out throttling before giving up to the caller's retry.
const THROTTLE_RETRIES: u32 = 6;
/// Bounds of a wait.
const MIN_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(120);

/// Why a Graph call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum GraphError {
    /// The token was refused (401), or the app lacks consent (403 on an app-only call).
    #[error("Graph refused the credentials ({status} {code})")]
    BadCredentials { status: u16, code: String },
    /// Still throttled after waiting several times.
    #[error("Graph throttled the request")]
    Throttled(Duration),
    /// Graph could not be reached or failed (5xx).
    #[error("Graph unavailable: {0}")]
    Unavailable(String),
    /// The resource does not exist (404).
    #[error("Graph: not found ({0})")]
    NotFound(String),
    /// Graph refused the request (other 4xx).
    #[error("Graph refused the request ({status} {code}): {message}")]
    Refused { status: u16, code: String, message: String },
}

impl From<GraphError> for BridgeError {
    fn from(err: GraphError) -> Self {
        match err {
            GraphError::Throttled(wait) => BridgeError::Transient { message: err.to_string(), retry_after: Some(wait) },
            GraphError::Unavailable(_) => BridgeError::transient(err.to_string()),
            // Kept queued (not dead-lettered) until an operator fixes the secret or consent.
            GraphError::BadCredentials { .. } => {
                BridgeError::Transient { message: err.to_string(), retry_after: Some(Duration::from_secs(60)) }
            }
            GraphError::NotFound(_) | GraphError::Refused { .. } => BridgeError::permanent(err.to_string()),
        }
    }
}

/// Whose token a call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The app itself (client credentials).
    App,
    /// A person (a linked user or the relay identity).
    Delegated,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Value,
}

/// A body to send.
pub(crate) enum Body<'a> {
    None,
    Json(&'a Value),
}

/// One tenant's Graph endpoint.
pub(crate) struct Graph {
    http: reqwest::Client,
    config: TeamsConfig,
    limiter: RateLimiter,
    /// Told of every 429, for the tenant's throttling metric.
    status: Arc<dyn StatusReporter>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Graph {
    pub(crate) fn new(http: reqwest::Client, config: TeamsConfig, status: Arc<dyn StatusReporter>) -> Self {
        let limiter = RateLimiter::new(config.channel_requests_per_sec, config.channel_requests_per_sec);
        Self { http, config, limiter, status }
    }

    pub(crate) fn config(&self) -> &TeamsConfig {
        &self.config
    }

    /// One call of `url` paced on `pace` (the channel or chat it concerns),
    /// waiting out throttling.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        token: &Secret,
        caller: Caller,
        body: Body<'_>,
        pace: &str,
    ) -> Result<Answer, GraphError> {
        let mut attempt = 0;
        loop {
            self.limiter.acquire(pace).await;
            let mut request = self.http.request(method.clone(), url).bearer_auth(&token.0);
            if let Body::Json(value) = &body {
                request = request.json(value);
            }
            let response = request.send().await.map_err(|e| GraphError::Unavailable(e.without_url().to_string()))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.status.throttled();
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                let wait = retry_after(response.headers()).unwrap_or_else(|| backoff(attempt));
                attempt += 1;
                if attempt > THROTTLE_RETRIES {
                    return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                        GraphError::Throttled(wait)
                    } else {
                        GraphError::Unavailable("Graph answered 503".into())
                    });
                }
                tracing::debug!(pace, wait_ms = wait.as_millis() as u64, "Graph throttling: waiting");
                self.limiter.pause(pace, wait);
                continue;
            }
            let text = response.text().await.map_err(|e| GraphError::Unavailable(e.without_url().to_string()))?;
            return classify(status, &text, caller);
        }
    }

    /// The raw bytes behind `url` (hosted contents), with their type.
    pub(crate) async fn bytes(&self, url: &str, token: &Secret, pace: &str) -> Result<(Vec<u8>, String), GraphError> {
        let mut attempt = 0;
        loop {
            self.limiter.acquire(pace).await;
            let response = self
                .http
                .get(url)
                .bearer_auth(&token.0)
                .send()
                .await
                .map_err(|e| GraphError::Unavailable(e.without_url().to_string()))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.status.throttled();
            }
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < THROTTLE_RETRIES {
                let wait = retry_after(response.headers()).unwrap_or_else(|| backoff(attempt));
                attempt += 1;
                self.limiter.pause(pace, wait);
                continue;
            }
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                return Err(classify(status, &text, Caller::App).unwrap_err());
            }
            let mime = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            if response.content_length().is_some_and(|len| len > self.config.max_file_bytes) {
                return Err(GraphError::Refused {
                    status: 413,
                    code: "tooLarge".into(),
                    message: "file too large".into(),
                });
            }
            let data = response.bytes().await.map_err(|e| GraphError::Unavailable(e.without_url().to_string()))?;
            return Ok((data.to_vec(), mime));
        }
    }
}

/// Exponential backoff when Graph gives no `Retry-After`: 1 s, 2 s, 4 s, …
pub(crate) fn backoff(attempt: u32) -> Duration {
    (Duration::from_secs(1) * 2u32.saturating_pow(attempt.min(8))).min(MAX_WAIT)
}

/// `Retry-After` in seconds (Graph does not send dates), bounded.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).clamp(MIN_WAIT, MAX_WAIT))
}

/// Turns a status and body into the answer or an error.
fn classify(status: StatusCode, text: &str, caller: Caller) -> Result<Answer, GraphError> {
    if status.is_success() {
        let body = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(text).unwrap_or(Value::Null) };
        return Ok(Answer { body });
    }
    if status.is_server_error() {
        return Err(GraphError::Unavailable(format!("Graph answered {status}")));
    }
    let (code, message) = match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => (body.error.code, truncate(&body.error.message, 200)),
        Err(_) => (String::new(), String::new()),
    };
    match status {
        StatusCode::UNAUTHORIZED => Err(GraphError::BadCredentials { status: 401, code }),
        // An app-only 403 means the tenant's admin has not consented (or revoked it).
        StatusCode::FORBIDDEN if caller == Caller::App => Err(GraphError::BadCredentials { status: 403, code }),
        StatusCode::NOT_FOUND => Err(GraphError::NotFound(code)),
        _ => Err(GraphError::Refused { status: status.as_u16(), code, message }),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn waits_come_from_retry_after_or_backoff() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after", HeaderValue::from_static("0"));
        assert_eq!(retry_after(&headers), Some(MIN_WAIT));
        headers.insert("retry-after", HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&headers), Some(MAX_WAIT));
        headers.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_WAIT);
    }

    #[test]
    fn answers_are_classified() {
        let ok = classify(StatusCode::CREATED, r#"{"id":"1"}"#, Caller::Delegated).unwrap();
        assert_eq!(ok.body["id"], "1");
        assert_eq!(classify(StatusCode::NO_CONTENT, "", Caller::App).unwrap().body, Value::Null);
        let body = r#"{"error":{"code":"Forbidden","message":"Missing role permissions on the request."}}"#;
        let app = classify(StatusCode::FORBIDDEN, body, Caller::App).unwrap_err();
        assert_eq!(app, GraphError::BadCredentials { status: 403, code: "Forbidden".into() });
        assert!(BridgeError::from(app).is_transient());
        let person = classify(StatusCode::FORBIDDEN, body, Caller::Delegated).unwrap_err();
        assert!(matches!(person, GraphError::Refused { status: 403, .. }));
        assert!(!BridgeError::from(person).is_transient());
        let expired = r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}"#;
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, expired, Caller::Delegated),
            Err(GraphError::BadCredentials { status: 401, .. })
        ));
        assert!(matches!(classify(StatusCode::NOT_FOUND, "{}", Caller::App), Err(GraphError::NotFound(_))));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, "", Caller::App), Err(GraphError::Unavailable(_))));
        let throttled = BridgeError::from(GraphError::Throttled(Duration::from_secs(7)));
        assert!(
            matches!(throttled, BridgeError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }
}
