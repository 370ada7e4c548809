//! The state shared by the HTTP handlers, the notifier and the control API.

use crate::notify::Notifier;
use crate::throttle::Throttle;
use crate::world::World;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Knobs a test may turn.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// The `interval` a device code flow asks clients to poll at (Entra: 5 s).
    pub device_code_interval: u64,
    /// Longest subscription lifetime for chatMessage resources (Graph: 60 minutes).
    pub max_subscription_lifetime: Duration,
    /// How long the validation handshake waits for the echo (Graph: 10 s).
    pub validation_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3599),
            device_code_interval: 5,
            max_subscription_lifetime: Duration::from_secs(60 * 60),
            validation_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything behind the server.
pub struct Shared {
    world: Mutex<World>,
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    /// Change and lifecycle notification delivery.
    pub notifier: Notifier,
    /// Rate limits and forced 429s.
    pub throttle: Mutex<Throttle>,
    requests: Mutex<HashMap<String, u64>>,
    settings: Mutex<Settings>,
    /// Message POSTs still to be carried out without an answer.
    unanswered_posts: Mutex<u32>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// State for a server reachable at `origin`.
    pub fn new(origin: String) -> Self {
        let notifier = Notifier::new(format!("{origin}/v1.0"));
        Self {
            world: Mutex::new(World::default()),
            origin,
            notifier,
            throttle: Mutex::new(Throttle::default()),
            requests: Mutex::new(HashMap::new()),
            settings: Mutex::new(Settings::default()),
            unanswered_posts: Mutex::new(0),
        }
    }

    /// The Graph base URL, `http://127.0.0.1:<port>/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.origin)
    }

    /// Runs `f` on the world, then hands the changes it made to the notifier, under the same lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut world = lock(&self.world);
        let result = f(&mut world);
        let changes = std::mem::take(&mut world.changes);
        for change in &changes {
            self.notifier.change(&world, change);
        }
        result
    }

    /// A copy of the settings.
    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Changes the settings.
    pub fn set_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut lock(&self.settings));
    }

    /// Makes the next `count` message POSTs go unanswered.
    pub fn leave_posts_unanswered(&self, count: u32) {
        *lock(&self.unanswered_posts) = count;
    }

    /// Whether this message POST goes unanswered (taking one from the count).
    pub fn take_unanswered_post(&self) -> bool {
        let mut left = lock(&self.unanswered_posts);
        let take = *left > 0;
        *left = left.saturating_sub(1);
        take
    }

    /// Counts one request to `route` (`METHOD /matched/path`).
    pub fn count_request(&self, route: &str) {
        *lock(&self.requests).entry(route.to_owned()).or_default() += 1;
    }

    /// Requests seen per route.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        lock(&self.requests).clone()
    }
}
