//! Reconnect delays for adapters' long-lived connections: exponential, capped,
//! with jitter so many tenants do not reconnect to one server in lockstep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exponential backoff between reconnect attempts.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `initial` and doubles up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, attempt: 0 }
    }

    /// The delay before the next attempt (75 % to 100 % of the nominal delay).
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.initial.saturating_mul(1u32 << self.attempt.min(16)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let jitter = f64::from(nanos % 1000) / 4000.0;
        nominal.mul_f64(1.0 - jitter)
    }

    /// Back to the first delay, after a connection that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(75), "{first:?}");
        let second = b.next_delay();
        assert!(second > Duration::from_millis(140) && second <= Duration::from_millis(200), "{second:?}");
        b.next_delay();
        let capped = b.next_delay();
        assert!(capped <= Duration::from_millis(350) && capped > Duration::from_millis(260), "{capped:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
