//! Sending ruma requests with reqwest, with bounded retries.
//!
//! Requests are built once per attempt from the same ruma request, so a
//! retried send carries the same transaction id and can never duplicate.

use std::borrow::Cow;
use std::time::Duration;

use brygga_core::BridgeError;
use http::{HeaderMap, StatusCode, header};
use ruma::UserId;
use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use ruma::api::{
    AppserviceUserIdentity, IncomingResponseExt, MatrixVersion, OutgoingRequest, OutgoingRequestAppserviceExt,
    SupportedVersions,
};
use serde::Deserialize;
use tokio::time::Instant;

/// How long and how often to retry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) total: Duration,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

/// Which spec versions to pick endpoint paths for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Versions {
    /// Current endpoints (v3, authenticated media v1).
    Modern,
    /// Matrix 1.1, for endpoints deprecated since (unauthenticated media).
    Legacy,
}

impl Versions {
    fn supported(self) -> SupportedVersions {
        let version = match self {
            Self::Modern => MatrixVersion::V1_11,
            Self::Legacy => MatrixVersion::V1_1,
        };
        SupportedVersions { versions: [version].into_iter().collect(), features: Default::default() }
    }
}

/// Supplies a path builder's input from the versions we target.
pub(crate) trait PathInput: PathBuilder {
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Cow<'_, SupportedVersions> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_: &SupportedVersions) {}
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The homeserver refused the request; retrying will not help.
    Refused { status: u16, errcode: String },
    /// The homeserver could not be reached in time.
    Unavailable { message: String, retry_after: Option<Duration> },
    /// The request could not be built or the answer not understood.
    Invalid(String),
}

impl CallError {
    /// The Matrix errcode of a refusal.
    pub(crate) fn errcode(&self) -> Option<&str> {
        match self {
            Self::Refused { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// The HTTP status of a refusal.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The bridge-level error, naming the operation (never bodies or tokens).
    pub(crate) fn into_bridge(self, what: &str) -> BridgeError {
        match self {
            Self::Refused { status, errcode } => BridgeError::permanent(format!("{what}: HTTP {status} {errcode}")),
            Self::Unavailable { message, retry_after } => {
                BridgeError::Transient { message: format!("{what}: {message}"), retry_after }
            }
            Self::Invalid(message) => BridgeError::permanent(format!("{what}: {message}")),
        }
    }
}

/// The body of a Matrix error response, as far as retries care.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    errcode: String,
    retry_after_ms: Option<u64>,
}

/// An HTTP client bound to one homeserver and the appservice token.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
    policy: RetryPolicy,
}

enum Attempt {
    Answer(StatusCode, HeaderMap, bytes::Bytes),
    Transport(&'static str),
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, base: String, token: String, policy: RetryPolicy) -> Self {
        Self { client, base, token, policy }
    }

    /// The homeserver's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The appservice token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Sends `request` (as `as_user` when given), retrying 429, 5xx and
    /// transport failures until the retry budget is spent.
    pub(crate) async fn call<R>(
        &self,
        what: &str,
        request: R,
        as_user: Option<&UserId>,
        versions: Versions,
    ) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
        R::PathBuilder: PathInput,
    {
        let supported = versions.supported();
        let identity = match as_user {
            Some(user) => AppserviceUserIdentity::new(user),
            None => AppserviceUserIdentity::default(),
        };
        let build = || {
            request
                .clone()
                .try_into_http_request_with_identity::<Vec<u8>>(
                    &self.base,
                    SendAccessToken::Always(&self.token),
                    identity,
                    <R::PathBuilder as PathInput>::input(&supported),
                )
                .map_err(|e| CallError::Invalid(format!("cannot build request: {e}")))
        };
        let (status, headers, body) = self.retrying(what, build).await?;
        parse_response::<R>(status, headers, &body)
    }

    /// Sends a request built elsewhere (by the crypto machines) with the
    /// same retries; any HTTP answer is returned as it came.
    pub(crate) async fn send_prepared(
        &self,
        what: &str,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, String> {
        let build = || {
            let mut copy = http::Request::new(request.body().clone());
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.headers_mut() = request.headers().clone();
            Ok(copy)
        };
        let (status, body) = match self.retrying(what, build).await {
            Ok((status, _, body)) => (status, body.to_vec()),
            Err(CallError::Refused { status, errcode }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                (status, serde_json::to_vec(&serde_json::json!({ "errcode": errcode })).unwrap_or_default())
            }
            Err(CallError::Unavailable { message, .. } | CallError::Invalid(message)) => return Err(message),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        Ok(response)
    }

    /// Sends the request `build` makes (anew for each attempt), retrying
    /// 429, 5xx and transport failures until the retry budget is spent.
    async fn retrying(
        &self,
        what: &str,
        build: impl Fn() -> Result<http::Request<Vec<u8>>, CallError>,
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes), CallError> {
        let deadline = Instant::now() + self.policy.total;
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (delay, reason, server_delay) = match self.attempt(build()?).await {
                Attempt::Answer(status, headers, body) if status.as_u16() < 400 => {
                    return Ok((status, headers, body));
                }
                Attempt::Answer(status, headers, body) => {
                    let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let requested =
                            error.retry_after_ms.map(Duration::from_millis).or_else(|| retry_after_header(&headers));
                        (requested.unwrap_or(backoff), "rate limited", requested.is_some())
                    } else if status.is_server_error() {
                        (backoff, "server error", false)
                    } else {
                        return Err(CallError::Refused { status: status.as_u16(), errcode: error.errcode });
                    }
                }
                Attempt::Transport(reason) => (backoff, reason, false),
            };
            if Instant::now() + delay > deadline {
                return Err(CallError::Unavailable {
                    message: format!("{reason}, gave up after {attempt} attempts"),
                    retry_after: Some(delay),
                });
            }
            tracing::warn!(what, attempt, reason, delay_ms = delay.as_millis() as u64, "retrying homeserver request");
            tokio::time::sleep(delay).await;
            if !server_delay {
                backoff = (backoff * 2).min(self.policy.max_backoff);
            }
        }
    }

    async fn attempt(&self, request: http::Request<Vec<u8>>) -> Attempt {
        let request = match reqwest::Request::try_from(request) {
            Ok(request) => request,
            Err(_) => return Attempt::Transport("invalid request"),
        };
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(err) => return Attempt::Transport(describe(&err)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => Attempt::Answer(status, headers, body),
            Err(err) => Attempt::Transport(describe(&err)),
        }
    }
}

/// A transport failure in a few words; reqwest's own text names the URL.
fn describe(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "transport error"
    }
}

fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

fn parse_response<R: OutgoingRequest>(
    status: StatusCode,
    headers: HeaderMap,
    body: &[u8],
) -> Result<R::IncomingResponse, CallError> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    R::IncomingResponse::try_from_http_response(response)
        // The decoder's message may quote response fields: keep it out.
        .map_err(|_| CallError::Invalid(format!("unexpected response to HTTP {}", status.as_u16())))
}
