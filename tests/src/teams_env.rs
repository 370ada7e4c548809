//! A Teams end-to-end environment: the Graph double as Microsoft Graph and
//! the identity platform (one Entra tenant per bridge tenant), real Synapse
//! and the test bridge with the Teams adapter pointed at the double; Graph
//! posts its notifications to the bridge's webhook route.

use std::time::Duration;

use brygga_graph_double::certs::TestCertificate;
use brygga_graph_double::{Conversation, GraphDouble, TestUser};
use brygga_harness::TempDir;
use brygga_harness::synapse::Synapse;
use serde_json::Value;

use crate::bridge::{BridgeProcess, BridgeSetup};
use crate::env::{Backend, start_synapse};
use crate::matrix_user::MatrixUser;

/// The bridge bot's Matrix id.
pub const BOT: &str = "@brygga:localhost";
/// How long a test waits for something to show up.
pub const WAIT: Duration = Duration::from_secs(30);
/// The key sealing refresh tokens in the test config.
const TOKEN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// One bridge tenant's Entra tenant: its people and the relay identity.
pub struct Agency {
    /// The bridge tenant id.
    pub tenant: String,
    /// The Entra tenant id.
    pub entra: String,
    /// A Teams user.
    pub bob: TestUser,
    /// Another Teams user.
    pub carol: TestUser,
    /// The relay identity.
    pub relay: TestUser,
    /// A team with all of them.
    pub team: String,
}

/// A running environment; dropping it stops everything.
pub struct TeamsEnv {
    /// The Graph double, shared by the agencies.
    pub graph: GraphDouble,
    /// The agencies, in the order of the tenants given.
    pub agencies: Vec<Agency>,
    /// The homeserver.
    pub synapse: Synapse,
    /// The Matrix user `@alice:localhost`.
    pub alice: MatrixUser,
    /// The bridge process.
    pub bridge: BridgeProcess,
    /// The appservice listener (where the webhook routes are), `http://127.0.0.1:<port>`.
    pub listener: String,
    /// The app's certificate, when the tenants use one instead of the secret.
    pub certificate: Option<TestCertificate>,
    _dir: TempDir,
}

impl TeamsEnv {
    /// Starts the double with an Entra tenant per bridge tenant, Synapse and the bridge.
    pub async fn start(backend: Backend, tenants: &[&str]) -> Self {
        Self::start_with(backend, tenants, false).await
    }

    /// As [`Self::start`], but the app registration has a certificate and no
    /// secret, and the tenants subscribe with encrypted resource data.
    pub async fn start_with_certificate(backend: Backend, tenants: &[&str]) -> Self {
        Self::start_with(backend, tenants, true).await
    }

    async fn start_with(backend: Backend, tenants: &[&str], with_certificate: bool) -> Self {
        let dir = TempDir::new("brygga-teams-e2e").expect("temp dir");
        let graph = GraphDouble::start().await;
        let certificate = with_certificate.then(|| TestCertificate::generate("brygga e2e"));
        let credentials = match &certificate {
            Some(cert) => {
                graph.add_client_certificate(&cert.der);
                graph.remove_client_secrets();
                let pem = dir.path().join("teams-app.pem");
                std::fs::write(&pem, format!("{}{}", cert.cert_pem, cert.key_pem)).expect("writing the PEM");
                format!("client_certificate_file: \"{}\", include_resource_data: true", pem.display())
            }
            None => format!("client_secret: \"{}\"", graph.client_secret()),
        };
        let mut agencies = Vec::new();
        for tenant in tenants {
            let entra = graph.add_tenant();
            let bob = graph.add_user(&entra, "Bob Berg");
            let carol = graph.add_user(&entra, "Carol Carlsson");
            let relay = graph.add_user(&entra, "Matrix Relay");
            let team = graph.add_team(&entra, "Agency", &[&bob, &carol, &relay]);
            agencies.push(Agency { tenant: (*tenant).to_owned(), entra, bob, carol, relay, team });
        }
        let setup = BridgeSetup::new(backend.database_url(&dir).await);
        let tenants_yaml: String = agencies
            .iter()
            .map(|a| {
                format!(
                    "  - id: {tenant}\n    adapters:\n      teams:\n        config: {{ client_id: \"{client}\", \
                     {credentials}, tenant_id: \"{entra}\", \
                     notification_url_base: \"http://127.0.0.1:{port}/_brygga/webhook/{tenant}/teams/\", \
                     token_key: \"{TOKEN_KEY}\", relay_user_id: \"{relay}\", relay_refresh_token: \"{refresh}\", \
                     graph_url: \"{graph}\", login_url: \"{login}\", matrix_server_name: localhost, \
                     presence_interval_secs: 5 }}\n",
                    tenant = a.tenant,
                    client = graph.client_id(),
                    entra = a.entra,
                    port = setup.as_port,
                    relay = a.relay.id,
                    refresh = graph.refresh_token(&a.relay),
                    graph = graph.url(),
                    login = graph.login_base(),
                )
            })
            .collect();
        let config = setup.config(&tenants_yaml).replace("brygga_xmpp=debug", "brygga_teams=debug");
        let mut bridge = BridgeProcess::new(dir.path(), &config, setup.admin_port);
        let (synapse, alice) = start_synapse(&setup, bridge.registration()).await;
        bridge.start().await;
        let listener = format!("http://127.0.0.1:{}", setup.as_port);
        Self { graph, agencies, synapse, alice, bridge, listener, certificate, _dir: dir }
    }

