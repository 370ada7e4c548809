//! `cargo xtask demo --rocketchat`: brygga's Rocket.Chat test double as a
//! STAND-IN workspace for the demo tenant (REST and realtime API only, no web
//! UI, not a Rocket.Chat server), with a person `carol` to act as over REST
//! and a channel `lobby` linked to a Matrix room of Alice's.
//!
//! The double runs in this process, on a tokio runtime kept for the demo; it
//! stops with the process (its `node` schema validator exits when its stdin closes).

use crate::demo::MatrixClient;
use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The Rocket.Chat person the demo prints a login for.
const PERSON: &str = "carol";
/// The channel linked to Alice's room.
const CHANNEL: &str = "lobby";
/// The Matrix room's name.
const ROOM_NAME: &str = "Rocket.Chat lobby";
/// How long to wait for the bridge to listen in the channel, and for the welcome to arrive.
const WAIT: Duration = Duration::from_secs(30);

/// The stand-in workspace with its bot, `carol` and the `lobby` channel.
pub struct RocketChatDemo {
    double: RocketChatDouble,
    bot: TestUser,
    carol: TestUser,
    rid: String,
    /// Alice's Matrix room, once linked.
    room: Option<String>,
    /// Whether the bridge subscribed to the channel and the welcome reached it.
    listening: bool,
    welcomed: bool,
    // Last, so it is dropped after the double.
    runtime: Runtime,
}

impl RocketChatDemo {
    /// Prepares the request schemas, starts the double on a free 127.0.0.1 port and
    /// creates the bridge's bot (an admin), `carol` and the channel `lobby` with both.
    pub fn start() -> Result<Self, String> {
        crate::rocketchat_schemas::ensure()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rocketchat-double")
            .enable_all()
            .build()
            .map_err(|e| format!("starting a tokio runtime: {e}"))?;
        let double = runtime
            .block_on(RocketChatDouble::start_on(SocketAddr::from(([127, 0, 0, 1], 0))))
            .map_err(|e| format!("starting the Rocket.Chat double: {e}"))?;
        let _context = runtime.enter();
        let bot = double.create_admin("matrix-bridge");
        let carol = double.create_user(PERSON);
        let rid = double.create_channel(CHANNEL, &carol, &[&bot]);
        println!("xtask: Rocket.Chat stand-in (test double) is listening on {}", double.url());
        Ok(Self { double, bot, carol, rid, room: None, listening: false, welcomed: false, runtime })
    }

    /// The demo tenant's `rocketchat` adapter, to go under `adapters:` (six spaces deep).
    pub fn adapter_yaml(&self) -> String {
        format!(
            r#"      rocketchat:
        config:
          url: "{url}"
          user_id: "{bot_id}"
          token: "{bot_token}"
          puppet_mode: users
          create_tokens_secret: "{secret}"
          matrix_server_name: localhost
"#,
            url = self.double.url(),
            bot_id = self.bot.id,
            bot_token = self.bot.token,
            secret = self.double.create_tokens_secret(),
        )
    }

    /// Has Alice create the room "Rocket.Chat lobby" (inviting `bot`), links it to the
    /// channel with `link(rid, room)` (the bridge's CLI), waits for the bridge to listen
    /// in the channel and sends a welcome from Matrix.
    pub fn open_lobby(
        &mut self,
        alice: &MatrixClient,
        bot: &str,
        link: impl FnOnce(&str, &str) -> Result<String, String>,
    ) -> Result<(), String> {
        let room = alice.create_room(ROOM_NAME, &[bot])?;
        println!("xtask: Alice created {room}; linking it to the Rocket.Chat channel #{CHANNEL} ({})", self.rid);
        println!("xtask: {}", link(&self.rid, &room)?);
        let deleted = format!("{}/deleteMessage", self.rid);
        self.listening = self.runtime.block_on(self.double.wait_for_subscription(
            &self.bot.id,
            "stream-notify-room",
            &deleted,
            WAIT,
        ));
        if !self.listening {
            eprintln!("xtask: the bridge did not subscribe to #{CHANNEL} within {WAIT:?}; see the bridge log");
        }
        let welcome = format!(
            "Welcome to the brygga demo: this room is bridged to the channel #{CHANNEL} of a stand-in Rocket.Chat workspace."
        );
        alice.send_text(&room, &welcome)?;
        self.welcomed = self.wait_for_welcome(&welcome);
        self.room = Some(room);
        Ok(())
    }

    /// Whether the welcome, `text`, shows up in the channel within [`WAIT`].
    fn wait_for_welcome(&self, text: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.double.messages(&self.rid).iter().any(|m| m.msg == text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("xtask: the welcome did not reach #{CHANNEL} within {WAIT:?}; see the bridge log");
        false
    }

    /// Prints the stand-in's notice, carol's login and ready-to-paste `curl` commands.
    pub fn print_logins(&self) {
        let api = format!("{}/api/v1", self.double.url());
        let (id, token, rid) = (&self.carol.id, &self.carol.token, &self.rid);
        let auth = format!("-H 'X-User-Id: {id}' -H 'X-Auth-Token: {token}'");
        println!("Rocket.Chat: a STAND-IN, not a real workspace: brygga's in-process test double of the");
        println!("  Rocket.Chat 8.x REST and realtime API (no web UI; in memory, gone when the demo stops).");
        println!("  Act as {PERSON} with curl or any REST client:");
        println!("  REST base URL:  {api}");
        println!("  User:           {PERSON}   (user id {id})");
        println!("  Token:          {token}   (send as headers X-User-Id and X-Auth-Token)");
        println!(
            "  Channel:        #{CHANNEL}   (room id {rid}), bridged to Alice's Matrix room \"{ROOM_NAME}\" {}",
            self.room.as_deref().unwrap_or("(not created)")
        );
        println!("  Send as {PERSON}:");
        println!("    curl -s {auth} -H 'Content-Type: application/json' \\");
        println!("      -d '{{\"message\": {{\"rid\": \"{rid}\", \"msg\": \"Hello from Rocket.Chat\"}}}}' \\");
        println!("      {api}/chat.sendMessage");
        println!("  Read the channel (newest first):");
        println!("    curl -s {auth} \\");
        println!("      '{api}/channels.history?roomId={rid}&count=20'");
        println!(
            "  Bridge:         {}; {}",
            if self.listening {
                "listening in the channel"
            } else {
                "NOT listening in the channel, see the bridge log"
            },
            if self.welcomed { "the welcome reached it" } else { "the welcome did NOT reach it" }
        );
    }

    /// Stops the double and its runtime.
    pub fn stop(self) {
        println!("xtask: stopping the Rocket.Chat stand-in");
        let Self { double, runtime, .. } = self;
        double.shutdown();
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}
