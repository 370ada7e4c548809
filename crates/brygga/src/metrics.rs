//! Prometheus metrics labelled by tenant and adapter (never by room or
//! user, so their number stays bounded): deliveries and failures per
//! direction with their latency, queue depth, adapter status, throttling,
//! ghosts and portals.

use std::sync::Arc;
use std::time::Duration;

use brygga_core::{AdapterHost, DeliveryObserver, Direction, Health, PortalKey, Store};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which way a message went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Way {
    to_matrix,
    to_remote,
}

impl From<Direction> for Way {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::ToMatrix => Way::to_matrix,
            _ => Way::to_remote,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Adapter {
    tenant: String,
    adapter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Flow {
    tenant: String,
    adapter: String,
    direction: Way,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    tenant: String,
    adapter: String,
    direction: Way,
    permanent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    tenant: String,
    adapter: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

/// The bridge's per-tenant metrics.
pub struct Metrics {
    bridged: Family<Flow, Counter>,
    failures: Family<Failure, Counter>,
    latency: Family<Flow, Histogram, fn() -> Histogram>,
    queue_depth: Family<Flow, Gauge>,
    status: Family<State, Gauge>,
    throttled: Family<Adapter, Gauge>,
    portals: Family<Adapter, Gauge>,
    ghosts: Family<Adapter, Gauge>,
    undecryptable: Family<Adapter, Counter>,
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self {
            bridged: Family::default(),
            failures: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            queue_depth: Family::default(),
            status: Family::default(),
            throttled: Family::default(),
            portals: Family::default(),
            ghosts: Family::default(),
            undecryptable: Family::default(),
        };
        registry.register("messages_bridged", "Events delivered, per direction", metrics.bridged.clone());
        registry.register("delivery_failures", "Failed delivery attempts", metrics.failures.clone());
        registry.register("delivery_latency_seconds", "From stored to delivered", metrics.latency.clone());
        registry.register("queue_depth", "Events waiting for delivery", metrics.queue_depth.clone());
        registry.register("adapter_status", "1 for each adapter's current status", metrics.status.clone());
        registry.register("remote_throttled", "Times the platform throttled the adapter", metrics.throttled.clone());
        registry.register("portals", "Portals", metrics.portals.clone());
        registry.register("ghosts", "Ghosts", metrics.ghosts.clone());
        registry.register(
            "undecryptable_events",
            "Encrypted Matrix events the bridge could not decrypt",
            metrics.undecryptable.clone(),
        );
        Arc::new(metrics)
    }

    /// Reads what is counted rather than observed: status, queues, portals, ghosts.
    pub async fn refresh(&self, host: &AdapterHost, store: &dyn Store) {
        self.status.clear();
        self.throttled.clear();
        for (tenant, kind, status) in host.status().all() {
            let state = match status.health {
                Health::Connecting => "connecting",
                Health::Connected => "connected",
                Health::TransientError => "transient_error",
                _ => "bad_credentials",
            };
            let labels = State { tenant: tenant.to_string(), adapter: kind.to_string(), status: state.into() };
            self.status.get_or_create(&labels).set(1);
            let labels = Adapter { tenant: tenant.to_string(), adapter: kind.to_string() };
            self.throttled.get_or_create(&labels).set(status.throttled as i64);
        }
        match store.counts().await {
            Ok(counts) => {
                self.queue_depth.clear();
                self.portals.clear();
                self.ghosts.clear();
                for ((tenant, kind), counts) in counts {
                    let adapter = Adapter { tenant: tenant.to_string(), adapter: kind.to_string() };
                    self.portals.get_or_create(&adapter).set(counts.portals as i64);
                    self.ghosts.get_or_create(&adapter).set(counts.ghosts as i64);
                    for (direction, n) in
                        [(Way::to_matrix, counts.pending_to_matrix), (Way::to_remote, counts.pending_to_remote)]
                    {
                        let flow = Flow { tenant: adapter.tenant.clone(), adapter: adapter.adapter.clone(), direction };
                        self.queue_depth.get_or_create(&flow).set(n as i64);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "counting for metrics failed"),
        }
    }
}

fn flow(portal: &PortalKey, direction: Direction) -> Flow {
    Flow { tenant: portal.tenant.to_string(), adapter: portal.kind.to_string(), direction: direction.into() }
}

impl DeliveryObserver for Metrics {
    fn delivered(&self, portal: &PortalKey, direction: Direction, latency: Option<Duration>) {
        let flow = flow(portal, direction);
        self.bridged.get_or_create(&flow).inc();
        if let Some(latency) = latency {
            self.latency.get_or_create(&flow).observe(latency.as_secs_f64());
        }
    }

    fn failed(&self, portal: &PortalKey, direction: Direction, permanent: bool) {
        let Flow { tenant, adapter, direction } = flow(portal, direction);
        let failure = Failure { tenant, adapter, direction, permanent: permanent.to_string() };
        self.failures.get_or_create(&failure).inc();
    }

    fn undecryptable(&self, portal: &PortalKey) {
        let adapter = Adapter { tenant: portal.tenant.to_string(), adapter: portal.kind.to_string() };
        self.undecryptable.get_or_create(&adapter).inc();
    }
}
