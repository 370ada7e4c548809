//! Rocket.Chat timestamps: EJSON `{"$date": ms}` on the realtime API,
//! ISO 8601 strings (`2026-11-23T15:04:05.123Z`) over REST.

use serde_json::Value;

/// Milliseconds since the Unix epoch of a timestamp in either form.
pub(crate) fn millis(value: &Value) -> Option<i64> {
    match value {
        Value::Object(map) => map.get("$date").and_then(Value::as_i64),
        Value::String(s) => parse_iso(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC, as Rocket.Chat writes it).
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms)
}

/// Formats milliseconds since the epoch as Rocket.Chat's ISO form.
pub(crate) fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

// Howard Hinnant's civil calendar algorithms (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_parse_and_iso_round_trips() {
        assert_eq!(millis(&json!({"$date": 1_795_446_245_123_i64})), Some(1_795_446_245_123));
        assert_eq!(millis(&json!("2026-11-23T15:04:05.123Z")), Some(1_795_446_245_123));
        assert_eq!(millis(&json!("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(iso(1_795_446_245_123), "2026-11-23T15:04:05.123Z");
        assert_eq!(parse_iso(&iso(951_782_400_007)), Some(951_782_400_007));
        assert_eq!(millis(&json!("2026-11-23T15:04:05.1Z")), Some(1_795_446_245_100));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-23 15:04:05Z",
            "2026-11-23T15:04:05",
            "x-y-zTa:b:cZ",
            "2026-11-23T15:04:05.Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
        assert_eq!(millis(&json!({"$date": "soon"})), None);
        assert_eq!(millis(&json!(null)), None);
    }
}
