//! Assembles the real bridge (store, Matrix client, router, adapter host,
//! appservice server) the way `brygga::app` does, around the instant fakes
//! or, for the XMPP runs, around real Prosody and a given homeserver.

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
/// The token the bridge sends to the homeserver.
pub const AS_TOKEN: &str = "bench-as-token";
/// The bridge bot's local part.
pub const BOT_LOCALPART: &str = "bridgebot";

/// The registration a real Synapse (server name `localhost`) loads for the
/// bench's bridge at `url`: exclusive ghosts and aliases starting with
/// `prefix` and the bot, with the appservice encryption extensions if asked.
pub fn synapse_registration(url: &str, prefix: &str, encryption: bool) -> String {
    let extensions = if encryption { "org.matrix.msc3202: true\nio.element.msc4190: true\n" } else { "" };
    format!(
        r#"id: brygga
url: "{url}"
as_token: "{AS_TOKEN}"
hs_token: "{HS_TOKEN}"
sender_localpart: {BOT_LOCALPART}
rate_limited: false
receive_ephemeral: true
de.sorunome.msc2409.push_ephemeral: true
{extensions}namespaces:
  users:
    - exclusive: true
      regex: '@{prefix}_.*:localhost'
    - exclusive: true
      regex: '^@{BOT_LOCALPART}:localhost$'
  aliases:
    - exclusive: true
      regex: '#{prefix}_.*:localhost'
  rooms: []
"#
    )
}

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

/// The bridge's parts, assembled for one tenant, with the appservice server
/// listening and no adapter started yet.
pub struct Core {
    /// The real store.
    pub store: SqlStore,
    /// The store as the router sees it (timed with `--instrument`).
    pub shared: Arc<dyn Store>,
    /// The tenant everything runs in.
    pub tenant: TenantId,
    /// The router.
    pub router: Router,
    /// The adapter host (also behind the webhook routes).
    pub host: Arc<AdapterHost>,
    /// The Matrix client.
    pub matrix: Arc<MatrixClient>,
    /// Base URL of the real appservice server.
    pub appservice_url: String,
    /// Per-call times of store and Matrix client, with `--instrument`.
    pub timings: Option<Arc<Timings>>,
    dir: Option<tempfile::TempDir>,
}

impl Core {
    /// Stores the tenant's config of adapter `kind` and starts the adapter.
    pub async fn start_adapter(&self, kind: &str, config: serde_json::Value) -> anyhow::Result<()> {
        let kind = AdapterKind::new(kind)?;
        let config = AdapterConfig::new(self.tenant.clone(), kind.clone(), true, config);
        self.shared.put_adapter_config(&config).await?;
        self.host.start(&self.tenant, &kind).await?;
        Ok(())
    }
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

/// What to assemble a bridge against.
pub struct Setup<'a> {
    /// `--store`.
    pub store: &'a str,
    /// `--instrument`.
    pub instrument: bool,
    /// The homeserver's base URL.
    pub homeserver_url: &'a str,
    /// The homeserver's server name.
    pub server_name: &'a str,
    /// The adapters compiled in.
    pub factories: Vec<Arc<dyn AdapterFactory>>,
    /// Where the appservice server listens (bound early, so a homeserver
    /// can be told its URL before the bridge exists).
    pub listener: TcpListener,
}

/// Assembles store, Matrix client, router and adapter host for a fresh
/// tenant and serves the appservice API; starts no adapter.
pub async fn assemble(setup: Setup<'_>) -> anyhow::Result<Core> {
    assemble_with(setup, None).await
}

/// Like [`assemble`], with end-to-bridge encryption on (the bot's device ready).
pub async fn assemble_encrypted(setup: Setup<'_>, crypto: brygga_crypto::CryptoConfig) -> anyhow::Result<Core> {
    let core = assemble_with(setup, Some(crypto)).await?;
    core.matrix.prepare_encryption().await?;
    Ok(core)
}

async fn assemble_with(setup: Setup<'_>, crypto: Option<brygga_crypto::CryptoConfig>) -> anyhow::Result<Core> {
    let (store, dir) = open_store(setup.store).await?;
    let settings = ClientSettings::new(setup.homeserver_url.parse()?, setup.server_name, AS_TOKEN, BOT_LOCALPART);
    let mut client = MatrixClient::new(settings)?;
    if let Some(crypto) = crypto {
        client = client.with_encryption(crypto);
    }
    let matrix = Arc::new(client);
    let template = || Template::new("{kind}_{tenant}_{id}").expect("valid template");
    let namer = setup.factories.iter().fold(Namer::new(setup.server_name, template(), template()), |namer, f| match f
        .room_aliases()
    {
        Some(codec) => namer.with_codec(f.kind(), codec),
        None => namer,
    });
    let timings = setup.instrument.then(|| Arc::new(Timings::default()));
    let mut shared: Arc<dyn Store> = Arc::new(store.clone());
    let mut side: Arc<dyn MatrixSide> = matrix.clone();
    if let Some(timings) = &timings {
        shared = Arc::new(TimedStore { inner: shared, timings: timings.clone() });
        side = Arc::new(TimedMatrix { inner: side, timings: timings.clone() });
    }
    let running = RunningAdapters::default();
    let router = Router::new(shared.clone(), side, namer, running.clone(), RetryPolicy::default());
    let host = Arc::new(AdapterHost::new(setup.factories, running, shared.clone(), router.clone(), matrix.clone()));

    let tenant = TenantId::new(format!("b{}", nonce()))?;
    shared.upsert_tenant(&Tenant::new(tenant.clone(), "Benchmark")).await?;
    router.recover().await?;

    // Platforms that call the bridge (Graph's change notifications) reach their adapter here, as in `brygga run`.
    let mut server = ServerSettings::new(HS_TOKEN);
    server.e2ee = matrix.e2ee();
    let appservice =
        brygga_matrix::router(Arc::new(router.clone()), server).merge(brygga::webhooks::routes(host.clone()));
    let appservice_url = format!("http://{}", setup.listener.local_addr()?);
    let listener = setup.listener;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, appservice).await {
            eprintln!("appservice server stopped: {err}");
        }
    });
    Ok(Core { store, shared, tenant, router, host, matrix, appservice_url, timings, dir })
}

/// Starts everything and the instant adapter of one tenant; `instrument`
/// wraps store and Matrix client in timers.
pub async fn start(store_spec: &str, instrument: bool) -> anyhow::Result<Bridge> {
    let (hs_url, homeserver) = fake_homeserver::start(SERVER_NAME, &nonce()).await?;
    let adapter = Arc::new(InstantFactory::default());
    let core = assemble(Setup {
        store: store_spec,
        instrument,
        homeserver_url: &hs_url,
        server_name: SERVER_NAME,
        factories: vec![adapter.clone()],
        listener: TcpListener::bind("127.0.0.1:0").await?,
    })
    .await?;
    core.start_adapter(KIND, serde_json::json!({})).await?;
    let sink = adapter.sink().context("the adapter was built without a sink")?;
    core.matrix.ping("brygga").await?;
    let Core { store, tenant, router, appservice_url, timings, dir, .. } = core;
    Ok(Bridge { store, tenant, sink, appservice_url, homeserver, adapter, router, timings, _dir: dir })
}
