//! Assembles the real bridge (store, Matrix client, router, adapter host,
//! appservice server) the way `brygga::app` does, around the instant fakes.

use std::sync::Arc;

use anyhow::Context;
use brygga_core::naming::{Namer, Template};
use brygga_core::{
    AdapterConfig, AdapterFactory, AdapterHost, AdapterKind, InboundSink, MatrixSide, RetryPolicy, Router,
    RunningAdapters, Store, Tenant, TenantId,
};
use brygga_matrix::{ClientSettings, MatrixClient, ServerSettings};
use brygga_store::SqlStore;
use tokio::net::TcpListener;

use crate::fake_homeserver::{self, Homeserver};
use crate::instant_adapter::{InstantFactory, KIND};
use crate::timed::{TimedMatrix, TimedStore, Timings};

/// The homeserver's server name.
pub const SERVER_NAME: &str = "bench";
/// The token the fake homeserver sends to the appservice.
pub const HS_TOKEN: &str = "bench-hs-token";

/// A running bridge and the fakes around it.
pub struct Bridge {
    /// The real store.
    pub store: SqlStore,
    /// The tenant everything runs in.
    pub tenant: TenantId,
    /// The sink the instant adapter got from the host.
    pub sink: Arc<dyn InboundSink>,
    /// Base URL of the real appservice server.
    pub appservice_url: String,
    /// The instant homeserver.
    pub homeserver: Arc<Homeserver>,
    /// The instant adapter's factory (and its probe).
    pub adapter: Arc<InstantFactory>,
    /// The router.
    pub router: Router,
    /// Per-call times of store and Matrix client, with `--instrument`.
    pub timings: Option<Arc<Timings>>,
    _dir: Option<tempfile::TempDir>,
}

/// A unique suffix, so runs against a shared PostgreSQL never collide.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}

/// Opens the store: `sqlite` means a fresh file in a temp dir with the
/// durable defaults; any other value is a store URL.
async fn open_store(spec: &str) -> anyhow::Result<(SqlStore, Option<tempfile::TempDir>)> {
    if spec == "sqlite" {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        let url = format!("sqlite://{}", dir.path().join("brygga.db").display());
        let store = SqlStore::connect(&url).await.context("opening the SQLite store")?;
        return Ok((store, Some(dir)));
    }
    let store = SqlStore::connect(spec).await.context("opening the store given by --store")?;
    Ok((store, None))
}

/// Starts everything and the instant adapter of one tenant; `instrument`
/// wraps store and Matrix client in timers.
pub async fn start(store_spec: &str, instrument: bool) -> anyhow::Result<Bridge> {
    let nonce = nonce();
    let (store, dir) = open_store(store_spec).await?;
    let (hs_url, homeserver) = fake_homeserver::start(SERVER_NAME, &nonce).await?;

    let settings = ClientSettings::new(hs_url.parse()?, SERVER_NAME, "bench-as-token", "bridgebot");
    let matrix = Arc::new(MatrixClient::new(settings)?);
    let template = || Template::new("{kind}_{tenant}_{id}").expect("valid template");
    let namer = Namer::new(SERVER_NAME, template(), template());
    let timings = instrument.then(|| Arc::new(Timings::default()));
    let mut shared: Arc<dyn Store> = Arc::new(store.clone());
    let mut side: Arc<dyn MatrixSide> = matrix.clone();
    if let Some(timings) = &timings {
        shared = Arc::new(TimedStore { inner: shared, timings: timings.clone() });
        side = Arc::new(TimedMatrix { inner: side, timings: timings.clone() });
    }
    let running = RunningAdapters::default();
    let router = Router::new(shared.clone(), side, namer, running.clone(), RetryPolicy::default());
    let adapter = Arc::new(InstantFactory::default());
    let factories: Vec<Arc<dyn AdapterFactory>> = vec![adapter.clone()];
    let host = AdapterHost::new(factories, running, shared.clone(), router.clone(), matrix.clone());

    let tenant = TenantId::new(format!("b{nonce}"))?;
    let kind = AdapterKind::new(KIND)?;
    shared.upsert_tenant(&Tenant::new(tenant.clone(), "Benchmark")).await?;
    let config = AdapterConfig::new(tenant.clone(), kind.clone(), true, serde_json::json!({}));
    shared.put_adapter_config(&config).await?;
    router.recover().await?;

    let appservice = brygga_matrix::router(Arc::new(router.clone()), ServerSettings::new(HS_TOKEN));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let appservice_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, appservice).await {
            eprintln!("appservice server stopped: {err}");
        }
    });

    host.start(&tenant, &kind).await?;
    let sink = adapter.sink().context("the adapter was built without a sink")?;
    matrix.ping("brygga").await?;
    Ok(Bridge { store, tenant, sink, appservice_url, homeserver, adapter, router, timings, _dir: dir })
}
