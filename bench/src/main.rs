//! brygga-bench: the bridge's own overhead on its real code path (store,
//! router, Matrix client, appservice server) against an instant in-process
//! homeserver and an instant adapter; with `--runs xmpp,synapse` also XMPP
//! relay through a real Prosody, and the bridge path through a real Synapse
//! beside Synapse's own direct-client rate; with `--runs rocketchat`
//! Rocket.Chat relay through the in-process Rocket.Chat double; with
//! `--runs teams` Teams relay through the in-process Graph double; with
//! `--runs encryption` a clear beside an encrypted room through real Synapse.

mod bridge;
mod encryption;
mod fake_homeserver;
mod instant_adapter;
mod rocketchat;
mod scenarios;
mod stats;
mod teams;
mod timed;
mod xmpp;

use std::time::Duration;

use brygga_store::WriteStats;
use clap::Parser;

use crate::fake_homeserver::ENDPOINTS;
use crate::stats::{Percentiles, peak_rss_mib};

/// Target relay rate from the issue, in messages per second.
const TARGET_MSGS_PER_SEC: f64 = 10_000.0;
/// Target 99th percentile latency from the issue, in milliseconds.
const TARGET_P99_MS: f64 = 5.0;
/// Target share of Synapse's direct-client rate the bridge path reaches.
const TARGET_SYNAPSE_RATIO: f64 = 0.90;

/// One group of runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// Instant adapter and instant homeserver (the bridge's own overhead).
    Core,
    /// XMPP to Matrix and back through real Prosody and the instant homeserver.
    Xmpp,
    /// XMPP through the bridge into real Synapse, beside Synapse's direct rate.
    Synapse,
    /// Rocket.Chat to Matrix and back through the Rocket.Chat double and the instant homeserver.
    Rocketchat,
    /// Teams to Matrix and back through the Graph double and the instant homeserver.
    Teams,
    /// Clear beside encrypted portal rooms through real Synapse (the cost of encryption).
    Encryption,
    /// All of the above.
    All,
}

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Measures brygga's own relay overhead")]
struct Args {
    /// Which runs, comma-separated: core, xmpp, synapse, rocketchat, teams, encryption or all.
    /// `xmpp` and `synapse` start Prosody (and Synapse) from the test harness;
    /// `rocketchat` starts the Rocket.Chat double (its schemas come from
    /// `cargo xtask test`); `teams` starts the Graph double.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "core")]
    runs: Vec<Run>,
    /// Messages pushed in the inbound (remote to Matrix) run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Portals the inbound messages (and transaction events) are spread over.
    #[arg(long, default_value_t = 100)]
    portals: usize,
    /// Appservice transactions sent in the outbound run.
    #[arg(long, default_value_t = 300)]
    transactions: usize,
    /// Events per transaction.
    #[arg(long, default_value_t = 100)]
    events_per_txn: usize,
    /// Paces the inbound pushes to this many messages per second overall
    /// (default: as fast as the sink acknowledges).
    #[arg(long)]
    rate: Option<f64>,
    /// `sqlite` (a fresh durable file in a temp dir), `sqlite://PATH` or `postgres://...`.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Longest wait for deliveries to arrive, per run, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Time every store and Matrix client call (slightly perturbs the figures).
    #[arg(long)]
    instrument: bool,
    /// Messages XMPP clients send towards Matrix (instant homeserver).
    #[arg(long, default_value_t = 4_000)]
    xmpp_messages: usize,
    /// Group chats (portals) of the XMPP runs.
    #[arg(long, default_value_t = 4)]
    xmpp_rooms: usize,
    /// XMPP clients, spread over the group chats.
    #[arg(long, default_value_t = 8)]
    xmpp_clients: usize,
    /// Messages an XMPP client may send before the room reflected them.
    #[arg(long, default_value_t = 16)]
    xmpp_window: usize,
    /// Paces both XMPP runs against the instant homeserver to this many
    /// messages per second overall (default: as fast as they are taken).
    #[arg(long)]
    xmpp_rate: Option<f64>,
    /// Matrix messages relayed to XMPP (instant homeserver).
    #[arg(long, default_value_t = 4_000)]
    xmpp_out_messages: usize,
    /// Events per appservice transaction in the Matrix to XMPP run.
    #[arg(long, default_value_t = 50)]
    xmpp_events_per_txn: usize,
    /// Messages of each path in the Synapse comparison.
    #[arg(long, default_value_t = 300)]
    synapse_messages: usize,
    /// Rooms (one sender each) of each path in the Synapse comparison.
    #[arg(long, default_value_t = 1)]
    synapse_rooms: usize,
    /// Messages relayed each way in the Rocket.Chat runs.
    #[arg(long, default_value_t = 4_000)]
    rc_messages: usize,
    /// Rocket.Chat channels (portals) of the Rocket.Chat runs.
    #[arg(long, default_value_t = 4)]
    rc_rooms: usize,
    /// Rocket.Chat users posting, spread over the channels.
    #[arg(long, default_value_t = 8)]
    rc_users: usize,
    /// Messages a Rocket.Chat user may have posted that the homeserver has not yet received.
    #[arg(long, default_value_t = 16)]
    rc_window: usize,
    /// Paces both Rocket.Chat runs to this many messages per second overall
    /// (default: as fast as the windows and transaction acknowledgements allow).
    #[arg(long)]
    rc_rate: Option<f64>,
    /// Events per appservice transaction in the Matrix to Rocket.Chat run.
    #[arg(long, default_value_t = 50)]
    rc_events_per_txn: usize,
    /// Messages relayed each way in the Teams runs.
    #[arg(long, default_value_t = 2_000)]
    teams_messages: usize,
    /// Teams conversations (portals), half channels and half group chats.
    /// Graph allows about 4 requests/s per conversation, so the load is spread
    /// wide. The adapter subscribes to about 4 conversations per second, so
    /// the set-up takes conversations / 4 seconds.
    #[arg(long, default_value_t = 400)]
    teams_conversations: usize,
    /// Teams users posting, spread over the conversations.
    #[arg(long, default_value_t = 16)]
    teams_users: usize,
    /// Messages per second offered to each conversation in both Teams runs.
    /// Keep it well below Graph's limit of 4 requests/s: a message to Teams
    /// costs 2 (the post and reading back its notification), and the limit
    /// counts in fixed one-second windows.
    #[arg(long, default_value_t = 1.0)]
    teams_conversation_rate: f64,
    /// Events per appservice transaction in the Matrix to Teams run.
    #[arg(long, default_value_t = 50)]
    teams_events_per_txn: usize,
    /// Messages relayed each way through each room of the encryption run.
    #[arg(long, default_value_t = 300)]
    encryption_messages: usize,
}

