//! The bridge path through real Synapse beside Synapse's own direct-client
//! send rate, in the same run and measured the same way: from the first
//! send until a Matrix user's `/sync` has shown every message.
//!
//! Direct: Bob sends into rooms he shares with Alice with the client-server
//! API, one request after the other per room. Bridge: XMPP clients send into
//! group chats bridged to Alice's other rooms, so each message goes XMPP
//! client, Prosody, XMPP adapter, store, router, Synapse (and back to the
//! bridge as an appservice transaction, as every bridged event does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brygga_core::{MatrixRoomId, MatrixSide};
use brygga_harness::synapse::{Synapse, SynapseOptions};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{MUC, Relay, Sizes, adapter_config, join_clients, link, send_all};
use crate::bridge::{self, Setup};
use crate::stats::{Probe, Stamps, body_of};

/// Synapse's server name in the harness.
const SERVER_NAME: &str = "localhost";

/// Results of the Synapse comparison.
pub struct SynapseReport {
    /// Bob's own sends, until Alice's sync showed them all: the mean of the
    /// runs before and after the bridge path.
    pub direct_msgs_per_sec: f64,
    /// The two direct runs (before and after the bridge path).
    pub direct_runs: [Direct; 2],
    /// XMPP messages through the bridge, until Alice's sync showed them all.
    pub bridged: Relay,
    /// The bridge's store and Matrix client calls in the bridge path, with `--instrument`.
    pub timings: Vec<String>,
}

/// One direct-client run.
pub struct Direct {
    /// Until Alice's sync showed every message.
    pub seen: Relay,
    /// Until Synapse acknowledged every send.
    pub acks_per_sec: f64,
}

/// Registers `name` on Synapse; returns the user's client.
fn register(synapse: &Synapse, name: &str) -> anyhow::Result<Cs> {
    let (user_id, token) = tokio::task::block_in_place(|| synapse.register_user(name, &format!("{name}-password")))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Cs::new(&synapse.base_url(), &user_id, &token))
}

/// Runs both paths; the load clients are Prosody users `first_user..`.
///
/// Both paths have the same shape: a sender who is not Alice, one room per
/// sender, Alice in every room reading with `/sync`. The direct path is run
/// before and after the bridge path, so drift (Synapse warming up, its
/// database growing, other load on the machine) does not favour either.
pub async fn run(
    prosody: &brygga_harness::prosody::Prosody,
    sizes: &Sizes,
    store: &str,
    instrument: bool,
    first_user: usize,
) -> anyhow::Result<SynapseReport> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let options = SynapseOptions {
        registration_yaml: Some(bridge::synapse_registration(
            &format!("http://{}", listener.local_addr()?),
            "xmpp",
            false,
        )),
        relaxed_rate_limits: true,
        ..Default::default()
    };
    let synapse = tokio::task::spawn_blocking(move || Synapse::start(options)).await?;
    let synapse = synapse.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (alice, bob) = (register(&synapse, "alice")?, register(&synapse, "bob")?);

    let core = bridge::assemble(Setup {
        store,
        instrument,
        homeserver_url: &synapse.base_url(),
        server_name: SERVER_NAME,
        factories: vec![Arc::new(brygga_xmpp::XmppFactory)],
        listener,
    })
    .await?;
    let rooms = sizes.synapse_rooms.max(1);
    let muc = |r: usize| format!("synapse{r}@{MUC}");
    let bot = core.matrix.bot_user_id().clone();
    let (mut direct, mut bridged) = (Vec::new(), Vec::new());
    for r in 0..rooms {
        let room = alice.create_room(&format!("Direct {r}"), &[&bob.user_id]).await?;
        bob.join(&room).await?;
        direct.push(room);
        let room = alice.create_room(&format!("Bridged {r}"), &[bot.as_str()]).await?;
        core.matrix.ensure_joined(&MatrixRoomId::new(room.as_str())?, &bot).await?;
        link(&core, &muc(r), &room).await?;
        bridged.push(room);
    }
    core.start_adapter(brygga_xmpp::KIND, adapter_config(prosody, 1)).await?;
    core.matrix.ping("brygga").await?;
    let unused = Arc::new(Probe::default());
    let clients =
        join_clients(prosody, first_user..first_user + rooms, muc, sizes.window, &unused, sizes.timeout).await?;

    let all_rooms: Vec<String> = direct.iter().chain(&bridged).cloned().collect();
    let filter = sync_filter(&all_rooms, sizes.synapse_messages + 100);
    let since = alice.sync(&filter, None, 0).await?["next_batch"].as_str().context("no next_batch")?.to_owned();
    let seen = Arc::new(Probe::default());
    let observer = tokio::spawn(observe(alice.clone(), filter, since, seen.clone()));

    // Warm-up (untimed): ghosts registered and joined, caches filled.
    for (r, room) in direct.iter().enumerate() {
        bob.send(room, &format!("warm-{r}"), "warm-up").await?;
    }
    for client in &clients {
        client.say("warm-up", None).await?;
    }
    if !seen.wait_total(2 * rooms, sizes.timeout).await {
        bail!("Synapse warm-up: Alice saw only {} of {} messages", seen.total(), 2 * rooms);
    }
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;

    let before = direct_run(&bob, &direct, &seen, sizes, "a").await?;
    if let Some(timings) = &core.timings {
        timings.reset();
    }
    let n = sizes.synapse_messages;
    let base = Instant::now();
    let departed = Arc::new(Stamps::new(base, n));
    let arrived = Arc::new(Stamps::new(base, n));
    seen.arm(arrived.clone());
    let start = base.elapsed();
    send_all(&clients, n, (sizes.window, None), &departed, sizes.timeout).await?;
    arrived.wait_all(sizes.timeout).await;
    let bridged_report = Relay::of(start, &departed, &arrived, n);
    let timings = core.timings.as_ref().map(|t| t.lines()).unwrap_or_default();
    crate::scenarios::drain_tenant(&core.store, &core.tenant, sizes.timeout).await?;
    let after = direct_run(&bob, &direct, &seen, sizes, "b").await?;

    observer.abort();
    core.router.shutdown();
    drop(synapse);
    Ok(SynapseReport {
        direct_msgs_per_sec: (before.seen.msgs_per_sec + after.seen.msgs_per_sec) / 2.0,
        direct_runs: [before, after],
        bridged: bridged_report,
        timings,
    })
}

