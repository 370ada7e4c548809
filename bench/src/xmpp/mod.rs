//! XMPP relay through a real Prosody: the real XMPP adapter (built by
//! `brygga_xmpp::XmppFactory` through the adapter host) with the real store
//! and router, against the instant homeserver or a real Synapse. Load comes
//! from minimal XMPP clients of our own ([`client`]).

pub mod client;
pub mod synapse;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use brygga_core::{AdapterKind, MatrixRoomId, Portal, PortalKey, RemoteRoomId};
use brygga_harness::prosody::{Prosody, ProsodyOptions};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::bridge::{self, Core, HS_TOKEN, SERVER_NAME, Setup};
use crate::fake_homeserver::{self, Homeserver};
use crate::stats::{Percentiles, Probe, Stamps, body_of};
use client::{Hooks, XmppClient};

/// The group chat service of the test Prosody.
pub const MUC: &str = "conference.localhost";
/// Nick of the bridge's listener in every bridged room.
pub const LISTENER_NICK: &str = "Matrix bridge";
/// Nick prefix of the load clients.
pub const NICK_PREFIX: &str = "xb";
/// Component domains and secrets of the two bridges (instant homeserver, Synapse).
pub const COMPONENTS: [(&str, &str); 2] =
    [("bench-fake.localhost", "bench-fake-secret"), ("bench-synapse.localhost", "bench-synapse-secret")];
const PASSWORD: &str = "bench-pw";

/// Sizes of the XMPP runs.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Messages XMPP clients send towards Matrix (instant homeserver).
    pub messages: usize,
    /// Group chats (portals) the load is spread over.
    pub rooms: usize,
    /// XMPP clients, spread round-robin over the rooms.
    pub clients: usize,
    /// Messages a client may have sent before the room reflected them.
    pub window: usize,
    /// Paces both instant-homeserver runs to this many messages per second
    /// overall (default: as fast as the window and the acknowledgements allow).
    pub rate: Option<f64>,
    /// Matrix messages pushed towards XMPP in appservice transactions.
    pub out_messages: usize,
    /// Events per transaction in the Matrix to XMPP run.
    pub events_per_txn: usize,
    /// Messages each way of the Synapse comparison.
    pub synapse_messages: usize,
    /// Rooms (and senders) of the Synapse comparison.
    pub synapse_rooms: usize,
    /// Longest wait for deliveries, per run.
    pub timeout: Duration,
}

/// Users `load0..` registered on Prosody for the load clients.
pub fn user(i: usize) -> String {
    format!("load{i}")
}

/// Starts Prosody with both components and enough users.
pub async fn start_prosody(users: usize) -> anyhow::Result<Prosody> {
    let options = ProsodyOptions {
        components: COMPONENTS.iter().map(|(d, s)| (d.to_string(), s.to_string())).collect(),
        users: (0..users).map(|i| (user(i), PASSWORD.to_owned())).collect(),
        extra_global: String::new(),
    };
    let prosody = tokio::task::spawn_blocking(move || Prosody::start(options)).await?;
    prosody.map_err(|e| anyhow::anyhow!("{e}"))
}

/// The XMPP adapter's config for component `i` of [`COMPONENTS`].
pub fn adapter_config(prosody: &Prosody, component: usize) -> serde_json::Value {
    let (domain, secret) = COMPONENTS[component];
    serde_json::json!({
        "server": format!("127.0.0.1:{}", prosody.component_port()),
        "domain": domain,
        "secret": secret,
        "server_domain": "localhost",
        "bot_nick": LISTENER_NICK,
    })
}

/// Links group chat `muc` to Matrix room `room` in the store, as
/// `brygga portal link` does (the bot's join is the caller's business).
pub async fn link(core: &Core, muc: &str, room: &str) -> anyhow::Result<()> {
    let key = PortalKey::new(core.tenant.clone(), AdapterKind::new(brygga_xmpp::KIND)?, RemoteRoomId::new(muc)?);
    let mut portal = Portal::new(key);
    portal.room_id = Some(MatrixRoomId::new(room)?);
    portal.name = Some(muc.to_owned());
    core.shared.upsert_portal(&portal).await?;
    Ok(())
}

