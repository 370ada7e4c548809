//! The two timed runs: Rocket.Chat users posting through the double's
//! control API (the code path of `chat.sendMessage`, broadcast on the
//! realtime streams) towards the instant homeserver, and appservice
//! transactions towards the double.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::task::JoinSet;

use super::cpu::Cpu;
use super::setup::Env;
use super::watcher::Watcher;
use super::{PUPPET_PREFIX, Sizes};
use crate::stats::{Probe, Stamps, body_of};
use crate::xmpp::{Relay, put_transaction, transaction};

/// Rocket.Chat to Matrix: from the post to the homeserver receiving the bridge's send.
pub async fn to_matrix(env: &Env, sizes: &Sizes) -> anyhow::Result<Run> {
    // Warm-up (untimed): every user's ghost is registered and joined.
    let before = env.homeserver.probe.total();
    for (user, rid) in &env.users {
        env.rc.post_message(user, rid, "warm-up").context("posting a warm-up message")?;
    }
    if !env.homeserver.probe.wait_total(before + env.users.len(), sizes.timeout).await {
        bail!("Rocket.Chat warm-up: the homeserver received only {} sends", env.homeserver.probe.total() - before);
    }
    env.drain(sizes.timeout).await?;

    let n = sizes.messages;
    let base = Instant::now();
    let departed = Arc::new(Stamps::new(base, n));
    let arrived = Arc::new(Stamps::new(base, n));
    env.homeserver.probe.arm(arrived.clone());
    let meter = Meter::start(env);
    let start = base.elapsed();
    let paced_from = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut posters = JoinSet::new();
    let (step, window, rate, timeout) = (env.users.len(), sizes.window.max(1), sizes.rate, sizes.timeout);
    for (c, (user, rid)) in env.users.iter().enumerate() {
        let (rc, user, rid) = (env.rc.clone(), user.clone(), rid.clone());
        let (departed, arrived) = (departed.clone(), arrived.clone());
        posters.spawn(async move {
            for (k, seq) in (c..n).step_by(step).enumerate() {
                if let Some(rate) = rate {
                    tokio::time::sleep_until(paced_from + Duration::from_secs_f64(seq as f64 / rate)).await;
                }
                // At most `window` of this user's messages are on their way.
                if k >= window && !wait_for(&arrived, seq - window * step, timeout).await {
                    bail!("message {} never reached the homeserver", seq - window * step);
                }
                departed.mark(seq);
                rc.post_message(&user, &rid, &body_of(seq)).context("posting a message")?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(posted) = posters.join_next().await {
        posted??;
    }
    arrived.wait_all(sizes.timeout).await;
    Ok(meter.finish(env, Relay::of(start, &departed, &arrived, n)))
}

/// Polls until `seq` is stamped; false on timeout.
async fn wait_for(stamps: &Stamps, seq: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while stamps.at(seq).is_none() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// Matrix to Rocket.Chat: from the transaction's `PUT` to the watcher
/// seeing the puppet's message.
pub async fn to_rocketchat(env: &Env, sizes: &Sizes) -> anyhow::Result<Run> {
    let (core, rooms) = (&env.core, &env.rooms);
    let probe = Arc::new(Probe::default());
    let _watcher = Watcher::connect(&env.rc, &env.watcher, PUPPET_PREFIX, probe.clone(), sizes.timeout).await?;
    let client = reqwest::Client::new();
    // Warm-up (untimed): Alice's puppet is created and joins every channel.
    let warm = Arc::new(Stamps::new(Instant::now(), rooms.len()));
    probe.arm(warm.clone());
    let body = transaction(0, rooms.len(), rooms, "rcwarm");
    put_transaction(core, &client, &format!("{}-rcwarm", core.tenant), body).await?;
    if !warm.wait_all(sizes.timeout).await {
        bail!("Matrix to Rocket.Chat warm-up: only {} of {} channels got the message", warm.count(), rooms.len());
    }
    env.drain(sizes.timeout).await?;

    let (n, per_txn) = (sizes.messages, sizes.events_per_txn.max(1));
    let bodies: Vec<Vec<u8>> = (0..n.div_ceil(per_txn))
        .map(|t| transaction(t * per_txn, per_txn.min(n - t * per_txn), rooms, "rcout"))
        .collect();
    let base = Instant::now();
    let departed = Stamps::new(base, n);
    let arrived = Arc::new(Stamps::new(base, n));
    probe.arm(arrived.clone());
    let meter = Meter::start(env);
    let start = base.elapsed();
    let paced_from = tokio::time::Instant::now();
    for (t, body) in bodies.into_iter().enumerate() {
        if let Some(rate) = sizes.rate {
            tokio::time::sleep_until(paced_from + Duration::from_secs_f64((t * per_txn) as f64 / rate)).await;
        }
        for seq in t * per_txn..(t * per_txn + per_txn).min(n) {
            departed.mark(seq);
        }
        put_transaction(core, &client, &format!("{}-rcout-{t}", core.tenant), body).await?;
    }
    arrived.wait_all(sizes.timeout).await;
    Ok(meter.finish(env, Relay::of(start, &departed, &arrived, n)))
}

/// A timed run and what it cost.
pub struct Run {
    /// Rate and latency.
    pub relay: Relay,
    /// REST requests the double served (each validated in node).
    pub requests: u64,
    /// CPU used, where `/proc` tells.
    pub cpu: Option<Cpu>,
    /// Wall time from the start to the last arrival (or the timeout).
    pub wall: Duration,
    /// Per-call store and Matrix client times, with `--instrument`.
    pub timings: Vec<String>,
}

/// What a run's cost is measured from.
struct Meter {
    requests: u64,
    cpu: Option<Cpu>,
    started: Instant,
}

impl Meter {
    fn start(env: &Env) -> Self {
        if let Some(timings) = &env.core.timings {
            timings.reset();
        }
        Self { requests: env.rc.request_counts().values().sum(), cpu: Cpu::now(), started: Instant::now() }
    }

    fn finish(self, env: &Env, relay: Relay) -> Run {
        let wall = self.started.elapsed();
        let requests = env.rc.request_counts().values().sum::<u64>() - self.requests;
        let cpu = Cpu::now().zip(self.cpu).map(|(after, before)| after.since(before));
        let timings = env.core.timings.as_ref().map(|t| t.lines()).unwrap_or_default();
        Run { relay, requests, cpu, wall, timings }
    }
}