/// Bob sends the run's messages into the direct rooms, one request after
/// the other per room, until Alice has seen them all.
async fn direct_run(bob: &Cs, rooms: &[String], seen: &Probe, sizes: &Sizes, tag: &str) -> anyhow::Result<Direct> {
    let n = sizes.synapse_messages;
    let base = Instant::now();
    let departed = Arc::new(Stamps::new(base, n));
    let acked = Arc::new(Stamps::new(base, n));
    let arrived = Arc::new(Stamps::new(base, n));
    seen.arm(arrived.clone());
    let start = base.elapsed();
    let mut senders = JoinSet::new();
    for (r, room) in rooms.iter().enumerate() {
        let (bob, room, departed, acked, tag) =
            (bob.clone(), room.clone(), departed.clone(), acked.clone(), tag.to_owned());
        let step = rooms.len();
        senders.spawn(async move {
            for seq in (r..n).step_by(step) {
                departed.mark(seq);
                bob.send(&room, &format!("{tag}{seq}"), &body_of(seq)).await?;
                acked.mark(seq);
            }
            anyhow::Ok(())
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent??;
    }
    let acks_end = acked.last().unwrap_or(start);
    arrived.wait_all(sizes.timeout).await;
    Ok(Direct {
        seen: Relay::of(start, &departed, &arrived, n),
        acks_per_sec: n as f64 / acks_end.saturating_sub(start).as_secs_f64().max(1e-9),
    })
}

/// Only the message timelines of `rooms`, with room for a whole run per sync.
fn sync_filter(rooms: &[String], limit: usize) -> String {
    let none = json!({ "not_types": ["*"] });
    json!({
        "presence": none,
        "account_data": none,
        "room": {
            "rooms": rooms,
            "timeline": { "limit": limit, "types": ["m.room.message"] },
            "state": { "lazy_load_members": true, "not_types": ["*"] },
            "ephemeral": none,
            "account_data": none,
        },
    })
    .to_string()
}

/// Long-polls `/sync` and records every message body it shows.
async fn observe(alice: Cs, filter: String, mut since: String, seen: Arc<Probe>) {
    loop {
        match alice.sync(&filter, Some(&since), 10_000).await {
            Ok(reply) => {
                let rooms = reply["rooms"]["join"].as_object().cloned().unwrap_or_default();
                for (_, room) in rooms {
                    if room["timeline"]["limited"] == true {
                        eprintln!("warning: a sync timeline was limited; messages may be missed");
                    }
                    for event in room["timeline"]["events"].as_array().into_iter().flatten() {
                        if event["type"] == "m.room.message" {
                            seen.received(event["content"]["body"].as_str());
                        }
                    }
                }
                if let Some(next) = reply["next_batch"].as_str() {
                    since = next.to_owned();
                }
            }
            Err(err) => {
                eprintln!("sync failed: {err:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A Matrix user on the client-server API.
#[derive(Clone)]
struct Cs {
    http: reqwest::Client,
    base: String,
    user_id: String,
    token: String,
}

impl Cs {
    fn new(base: &str, user_id: &str, token: &str) -> Self {
        let base = format!("{base}/_matrix/client/v3");
        Self { http: reqwest::Client::new(), base, user_id: user_id.to_owned(), token: token.to_owned() }
    }

    async fn join(&self, room: &str) -> anyhow::Result<()> {
        let url = format!("{}/rooms/{}/join", self.base, enc(room));
        self.call(self.http.post(url).json(&json!({}))).await.map(|_| ())
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok(body)
    }

    async fn create_room(&self, name: &str, invite: &[&str]) -> anyhow::Result<String> {
        let body = json!({ "name": name, "preset": "private_chat", "invite": invite });
        let reply = self.call(self.http.post(format!("{}/createRoom", self.base)).json(&body)).await?;
        reply["room_id"].as_str().map(str::to_owned).context("createRoom gave no room_id")
    }

    async fn send(&self, room: &str, txn: &str, body: &str) -> anyhow::Result<()> {
        let url = format!("{}/rooms/{}/send/m.room.message/{txn}", self.base, enc(room));
        self.call(self.http.put(url).json(&json!({ "msgtype": "m.text", "body": body }))).await.map(|_| ())
    }

    async fn sync(&self, filter: &str, since: Option<&str>, timeout_ms: u64) -> anyhow::Result<Value> {
        let mut query = vec![("filter", filter.to_owned()), ("timeout", timeout_ms.to_string())];
        if let Some(since) = since {
            query.push(("since", since.to_owned()));
        }
        self.call(self.http.get(format!("{}/sync", self.base)).query(&query)).await
    }
}

/// Percent-encodes a path segment.
fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
