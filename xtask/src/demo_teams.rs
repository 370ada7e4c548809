//! `cargo xtask demo --teams`: brygga's Graph double as a STAND-IN Microsoft
//! Teams tenant for the demo tenant (Microsoft Graph v1.0 and the identity
//! platform's token endpoint only, no Teams client, not Microsoft 365), with
//! a person `Dana Dahl` to act as over Graph's REST API, a team with a
//! channel and a group chat, each linked to a Matrix room of Alice's.
//!
//! The double runs in this process, on a tokio runtime kept for the demo; it
//! stops with the process. Graph posts its change notifications to the
//! bridge's webhook on the appservice listener, as it would in production.

use crate::demo::MatrixClient;
use brygga_graph_double::{Conversation, GraphDouble, TestUser};
use brygga_harness::{base64_unpadded, random_bytes};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The Teams person the demo prints a token for.
const PERSON: &str = "Dana Dahl";
/// The team, its linked channel and the linked chat's topic.
const TEAM: &str = "Demo agency";
const CHANNEL: &str = "General";
const CHAT: &str = "Demo chat";
/// How long to wait for the bridge to subscribe, and for a welcome to arrive.
const WAIT: Duration = Duration::from_secs(30);
/// The message the printed `curl` line posts (a Graph `chatMessage` body).
const SAMPLE_MESSAGE: &str = r#"{"body": {"contentType": "html", "content": "Hello from <b>Teams</b>"}}"#;
/// Lifetime of the double's access tokens in the demo, so the printed one lasts the session
/// (Entra's last about an hour; the bridge renews its own either way).
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// One linked conversation and what happened when it was opened.
struct Linked {
    conversation: Conversation,
    /// The bridge's remote room id: `{team}/{channel}` or the chat id.
    remote: String,
    label: String,
    room: String,
    subscribed: bool,
    welcomed: bool,
}

/// The stand-in tenant: Dana, the relay identity, the team's channel and the chat.
pub struct TeamsDemo {
    graph: GraphDouble,
    entra: String,
    dana: TestUser,
    relay: TestUser,
    channel: Conversation,
    chat: Conversation,
    linked: Vec<Linked>,
    // Last, so it is dropped after the double.
    runtime: Runtime,
}

