//! A Rocket.Chat end-to-end environment: one Rocket.Chat double per tenant
//! (its workspace), real Synapse and the test bridge with the Rocket.Chat
//! adapter pointed at the doubles.

use std::time::Duration;

use brygga_harness::TempDir;
use brygga_harness::synapse::Synapse;
use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use serde_json::Value;

use crate::bridge::{BridgeProcess, BridgeSetup};
use crate::env::{Backend, start_synapse};
use crate::matrix_user::MatrixUser;

/// The bridge bot's Matrix id.
pub const BOT: &str = "@brygga:localhost";
/// How long a test waits for something to show up.
pub const WAIT: Duration = Duration::from_secs(30);

/// One tenant's workspace: the double with its bridge bot and two people.
pub struct Workspace {
    /// The tenant id.
    pub tenant: String,
    /// The Rocket.Chat double.
    pub rc: RocketChatDouble,
    /// The bridge's bot user (an admin).
    pub bot: TestUser,
    /// A Rocket.Chat user.
    pub bob: TestUser,
    /// Another Rocket.Chat user.
    pub carol: TestUser,
}

/// How Matrix users appear on Rocket.Chat in an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Puppets {
    /// Real Rocket.Chat users.
    Users,
    /// The bot with an alias.
    Impersonate,
}

/// A running environment; dropping it stops everything.
pub struct RocketChatEnv {
    /// The workspaces, in the order of the tenants given.
    pub workspaces: Vec<Workspace>,
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

impl RocketChatEnv {
    /// Starts a double per tenant, Synapse and the bridge (puppets as real users).
    pub async fn start(backend: Backend, tenants: &[&str]) -> Self {
        Self::start_with(backend, tenants, Puppets::Users).await
    }

    /// Starts a double per tenant, Synapse and the bridge.
    pub async fn start_with(backend: Backend, tenants: &[&str], puppets: Puppets) -> Self {
        let dir = TempDir::new("brygga-rocketchat-e2e").expect("temp dir");
        let mut workspaces = Vec::new();
        for tenant in tenants {
            let rc = RocketChatDouble::start().await;
            let bot = rc.create_user_with_roles("matrix-bridge", &["admin", "bot", "user"]);
            let bob = rc.create_user("bob");
            let carol = rc.create_user("carol");
            workspaces.push(Workspace { tenant: (*tenant).to_owned(), rc, bot, bob, carol });
        }
        let setup = BridgeSetup::new(backend.database_url(&dir).await);
        let mode = match puppets {
            Puppets::Users => "users",
            Puppets::Impersonate => "impersonate",
        };
        let tenants_yaml: String = workspaces
            .iter()
            .map(|w| {
                format!(
                    "  - id: {}\n    adapters:\n      rocketchat:\n        config: {{ url: \"{}\", user_id: \"{}\", \
                     token: \"{}\", create_tokens_secret: \"{}\", puppet_mode: {mode}, matrix_server_name: localhost }}\n",
                    w.tenant,
                    w.rc.url(),
                    w.bot.id,
                    w.bot.token,
                    w.rc.create_tokens_secret(),
                )
            })
            .collect();
        let config = setup.config(&tenants_yaml).replace("brygga_xmpp=debug", "brygga_rocketchat=debug");
        let mut bridge = BridgeProcess::new(dir.path(), &config, setup.admin_port);
        let (synapse, alice) = start_synapse(&setup, bridge.registration()).await;
        bridge.start().await;
        Self { workspaces, synapse, alice, bridge, operator_token: setup.operator_token.clone(), _dir: dir }
    }

    /// The first workspace.
    pub fn ws(&self) -> &Workspace {
        &self.workspaces[0]
    }