impl Args {
    fn wants(&self, run: Run) -> bool {
        self.runs.contains(&run) || self.runs.contains(&Run::All)
    }
}

fn figure(name: &str, value: f64, unit: &str, target: Option<(&str, bool)>) {
    match target {
        Some((target, met)) => {
            let verdict = if met { "met" } else { "NOT met" };
            println!("{name}: {value:.2} {unit}  [target {target}: {verdict}]");
        }
        None => println!("{name}: {value:.2} {unit}"),
    }
}

fn rate(name: &str, value: f64) {
    let target = format!(">= {TARGET_MSGS_PER_SEC:.0} msg/s");
    figure(name, value, "msg/s", Some((&target, value >= TARGET_MSGS_PER_SEC)));
}

fn latency(prefix: &str, p: &Percentiles) {
    figure(&format!("{prefix}_p50_ms"), p.ms(50.0), "ms", None);
    let target = format!("< {TARGET_P99_MS} ms");
    let p99 = p.ms(99.0);
    figure(&format!("{prefix}_p99_ms"), p99, "ms", Some((&target, p99 < TARGET_P99_MS)));
}

/// Prints the store writer's work since `before` and the instrumentation.
fn info(bridge: &bridge::Bridge, before: WriteStats, missing: usize) {
    let after = bridge.store.write_stats();
    let (requests, commits) = (after.requests - before.requests, after.transactions - before.transactions);
    let per_commit = requests as f64 / commits.max(1) as f64;
    println!("  store writer: {requests} requests in {commits} commits ({per_commit:.1} per commit)");
    if missing > 0 {
        println!("  WARNING: {missing} messages did not arrive before the timeout");
    }
    if let Some(timings) = &bridge.timings {
        for line in timings.lines() {
            println!("  {line}");
        }
        timings.reset();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.portals > 0 && args.messages > 0 && args.events_per_txn > 0, "sizes must be positive");
    anyhow::ensure!(
        args.xmpp_rooms > 0 && args.xmpp_clients >= args.xmpp_rooms && args.xmpp_messages > 0,
        "XMPP sizes must be positive, with at least one client per room"
    );
    anyhow::ensure!(
        args.rc_rooms > 0 && args.rc_users >= args.rc_rooms && args.rc_messages > 0,
        "Rocket.Chat sizes must be positive, with at least one user per channel"
    );
    anyhow::ensure!(
        args.teams_conversations > 0
            && args.teams_users > 0
            && args.teams_messages > 0
            && args.teams_conversation_rate > 0.0,
        "Teams sizes and the rate must be positive"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let store = match args.store.as_str() {
        "sqlite" => "sqlite (temp file, WAL, synchronous=FULL: durable default)".to_owned(),
        other if other.starts_with("postgres") => "postgres".to_owned(),
        other => other.to_owned(),
    };
    println!("store: {store}");
    println!("cores: {cores}");
    println!("instrumented: {}", args.instrument);
    if args.wants(Run::Core) {
        core_runs(&args).await?;
    }
    if args.wants(Run::Xmpp) || args.wants(Run::Synapse) {
        xmpp_runs(&args).await?;
    }
    if args.wants(Run::Rocketchat) {
        let sizes = rocketchat::Sizes {
            messages: args.rc_messages,
            rooms: args.rc_rooms,
            users: args.rc_users,
            window: args.rc_window,
            rate: args.rc_rate,
            events_per_txn: args.rc_events_per_txn,
            timeout: Duration::from_secs(args.timeout_secs),
        };
        rocketchat::runs(&sizes, &args.store, args.instrument).await?;
    }
    if args.wants(Run::Teams) {
        let sizes = teams::Sizes {
            messages: args.teams_messages,
            conversations: args.teams_conversations,
            users: args.teams_users,
            conversation_rate: args.teams_conversation_rate,
            events_per_txn: args.teams_events_per_txn,
            timeout: Duration::from_secs(args.timeout_secs),
        };
        teams::runs(&sizes, &args.store, args.instrument).await?;
    }
    if args.wants(Run::Encryption) {
        encryption_runs(args.encryption_messages, &args.store, Duration::from_secs(args.timeout_secs)).await?;
    }
    figure("peak_rss_mib", peak_rss_mib().unwrap_or(f64::NAN), "MiB", None);
    Ok(())
}

/// A clear and an encrypted room through real Synapse, side by side.
async fn encryption_runs(messages: usize, store: &str, timeout: Duration) -> anyhow::Result<()> {
    println!("encryption: {messages} messages each way through a clear and an encrypted room");
    let report = encryption::run(messages, store, timeout).await?;
    for (name, paths) in [("clear", &report.clear), ("encrypted", &report.encrypted)] {
        for (direction, relay) in [("to_matrix", &paths.to_matrix), ("to_remote", &paths.to_remote)] {
            figure(&format!("{name}_{direction}_msgs_per_sec"), relay.msgs_per_sec, "msg/s", None);
            figure(&format!("{name}_{direction}_latency_p99_ms"), relay.latency.ms(99.0), "ms", None);
            missing(relay.missing);
        }
    }
    for (direction, clear, sealed) in [
        ("to_matrix", &report.clear.to_matrix, &report.encrypted.to_matrix),
        ("to_remote", &report.clear.to_remote, &report.encrypted.to_remote),
    ] {
        figure(
            &format!("encrypted_to_clear_{direction}_rate_ratio"),
            sealed.msgs_per_sec / clear.msgs_per_sec,
            "x",
            None,
        );
        let p99 = sealed.latency.ms(99.0) / clear.latency.ms(99.0);
        figure(&format!("encrypted_to_clear_{direction}_p99_ratio"), p99, "x", None);
    }
    Ok(())
}

/// The XMPP runs, against one Prosody.
async fn xmpp_runs(args: &Args) -> anyhow::Result<()> {
    let sizes = xmpp::Sizes {
        messages: args.xmpp_messages,
        rooms: args.xmpp_rooms,
        clients: args.xmpp_clients,
        window: args.xmpp_window.max(1),
        rate: args.xmpp_rate,
        out_messages: args.xmpp_out_messages,
        events_per_txn: args.xmpp_events_per_txn,
        synapse_messages: args.synapse_messages,
        synapse_rooms: args.synapse_rooms.max(1),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let prosody = xmpp::start_prosody(sizes.clients + sizes.synapse_rooms).await?;
    if args.wants(Run::Xmpp) {
        println!("xmpp: {} clients in {} group chats, window {}", sizes.clients, sizes.rooms, sizes.window);
        println!("xmpp_messages: {} to Matrix, {} to XMPP", sizes.messages, sizes.out_messages);
        match sizes.rate {
            Some(rate) => println!("xmpp_pacing: {rate} msg/s"),
            None => println!("xmpp_pacing: none (send windows and transaction acknowledgements only)"),
        }
        let report = xmpp::fake_homeserver_runs(&prosody, &sizes, &args.store, args.instrument).await?;
        figure("xmpp_to_matrix_relay_msgs_per_sec", report.to_matrix.msgs_per_sec, "msg/s", None);
        figure("xmpp_to_matrix_latency_p50_ms", report.to_matrix.latency.ms(50.0), "ms", None);
        figure("xmpp_to_matrix_latency_p99_ms", report.to_matrix.latency.ms(99.0), "ms", None);
        missing(report.to_matrix.missing);
        figure("matrix_to_xmpp_relay_msgs_per_sec", report.to_xmpp.msgs_per_sec, "msg/s", None);
        figure("matrix_to_xmpp_latency_p50_ms", report.to_xmpp.latency.ms(50.0), "ms", None);
        figure("matrix_to_xmpp_latency_p99_ms", report.to_xmpp.latency.ms(99.0), "ms", None);
        missing(report.to_xmpp.missing);
        if report.unknown_calls > 0 {
            println!("  homeserver calls the instant homeserver does not know: {}", report.unknown_calls);
        }
    }
    if args.wants(Run::Synapse) {
        println!("synapse: {} messages per path in {} room(s)", sizes.synapse_messages, sizes.synapse_rooms);
        let report = xmpp::synapse::run(&prosody, &sizes, &args.store, args.instrument, sizes.clients).await?;
        let [before, after] = &report.direct_runs;
        figure("synapse_direct_client_msgs_per_sec", report.direct_msgs_per_sec, "msg/s", None);
        println!(
            "  direct runs: {:.2} msg/s before and {:.2} after the bridge path (acknowledged: {:.2} and {:.2})",
            before.seen.msgs_per_sec, after.seen.msgs_per_sec, before.acks_per_sec, after.acks_per_sec
        );
        missing(before.seen.missing + after.seen.missing);
        figure("synapse_xmpp_bridge_path_msgs_per_sec", report.bridged.msgs_per_sec, "msg/s", None);
        missing(report.bridged.missing);
        for line in &report.timings {
            println!("  {line}");
        }
        let ratio = report.bridged.msgs_per_sec / report.direct_msgs_per_sec;
        let target = format!(">= {TARGET_SYNAPSE_RATIO:.2}");
        figure("synapse_bridge_to_direct_ratio", ratio, "x", Some((&target, ratio >= TARGET_SYNAPSE_RATIO)));
    }
    Ok(())
}

fn missing(n: usize) {
    if n > 0 {
        println!("  WARNING: {n} messages did not arrive before the timeout");
    }
}

/// The runs against the instant adapter and homeserver.
async fn core_runs(args: &Args) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let bridge = bridge::start(&args.store, args.instrument).await?;
    println!("messages: {}", args.messages);
    println!("portals: {}", args.portals);
    println!("transactions: {} x {} events", args.transactions, args.events_per_txn);
    match args.rate {
        Some(rate) => println!("inbound_pacing: {rate} msg/s"),
        None => println!("inbound_pacing: none (each portal pushes as soon as its last push was acknowledged)"),
    }

    let rooms = scenarios::warm_up(&bridge, args.portals, timeout).await?;
    scenarios::drain(&bridge, timeout).await?;
    if let Some(timings) = &bridge.timings {
        timings.reset();
    }
    let calls_before = bridge.homeserver.calls();
    let writes_before = bridge.store.write_stats();

    let inbound = scenarios::inbound(&bridge, args.messages, args.portals, args.rate, timeout).await?;
    rate("inbound_relay_msgs_per_sec", inbound.msgs_per_sec);
    latency("inbound_latency", &inbound.latency);
    figure("inbound_push_acks_per_sec", inbound.pushes_per_sec, "msg/s", None);
    figure("inbound_push_ack_p50_ms", inbound.push_ack.ms(50.0), "ms", None);
    figure("inbound_push_ack_p99_ms", inbound.push_ack.ms(99.0), "ms", None);
    let calls_after = bridge.homeserver.calls();
    let calls: Vec<String> = ENDPOINTS
        .iter()
        .zip(calls_after.iter().zip(calls_before))
        .filter(|(_, (a, b))| *a > b)
        .map(|(name, (a, b))| format!("{name}={}", a - b))
        .collect();
    println!("  homeserver calls during the run: {}", calls.join(" "));
    scenarios::drain(&bridge, timeout).await?;
    info(&bridge, writes_before, inbound.missing);

    if args.transactions > 0 {
        let writes_before = bridge.store.write_stats();
        let out = scenarios::appservice(&bridge, &rooms, args.transactions, args.events_per_txn, timeout).await?;
        figure("appservice_txn_per_sec", out.txn_per_sec, "txn/s", None);
        figure("appservice_events_per_sec", out.events_per_sec, "events/s", None);
        figure("appservice_txn_ack_p50_ms", out.ack.ms(50.0), "ms", None);
        figure("appservice_txn_ack_p99_ms", out.ack.ms(99.0), "ms", None);
        rate("outbound_relay_msgs_per_sec", out.outbound_msgs_per_sec);
        latency("outbound_latency", &out.outbound);
        scenarios::drain(&bridge, timeout).await?;
        info(&bridge, writes_before, out.missing);
    }

    bridge.router.shutdown();
    Ok(())
}
