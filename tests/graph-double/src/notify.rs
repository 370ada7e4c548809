//! Delivery of change and lifecycle notifications to the bridge's endpoints.
//!
//! One worker per notification URL delivers in order; a non-2xx answer or a
//! transport error is retried with exponential backoff (Graph retries for
//! hours; the double's retry policy is short and configurable), then given up
//! and recorded as failed. While delivery is paused (the bridge is "down")
//! notifications are dropped and recorded as such, so the bridge has to catch up.

use crate::state::lock;
use crate::world::{Change, World};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What happened to one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Still queued or being retried.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed {
        /// Attempts made.
        attempts: u32,
    },
    /// Dropped unsent because delivery was paused.
    Dropped,
}

/// One notification the double sent (or tried to).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Delivery {
    /// Subscription id.
    pub subscription: String,
    /// `created`/`updated`/`deleted`, or the lifecycle event name.
    pub kind: String,
    /// The message id (none for lifecycle notifications).
    pub message: Option<String>,
    /// Where it went.
    pub url: String,
    /// The payload.
    pub payload: Value,
    /// What happened.
    pub outcome: Outcome,
}

/// Retry policy of notification delivery.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per notification, first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub first_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// `attempts` tries, the first retry after `first_delay` (doubling), 10 s per attempt.
    pub fn new(attempts: u32, first_delay: Duration) -> Self {
        Self { attempts, first_delay, ..Self::default() }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, first_delay: Duration::from_millis(200), timeout: Duration::from_secs(10) }
    }
}

struct Job {
    index: usize,
    url: String,
    payload: Value,
}

/// The delivery machinery.
pub struct Notifier {
    /// HTTP client (also used for validation handshakes).
    pub client: reqwest::Client,
    paused: AtomicBool,
    log: Arc<Mutex<Vec<Delivery>>>,
    workers: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
    retry: Arc<Mutex<RetryPolicy>>,
    runtime: tokio::runtime::Handle,
    /// Graph's base URL, for links in resource data.
    graph_base: String,
}

impl Notifier {
    /// A notifier spawning on the current Tokio runtime, for the Graph at `graph_base`.
    pub fn new(graph_base: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            paused: AtomicBool::new(false),
            log: Arc::default(),
            workers: Mutex::default(),
            retry: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
            graph_base,
        }
    }

    /// Queues notifications of `change` to every live subscription that watches it.
    pub fn change(&self, world: &World, change: &Change) {
        let now = crate::time::now();
        let mut subs: Vec<_> = world
            .subscriptions
            .values()
            .filter(|s| s.conversation == change.conversation && s.active(now))
            .filter(|s| s.change_types.iter().any(|t| t == change.change_type))
            .collect();
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        for sub in subs {
            // With resource data, the message as it is now travels encrypted in the notification.
            let resource = sub.encryption.as_ref().and_then(|_| {
                let record = world.message(&change.conversation, &change.id).ok()?;
                Some(crate::render::message(&self.graph_base, &change.conversation, record))
            });
            let payload = sub.notification(change, resource.as_ref());
            self.send(&sub.id, change.change_type, Some(&change.id), &sub.notification_url, payload);
        }
    }

    /// Queues one payload to `url` (or drops it while paused).
    pub fn send(&self, subscription: &str, kind: &str, message: Option<&str>, url: &str, payload: Value) {
        let paused = self.paused.load(Ordering::SeqCst);
        let delivery = Delivery {
            subscription: subscription.to_owned(),
            kind: kind.to_owned(),
            message: message.map(str::to_owned),
            url: url.to_owned(),
            payload: payload.clone(),
            outcome: if paused { Outcome::Dropped } else { Outcome::Pending },
        };
        let index = {
            let mut log = lock(&self.log);
            log.push(delivery);
            log.len() - 1
        };
        if paused {
            return;
        }
        let job = Job { index, url: url.to_owned(), payload };
        let mut workers = lock(&self.workers);
        let sender = workers.entry(url.to_owned()).or_insert_with(|| self.spawn_worker());
        if let Err(mpsc::error::SendError(job)) = sender.send(job) {
            // The worker died (its runtime is gone); record the loss rather than hide it.
            lock(&self.log)[job.index].outcome = Outcome::Failed { attempts: 0 };
        }
    }

    fn spawn_worker(&self) -> mpsc::UnboundedSender<Job> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (client, log, retry) = (self.client.clone(), self.log.clone(), self.retry.clone());
        self.runtime.spawn(async move {
            while let Some(job) = rx.recv().await {
                let policy = *lock(&retry);
                let outcome = deliver(&client, &job, policy).await;
                lock(&log)[job.index].outcome = outcome;
            }
        });
        tx
    }

    /// Pauses (`true`) or resumes delivery.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Replaces the retry policy.
    pub fn set_retry(&self, policy: RetryPolicy) {
        *lock(&self.retry) = policy;
    }

    /// Every notification so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.log).clone()
    }
}

async fn deliver(client: &reqwest::Client, job: &Job, policy: RetryPolicy) -> Outcome {
    let mut delay = policy.first_delay;
    for attempt in 1..=policy.attempts.max(1) {
        let sent = client.post(&job.url).json(&job.payload).timeout(policy.timeout).send().await;
        match sent {
            Ok(r) if r.status().is_success() => return Outcome::Delivered,
            Ok(r) => tracing::debug!(url = %job.url, status = %r.status(), attempt, "notification refused"),
            Err(e) => tracing::debug!(url = %job.url, error = %e, attempt, "notification not delivered"),
        }
        if attempt < policy.attempts {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Outcome::Failed { attempts: policy.attempts.max(1) }
}
