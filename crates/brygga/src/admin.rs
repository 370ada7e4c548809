//! The admin listener: `/health` and Prometheus `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use brygga_core::{AdapterHost, Router as BridgeRouter, Store};

use crate::metrics::Metrics;

/// What the admin endpoints read.
pub struct AdminState {
    registry: Registry,
    adapters_running: Gauge,
    queues_active: Gauge,
    metrics: Arc<Metrics>,
    host: Arc<AdapterHost>,
    router: BridgeRouter,
    store: Arc<dyn Store>,
}

impl AdminState {
    /// Registers the bridge's metrics and has the router report deliveries to them.
    pub fn new(host: Arc<AdapterHost>, router: BridgeRouter, store: Arc<dyn Store>) -> Self {
        let mut registry = Registry::with_prefix("brygga");
        let adapters_running = Gauge::default();
        let queues_active = Gauge::default();
        registry.register("adapters_running", "Adapters currently running", adapters_running.clone());
        registry.register("queues_active", "Portal queues with a running worker", queues_active.clone());
        registry.register("build", "Build information", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        let metrics = Metrics::register(&mut registry);
        router.observe(metrics.clone());
        Self { registry, adapters_running, queues_active, metrics, host, router, store }
    }
}

/// The admin routes.
pub fn routes(state: Arc<AdminState>) -> Router {
    Router::new().route("/health", get(health)).route("/metrics", get(metrics)).with_state(state)
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    state.adapters_running.set(state.host.running().len() as i64);
    state.queues_active.set(state.router.active_queues() as i64);
    state.metrics.refresh(&state.host, state.store.as_ref()).await;
    let mut body = String::new();
    match encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], String::new()),
    }
}