    /// A channel of `ws` with Bob, Carol and the bot, linked by the CLI to a
    /// new Matrix room of Alice's; returns `(rid, room)` once the bridge listens in it.
    pub async fn linked_channel(&self, ws: &Workspace, name: &str) -> (String, String) {
        let rid = ws.rc.create_channel(name, &ws.bob, &[&ws.carol, &ws.bot]);
        let room = self.alice.create_room(&format!("Bridged {name}"), &[BOT]).await;
        let output =
            tokio::task::block_in_place(|| self.bridge.cli(&["portal", "link", &ws.tenant, "rocketchat", &rid, &room]));
        assert!(output.contains("linked"), "unexpected CLI output: {output}");
        let listening =
            ws.rc.wait_for_subscription(&ws.bot.id, "stream-notify-room", &format!("{rid}/deleteMessage"), WAIT).await;
        assert!(listening, "the bridge never subscribed to {rid}");
        // The first catch-up marks where bridging starts; let it finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        (rid, room)
    }

    /// Waits until Alice's room has a text message with `body`; returns the event.
    pub async fn matrix_sees(&self, room: &str, body: &str) -> Value {
        self.alice.wait_text(room, body, WAIT).await
    }

    /// Waits until the workspace has a message in `rid` that `pred` accepts; returns it.
    pub async fn rc_sees(
        &self,
        ws: &Workspace,
        rid: &str,
        what: &str,
        pred: impl Fn(&brygga_rocketchat_double::Message) -> bool,
    ) -> brygga_rocketchat_double::Message {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = ws.rc.messages(rid).into_iter().find(|m| pred(m)) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "Rocket.Chat never saw {what} in {rid}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text bodies of Alice's room, oldest first.
    pub async fn matrix_texts(&self, room: &str) -> Vec<String> {
        self.alice.texts(room).await
    }
}

/// A Rocket.Chat user's own realtime session, collecting the stream events it gets.
pub struct RcListener {
    events: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RcListener {
    /// Connects as `user`, logs in and subscribes to `(stream, event)` pairs.
    pub async fn connect(ws: &Workspace, user: &TestUser, subs: &[(&str, &str)]) -> Self {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let (mut socket, _) = tokio_tungstenite::connect_async(ws.rc.websocket_url()).await.expect("websocket");
        let mut frames = vec![
            serde_json::json!({"msg": "connect", "version": "1", "support": ["1"]}),
            serde_json::json!({"msg": "method", "method": "login", "id": "login", "params": [{"resume": user.token}]}),
        ];
        for (i, (stream, event)) in subs.iter().enumerate() {
            frames.push(
                serde_json::json!({"msg": "sub", "id": format!("s{i}"), "name": stream, "params": [event, false]}),
            );
        }
        for frame in frames {
            socket.send(Message::text(frame.to_string())).await.expect("send");
        }
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(Message::Text(text))) = socket.next().await {
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                match frame["msg"].as_str() {
                    Some("ping") => {
                        let _ = socket.send(Message::text(serde_json::json!({"msg": "pong"}).to_string())).await;
                    }
                    Some("changed") => sink.lock().expect("events").push(frame["fields"].clone()),
                    _ => {}
                }
            }
        });
        // Subscriptions are live once the server listed them.
        let ready = ws.rc.wait_for_subscription(&user.id, subs[0].0, subs[0].1, WAIT).await;
        assert!(ready, "the test listener never subscribed");
        Self { events, task }
    }

    /// Waits for a stream event (`{eventName, args}`) that `pred` accepts.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.events.lock().expect("events").iter().find(|e| pred(e)) {
                return found.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "Rocket.Chat never streamed {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RcListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The ghost of a Rocket.Chat username of a tenant.
pub fn ghost_id(tenant: &str, username: &str) -> String {
    format!("@rocketchat_{tenant}_{}:localhost", brygga_core::naming::escape(username))
}

impl Drop for RocketChatEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- bridge log (last lines) ----\n{}", self.bridge.log());
            eprintln!("---- synapse log (last lines) ----\n{}", brygga_harness::tail(&self.synapse.log_path(), 40));
        }
    }
}
