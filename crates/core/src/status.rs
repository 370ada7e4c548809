//! How each adapter of each tenant is doing (its bridge state), as the
//! adapter reports it: for the admin API, metrics and Matrix clients.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

use crate::ids::{AdapterKind, TenantId};

/// An adapter's connection to its platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Connecting (or reconnecting).
    Connecting,
    /// Connected and bridging.
    Connected,
    /// A failure that is retried (the platform is down, a network error).
    TransientError,
    /// The platform refused the credentials (revoked, expired, wrong): an
    /// admin must fix the tenant's adapter config.
    BadCredentials,
}

impl Health {
    /// The name shown in APIs and state events (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::TransientError => "transient_error",
            Self::BadCredentials => "bad_credentials",
        }
    }
}

/// An adapter's health as shown to people: `disabled` when an admin turned
/// it off, its reported health while it runs, else `stopped`.
pub fn shown_health(enabled: bool, status: Option<&AdapterStatus>) -> &'static str {
    match (enabled, status) {
        (false, _) => "disabled",
        (true, Some(status)) => status.health.as_str(),
        (true, None) => "stopped",
    }
}

/// The last reported state of one adapter, with the last error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AdapterStatus {
    /// Current health.
    pub health: Health,
    /// When it was reported, ms since the Unix epoch.
    pub since: i64,
    /// The last error's message (never a secret), if there was one.
    pub last_error: Option<String>,
    /// When the last error was reported.
    pub last_error_at: Option<i64>,
    /// How often the platform throttled the adapter (e.g. HTTP 429).
    pub throttled: u64,
}

/// Where an adapter reports its health.
pub trait StatusReporter: Send + Sync {
    /// Reports the adapter's health; `message` says why (for errors).
    fn report(&self, health: Health, message: Option<&str>);

    /// Counts one throttling by the platform (the adapter waits it out).
    fn throttled(&self) {}
}

/// A reporter that keeps nothing, for adapters built outside a bridge.
pub struct NoStatus;

impl StatusReporter for NoStatus {
    fn report(&self, _health: Health, _message: Option<&str>) {}
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// The statuses of every adapter of every tenant.
#[derive(Clone)]
pub struct StatusBoard(Arc<Mutex<BTreeMap<(TenantId, AdapterKind), AdapterStatus>>>, Arc<watch::Sender<u64>>);

impl Default for StatusBoard {
    fn default() -> Self {
        Self(Arc::default(), Arc::new(watch::Sender::new(0)))
    }
}

impl StatusBoard {
    /// Changes whenever an adapter's health or last error message changes
    /// (or it is cleared); not on repeated reports of the same.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.1.subscribe()
    }

    fn changed(&self) {
        self.1.send_modify(|version| *version = version.wrapping_add(1));
    }

    /// The reporter of one adapter of one tenant.
    pub fn reporter(&self, tenant: TenantId, kind: AdapterKind) -> Arc<dyn StatusReporter> {
        Arc::new(BoardReporter { board: self.clone(), key: (tenant, kind) })
    }

    /// The last status of an adapter, if it ever reported.
    pub fn get(&self, tenant: &TenantId, kind: &AdapterKind) -> Option<AdapterStatus> {
        self.0.lock().expect("status board poisoned").get(&(tenant.clone(), kind.clone())).cloned()
    }

    /// Every status, by tenant and kind.
    pub fn all(&self) -> Vec<(TenantId, AdapterKind, AdapterStatus)> {
        let board = self.0.lock().expect("status board poisoned");
        board.iter().map(|((t, k), s)| (t.clone(), k.clone(), s.clone())).collect()
    }

    /// Forgets an adapter's status (it was stopped).
    pub fn clear(&self, tenant: &TenantId, kind: &AdapterKind) {
        let removed = self.0.lock().expect("status board poisoned").remove(&(tenant.clone(), kind.clone()));
        if removed.is_some() {
            self.changed();
        }
    }

