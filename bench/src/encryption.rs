//! The cost of end-to-bridge encryption: the same relay through real Synapse
//! into a clear and an encrypted portal room of Alice's, in the same run and
//! measured the same way, so the ratio shows what encryption costs.
//!
//! Remote to Matrix: the instant adapter's messages, from the push until
//! Alice's E2EE client (matrix-sdk) has them, decrypted where sealed. Matrix
//! to remote: Alice's client sends (encrypting in the encrypted room), until
//! the instant adapter got each message, which the bridge decrypted first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use brygga_core::naming::{Namer, Template};
use brygga_core::{
    AdapterKind, EventBody, InboundEvent, InboundSink, MatrixRoomId, MatrixSide, Message, Portal, PortalKey,
    RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId, Text,
};
use brygga_e2e::e2ee_user::E2eeUser;
use brygga_harness::synapse::{Synapse, SynapseOptions};
use tokio::net::TcpListener;

use crate::bridge::{self, BOT_LOCALPART, Setup};
use crate::instant_adapter::{InstantFactory, KIND};
use crate::stats::{Stamps, body_of};
use crate::xmpp::Relay;

/// Synapse's server name in the harness.
const SERVER_NAME: &str = "localhost";
/// The remote user whose ghost speaks in both rooms.
const SENDER: &str = "sender";
/// The ghost and alias template `bridge::assemble` uses.
const TEMPLATE: &str = "{kind}_{tenant}_{id}";

/// One room's relay both ways.
pub struct Paths {
    /// Remote to Matrix, until Alice's client has each message.
    pub to_matrix: Relay,
    /// Matrix to remote, until the adapter got each message.
    pub to_remote: Relay,
}

/// The clear and the encrypted room, measured in the same run.
pub struct EncryptionReport {
    /// The clear room.
    pub clear: Paths,
    /// The encrypted room.
    pub encrypted: Paths,
}

/// Runs `messages` each way through a clear and an encrypted room.
pub async fn run(messages: usize, store: &str, timeout: Duration) -> anyhow::Result<EncryptionReport> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let options = SynapseOptions {
        registration_yaml: Some(bridge::synapse_registration(
            &format!("http://{}", listener.local_addr()?),
            KIND,
            true,
        )),
        relaxed_rate_limits: true,
        appservice_encryption: true,
        ..Default::default()
    };
    let synapse = tokio::task::spawn_blocking(move || Synapse::start(options)).await?;
    let synapse = synapse.map_err(|e| anyhow::anyhow!("{e}"))?;
    let crypto_dir = tempfile::tempdir()?;
    let bot = format!("@{BOT_LOCALPART}:{SERVER_NAME}");
    // Throwaway stores in a temp dir: any sealing key does.
    let crypto = brygga_crypto::CryptoConfig::new(crypto_dir.path().to_owned(), [42; 32], bot.clone());
    let adapter = Arc::new(InstantFactory::default());
    let setup = Setup {
        store,
        instrument: false,
        homeserver_url: &synapse.base_url(),
        server_name: SERVER_NAME,
        factories: vec![adapter.clone()],
        listener,
    };
    let core = bridge::assemble_encrypted(setup, crypto).await?;
    core.start_adapter(KIND, serde_json::json!({})).await?;
    let sink = adapter.sink().context("the adapter was built without a sink")?;

    let (user_id, _) = tokio::task::block_in_place(|| synapse.register_user("alice", "alice-password"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let alice = E2eeUser::login(&synapse.base_url(), &user_id, "alice-password", "BENCH").await?;
    let mut rooms = Vec::new();
    for (name, encrypted) in [("clear", false), ("sealed", true)] {
        let room = match encrypted {
            true => alice.create_encrypted_room(name, &[&bot]).await?,
            false => alice.create_room(name, &[&bot]).await?,
        };
        let matrix_room = MatrixRoomId::new(room.as_str())?;
        core.matrix.ensure_joined(&matrix_room, core.matrix.bot_user_id()).await?;
        let key = PortalKey::new(core.tenant.clone(), AdapterKind::new(KIND)?, RemoteRoomId::new(name)?);
        let mut portal = Portal::new(key);
        portal.room_id = Some(matrix_room);
        core.shared.upsert_portal(&portal).await?;
        rooms.push((name, room));
    }

    let namer = Namer::new(SERVER_NAME, Template::new(TEMPLATE)?, Template::new(TEMPLATE)?);
    let ghost = namer.ghost_user_id(&AdapterKind::new(KIND)?, &core.tenant, &RemoteUserId::new(SENDER)?).to_string();
    let mut paths = Vec::new();
    for (name, room) in &rooms {
        let lane = Lane {
            sink: sink.clone(),
            adapter: adapter.clone(),
            alice: &alice,
            remote_room: name,
            room,
            ghost: ghost.clone(),
        };
        lane.warm_up(timeout).await?;
        crate::scenarios::drain_tenant(&core.store, &core.tenant, timeout).await?;
        let to_matrix = lane.to_matrix(messages, timeout).await?;
        let to_remote = lane.to_remote(messages, timeout).await?;
        crate::scenarios::drain_tenant(&core.store, &core.tenant, timeout).await?;
        paths.push(Paths { to_matrix, to_remote });
    }
    core.router.shutdown();
    let encrypted = paths.pop().context("the encrypted room's run")?;
    let clear = paths.pop().context("the clear room's run")?;
    Ok(EncryptionReport { clear, encrypted })
}

/// One portal room's relay, both ways.
struct Lane<'a> {
    sink: Arc<dyn InboundSink>,
    adapter: Arc<InstantFactory>,
    alice: &'a E2eeUser,
    remote_room: &'a str,
    room: &'a str,
    ghost: String,
}

