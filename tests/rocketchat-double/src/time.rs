//! Timestamps in the two wire formats Rocket.Chat uses: ISO 8601 strings in
//! REST bodies and EJSON `{"$date": ms}` in DDP frames.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The last timestamp handed out, so timestamps are strictly increasing even
/// within one millisecond (history queries compare by `ts`, like MongoDB does).
static LAST: AtomicI64 = AtomicI64::new(0);

/// The current time in milliseconds, strictly later than any earlier call.
pub fn now_ms() -> Millis {
    let wall = Utc::now().timestamp_millis();
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

/// `2024-05-01T12:00:00.123Z`, as REST responses render dates.
pub fn iso(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{"$date": ms}`, as DDP (EJSON) renders dates.
pub fn ddp(ms: Millis) -> Value {
    json!({ "$date": ms })
}

/// Parses an ISO 8601 date as the REST API accepts in `oldest`/`latest`.
pub fn parse_iso(text: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(text).ok().map(|d| d.timestamp_millis())
}

/// Which wire format a rendering is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// REST: ISO strings.
    Rest,
    /// DDP: EJSON dates.
    Ddp,
}

impl Format {
    /// Renders `ms` in this format.
    pub fn date(self, ms: Millis) -> Value {
        match self {
            Format::Rest => Value::String(iso(ms)),
            Format::Ddp => ddp(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips_with_milliseconds() {
        let ms = 1_714_564_800_123;
        assert_eq!(iso(ms), "2024-05-01T12:00:00.123Z");
        assert_eq!(parse_iso(&iso(ms)), Some(ms));
    }

    #[test]
    fn now_is_strictly_increasing() {
        let a = now_ms();
        let b = now_ms();
        assert!(b > a);
    }
}
