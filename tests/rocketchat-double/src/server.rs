//! The shared state behind the HTTP server, and the server's startup.

use crate::error::{ApiError, DoubleError};
use crate::hub::Hub;
use crate::limits::{self, Limiter};
use crate::model::User;
use crate::schemas::{self, SchemaViolation, Validator};
use crate::workspace::Workspace;
use axum::http::HeaderMap;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The Rocket.Chat release whose API the double follows (and `/api/info` reports).
pub const SERVER_VERSION: &str = "8.8.1";

/// Every rest-typings validator the REST routes use.
pub const VALIDATORS: &[&str] = &[
    "isLoginProps",
    "isChatSendMessageProps",
    "isChatUpdateProps",
    "isChatDeleteProps",
    "isChatReactProps",
    "isChatGetMessageProps",
    "isChatSyncMessagesProps",
    "isUserCreateParamsPOST",
    "isUsersInfoParamsGetProps",
    "isUsersGetPresenceParamsGET",
    "isUsersListParamsGET",
    "isChannelsHistoryProps",
    "isChannelsInviteProps",
    "isChannelsJoinProps",
    "isGroupsHistoryProps",
    "isGroupsMembersProps",
    "isGroupsInviteProps",
    "isDmCreateProps",
    "isDmHistoryProps",
    "isDmMemberProps",
    "isRoomsInfoProps",
    "isSubscriptionsGetProps",
];

/// State shared by the HTTP handlers, the realtime sessions and the control API.
pub struct Shared {
    workspace: Mutex<Workspace>,
    /// Realtime sessions.
    pub hub: Hub,
    validator: Validator,
    /// False while the workspace is "down".
    pub available: AtomicBool,
    limiter: Mutex<Limiter>,
    violations: Mutex<Vec<SchemaViolation>>,
    requests: Mutex<HashMap<String, u64>>,
    /// The server's `CREATE_TOKENS_FOR_USERS_SECRET`.
    pub create_tokens_secret: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs `f` on the workspace, then publishes the events it queued, under the same lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut Workspace) -> R) -> R {
        let mut ws = lock(&self.workspace);
        let result = f(&mut ws);
        let events = std::mem::take(&mut ws.events);
        for event in &events {
            self.hub.emit(event, &ws);
        }
        result
    }

    /// The rate limiter.
    pub fn limiter(&self) -> MutexGuard<'_, Limiter> {
        lock(&self.limiter)
    }

    /// Counts one request to `route` (`METHOD name`).
    pub fn count_request(&self, route: &str) {
        *lock(&self.requests).entry(route.to_owned()).or_default() += 1;
    }

    /// Requests seen per route.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        lock(&self.requests).clone()
    }

    /// Recorded schema violations.
    pub fn violations(&self) -> Vec<SchemaViolation> {
        lock(&self.violations).clone()
    }

    /// The user the `X-User-Id`/`X-Auth-Token` headers (or `rc_uid`/`rc_token` cookies) log in.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<User, ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (uid, token) = match (header("x-user-id"), header("x-auth-token")) {
            (Some(uid), Some(token)) => (uid, token),
            _ => (
                cookie(headers, "rc_uid").ok_or_else(ApiError::unauthorized)?,
                cookie(headers, "rc_token").ok_or_else(ApiError::unauthorized)?,
            ),
        };
        self.with(|ws| ws.authenticate(&uid, &token).cloned()).ok_or_else(ApiError::unauthorized)
    }

    /// Validates `data` with rest-typings' `validator`; a mismatch is recorded and answered like the real router.
    pub async fn validate(&self, endpoint: &str, validator: &str, data: &Value) -> Result<(), ApiError> {
        let verdict = self.validator.check(validator, data).await;
        let errors = match verdict {
            Ok(None) => return Ok(()),
            Ok(Some(errors)) => errors,
            // A broken validator must fail the test, never wave requests through.
            Err(e) => Value::String(format!("validator failure: {e}")),
        };
        let reply = ApiError::invalid_params(&schemas::describe(&errors));
        tracing::warn!(endpoint, validator, "request body does not match Rocket.Chat's schema");
        let violation = SchemaViolation {
            endpoint: endpoint.to_owned(),
            validator: validator.to_owned(),
            body: data.clone(),
            errors,
        };
        self.push_violation(violation);
        Err(reply)
    }

    /// Records a schema violation.
    pub fn push_violation(&self, violation: SchemaViolation) {
        lock(&self.violations).push(violation);
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A running server: its address, shared state and shutdown handle.
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub stop: Option<oneshot::Sender<()>>,
}

/// Binds `addr` and serves the REST and realtime APIs on a background task.
pub async fn start(addr: SocketAddr, secret: String) -> Result<Running, DoubleError> {
    let validator = Validator::start(VALIDATORS).await.map_err(DoubleError::Startup)?;
    let shared = Arc::new(Shared {
        workspace: Mutex::new(Workspace::default()),
        hub: Hub::default(),
        validator,
        available: AtomicBool::new(true),
        limiter: Mutex::new(Limiter::default()),
        violations: Mutex::new(Vec::new()),
        requests: Mutex::new(HashMap::new()),
        create_tokens_secret: secret,
    });
    let listener = TcpListener::bind(addr).await.map_err(|e| DoubleError::Startup(format!("binding {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| DoubleError::Startup(e.to_string()))?;
    let app = crate::rest::router(shared.clone())
        .layer(axum::middleware::from_fn_with_state(shared.clone(), limits::gate))
        .with_state(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = served.await {
            tracing::warn!(error = %e, "Rocket.Chat double stopped serving");
        }
    });
    Ok(Running { addr, shared, stop: Some(stop) })
}
