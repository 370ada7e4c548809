//! Teams relay through the Graph double: the real Teams adapter (built by
//! `brygga_teams::TeamsFactory` through the adapter host) with the real
//! store and router, against the instant homeserver. The double runs in this
//! process, enforces Graph's limit of 4 requests per second per app per
//! channel or chat (429 with `Retry-After` above it) and posts its change
//! notifications to the bridge's webhook route, one at a time per URL.
//!
//! Graph's per-conversation limit caps any one conversation at a few
//! messages per second, whatever the bridge does; so the load is spread over
//! many channels and chats, each paced below that limit, and the figures show
//! what the bridge (and the double) add on top, not Graph's ceiling.

mod load;
mod setup;

use std::time::Duration;

use load::Run;

use crate::{figure, missing};

/// Graph's documented limit per app per channel or chat, which the double enforces.
pub const GRAPH_REQUESTS_PER_CONVERSATION: f64 = 4.0;

/// Sizes of the Teams runs.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Messages relayed each way.
    pub messages: usize,
    /// Conversations (portals): half team channels, half group chats.
    pub conversations: usize,
    /// Teams users posting, spread round-robin over the conversations.
    pub users: usize,
    /// Messages per second offered to each conversation, both ways.
    pub conversation_rate: f64,
    /// Events per appservice transaction in the Matrix to Teams run.
    pub events_per_txn: usize,
    /// Longest wait for deliveries, per run.
    pub timeout: Duration,
}

impl Sizes {
    /// The load offered overall, in messages per second.
    pub fn rate(&self) -> f64 {
        self.conversation_rate * self.conversations as f64
    }
}

/// Runs Teams to Matrix, then Matrix to Teams, and prints the figures.
pub async fn runs(sizes: &Sizes, store: &str, instrument: bool) -> anyhow::Result<()> {
    let channels = sizes.conversations.div_ceil(2);
    println!(
        "teams: {} conversations ({channels} channels, {} group chats), {} posting users",
        sizes.conversations,
        sizes.conversations - channels,
        sizes.users
    );
    println!("teams_messages: {} each way, {} per transaction to Teams", sizes.messages, sizes.events_per_txn);
    println!(
        "teams_pacing: {:.0} msg/s offered overall = {} conversations x {} msg/s each (Graph allows {} \
         requests/s per conversation; the bridge makes 1 per message to Matrix, 2 per message to Teams)",
        sizes.rate(),
        sizes.conversations,
        sizes.conversation_rate,
        GRAPH_REQUESTS_PER_CONVERSATION
    );
    println!(
        "teams_measures: to Matrix, from a Teams user's post (the double's message POST path, notified to the \
         bridge's webhook) to the instant homeserver receiving the bridge's send; to Teams, from the appservice \
         transaction's PUT to Graph storing the relay identity's post"
    );
    let setup_started = std::time::Instant::now();
    let env = setup::start(sizes, store, instrument).await?;
    println!(
        "teams_setup: {:.0} s to subscribe to every conversation (the adapter paces its subscription calls like a \
         conversation's, 4 per second per tenant)",
        setup_started.elapsed().as_secs_f64()
    );
    let to_matrix = load::to_matrix(&env, sizes).await?;
    report("teams_to_matrix", &to_matrix);
    env.drain(sizes.timeout).await?;
    let to_teams = load::to_teams(&env, sizes).await?;
    report("matrix_to_teams", &to_teams);
    env.drain(sizes.timeout).await?;
    let unknown_calls = env.homeserver.unknown_calls();
    env.core.router.shutdown();
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
    let per_message = run.requests as f64 / run.relay.latency.count().max(1) as f64;
    println!(
        "  {:.2} s: the double served {} Graph requests ({per_message:.2} per message), answered {} with 429, \
         sent {} change notifications",
        run.wall.as_secs_f64(),
        run.requests,
        run.throttled,
        run.notifications
    );
    for line in &run.timings {
        println!("  {line}");
    }
}
