//! The REST transport: auth headers, error bodies, rate limits and outages.
//!
//! Rocket.Chat answers errors as `{success: false, error, errorType}` (400),
//! `{status: "error", message}` (401) and rate limits with 429 plus
//! `X-RateLimit-Limit/Remaining/Reset` (reset is a Unix time in ms). A 429
//! is waited out and retried here, so a storm costs time, never a message.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brygga_core::{BridgeError, StatusReporter};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::RocketChatConfig;

/// How often one call waits out a 429 before giving up to the caller's retry.
const RATE_LIMIT_RETRIES: u32 = 8;
/// How long events wait after the workspace refused a token.
const UNAUTHORIZED_RETRY: Duration = Duration::from_secs(60);
/// Bounds of a wait asked for by the server.
const MIN_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A user's REST credentials (`X-User-Id`, `X-Auth-Token`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Creds {
    pub(crate) user_id: String,
    pub(crate) token: String,
}

impl fmt::Debug for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Creds {{ user_id: {:?}, token: <redacted> }}", self.user_id)
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    /// The token is expired or revoked (401).
    #[error("Rocket.Chat refused the credentials of user {0}")]
    Unauthorized(String),
    /// Still rate-limited after waiting several times.
    #[error("Rocket.Chat rate limit still in force")]
    RateLimited(Duration),
    /// The workspace could not be reached or failed (5xx).
    #[error("Rocket.Chat unavailable: {0}")]
    Unavailable(String),
    /// The workspace refused the request (4xx), with its error text and type.
    #[error("Rocket.Chat refused {path} ({status}): {error} [{error_type}]")]
    Refused { path: String, status: u16, error: String, error_type: String },
}

impl From<RestError> for BridgeError {
    fn from(err: RestError) -> Self {
        match err {
            RestError::RateLimited(wait) => {
                BridgeError::Transient { message: err.to_string(), retry_after: Some(wait) }
            }
            RestError::Unavailable(_) => BridgeError::transient(err.to_string()),
            // Kept queued (not dead-lettered) until an operator fixes the token.
            RestError::Unauthorized(_) => {
                BridgeError::Transient { message: err.to_string(), retry_after: Some(UNAUTHORIZED_RETRY) }
            }
            RestError::Refused { .. } => BridgeError::permanent(err.to_string()),
        }
    }
}

