//! What the queues tell about deliveries, for metrics: each outcome, per
//! portal and direction, with how long an entry waited since it was stored.

use std::time::Duration;

use crate::ids::PortalKey;
use crate::store::Direction;

/// Learns of every delivery outcome.
pub trait DeliveryObserver: Send + Sync {
    /// An entry was delivered, `latency` after it was stored (when known).
    fn delivered(&self, portal: &PortalKey, direction: Direction, latency: Option<Duration>);
    /// A delivery attempt failed; `permanent` when the entry was dead-lettered.
    fn failed(&self, portal: &PortalKey, direction: Direction, permanent: bool);
    /// A Matrix user's encrypted event could not be decrypted (its sender was told).
    fn undecryptable(&self, _portal: &PortalKey) {}
}
