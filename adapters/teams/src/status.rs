//! The tenant's bridge state as this adapter sees it, logged once per change
//! (revoked consent, an expired secret or a failed subscription renewal is
//! reported clearly, and only for this tenant).

use std::sync::{Arc, Mutex};

use brygga_core::{StatusReporter, TenantId};

/// How the tenant's Teams side is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// Starting, or recovering from an outage.
    Connecting,
    /// Tokens work and subscriptions are in place.
    Connected,
    /// Graph or the identity platform failed; retried.
    TransientError(String),
    /// The app's secret or the tenant's consent is wrong: an operator must act.
    BadCredentials(String),
}

impl Health {
    /// The bridge's notion of it, with the message.
    fn for_bridge(&self) -> (brygga_core::Health, Option<&str>) {
        match self {
            Self::Connecting => (brygga_core::Health::Connecting, None),
            Self::Connected => (brygga_core::Health::Connected, None),
            Self::TransientError(why) => (brygga_core::Health::TransientError, Some(why)),
            Self::BadCredentials(why) => (brygga_core::Health::BadCredentials, Some(why)),
        }
    }
}

/// The current state, reported to the bridge and logged once per change.
pub(crate) struct Status {
    tenant: TenantId,
    reporter: Arc<dyn StatusReporter>,
    current: Mutex<Health>,
}

impl Status {
    pub(crate) fn new(tenant: TenantId, reporter: Arc<dyn StatusReporter>) -> Self {
        reporter.report(brygga_core::Health::Connecting, None);
        Self { tenant, reporter, current: Mutex::new(Health::Connecting) }
    }

    /// The state now.
    #[cfg(test)]
    pub(crate) fn get(&self) -> Health {
        self.current.lock().expect("status poisoned").clone()
    }

    /// Sets the state; logs it when it changed.
    pub(crate) fn set(&self, health: Health) {
        let mut current = self.current.lock().expect("status poisoned");
        if *current == health {
            return;
        }
        match &health {
            Health::Connected => tracing::info!(tenant = %self.tenant, "Teams connected"),
            Health::Connecting => tracing::info!(tenant = %self.tenant, "Teams connecting"),
            Health::TransientError(why) => {
                tracing::warn!(tenant = %self.tenant, error = %why, "Teams unavailable; retrying")
            }
            Health::BadCredentials(why) => tracing::error!(
                tenant = %self.tenant, error = %why,
                "Teams refused the app's credentials or consent: check the client secret and the tenant admin's consent"
            ),
        }
        let (bridge, message) = health.for_bridge();
        self.reporter.report(bridge, message);
        *current = health;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_reach_the_bridge_with_their_reason() {
        let board = brygga_core::StatusBoard::default();
        let (tenant, kind) = (TenantId::new("agency").unwrap(), brygga_core::AdapterKind::new("teams").unwrap());
        let status = Status::new(tenant.clone(), board.reporter(tenant.clone(), kind.clone()));
        assert_eq!(status.get(), Health::Connecting);
        assert_eq!(board.get(&tenant, &kind).unwrap().health, brygga_core::Health::Connecting);
        status.set(Health::BadCredentials("invalid_client AADSTS7000222".into()));
        let shown = board.get(&tenant, &kind).unwrap();
        assert_eq!(shown.health, brygga_core::Health::BadCredentials);
        assert!(shown.last_error.unwrap().contains("7000222"));
        status.set(Health::Connected);
        assert_eq!(status.get(), Health::Connected);
        assert_eq!(board.get(&tenant, &kind).unwrap().health, brygga_core::Health::Connected);
    }
}
