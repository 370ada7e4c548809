//! The two timed runs, each paced per conversation below Graph's limit:
//! Teams users posting through the double's control API (the code path of a
//! message POST, notified to the bridge's webhook) towards the instant
//! homeserver, and appservice transactions whose messages the relay identity
//! posts to Graph.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brygga_graph_double::Draft;
use chrono::{DateTime, Utc};

use super::Sizes;
use super::setup::Env;
use crate::stats::{Percentiles, Stamps, body_of};
use crate::xmpp::{Relay, put_transaction, transaction};

/// A timed run and what it cost.
pub struct Run {
    /// Rate and latency.
    pub relay: Relay,
    /// Graph requests the double served.
    pub requests: u64,
    /// Of those, answered 429.
    pub throttled: u64,
    /// Change notifications the double sent to the bridge.
    pub notifications: usize,
    /// Wall time from the start to the last arrival (or the timeout).
    pub wall: Duration,
    /// Per-call store and Matrix client times, with `--instrument`.
    pub timings: Vec<String>,
}

/// Teams to Matrix: from the post to the homeserver receiving the bridge's send.
pub async fn to_matrix(env: &Env, sizes: &Sizes) -> anyhow::Result<Run> {
    // Warm-up (untimed): every poster's ghost is registered and joined to its room.
    let before = env.homeserver.probe.total();
    for (conversation, user) in &env.conversations {
        env.graph.send(user, conversation, Draft::html("warm-up")).context("posting a warm-up message")?;
    }
    if !env.homeserver.probe.wait_total(before + env.conversations.len(), sizes.timeout).await {
        bail!("Teams warm-up: the homeserver received only {} sends", env.homeserver.probe.total() - before);
    }
    env.drain(sizes.timeout).await?;

    let n = sizes.messages;
    let base = Instant::now();
    let departed = Stamps::new(base, n);
    let arrived = Arc::new(Stamps::new(base, n));
    env.homeserver.probe.arm(arrived.clone());
    let meter = Meter::start(env);
    let start = base.elapsed();
    let paced_from = tokio::time::Instant::now();
    for seq in 0..n {
        tokio::time::sleep_until(paced_from + Duration::from_secs_f64(seq as f64 / sizes.rate())).await;
        let (conversation, user) = &env.conversations[seq % env.conversations.len()];
        departed.mark(seq);
        env.graph.send(user, conversation, Draft::html(body_of(seq))).context("posting a message")?;
    }
    arrived.wait_all(sizes.timeout).await;
    Ok(meter.finish(env, Relay::of(start, &departed, &arrived, n)))
}

/// Matrix to Teams: from the transaction's `PUT` to Graph storing the relay's post.
pub async fn to_teams(env: &Env, sizes: &Sizes) -> anyhow::Result<Run> {
    let (core, rooms) = (&env.core, &env.rooms);
    let client = reqwest::Client::new();
    // Warm-up (untimed): the relay's token is fetched and every portal has sent once.
    let body = transaction(0, rooms.len(), rooms, "tmwarm");
    put_transaction(core, &client, &format!("{}-tmwarm", core.tenant), body).await?;
    env.drain(sizes.timeout).await?;
    let warm = relay_posts(env, DateTime::<Utc>::MIN_UTC).len();
    if warm < rooms.len() {
        bail!("Matrix to Teams warm-up: the relay posted only {warm} of {} messages", rooms.len());
    }

    let (n, per_txn) = (sizes.messages, sizes.events_per_txn.max(1));
    let bodies: Vec<Vec<u8>> = (0..n.div_ceil(per_txn))
        .map(|t| transaction(t * per_txn, per_txn.min(n - t * per_txn), rooms, "tmout"))
        .collect();
    let mut departed: Vec<Option<DateTime<Utc>>> = vec![None; n];
    let meter = Meter::start(env);
    let started = Utc::now();
    let paced_from = tokio::time::Instant::now();
    for (t, body) in bodies.into_iter().enumerate() {
        let first = t * per_txn;
        tokio::time::sleep_until(paced_from + Duration::from_secs_f64(first as f64 / sizes.rate())).await;
        let now = Utc::now();
        departed[first..(first + per_txn).min(n)].fill(Some(now));
        put_transaction(core, &client, &format!("{}-tmout-{t}", core.tenant), body).await?;
    }
    // Done when the outbox is: each entry is marked done once Graph answered its post.
    let drained = env.drain(sizes.timeout).await;
    let mut arrived: Vec<Option<DateTime<Utc>>> = vec![None; n];
    for (seq, created) in relay_posts(env, started) {
        if let Some(slot) = arrived.get_mut(seq) {
            *slot = Some(created);
        }
    }
    let relay = relay_of(started, &departed, &arrived);
    if let Err(err) = drained {
        println!("  WARNING: the outbox did not drain: {err:#}");
    }
    Ok(meter.finish(env, relay))
}