    /// The first agency.
    pub fn agency(&self) -> &Agency {
        &self.agencies[0]
    }

    /// Links `conversation` by the CLI to a new Matrix room of Alice's;
    /// returns the room once Graph holds the bridge's subscription for it.
    pub async fn link(&self, agency: &Agency, conversation: &Conversation, name: &str) -> String {
        let remote = room_of(conversation);
        let room = self.alice.create_room(&format!("Bridged {name}"), &[BOT]).await;
        let output = tokio::task::block_in_place(|| {
            self.bridge.cli(&["portal", "link", &agency.tenant, "teams", &remote, &room])
        });
        assert!(output.contains("linked"), "unexpected CLI output: {output}");
        self.wait_subscribed(conversation).await;
        // The first catch-up marks where bridging starts; let it finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        room
    }

    /// Waits until Graph holds a live subscription of `conversation`; returns its id.
    pub async fn wait_subscribed(&self, conversation: &Conversation) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = chrono::Utc::now();
            let found =
                self.graph.subscriptions().into_iter().find(|s| &s.conversation == conversation && s.active(now));
            if let Some(sub) = found {
                return sub.id;
            }
            assert!(tokio::time::Instant::now() < deadline, "the bridge never subscribed to {conversation:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A channel of the agency's team.
    pub fn channel(&self, agency: &Agency, name: &str) -> Conversation {
        self.graph.add_channel(&agency.entra, &agency.team, name)
    }

    /// Waits until Alice's room has a text message with `body`; returns the event.
    pub async fn matrix_sees(&self, room: &str, body: &str) -> Value {
        self.alice.wait_text(room, body, WAIT).await
    }

    /// Waits until Graph has a message in `conversation` that `pred` accepts; returns it.
    pub async fn teams_sees(
        &self,
        conversation: &Conversation,
        what: &str,
        pred: impl Fn(&brygga_graph_double::MessageRecord) -> bool,
    ) -> brygga_graph_double::MessageRecord {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.graph.messages(conversation).into_iter().find(|m| pred(m)) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "Teams never saw {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text bodies of Alice's room, oldest first.
    pub async fn matrix_texts(&self, room: &str) -> Vec<String> {
        self.alice.texts(room).await
    }
}

/// The bridge's room id of a conversation: `{team}/{channel}` or the chat id.
pub fn room_of(conversation: &Conversation) -> String {
    match conversation {
        Conversation::Channel { team, channel, .. } => format!("{team}/{channel}"),
        Conversation::Chat { chat, .. } => chat.clone(),
        _ => panic!("only channels and chats exist"),
    }
}

/// The ghost of a Teams user of a tenant.
pub fn ghost_id(tenant: &str, user: &TestUser) -> String {
    format!("@teams_{tenant}_{}:localhost", brygga_core::naming::escape(&user.id))
}

impl Drop for TeamsEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- bridge log (last lines) ----\n{}", self.bridge.log());
            eprintln!("---- synapse log (last lines) ----\n{}", brygga_harness::tail(&self.synapse.log_path(), 40));
        }
    }
}
