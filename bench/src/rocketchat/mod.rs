//! Rocket.Chat relay through the Rocket.Chat double: the real Rocket.Chat
//! adapter (built by `brygga_rocketchat::RocketChatFactory` through the
//! adapter host) with the real store and router, against the instant
//! homeserver. The double runs in this process and checks every REST body
//! the adapter sends with Rocket.Chat's own schemas in a `node` child, so the
//! figures include the double's overhead, not only the bridge's.

mod cpu;
mod load;
mod setup;
mod validation;
mod watcher;

use std::time::Duration;

use load::Run;

use crate::{figure, missing};

/// Username prefix of the bridge's puppets (the adapter's default).
const PUPPET_PREFIX: &str = "matrix.";

/// Sizes of the Rocket.Chat runs.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Messages relayed each way.
    pub messages: usize,
    /// Channels (portals) the load is spread over.
    pub rooms: usize,
    /// Rocket.Chat users posting, spread round-robin over the channels.
    pub users: usize,
    /// Messages a user may have posted that the homeserver has not yet received.
    pub window: usize,
    /// Paces both runs to this many messages per second overall.
    pub rate: Option<f64>,
    /// Events per appservice transaction in the Matrix to Rocket.Chat run.
    pub events_per_txn: usize,
    /// Longest wait for deliveries, per run.
    pub timeout: Duration,
}

/// Runs Rocket.Chat to Matrix, then Matrix to Rocket.Chat, and prints the figures.
pub async fn runs(sizes: &Sizes, store: &str, instrument: bool) -> anyhow::Result<()> {
    println!("rocketchat: {} users in {} channels, window {}", sizes.users, sizes.rooms, sizes.window);
    println!(
        "rocketchat_messages: {} each way, {} per transaction to Rocket.Chat",
        sizes.messages, sizes.events_per_txn
    );
    match sizes.rate {
        Some(rate) => println!("rocketchat_pacing: {rate} msg/s"),
        None => println!("rocketchat_pacing: none (send windows and transaction acknowledgements only)"),
    }
    let env = setup::start(sizes, store, instrument).await?;
    let to_matrix = load::to_matrix(&env, sizes).await?;
    report("rocketchat_to_matrix", &to_matrix);
    env.drain(sizes.timeout).await?;
    let to_rc = load::to_rocketchat(&env, sizes).await?;
    report("matrix_to_rocketchat", &to_rc);
    env.drain(sizes.timeout).await?;
    let unknown_calls = env.homeserver.unknown_calls();
    env.check_schemas()?;
    env.core.router.shutdown();
    drop(env);

    // The double's validator on its own, with nothing else running.
    let validation = validation::round_trips(2_000).await?;
    figure("rocketchat_double_validation_p50_ms", validation.ms(50.0), "ms", None);
    figure("rocketchat_double_validation_p99_ms", validation.ms(99.0), "ms", None);
    if unknown_calls > 0 {
        println!("  homeserver calls the instant homeserver does not know: {unknown_calls}");
    }
    Ok(())
}

fn report(prefix: &str, run: &Run) {
    figure(&format!("{prefix}_relay_msgs_per_sec"), run.relay.msgs_per_sec, "msg/s", None);
    figure(&format!("{prefix}_latency_p50_ms"), run.relay.latency.ms(50.0), "ms", None);
    figure(&format!("{prefix}_latency_p99_ms"), run.relay.latency.ms(99.0), "ms", None);
    missing(run.relay.missing);
    let wall = run.wall.as_secs_f64();
    let per_message = run.requests as f64 / run.relay.latency.count().max(1) as f64;
    println!("  {:.2} s: the double served {} REST requests ({per_message:.2} per message)", wall, run.requests);
    if let Some(cpu) = run.cpu {
        let share = |d: std::time::Duration| 100.0 * d.as_secs_f64() / wall;
        println!(
            "  CPU: bench process (bridge, double, load) {:.2} s ({:.0}% of one core), the double's node validator \
             {:.2} s ({:.0}%)",
            cpu.bench.as_secs_f64(),
            share(cpu.bench),
            cpu.node.as_secs_f64(),
            share(cpu.node)
        );
    }
    for line in &run.timings {
        println!("  {line}");
    }
}
