//! A faithful in-process Microsoft Graph v1.0 and identity platform double
//! for tests (never shipped).
//!
//! It models Entra tenants (an app registration consented or not, users,
//! teams, channels, chats, members), the v2.0 token endpoint (client
//! credentials with a secret or a certificate's client assertion, device
//! code, refresh token) and its published signing keys, Teams channel and chat messages
//! (send, get, list, edit, soft delete, reactions, hosted contents, replies,
//! channel delta), members, users, presence, change notification
//! subscriptions with the validation handshake and delivery to the bridge's
//! webhook (optionally with encrypted resource data and validation tokens),
//! lifecycle notifications and throttling. See the README for what
//! it does and does not model.
//!
//! ```no_run
//! # async fn demo() {
//! use brygga_graph_double::{Draft, GraphDouble};
//! let graph = GraphDouble::start().await;
//! let tenant = graph.add_tenant();
//! let alice = graph.add_user(&tenant, "Alice Andersson");
//! let team = graph.add_team(&tenant, "Agency", &[&alice]);
//! let channel = graph.add_channel(&tenant, &team, "General");
//! graph.send(&alice, &channel, Draft::html("<p>hello</p>")).unwrap();
//! // The adapter uses graph.url(), graph.login_url(&tenant),
//! // graph.client_id() and graph.client_secret().
//! # }
//! ```

mod acting;
mod assertion;
mod auth;
pub mod certs;
mod control;
mod conversations;
mod error;
mod graph;
mod identity;
mod ids;
pub mod jwt;
mod model;
mod notify;
mod operations;
mod render;
pub mod rich;
mod server;
mod state;
mod subscriptions;
mod throttle;
mod time;
mod world;

pub use control::{LifecycleEvent, Stats};
pub use conversations::Draft;
pub use error::DoubleError;
pub use identity::GRAPH_DEFAULT_SCOPE;
pub use model::{Conversation, HostedContent, MessageRecord, Reaction, SentVia, TestUser};
pub use notify::{Delivery, Outcome, RetryPolicy};
pub use rich::{CHANGE_TRACKING_APP_ID, Encryption, validation_token};
pub use server::{DEFAULT_ROLES, DEFAULT_SCOPES};
pub use state::Settings;
pub use subscriptions::Subscription;

use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;

/// The client (application) id of the double's multi-tenant app registration.
pub const DEFAULT_CLIENT_ID: &str = "0b5e2f4a-7c1d-4e8b-9a3f-6d2c1b0a9e87";
/// Its client secret.
pub const DEFAULT_CLIENT_SECRET: &str = "brygga-graph-double-client-secret";

/// A running Graph double. Dropping it (or [`GraphDouble::shutdown`]) stops it.
pub struct GraphDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl GraphDouble {
    /// Starts on 127.0.0.1 at a free port (panics if it cannot bind, which only a broken machine causes).
    pub async fn start() -> Self {
        match Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(double) => double,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts on `addr` (the demo binds a fixed port).
    pub async fn start_on(addr: SocketAddr) -> Result<Self, DoubleError> {
        let running = server::start(addr, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await?;
        Ok(Self { addr: running.addr, shared: running.shared, stop: Some(running.stop) })
    }

    /// The Graph base URL, `http://127.0.0.1:<port>/v1.0` (stands for `https://graph.microsoft.com/v1.0`).
    pub fn url(&self) -> String {
        self.shared.graph_base()
    }

    /// The identity platform authority, `http://127.0.0.1:<port>` (stands for `https://login.microsoftonline.com`).
    pub fn login_base(&self) -> String {
        self.shared.origin.clone()
    }

    /// The token endpoint of `tenant`, `http://127.0.0.1:<port>/{tenant}/oauth2/v2.0/token`.
    pub fn login_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.origin)
    }

    /// The device code endpoint of `tenant` (or `organizations`).
    pub fn device_code_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/devicecode", self.shared.origin)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app registration's client id.
    pub fn client_id(&self) -> &'static str {
        DEFAULT_CLIENT_ID
    }

    /// The app registration's client secret.
    pub fn client_secret(&self) -> &'static str {
        DEFAULT_CLIENT_SECRET
    }

    /// Stops serving.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for GraphDouble {
    fn drop(&mut self) {
        self.stop_now();
    }
}
