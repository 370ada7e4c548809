//! Timestamps in Graph's `DateTimeOffset` form.

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in UTC.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `2026-01-02T03:04:05.678Z`, as Graph writes `DateTimeOffset` values.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO 8601 / RFC 3339 timestamp as Graph accepts them.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc))
}