/// A body to send, rebuilt for each attempt (multipart forms cannot be cloned).
pub(crate) enum Body<'a> {
    None,
    Json(&'a Value),
    File { name: &'a str, mime: &'a str, data: &'a [u8] },
}

/// One workspace's REST endpoint.
pub(crate) struct Rest {
    http: reqwest::Client,
    config: RocketChatConfig,
    /// No request before this instant (the server said the window is used up).
    paused_until: Mutex<Option<Instant>>,
    /// Told of every 429, for the tenant's throttling metric.
    status: Arc<dyn StatusReporter>,
}

impl Rest {
    pub(crate) fn new(config: RocketChatConfig, status: Arc<dyn StatusReporter>) -> Result<Self, BridgeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| BridgeError::permanent(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, config, paused_until: Mutex::new(None), status })
    }

    pub(crate) fn config(&self) -> &RocketChatConfig {
        &self.config
    }

    /// `GET /api/v1/{path}?{query}`.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)], creds: &Creds) -> Result<Value, RestError> {
        self.call(Method::GET, path, query, Body::None, Some(creds)).await
    }

    /// `POST /api/v1/{path}` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value, creds: Option<&Creds>) -> Result<Value, RestError> {
        self.call(Method::POST, path, &[], Body::Json(body), creds).await
    }

    /// One call, waiting out rate limits.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
        creds: Option<&Creds>,
    ) -> Result<Value, RestError> {
        let url = self.config.api(path);
        let mut attempt = 0;
        loop {
            self.wait_for_window().await;
            let mut request = self.http.request(method.clone(), url.clone()).query(query);
            request = with_creds(request, creds);
            request = match &body {
                Body::None => request,
                Body::Json(value) => request.json(value),
                Body::File { name, mime, data } => {
                    let part = reqwest::multipart::Part::bytes(data.to_vec())
                        .file_name(name.to_string())
                        .mime_str(mime)
                        .or_else(|_| {
                            reqwest::multipart::Part::bytes(data.to_vec())
                                .file_name(name.to_string())
                                .mime_str("application/octet-stream")
                        })
                        .map_err(|e| RestError::Unavailable(format!("building the upload: {e}")))?;
                    request.multipart(reqwest::multipart::Form::new().part("file", part))
                }
            };
            let response = request.send().await.map_err(|e| RestError::Unavailable(e.without_url().to_string()))?;
            let status = response.status();
            let wait = self.note_limits(response.headers(), status);
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.status.throttled();
                attempt += 1;
                let wait = wait.unwrap_or(Duration::from_secs(1));
                if attempt > RATE_LIMIT_RETRIES {
                    return Err(RestError::RateLimited(wait));
                }
                tracing::debug!(path, wait_ms = wait.as_millis() as u64, "Rocket.Chat rate limit: waiting");
                continue;
            }
            let text = response.text().await.map_err(|e| RestError::Unavailable(e.without_url().to_string()))?;
            return classify(path, status, &text, creds);
        }
    }

    /// The HTTP client (for file downloads).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Waits while the server says the rate-limit window is used up.
    pub(crate) async fn wait_for_window(&self) {
        let until = *self.paused_until.lock().expect("rate state poisoned");
        if let Some(until) = until
            && until > Instant::now()
        {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Remembers when the window reopens; returns the wait a 429 asks for.
    fn note_limits(&self, headers: &HeaderMap, status: StatusCode) -> Option<Duration> {
        let remaining = header_u64(headers, "x-ratelimit-remaining");
        let exhausted = status == StatusCode::TOO_MANY_REQUESTS || remaining == Some(0);
        if !exhausted {
            return None;
        }
        let wait = retry_wait(headers, SystemTime::now())?;
        let mut paused = self.paused_until.lock().expect("rate state poisoned");
        let until = Instant::now() + wait;
        *paused = Some(paused.map_or(until, |p| p.max(until)));
        Some(wait)
    }
}

pub(crate) fn with_creds(request: RequestBuilder, creds: Option<&Creds>) -> RequestBuilder {
    match creds {
        Some(creds) => request.header("X-User-Id", &creds.user_id).header("X-Auth-Token", &creds.token),
        None => request,
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The wait a rate-limited answer asks for: `Retry-After` (seconds) or
/// `X-RateLimit-Reset` (Unix ms), bounded.
pub(crate) fn retry_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let wait = if let Some(secs) = header_u64(headers, "retry-after") {
        Duration::from_secs(secs)
    } else {
        let reset_ms = header_u64(headers, "x-ratelimit-reset")?;
        let now_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        Duration::from_millis(reset_ms.saturating_sub(now_ms))
    };
    Some(wait.clamp(MIN_WAIT, MAX_WAIT))
}

/// Turns a status and body into the JSON answer or an error.
fn classify(path: &str, status: StatusCode, text: &str, creds: Option<&Creds>) -> Result<Value, RestError> {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if status == StatusCode::UNAUTHORIZED {
        return Err(RestError::Unauthorized(creds.map(|c| c.user_id.clone()).unwrap_or_default()));
    }
    if status.is_server_error() {
        return Err(RestError::Unavailable(format!("{path} answered {status}")));
    }
    if status.is_success() && body.get("success").and_then(Value::as_bool) != Some(false) && body.is_object() {
        return Ok(body);
    }
    let text_of = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let error = text_of("error").or_else(|| text_of("message")).unwrap_or_else(|| "no error text".into());
    let error_type = text_of("errorType").unwrap_or_default();
    // Bodies are never logged: they may quote message text.
    Err(RestError::Refused { path: path.to_owned(), status: status.as_u16(), error: truncate(&error, 200), error_type })
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
    fn rate_limit_waits_come_from_retry_after_or_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_wait(&headers, now), None);
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1002500"));
        assert_eq!(retry_wait(&headers, now), Some(Duration::from_millis(2500)));
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_wait(&headers, now), Some(Duration::from_secs(3)));
        headers.insert("retry-after", HeaderValue::from_static("99999"));
        assert_eq!(retry_wait(&headers, now), Some(MAX_WAIT));
        let mut past = HeaderMap::new();
        past.insert("x-ratelimit-reset", HeaderValue::from_static("5"));
        assert_eq!(retry_wait(&past, now), Some(MIN_WAIT));
    }

    #[test]
    fn answers_are_classified() {
        let creds = Creds { user_id: "u1".into(), token: "t".into() };
        assert!(classify("x", StatusCode::OK, r#"{"success":true,"a":1}"#, None).is_ok());
        let refused = classify(
            "chat.update",
            StatusCode::BAD_REQUEST,
            r#"{"success":false,"error":"not allowed [error-action-not-allowed]","errorType":"error-action-not-allowed"}"#,
            None,
        )
        .unwrap_err();
        assert!(matches!(&refused, RestError::Refused { error_type, .. } if error_type == "error-action-not-allowed"));
        assert!(!BridgeError::from(refused).is_transient());
        let unauthorized = classify(
            "me",
            StatusCode::UNAUTHORIZED,
            r#"{"status":"error","message":"You must be logged in to do this."}"#,
            Some(&creds),
        );
        assert!(matches!(unauthorized, Err(RestError::Unauthorized(ref u)) if u == "u1"));
        let queued = BridgeError::from(unauthorized.unwrap_err());
        assert!(matches!(queued, BridgeError::Transient { retry_after: Some(UNAUTHORIZED_RETRY), .. }));
        let outage = classify("me", StatusCode::BAD_GATEWAY, "<html>", None).unwrap_err();
        assert!(BridgeError::from(outage).is_transient());
        assert!(classify("x", StatusCode::OK, "not json", None).is_err());
        let secret = Creds { user_id: "u1".into(), token: "secret-xyz".into() };
        assert!(!format!("{secret:?}").contains("secret-xyz"));
    }
}
