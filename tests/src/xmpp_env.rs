//! An XMPP end-to-end environment: real Prosody (one component per tenant),
//! real Synapse and the test bridge with the XMPP adapter.

use std::time::Duration;

use brygga_harness::TempDir;
use brygga_harness::prosody::{Prosody, ProsodyOptions};
use brygga_harness::synapse::Synapse;

use crate::bridge::{BridgeProcess, BridgeSetup};
use crate::env::{Backend, start_synapse};
use crate::matrix_user::MatrixUser;

/// XMPP users registered on `localhost`, with their passwords.
pub const XMPP_USERS: [(&str, &str); 3] = [("bob", "bob-pw"), ("carol", "carol-pw"), ("dave", "dave-pw")];

/// How long the bridge waits before bridging an occupant's leave, in tests.
pub const LEAVE_GRACE_SECS: u64 = 3;

/// The bridge bot's Matrix id.
pub const BOT: &str = "@brygga:localhost";

/// A running environment; dropping it stops everything.
pub struct XmppEnv {
    /// The XMPP server.
    pub prosody: Prosody,
    /// The homeserver.
    pub synapse: Synapse,
    /// The Matrix user `@alice:localhost`.
    pub alice: MatrixUser,
    /// The bridge process.
    pub bridge: BridgeProcess,
    /// The operator's admin API token.
    pub operator_token: String,
    _dir: TempDir,
}

impl XmppEnv {
    /// Starts Prosody with a component for each tenant, Synapse and the bridge.
    pub async fn start(backend: Backend, tenants: &[&str]) -> Self {
        let dir = TempDir::new("brygga-xmpp-e2e").expect("temp dir");
        let prosody = start_prosody(tenants).await;
        let setup = BridgeSetup::new(backend.database_url(&dir).await);
        let tenants_yaml: String =
            tenants.iter().map(|t| format!("  - id: {t}\n    adapters:\n{}", adapter_yaml(&prosody, t))).collect();
        let mut bridge = BridgeProcess::new(dir.path(), &setup.config(&tenants_yaml), setup.admin_port);
        let (synapse, alice) = start_synapse(&setup, bridge.registration()).await;
        bridge.start().await;
        Self { prosody, synapse, alice, bridge, operator_token: setup.operator_token.clone(), _dir: dir }
    }

    /// A Matrix room of Alice's, linked by the CLI to `muc` for `tenant`; returns its id.
    pub async fn linked_room(&self, tenant: &str, muc: &str) -> String {
        let room = self.alice.create_room(&format!("Bridged {muc}"), &[BOT]).await;
        let output = tokio::task::block_in_place(|| self.bridge.cli(&["portal", "link", tenant, "xmpp", muc, &room]));
        assert!(output.contains("linked"), "unexpected CLI output: {output}");
        room
    }

    /// Waits until Alice's room has a text message with `body`; returns the event.
    pub async fn matrix_sees(&self, room: &str, body: &str) -> serde_json::Value {
        self.alice.wait_text(room, body, Duration::from_secs(30)).await
    }
}

impl XmppEnv {
    /// Waits until event `event` of Alice's room is redacted.
    pub async fn matrix_sees_redaction(&self, room: &str, event: &str) {
        let redacted = |e: &serde_json::Value| e["event_id"] == event && !e["unsigned"]["redacted_because"].is_null();
        self.alice.wait_timeline(room, Duration::from_secs(30), "a redaction", |t| t.iter().any(redacted)).await;
    }

    /// Waits until Alice's room has an edit whose new body is `body`; returns it.
    pub async fn matrix_sees_edit(&self, room: &str, body: &str) -> serde_json::Value {
        let is_edit = |e: &serde_json::Value| e["content"]["m.new_content"]["body"] == body;
        let timeline = self.alice.wait_timeline(room, Duration::from_secs(30), body, |t| t.iter().any(is_edit)).await;
        timeline.into_iter().find(is_edit).expect("found above")
    }
}

/// A tenant's component domain.
pub fn component_domain(tenant: &str) -> String {
    format!("matrix-{tenant}.localhost")
}

/// A tenant's component secret.
fn secret(tenant: &str) -> String {
    format!("secret-of-{tenant}")
}

/// Prosody with a component for each tenant and the users of [`XMPP_USERS`].
pub async fn start_prosody(tenants: &[&str]) -> Prosody {
    let components = tenants.iter().map(|t| (component_domain(t), secret(t))).collect();
    let users = XMPP_USERS.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect();
    let options = ProsodyOptions { components, users, ..Default::default() };
    tokio::task::spawn_blocking(move || Prosody::start(options)).await.expect("prosody thread").expect("Prosody")
}

/// A tenant's `xmpp` adapter entry (indented for a tenant's `adapters:`).
pub fn adapter_yaml(prosody: &Prosody, tenant: &str) -> String {
    format!(
        "      xmpp:\n        config: {{ server: \"127.0.0.1:{}\", domain: \"{}\", secret: \"{}\", \
         server_domain: \"localhost\", leave_grace_secs: {LEAVE_GRACE_SECS} }}\n",
        prosody.component_port(),
        component_domain(tenant),
        secret(tenant),
    )
}

/// The ghost of an XMPP identity (a real JID or an occupant JID) of a tenant.
pub fn ghost_id(tenant: &str, remote_user: &str) -> String {
    format!("@xmpp_{tenant}_{}:localhost", brygga_core::naming::escape(remote_user))
}

impl Drop for XmppEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- bridge log (last lines) ----\n{}", self.bridge.log());
            eprintln!("---- prosody log (last lines) ----\n{}", self.prosody.log_tail(40));
            eprintln!("---- synapse log (last lines) ----\n{}", brygga_harness::tail(&self.synapse.log_path(), 40));
        }
    }
}
