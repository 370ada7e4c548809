//! A faithful in-process Rocket.Chat workspace for tests (never shipped).
//!
//! It follows Rocket.Chat 8.x (request schemas of `@rocket.chat/rest-typings`
//! 8.8.1): the REST API under `/api/v1` with `X-User-Id`/`X-Auth-Token`
//! auth, Rocket.Chat's error bodies and rate-limit headers, file upload and
//! download, and the realtime API (DDP over a websocket at `/websocket`) with
//! `stream-room-messages`, `stream-notify-room`, `stream-notify-logged` and
//! `stream-notify-user`. Every request body is validated against Rocket.Chat's
//! own schemas by a `node` child process; see the README.
//!
//! ```no_run
//! # async fn demo() {
//! use brygga_rocketchat_double::RocketChatDouble;
//! let rc = RocketChatDouble::start().await;
//! let bot = rc.create_admin("bridge-bot");
//! let alice = rc.create_user("alice");
//! let rid = rc.create_channel("general", &alice, &[&bot]);
//! rc.post_message(&alice, &rid, "hello").unwrap();
//! // ... drive the adapter against rc.url() ...
//! rc.assert_schemas_ok();
//! # }
//! ```

mod control;
mod error;
mod events;
mod hub;
mod ids;
mod limits;
mod model;
mod realtime;
mod rest;
mod schemas;
mod server;
mod time;
mod workspace;

pub use control::TestUser;
pub use error::DoubleError;
pub use hub::RealtimeSubscription;
pub use limits::RateLimit;
pub use model::{Message, Presence, RoomType, Upload};
pub use schemas::{SCHEMAS_ENV, SchemaViolation};
pub use server::SERVER_VERSION;

use server::{Running, Shared};
use std::net::SocketAddr;
use std::sync::Arc;

/// The default `CREATE_TOKENS_FOR_USERS_SECRET` of a double.
pub const DEFAULT_CREATE_TOKENS_SECRET: &str = "brygga-double-create-tokens-secret";

/// A running Rocket.Chat double. Dropping it (or [`RocketChatDouble::shutdown`]) stops it.
pub struct RocketChatDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RocketChatDouble {
    /// Starts on 127.0.0.1 at a free port. Panics, saying to run `cargo xtask test`, if the schemas are missing.
    pub async fn start() -> Self {
        match Self::try_start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(double) => double,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts on `addr` (the demo binds a fixed port).
    pub async fn start_on(addr: SocketAddr) -> Result<Self, DoubleError> {
        Self::try_start_on(addr).await
    }

    async fn try_start_on(addr: SocketAddr) -> Result<Self, DoubleError> {
        let Running { addr, shared, stop } = server::start(addr, DEFAULT_CREATE_TOKENS_SECRET.to_owned()).await?;
        Ok(Self { addr, shared, stop })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The realtime URL, `ws://127.0.0.1:<port>/websocket`.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/websocket", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The secret `users.createToken` requires (the server's `CREATE_TOKENS_FOR_USERS_SECRET`).
    pub fn create_tokens_secret(&self) -> &str {
        &self.shared.create_tokens_secret
    }

    /// Stops serving and drops every realtime connection.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.shared.hub.drop_all();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Request bodies (or queries) that did not match Rocket.Chat's schemas.
    pub fn schema_violations(&self) -> Vec<SchemaViolation> {
        self.shared.violations()
    }

    /// Panics listing every schema violation, if there was any.
    pub fn assert_schemas_ok(&self) {
        let violations = self.schema_violations();
        if !violations.is_empty() {
            let list: Vec<String> = violations
                .iter()
                .map(|v| format!("- {} ({}): {} in {}", v.endpoint, v.validator, v.errors, v.body))
                .collect();
            panic!("{} request(s) did not match Rocket.Chat's request schemas:\n{}", violations.len(), list.join("\n"));
        }
    }
}

impl Drop for RocketChatDouble {
    fn drop(&mut self) {
        self.stop_now();
    }
}