impl TeamsDemo {
    /// Starts the double on a free 127.0.0.1 port with one consented Entra tenant holding
    /// Dana, the relay identity, the team "Demo agency" (channel "General") and a group chat.
    pub fn start() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("graph-double")
            .enable_all()
            .build()
            .map_err(|e| format!("starting a tokio runtime: {e}"))?;
        let graph = runtime
            .block_on(GraphDouble::start_on(SocketAddr::from(([127, 0, 0, 1], 0))))
            .map_err(|e| format!("starting the Graph double: {e}"))?;
        graph.update_settings(|s| s.token_lifetime = TOKEN_LIFETIME);
        let entra = graph.add_tenant();
        let dana = graph.add_user(&entra, PERSON);
        let relay = graph.add_user(&entra, "Matrix Relay");
        let team = graph.add_team(&entra, TEAM, &[&dana, &relay]);
        let channel = graph.add_channel(&entra, &team, CHANNEL);
        let chat = graph.add_chat(&entra, Some(CHAT), &[&dana, &relay]);
        println!("xtask: Teams stand-in (Graph test double) is listening on {}", graph.login_base());
        Ok(Self { graph, entra, dana, relay, channel, chat, linked: Vec::new(), runtime })
    }

    /// The demo tenant's `teams` adapter, to go under `adapters:` (six spaces deep);
    /// Graph reaches the bridge's webhook on the appservice listener at `as_port`.
    pub fn adapter_yaml(&self, tenant: &str, as_port: u16) -> String {
        // A fresh key each run: the demo's store is fresh too.
        let token_key = format!("{}=", base64_unpadded(&random_bytes(32)));
        format!(
            r#"      teams:
        config:
          client_id: "{client}"
          client_secret: "{secret}"
          tenant_id: "{entra}"
          notification_url_base: "http://127.0.0.1:{as_port}/_brygga/webhook/{tenant}/teams/"
          token_key: "{token_key}"
          relay_user_id: "{relay}"
          relay_refresh_token: "{refresh}"
          graph_url: "{graph}"
          login_url: "{login}"
          matrix_server_name: localhost
          presence_interval_secs: 10
"#,
            client = self.graph.client_id(),
            secret = self.graph.client_secret(),
            entra = self.entra,
            relay = self.relay.id,
            refresh = self.graph.refresh_token(&self.relay),
            graph = self.graph.url(),
            login = self.graph.login_base(),
        )
    }

    /// For the channel and the chat: has Alice create a room (inviting `bot`), links it with
    /// `link(remote room, room, name)` (the bridge's CLI), waits for the bridge's Graph
    /// subscription and sends a welcome from Matrix, which the relay identity posts.
    pub fn open_rooms(
        &mut self,
        alice: &MatrixClient,
        bot: &str,
        link: impl Fn(&str, &str, &str) -> Result<String, String>,
    ) -> Result<(), String> {
        let channel_remote = match &self.channel {
            Conversation::Channel { team, channel, .. } => format!("{team}/{channel}"),
            _ => return Err("the demo channel is not a channel".into()),
        };
        let chat_remote = match &self.chat {
            Conversation::Chat { chat, .. } => chat.clone(),
            _ => return Err("the demo chat is not a chat".into()),
        };
        let wanted = [
            (self.channel.clone(), channel_remote, format!("Teams {TEAM} / {CHANNEL}"), "teams-general"),
            (self.chat.clone(), chat_remote, format!("Teams chat \"{CHAT}\""), "teams-chat"),
        ];
        for (conversation, remote, label, name) in wanted {
            let room = alice.create_room(&label, &[bot])?;
            println!("xtask: Alice created {room}; linking it to {label} ({remote})");
            println!("xtask: {}", link(&remote, &room, name)?);
            let subscribed = self.wait_until(|g| g.subscriptions().iter().any(|s| s.conversation == conversation));
            if !subscribed {
                eprintln!("xtask: the bridge did not subscribe to {label} within {WAIT:?}; see the bridge log");
            }
            let welcome =
                format!("Welcome to the brygga demo: this room is bridged to {label} of a stand-in Teams tenant.");
            alice.send_text(&room, &welcome)?;
            let welcomed = self.wait_until(|g| g.messages(&conversation).iter().any(|m| m.content.contains(&welcome)));
            if !welcomed {
                eprintln!("xtask: the welcome did not reach {label} within {WAIT:?}; see the bridge log");
            }
            self.linked.push(Linked { conversation, remote, label, room, subscribed, welcomed });
        }
        Ok(())
    }

    /// Polls `done` on the double until it holds or [`WAIT`] passes.
    fn wait_until(&self, done: impl Fn(&GraphDouble) -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if done(&self.graph) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// Prints the stand-in's notice, Dana's token and ready-to-paste `curl` commands.
    pub fn print_logins(&self) {
        let api = self.graph.url();
        let token = self.graph.delegated_token(&self.dana);
        let auth = format!("-H 'Authorization: Bearer {token}'");
        let hours = TOKEN_LIFETIME.as_secs() / 3600;
        println!("Teams: a STAND-IN, not Microsoft 365: brygga's in-process Microsoft Graph v1.0 test double");
        println!("  (no Teams client; in memory, gone when the demo stops). Act as {PERSON} over Graph's REST API");
        println!("  with curl or any HTTP client; the double sends the bridge change notifications as Graph does.");
        println!("  Graph base URL: {api}   (stands for https://graph.microsoft.com/v1.0)");
        println!("  User:           {PERSON}   (object id {}, tenant {})", self.dana.id, self.entra);
        println!("  Access token:   {token}");
        println!("                  (delegated, valid {hours} hours; send as header Authorization: Bearer ...)");
        for linked in &self.linked {
            let path = linked.conversation.resource();
            println!("  {}: bridged to Alice's Matrix room {}", linked.label, linked.room);
            println!("    Send as {PERSON}:");
            println!("      curl -s {auth} -H 'Content-Type: application/json' \\");
            println!("        -d '{SAMPLE_MESSAGE}' \\");
            println!("        '{api}{path}'");
            println!("    Read it:  curl -s {auth} '{api}{path}'");
            println!(
                "    Bridge:   {}; {}   (portal {})",
                if linked.subscribed { "subscribed to its messages" } else { "NOT subscribed, see the bridge log" },
                if linked.welcomed { "the welcome reached it" } else { "the welcome did NOT reach it" },
                linked.remote
            );
        }
        println!("  Reply in the channel's thread of a message: POST the same body to");
        println!("    '{api}{}/{{message id}}/replies'", self.channel.resource());
        println!(
            "  Matrix users who have not linked a Teams account post through the relay identity \"Matrix Relay\","
        );
        println!("  their name in bold on the first line. The real set-up: adapters/teams/README.md.");
    }

    /// Stops the double and its runtime.
    pub fn stop(self) {
        println!("xtask: stopping the Teams stand-in");
        let Self { graph, runtime, .. } = self;
        graph.shutdown();
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brygga_harness::http;

    #[test]
    fn the_printed_request_posts_as_dana_in_both_conversations() {
        let demo = TeamsDemo::start().expect("the stand-in starts");
        let token = demo.graph.delegated_token(&demo.dana);
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        for conversation in [&demo.channel, &demo.chat] {
            let url = format!("{}{}", demo.graph.url(), conversation.resource());
            let reply = http::request("POST", &url, &headers, Some(SAMPLE_MESSAGE)).expect("Graph answers");
            assert_eq!(reply.status, 201, "{}", reply.body);
            let messages = demo.graph.messages(conversation);
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].from_user.as_deref(), Some(demo.dana.id.as_str()));
            assert!(messages[0].content.contains("Hello from <b>Teams</b>"), "{}", messages[0].content);
        }
        let yaml = demo.adapter_yaml("demo", 8009);
        assert!(yaml.contains(&format!("tenant_id: \"{}\"", demo.entra)), "{yaml}");
        assert!(yaml.contains("notification_url_base: \"http://127.0.0.1:8009/_brygga/webhook/demo/teams/\""));
        demo.stop();
    }
}