/// Logs clients in, each into room `room_of(i)`, and waits until the
/// bridge's listener sits in every room.
pub async fn join_clients(
    prosody: &Prosody,
    users: std::ops::Range<usize>,
    room_of: impl Fn(usize) -> String,
    window: usize,
    probe: &Arc<Probe>,
    timeout: Duration,
) -> anyhow::Result<Vec<Arc<XmppClient>>> {
    let mut joins = JoinSet::new();
    for (i, u) in users.enumerate() {
        let (port, room, probe) = (prosody.c2s_port(), room_of(i), probe.clone());
        joins.spawn(async move {
            let hooks = Hooks { probe, own_prefix: NICK_PREFIX.into(), listener_nick: LISTENER_NICK.into() };
            let nick = format!("{NICK_PREFIX}{u}");
            let mut client = XmppClient::join(port, &user(u), PASSWORD, &room, &nick, window, hooks).await?;
            client.wait_listener(timeout).await?;
            anyhow::Ok((i, Arc::new(client)))
        });
    }
    let mut clients = Vec::new();
    while let Some(joined) = joins.join_next().await {
        clients.push(joined??);
    }
    clients.sort_by_key(|(i, _)| *i);
    Ok(clients.into_iter().map(|(_, c)| c).collect())
}

/// Sends `messages` from the clients (client `c` sends sequence numbers
/// `c, c + clients, ...`, paced to `rate` messages per second overall if
/// given), stamping each departure; returns when all are handed to the
/// clients' writers and reflected by their rooms.
pub async fn send_all(
    clients: &[Arc<XmppClient>],
    messages: usize,
    (window, rate): (usize, Option<f64>),
    departed: &Arc<Stamps>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let paced_from = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut senders = JoinSet::new();
    for (c, client) in clients.iter().enumerate() {
        let (client, departed, step) = (client.clone(), departed.clone(), clients.len());
        senders.spawn(async move {
            for seq in (c..messages).step_by(step) {
                if let Some(rate) = rate {
                    tokio::time::sleep_until(paced_from + Duration::from_secs_f64(seq as f64 / rate)).await;
                }
                client.say(&body_of(seq), Some((&departed, seq))).await?;
            }
            client.settle(window, timeout).await
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent??;
    }
    Ok(())
}

/// Rate and latency of one timed relay run.
pub struct Relay {
    /// Messages per second from the first departure to the last arrival.
    pub msgs_per_sec: f64,
    /// From departure to arrival.
    pub latency: Percentiles,
    /// Messages that never arrived.
    pub missing: usize,
}

impl Relay {
    /// Sums up a run that started at `start` (as an offset of the stamps' base).
    pub fn of(start: Duration, departed: &Stamps, arrived: &Stamps, n: usize) -> Self {
        let end = arrived.last().unwrap_or(start);
        let latency = (0..n).filter_map(|s| Some(arrived.at(s)?.saturating_sub(departed.at(s)?)));
        Self {
            msgs_per_sec: arrived.count() as f64 / end.saturating_sub(start).as_secs_f64().max(1e-9),
            latency: Percentiles::new(latency),
            missing: n - arrived.count(),
        }
    }
}

/// Results of the runs against the instant homeserver.
pub struct FakeReport {
    /// XMPP clients to the homeserver receiving the send.
    pub to_matrix: Relay,
    /// Appservice transaction to the XMPP clients receiving the message.
    pub to_xmpp: Relay,
    /// Homeserver calls the bridge made that the fake does not know.
    pub unknown_calls: u64,
}

/// XMPP to Matrix and Matrix to XMPP through Prosody, the real adapter and
/// the instant homeserver.
pub async fn fake_homeserver_runs(
    prosody: &Prosody,
    sizes: &Sizes,
    store: &str,
    instrument: bool,
) -> anyhow::Result<FakeReport> {
    let (hs_url, homeserver) = fake_homeserver::start(SERVER_NAME, &bridge::nonce()).await?;
    let core = bridge::assemble(Setup {
        store,
        instrument,
        homeserver_url: &hs_url,
        server_name: SERVER_NAME,
        factories: vec![Arc::new(brygga_xmpp::XmppFactory)],
        listener: TcpListener::bind("127.0.0.1:0").await?,
    })
    .await?;
    let muc = |r: usize| format!("fake{r}@{MUC}");
    let rooms: Vec<String> = (0..sizes.rooms).map(|r| format!("!xmpp{r}:{SERVER_NAME}")).collect();
    for (r, room) in rooms.iter().enumerate() {
        link(&core, &muc(r), room).await?;
    }
    core.start_adapter(brygga_xmpp::KIND, adapter_config(prosody, 0)).await?;
    core.matrix.ping("brygga").await?;
    let probe = Arc::new(Probe::default());
    let clients =
        join_clients(prosody, 0..sizes.clients, |i| muc(i % sizes.rooms), sizes.window, &probe, sizes.timeout).await?;

    // Warm-up (untimed): every client's ghost is registered and joined.
    let before = homeserver.probe.total();
    for client in &clients {
        client.say("warm-up", None).await?;
    }
    if !homeserver.probe.wait_total(before + clients.len(), sizes.timeout).await {
        bail!("XMPP warm-up: the homeserver received only {} sends", homeserver.probe.total() - before);
    }
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;
    let unknown_before = homeserver.unknown_calls();

    let to_matrix = to_matrix(&homeserver, &clients, sizes).await?;
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;
    let to_xmpp = to_xmpp(&core, &probe, &rooms, sizes).await?;
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;
    let unknown_calls = homeserver.unknown_calls() - unknown_before;
    core.router.shutdown();
    Ok(FakeReport { to_matrix, to_xmpp, unknown_calls })
}

async fn to_matrix(homeserver: &Homeserver, clients: &[Arc<XmppClient>], sizes: &Sizes) -> anyhow::Result<Relay> {
    let n = sizes.messages;
    let base = Instant::now();
    let departed = Arc::new(Stamps::new(base, n));
    let arrived = Arc::new(Stamps::new(base, n));
    homeserver.probe.arm(arrived.clone());
    let start = base.elapsed();
    send_all(clients, n, (sizes.window, sizes.rate), &departed, sizes.timeout).await?;
    arrived.wait_all(sizes.timeout).await;
    Ok(Relay::of(start, &departed, &arrived, n))
}

/// One appservice transaction of messages by `@alice` into the portal rooms,
/// event `i` carrying sequence number `first + i` into room `(first + i) % rooms`.
pub fn transaction(first: usize, count: usize, rooms: &[String], tag: &str) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (first..first + count)
        .map(|seq| {
            serde_json::json!({
                "type": "m.room.message",
                "event_id": format!("${tag}{seq}"),
                "room_id": rooms[seq % rooms.len()],
                "sender": format!("@alice:{SERVER_NAME}"),
                "origin_server_ts": 1_700_000_000_000_i64 + seq as i64,
                "content": { "msgtype": "m.text", "body": body_of(seq) },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("JSON values serialize")
}

/// `PUT`s one appservice transaction to the bridge.
pub async fn put_transaction(core: &Core, client: &reqwest::Client, id: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let url = format!("{}/_matrix/app/v1/transactions/{id}", core.appservice_url);
    let response =
        client.put(url).bearer_auth(HS_TOKEN).header("content-type", "application/json").body(body).send().await?;
    let status = response.status();
    response.bytes().await?;
    if !status.is_success() {
        bail!("transaction {id} answered {status}");
    }
    Ok(())
}

async fn to_xmpp(core: &Core, probe: &Probe, rooms: &[String], sizes: &Sizes) -> anyhow::Result<Relay> {
    let client = reqwest::Client::new();
    // Warm-up (untimed): Alice's puppet takes its seat in every room.
    let warm = Arc::new(Stamps::new(Instant::now(), rooms.len()));
    probe.arm(warm.clone());
    put_transaction(core, &client, &format!("{}-warm", core.tenant), transaction(0, rooms.len(), rooms, "warm"))
        .await?;
    if !warm.wait_all(sizes.timeout).await {
        bail!("Matrix to XMPP warm-up: only {} of {} rooms got the message", warm.count(), rooms.len());
    }
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;

    let (n, per_txn) = (sizes.out_messages, sizes.events_per_txn.max(1));
    let transactions = n.div_ceil(per_txn);
    let bodies: Vec<Vec<u8>> =
        (0..transactions).map(|t| transaction(t * per_txn, per_txn.min(n - t * per_txn), rooms, "out")).collect();
    let base = Instant::now();
    let departed = Stamps::new(base, n);
    let arrived = Arc::new(Stamps::new(base, n));
    probe.arm(arrived.clone());
    let start = base.elapsed();
    let paced_from = tokio::time::Instant::now();
    for (t, body) in bodies.into_iter().enumerate() {
        if let Some(rate) = sizes.rate {
            tokio::time::sleep_until(paced_from + Duration::from_secs_f64((t * per_txn) as f64 / rate)).await;
        }
        for seq in t * per_txn..(t * per_txn + per_txn).min(n) {
            departed.mark(seq);
        }
        put_transaction(core, &client, &format!("{}-out-{t}", core.tenant), body).await?;
    }
    arrived.wait_all(sizes.timeout).await;
    Ok(Relay::of(start, &departed, &arrived, n))
}
