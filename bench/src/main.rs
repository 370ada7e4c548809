//! brygga-bench: the bridge's own overhead on its real code path (store,
//! router, Matrix client, appservice server) against an instant in-process
//! homeserver and an instant adapter.

mod bridge;
mod fake_homeserver;
mod instant_adapter;
mod scenarios;
mod stats;
mod timed;

use std::time::Duration;

use brygga_store::WriteStats;
use clap::Parser;

use crate::fake_homeserver::ENDPOINTS;
use crate::stats::{Percentiles, peak_rss_mib};

/// Target relay rate from the issue, in messages per second.
const TARGET_MSGS_PER_SEC: f64 = 10_000.0;
/// Target 99th percentile latency from the issue, in milliseconds.
const TARGET_P99_MS: f64 = 5.0;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Measures brygga's own relay overhead")]
struct Args {
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
    let timeout = Duration::from_secs(args.timeout_secs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bridge = bridge::start(&args.store, args.instrument).await?;
    let store = match args.store.as_str() {
        "sqlite" => "sqlite (temp file, WAL, synchronous=FULL: durable default)".to_owned(),
        other if other.starts_with("postgres") => "postgres".to_owned(),
        other => other.to_owned(),
    };
    println!("messages: {}", args.messages);
    println!("portals: {}", args.portals);
    println!("transactions: {} x {} events", args.transactions, args.events_per_txn);
    match args.rate {
        Some(rate) => println!("inbound_pacing: {rate} msg/s"),
        None => println!("inbound_pacing: none (each portal pushes as soon as its last push was acknowledged)"),
    }
    println!("store: {store}");
    println!("cores: {cores}");
    println!("instrumented: {}", args.instrument);

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

    figure("peak_rss_mib", peak_rss_mib().unwrap_or(f64::NAN), "MiB", None);
    bridge.router.shutdown();
    Ok(())
}