/// `(sequence number, created)` of every timed message the relay posted after `since`.
fn relay_posts(env: &Env, since: DateTime<Utc>) -> Vec<(usize, DateTime<Utc>)> {
    let relay = Some(env.relay.id.as_str());
    env.conversations
        .iter()
        .flat_map(|(conversation, _)| env.graph.messages(conversation))
        .filter(|m| m.from_user.as_deref() == relay && m.created >= since)
        .filter_map(|m| Some((seq_in(&m.content)?, m.created)))
        .collect()
}

/// The sequence number of a relayed body: the digits after its last `#`
/// (the relay puts the sender's name in bold before the text).
fn seq_in(html: &str) -> Option<usize> {
    let digits: String = html.rsplit_once('#')?.1.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Rate and latency from wall-clock departures and Graph's creation times.
fn relay_of(started: DateTime<Utc>, departed: &[Option<DateTime<Utc>>], arrived: &[Option<DateTime<Utc>>]) -> Relay {
    let since = |t: DateTime<Utc>, from: DateTime<Utc>| (t - from).to_std().unwrap_or_default();
    let latency = departed.iter().zip(arrived).filter_map(|(d, a)| Some(since((*a)?, (*d)?)));
    let count = arrived.iter().flatten().count();
    let last = arrived.iter().flatten().max().copied().unwrap_or(started);
    Relay {
        msgs_per_sec: count as f64 / since(last, started).as_secs_f64().max(1e-9),
        latency: Percentiles::new(latency),
        missing: arrived.len() - count,
    }
}

/// What a run's cost is measured from.
struct Meter {
    requests: u64,
    throttled: u64,
    notifications: usize,
    started: Instant,
}

impl Meter {
    fn start(env: &Env) -> Self {
        if let Some(timings) = &env.core.timings {
            timings.reset();
        }
        let stats = env.graph.stats();
        Self {
            requests: graph_requests(&stats),
            throttled: stats.throttled,
            notifications: env.graph.deliveries().len(),
            started: Instant::now(),
        }
    }

    fn finish(self, env: &Env, relay: Relay) -> Run {
        let wall = self.started.elapsed();
        let stats = env.graph.stats();
        let timings = env.core.timings.as_ref().map(|t| t.lines()).unwrap_or_default();
        Run {
            relay,
            requests: graph_requests(&stats) - self.requests,
            throttled: stats.throttled - self.throttled,
            notifications: env.graph.deliveries().len() - self.notifications,
            wall,
            timings,
        }
    }
}

/// Requests to Graph itself (not the token endpoint).
fn graph_requests(stats: &brygga_graph_double::Stats) -> u64 {
    stats.requests.iter().filter(|(route, _)| route.contains(" /v1.0/")).map(|(_, n)| n).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_come_from_the_relayed_body() {
        assert_eq!(seq_in("<p><b>alice</b></p><p>#1234</p>"), Some(1234));
        assert_eq!(seq_in("#7"), Some(7));
        assert_eq!(seq_in("<p><b>alice</b></p><p>warm-up</p>"), None);
        assert_eq!(seq_in("no number"), None);
    }
}