    fn set(&self, key: &(TenantId, AdapterKind), health: Health, message: Option<&str>) {
        let now = now_ms();
        let mut board = self.0.lock().expect("status board poisoned");
        let before = board.get(key).cloned();
        let failed = matches!(health, Health::TransientError | Health::BadCredentials);
        let (last_error, last_error_at) = match (failed, before.as_ref()) {
            (true, _) => (Some(message.unwrap_or("unknown error").chars().take(500).collect()), Some(now)),
            (false, Some(b)) => (b.last_error.clone(), b.last_error_at),
            (false, None) => (None, None),
        };
        let since = match &before {
            Some(b) if b.health == health => b.since,
            _ => {
                tracing::info!(tenant = %key.0, kind = %key.1, health = ?health, "adapter status changed");
                now
            }
        };
        let throttled = before.as_ref().map_or(0, |b| b.throttled);
        let status = AdapterStatus { health, since, last_error, last_error_at, throttled };
        // The same error again is no news (a retrying adapter repeats it).
        let changed = before.is_none_or(|b| (b.health, &b.last_error) != (health, &status.last_error));
        board.insert(key.clone(), status);
        drop(board);
        if changed {
            self.changed();
        }
    }

    fn count_throttling(&self, key: &(TenantId, AdapterKind)) {
        let mut board = self.0.lock().expect("status board poisoned");
        let status = board.entry(key.clone()).or_insert_with(|| AdapterStatus {
            health: Health::Connecting,
            since: now_ms(),
            last_error: None,
            last_error_at: None,
            throttled: 0,
        });
        status.throttled += 1;
    }
}

struct BoardReporter {
    board: StatusBoard,
    key: (TenantId, AdapterKind),
}

impl StatusReporter for BoardReporter {
    fn report(&self, health: Health, message: Option<&str>) {
        self.board.set(&self.key, health, message);
    }

    fn throttled(&self) {
        self.board.count_throttling(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_keeps_the_last_health_and_the_last_error() {
        let board = StatusBoard::default();
        let (fk, xmpp) = (TenantId::new("fk").unwrap(), AdapterKind::new("xmpp").unwrap());
        let reporter = board.reporter(fk.clone(), xmpp.clone());
        assert_eq!(board.get(&fk, &xmpp), None);
        reporter.report(Health::Connecting, None);
        assert_eq!(board.get(&fk, &xmpp).unwrap().health, Health::Connecting);
        reporter.report(Health::TransientError, Some("connection refused"));
        reporter.report(Health::Connected, None);
        let status = board.get(&fk, &xmpp).unwrap();
        assert_eq!(status.health, Health::Connected);
        assert_eq!(status.last_error.as_deref(), Some("connection refused"), "the last error stays visible");
        assert!(status.last_error_at.is_some());
        reporter.throttled();
        reporter.throttled();
        reporter.report(Health::Connected, None);
        assert_eq!(board.get(&fk, &xmpp).unwrap().throttled, 2, "throttling is counted across reports");
        board.clear(&fk, &xmpp);
        assert_eq!(board.all().len(), 0);
    }

    #[test]
    fn changes_are_signalled_only_when_health_or_error_change() {
        let board = StatusBoard::default();
        let mut changes = board.changes();
        let (fk, xmpp) = (TenantId::new("fk").unwrap(), AdapterKind::new("xmpp").unwrap());
        let reporter = board.reporter(fk.clone(), xmpp.clone());
        reporter.report(Health::Connected, None);
        assert!(changes.has_changed().unwrap(), "a first report is a change");
        changes.mark_unchanged();
        reporter.report(Health::Connected, None);
        reporter.throttled();
        assert!(!changes.has_changed().unwrap(), "the same health again is no change");
        reporter.report(Health::TransientError, Some("down"));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        board.clear(&fk, &xmpp);
        assert!(changes.has_changed().unwrap(), "a stopped adapter is a change");
    }
}
