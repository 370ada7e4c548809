//! Pacing of Graph requests per channel or chat (Graph allows about four
//! requests per second per app per channel). A generic cell rate algorithm:
//! each key has a theoretical arrival time; a request waits until it is
//! within the burst allowance. Requests are never refused, only delayed, so
//! throttling costs time and never a message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Keys kept before idle ones are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// One tenant's pacing, keyed by conversation.
pub(crate) struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    keys: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// At most `per_sec` requests per second per key on average, and `burst` at once.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_sec.max(1);
        let tolerance = interval * burst.max(1).saturating_sub(1);
        Self { interval, tolerance, keys: Mutex::default() }
    }

    /// The instant a request on `key` may go, booking its slot.
    fn book(&self, key: &str, now: Instant) -> Instant {
        let mut keys = self.keys.lock().expect("limiter poisoned");
        if keys.len() > PRUNE_ABOVE {
            keys.retain(|_, tat| *tat > now);
        }
        let tat = keys.get(key).copied().map_or(now, |t| t.max(now));
        let allowed = tat.checked_sub(self.tolerance).map_or(now, |a| a.max(now));
        keys.insert(key.to_owned(), tat + self.interval);
        allowed
    }

    /// Waits for a slot on `key`.
    pub(crate) async fn acquire(&self, key: &str) {
        let at = self.book(key, Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// Holds every request on `key` back until `wait` has passed (the server asked for it).
    pub(crate) fn pause(&self, key: &str, wait: Duration) {
        let resume = Instant::now() + wait + self.tolerance;
        let mut keys = self.keys.lock().expect("limiter poisoned");
        let tat = keys.entry(key.to_owned()).or_insert(resume);
        *tat = (*tat).max(resume);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_on_one_channel_are_paced_after_a_burst() {
        let limiter = RateLimiter::new(4, 2);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..6 {
            limiter.acquire("chan").await;
            times.push(Instant::now() - start);
        }
        let ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 0, 250, 500, 750, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn channels_do_not_slow_each_other() {
        let limiter = RateLimiter::new(4, 1);
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire("a").await;
        }
        limiter.acquire("b").await;
        assert_eq!((Instant::now() - start).as_millis(), 750);
        let b_start = Instant::now();
        limiter.acquire("c").await;
        assert_eq!(Instant::now(), b_start);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_channel_back() {
        let limiter = RateLimiter::new(4, 1);
        let start = Instant::now();
        limiter.pause("a", Duration::from_secs(3));
        limiter.acquire("a").await;
        assert_eq!((Instant::now() - start).as_secs(), 3);
        limiter.acquire("b").await;
        assert_eq!((Instant::now() - start).as_secs(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_recover_their_burst() {
        let limiter = RateLimiter::new(4, 3);
        for _ in 0..3 {
            limiter.acquire("a").await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire("a").await;
        }
        assert_eq!(Instant::now(), start);
    }
}
