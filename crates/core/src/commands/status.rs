//! The `status` command's answer: each adapter of each tenant with its
//! health and last error, as the status board has it.

use std::fmt::Write;

use crate::status::{StatusBoard, shown_health};
use crate::store::{AdapterConfig, Tenant};

/// One tenant's part of the answer.
pub(crate) fn render(tenant: &Tenant, configs: &[AdapterConfig], board: &StatusBoard) -> String {
    let mut out = format!("Tenant {} ({})", tenant.id, tenant.display_name);
    if tenant.suspended {
        out.push_str(" is suspended");
    }
    if configs.is_empty() {
        out.push_str(": no adapters configured");
        return out;
    }
    for config in configs {
        let reported = board.get(&config.tenant, &config.kind);
        let health = shown_health(config.enabled, reported.as_ref());
        let _ = write!(out, "\n• {}: {health}", config.kind);
        let Some(status) = reported.filter(|_| config.enabled) else { continue };
        let _ = write!(out, " since {}", utc(status.since));
        if let (Some(error), Some(at)) = (&status.last_error, status.last_error_at) {
            let _ = write!(out, "; last error at {}: {error}", utc(at));
        }
        if status.throttled > 0 {
            let _ = write!(out, "; throttled {} times", status.throttled);
        }
    }
    out
}

/// Ms since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (era arithmetic:
/// 400-year eras of 146,097 days, years starting in March).
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AdapterKind, TenantId};
    use crate::status::Health;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03 UTC");
        assert_eq!(utc(1_735_689_599_000), "2024-12-31 23:59:59 UTC");
    }

    #[test]
    fn each_adapter_shows_its_health_and_last_error() {
        let (fk, xmpp, teams) =
            (TenantId::new("fk").unwrap(), AdapterKind::new("xmpp").unwrap(), AdapterKind::new("teams").unwrap());
        let board = StatusBoard::default();
        let reporter = board.reporter(fk.clone(), xmpp.clone());
        reporter.report(Health::TransientError, Some("connection refused"));
        reporter.report(Health::Connected, None);
        let configs = [
            AdapterConfig::new(fk.clone(), teams, false, serde_json::json!({})),
            AdapterConfig::new(fk.clone(), xmpp, true, serde_json::json!({})),
        ];
        let text = render(&Tenant::new(fk, "FK"), &configs, &board);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Tenant fk (FK)");
        assert_eq!(lines[1], "• teams: disabled");
        assert!(lines[2].starts_with("• xmpp: connected since "), "{text}");
        assert!(lines[2].contains("last error at ") && lines[2].ends_with(": connection refused"), "{text}");
    }
}
