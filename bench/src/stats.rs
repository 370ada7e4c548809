//! Timestamps per sequence number, probes that record arrivals, percentiles
//! and peak memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One timestamp slot per sequence number, written once, lock-free.
pub struct Stamps {
    base: Instant,
    /// Nanoseconds since `base` plus one; zero means "not yet".
    slots: Vec<AtomicU64>,
    count: AtomicUsize,
}

impl Stamps {
    /// `n` empty slots, timed relative to `base`.
    pub fn new(base: Instant, n: usize) -> Self {
        Self { base, slots: (0..n).map(|_| AtomicU64::new(0)).collect(), count: AtomicUsize::new(0) }
    }

    /// Stamps `seq` with the current time unless it is stamped already.
    pub fn mark(&self, seq: usize) {
        let Some(slot) = self.slots.get(seq) else { return };
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        if slot.compare_exchange(0, nanos, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// How many slots are stamped.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The time of `seq`, as an offset from the base.
    pub fn at(&self, seq: usize) -> Option<Duration> {
        match self.slots.get(seq)?.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos - 1)),
        }
    }

    /// The latest stamp.
    pub fn last(&self) -> Option<Duration> {
        (0..self.slots.len()).filter_map(|i| self.at(i)).max()
    }

    /// Polls until every slot is stamped; false on timeout.
    pub async fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < self.slots.len() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}

/// Where an instant endpoint records the sequence numbers it receives.
#[derive(Default)]
pub struct Probe {
    current: RwLock<Option<Arc<Stamps>>>,
    received: AtomicUsize,
}

impl Probe {
    /// Records arrivals into `stamps` from now on.
    pub fn arm(&self, stamps: Arc<Stamps>) {
        *self.current.write().expect("probe poisoned") = Some(stamps);
    }

    /// Records one received message body (`#<seq>` bodies are timed).
    pub fn received(&self, body: Option<&str>) {
        self.received.fetch_add(1, Ordering::AcqRel);
        let Some(seq) = body.and_then(seq_of) else { return };
        if let Some(stamps) = self.current.read().expect("probe poisoned").as_ref() {
            stamps.mark(seq);
        }
    }

    /// Every message received, timed or not.
    pub fn total(&self) -> usize {
        self.received.load(Ordering::Acquire)
    }

    /// Polls until `total()` reaches `n`; false on timeout.
    pub async fn wait_total(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.total() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}

/// The body that carries sequence number `seq`.
pub fn body_of(seq: usize) -> String {
    format!("#{seq}")
}

fn seq_of(body: &str) -> Option<usize> {
    body.strip_prefix('#')?.parse().ok()
}

/// Nearest-rank percentiles of a set of durations, in milliseconds.
pub struct Percentiles {
    sorted_ms: Vec<f64>,
}

impl Percentiles {
    /// Sorts the samples.
    pub fn new(samples: impl IntoIterator<Item = Duration>) -> Self {
        let mut sorted_ms: Vec<f64> = samples.into_iter().map(|d| d.as_secs_f64() * 1e3).collect();
        sorted_ms.sort_by(f64::total_cmp);
        Self { sorted_ms }
    }

    /// The `p`th percentile (0 to 100) in ms; NaN without samples.
    pub fn ms(&self, p: f64) -> f64 {
        if self.sorted_ms.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.sorted_ms.len() as f64).ceil() as usize;
        self.sorted_ms[rank.clamp(1, self.sorted_ms.len()) - 1]
    }

    /// How many samples there are.
    pub fn count(&self) -> usize {
        self.sorted_ms.len()
    }
}

/// Peak resident set size in MiB (`VmHWM`), if the kernel reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::new((1..=100).map(Duration::from_millis));
        assert_eq!(p.ms(50.0), 50.0);
        assert_eq!(p.ms(99.0), 99.0);
        assert_eq!(p.ms(100.0), 100.0);
        assert!(Percentiles::new([]).ms(50.0).is_nan());
    }

    #[test]
    fn stamps_are_written_once_and_bodies_parse() {
        let stamps = Arc::new(Stamps::new(Instant::now(), 2));
        let probe = Probe::default();
        probe.arm(stamps.clone());
        probe.received(Some(&body_of(1)));
        let first = stamps.at(1);
        probe.received(Some("#1"));
        probe.received(Some("warm-up"));
        probe.received(None);
        assert_eq!((stamps.count(), probe.total(), stamps.at(1)), (1, 4, first));
        assert_eq!(stamps.at(0), None);
    }
}
