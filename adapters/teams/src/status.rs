//! The tenant's bridge state as this adapter sees it, logged once per change
//! (revoked consent, an expired secret or a failed subscription renewal is
//! reported clearly, and only for this tenant).

use std::sync::Mutex;

use brygga_core::TenantId;

/// How the tenant's Teams side is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Starting, or recovering from an outage.
    Connecting,
    /// Tokens work and subscriptions are in place.
    Connected,
    /// Graph or the identity platform failed; retried.
    TransientError(String),
    /// The app's secret or the tenant's consent is wrong: an operator must act.
    BadCredentials(String),
}

/// The current state, reported once per change.
pub(crate) struct Status {
    tenant: TenantId,
    current: Mutex<Health>,
}

impl Status {
    pub(crate) fn new(tenant: TenantId) -> Self {
        Self { tenant, current: Mutex::new(Health::Connecting) }
    }

    /// The state now.
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
        *current = health;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_changes_and_is_kept() {
        let status = Status::new(TenantId::new("agency").unwrap());
        assert_eq!(status.get(), Health::Connecting);
        status.set(Health::BadCredentials("invalid_client AADSTS7000222".into()));
        assert!(matches!(status.get(), Health::BadCredentials(ref why) if why.contains("7000222")));
        status.set(Health::Connected);
        assert_eq!(status.get(), Health::Connected);
    }
}
