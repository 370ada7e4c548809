//! Assembling and running the bridge.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use brygga_core::{AdapterFactory, AdapterHost, Node, RetryPolicy, Router, RunningAdapters, Store};
use brygga_matrix::{ClientSettings, MatrixClient, ServerSettings};
use brygga_store::{Heard, SqlStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::config::{Config, ShardConfig};
use crate::media_links::SignedLinks;
use crate::shard::{self, Keeper, Shard, ShardedAppservice};
use crate::tenants;

/// How often idle ghost devices are looked for.
const DEVICE_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a ghost's device stays open unused.
const DEVICE_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// Opens (and migrates) the configured store.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(open_sql_store(config).await?))
}

async fn open_sql_store(config: &Config) -> anyhow::Result<SqlStore> {
    SqlStore::connect(&config.database.url).await.with_context(|| {
        format!("opening the store at config key `database.url` ({})", redact_url(&config.database.url))
    })
}

/// The Matrix client for the configured homeserver.
pub fn matrix_client(config: &Config) -> anyhow::Result<Arc<MatrixClient>> {
    let settings = ClientSettings::new(
        config.homeserver.url.clone(),
        config.homeserver.server_name.clone(),
        config.appservice.as_token.clone(),
        config.appservice.bot_localpart.clone(),
    );
    let mut client = MatrixClient::new(settings).context("building the Matrix client")?;
    if let Some(encryption) = config.encryption.as_ref().filter(|e| e.enabled) {
        let key =
            encryption.sealing_key().map_err(|(key, problem)| anyhow::anyhow!("config key `{key}`: {problem}"))?;
        let bot = format!("@{}:{}", config.appservice.bot_localpart, config.homeserver.server_name);
        client = client.with_encryption(brygga_crypto::CryptoConfig::new(encryption.store_dir.clone(), key, bot));
    }
    Ok(Arc::new(client))
}

/// The parts of a bridge that commands other than `run` also need.
pub struct Parts {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The adapter host.
    pub host: Arc<AdapterHost>,
    /// The router.
    pub router: Router,
    /// The Matrix client.
    pub matrix: Arc<MatrixClient>,
    /// Signed public links to Matrix media, when configured.
    pub links: Option<Arc<SignedLinks>>,
    /// This process's part in a group sharing the store, when configured.
    pub shard: Option<Arc<Shard>>,
    /// The store as itself, for what only SQL stores do.
    pub sql: SqlStore,
}

/// Builds store, Matrix client, router and adapter host; starts nothing.
pub async fn assemble(config: &Config, factories: Vec<Arc<dyn AdapterFactory>>) -> anyhow::Result<Parts> {
    let sql = open_sql_store(config).await?;
    let store: Arc<dyn Store> = Arc::new(sql.clone());
    let matrix = matrix_client(config)?;
    let running = RunningAdapters::default();
    let namer = factories.iter().fold(config.namer(), |namer, f| match f.room_aliases() {
        Some(codec) => namer.with_codec(f.kind(), codec),
        None => namer,
    });
    let router = Router::new(store.clone(), matrix.clone(), namer, running.clone(), RetryPolicy::default());
    if let Some(encryption) = config.encryption.as_ref().filter(|e| e.enabled) {
        router.wait_for_room_keys(Duration::from_secs(encryption.key_wait_secs));
    }
    let mut host = AdapterHost::new(factories, running, store.clone(), router.clone(), matrix.clone());
    let links = config.media.as_ref().map(|media| {
        let lifetime = Duration::from_secs(u64::from(media.link_days) * 86_400);
        Arc::new(SignedLinks::new(&media.public_url, &media.secret, lifetime))
    });
    if let Some(links) = &links {
        host = host.with_media_links(links.clone());
    }
    let shard = match &config.shard {
        Some(shard) => Some(Arc::new(build_shard(shard, &sql)?)),
        None => None,
    };
    if let Some(shard) = &shard {
        router.set_ownership(shard.clone());
        host = host.with_ownership(shard.clone());
    }
    let host = Arc::new(host);
    Ok(Parts { store, host, router, matrix, links, shard, sql })
}