impl Lane<'_> {
    fn event(&self, id: String, body: String) -> anyhow::Result<InboundEvent> {
        let sender = RemoteSender::new(RemoteUserId::new(SENDER)?);
        let body = EventBody::Message(Message::text(Text::plain(body)));
        Ok(InboundEvent::new(RemoteRoomId::new(self.remote_room)?, RemoteMessageId::new(id)?, sender, body))
    }

    /// One message each way (untimed): the ghost joined, its keys shared,
    /// Alice's and the bridge's devices known to each other.
    async fn warm_up(&self, timeout: Duration) -> anyhow::Result<()> {
        self.sink.push(self.event(format!("warm-{}", self.remote_room), "warm-up".into())?).await?;
        let seen = self.alice.next_event(self.room, &self.ghost, timeout).await?;
        anyhow::ensure!(seen.body() == Some("warm-up"), "warm-up: Alice got {seen:?}");
        let before = self.adapter.probe.total();
        self.alice.send_text(self.room, "warm-up").await?;
        anyhow::ensure!(self.adapter.probe.wait_total(before + 1, timeout).await, "warm-up never reached the adapter");
        Ok(())
    }

    /// Pushes `n` messages at once; until Alice's client has each.
    async fn to_matrix(&self, n: usize, timeout: Duration) -> anyhow::Result<Relay> {
        let base = Instant::now();
        let (departed, arrived) = (Stamps::new(base, n), Stamps::new(base, n));
        let start = base.elapsed();
        for seq in 0..n {
            departed.mark(seq);
            self.sink.push(self.event(format!("{}-{seq}", self.remote_room), body_of(seq))?).await?;
        }
        for _ in 0..n {
            let event = self.alice.next_event(self.room, &self.ghost, timeout).await?;
            if let Some(seq) = event.body().and_then(|b| b.strip_prefix('#')).and_then(|s| s.parse().ok()) {
                arrived.mark(seq);
            }
        }
        Ok(Relay::of(start, &departed, &arrived, n))
    }

    /// Alice sends `n` messages one after the other; until the adapter got each.
    async fn to_remote(&self, n: usize, timeout: Duration) -> anyhow::Result<Relay> {
        let base = Instant::now();
        let departed = Stamps::new(base, n);
        let arrived = Arc::new(Stamps::new(base, n));
        self.adapter.probe.arm(arrived.clone());
        let start = base.elapsed();
        for seq in 0..n {
            departed.mark(seq);
            self.alice.send_text(self.room, &body_of(seq)).await?;
        }
        arrived.wait_all(timeout).await;
        Ok(Relay::of(start, &departed, &arrived, n))
    }
}