fn build_shard(config: &ShardConfig, sql: &SqlStore) -> anyhow::Result<Shard> {
    let id =
        config.node_id.clone().unwrap_or_else(|| format!("node-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let node = Node::new(id, config.admin_url.as_str(), config.appservice_url.as_str());
    let ttl = Duration::from_secs(u64::from(config.lease_seconds));
    Shard::new(node, ttl, Arc::new(sql.clone()))
}

/// Has the processes sharing the store tell each other of new entries, and
/// wakes the queues this one owns.
fn listen_to_peers(shard: &Arc<Shard>, sql: &SqlStore, router: &Router, stop: CancellationToken) {
    sql.announce_commits(&shard.node().id);
    let (router, owner) = (router.clone(), shard.clone());
    let heard = move |heard: Heard| match heard {
        Heard::Queues(queues) => {
            for (portal, direction) in queues {
                router.wake(portal, direction);
            }
        }
        // Announcements may have been missed: every owned tenant reads the store.
        _ => {
            let (router, tenants) = (router.clone(), owner.held());
            tokio::spawn(async move {
                for tenant in tenants {
                    if let Err(err) = router.recover_tenant(&tenant).await {
                        tracing::warn!(tenant = %tenant, error = %err, "resuming after missed announcements failed");
                    }
                }
            });
        }
    };
    sql.listen_for_commits(&shard.node().id, Arc::new(heard), stop);
}

/// Runs the bridge until SIGINT or SIGTERM.
pub async fn run(config: Config, factories: Vec<Arc<dyn AdapterFactory>>) -> anyhow::Result<()> {
    let Parts { store, host, router, matrix, links, shard, sql } = assemble(&config, factories).await?;
    tenants::seed(store.as_ref(), &host, &config.tenants).await?;

    // Undelivered events resume before anything new is accepted, so order holds.
    let resumed = router.recover().await.context("resuming stored events")?;
    tracing::info!(queues = resumed, "resumed undelivered events");

    let shutdown = CancellationToken::new();
    let mut server_settings = ServerSettings::new(config.appservice.hs_token.clone());
    server_settings.max_body_bytes = config.appservice.max_body_bytes;
    server_settings.e2ee = matrix.e2ee();
    if server_settings.e2ee.is_some() {
        let matrix = matrix.clone();
        tokio::spawn(async move {
            // The homeserver may not be up yet: the bot's device is made once it is.
            while let Err(err) = matrix.prepare_encryption().await {
                tracing::warn!(error = %err, "preparing the bridge bot's device failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            // Ghosts' devices are closed when unused for a while (they reopen on use).
            let mut sweep = tokio::time::interval(DEVICE_SWEEP);
            loop {
                sweep.tick().await;
                let closed = matrix.close_idle_devices(DEVICE_IDLE);
                if closed > 0 {
                    tracing::debug!(closed, "idle ghost devices closed");
                }
            }
        });
    }
    let handler: Arc<dyn brygga_core::AppserviceHandler> = match &shard {
        Some(shard) => {
            Arc::new(ShardedAppservice::new(router.clone(), shard.clone(), config.appservice.hs_token.clone()))
        }
        None => Arc::new(router.clone()),
    };
    let mut appservice = brygga_matrix::server::router(handler, server_settings);
    if let Some(links) = links {
        appservice = appservice.merge(crate::media_links::routes(links, matrix.clone()));
    }
    let mut webhooks = crate::webhooks::routes(host.clone());
    if let Some(shard) = &shard {
        webhooks = webhooks.route_layer(axum::middleware::from_fn_with_state(shard.clone(), shard::forward_webhooks));
    }
    appservice = appservice.merge(webhooks);
    let as_listener = TcpListener::bind(config.appservice.listen)
        .await
        .with_context(|| format!("binding config key `appservice.listen` ({})", config.appservice.listen))?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("binding config key `admin.listen` ({})", config.admin.listen))?;
    let api =
        ApiState::new(store.clone(), host.clone(), matrix.clone(), router.clone(), config.admin.operator_token.clone());
    let mut api_routes = api::routes(Arc::new(api));
    if let Some(shard) = &shard {
        api_routes = api_routes.route_layer(axum::middleware::from_fn_with_state(shard.clone(), shard::forward_admin));
    }
    let admin_routes = admin::routes(Arc::new(AdminState::new(host.clone(), router.clone(), store.clone())))
        .merge(api_routes)
        .merge(crate::console::routes());
    let servers = [
        tokio::spawn(serve(as_listener, appservice, shutdown.clone())),
        tokio::spawn(serve(admin_listener, admin_routes, shutdown.clone())),
    ];
    tracing::info!(appservice = %config.appservice.listen, admin = %config.admin.listen, "listening");

    // Alone, this process runs every tenant; in a group, the keeper starts
    // the tenants it wins.
    let keeper = match &shard {
        Some(shard) => {
            listen_to_peers(shard, &sql, &router, shutdown.clone());
            let keeper = Keeper::new(shard.clone(), store.clone(), host.clone(), router.clone());
            tracing::info!(node = %shard.node().id, "sharing the store with other processes");
            Some(tokio::spawn(keeper.run(shutdown.clone())))
        }
        None => {
            let failures = host.start_enabled().await?;
            if !failures.is_empty() {
                tracing::warn!(count = failures.len(), "some adapters did not start");
            }
            None
        }
    };
    let ping_id = config.appservice.id.clone();
    tokio::spawn(async move {
        // Proves the registration round trip; failure is logged, not fatal,
        // because the homeserver may start after the bridge.
        match matrix.ping(&ping_id).await {
            Ok(rtt) => tracing::info!(rtt_ms = rtt.as_millis() as u64, "homeserver ping succeeded"),
            Err(err) => tracing::warn!(error = %err, "homeserver ping failed"),
        }
    });

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    if let Some(keeper) = keeper {
        // It hands its tenants over before the adapters stop below.
        let _ = keeper.await;
    }
    host.stop_all().await;
    router.shutdown();
    for server in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    Ok(())
}

async fn serve(listener: TcpListener, routes: axum::Router, shutdown: CancellationToken) {
    let result = axum::serve(listener, routes).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    if let Err(err) = result {
        tracing::error!(error = %err, "listener failed");
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Hides a password in a database URL for messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
