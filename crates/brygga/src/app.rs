//! Assembling and running the bridge.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use brygga_core::{AdapterFactory, AdapterHost, RetryPolicy, Router, RunningAdapters, Store};
use brygga_matrix::{ClientSettings, MatrixClient, ServerSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::config::Config;
use crate::media_links::SignedLinks;
use crate::tenants;

/// Opens (and migrates) the configured store.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = brygga_store::SqlStore::connect(&config.database.url).await.with_context(|| {
        format!("opening the store at config key `database.url` ({})", redact_url(&config.database.url))
    })?;
    Ok(Arc::new(store))
}

/// The Matrix client for the configured homeserver.
pub fn matrix_client(config: &Config) -> anyhow::Result<Arc<MatrixClient>> {
    let settings = ClientSettings::new(
        config.homeserver.url.clone(),
        config.homeserver.server_name.clone(),
        config.appservice.as_token.clone(),
        config.appservice.bot_localpart.clone(),
    );
    Ok(Arc::new(MatrixClient::new(settings).context("building the Matrix client")?))
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
}

/// Builds store, Matrix client, router and adapter host; starts nothing.
pub async fn assemble(config: &Config, factories: Vec<Arc<dyn AdapterFactory>>) -> anyhow::Result<Parts> {
    let store = open_store(config).await?;
    let matrix = matrix_client(config)?;
    let running = RunningAdapters::default();
    let namer = factories.iter().fold(config.namer(), |namer, f| match f.room_aliases() {
        Some(codec) => namer.with_codec(f.kind(), codec),
        None => namer,
    });
    let router = Router::new(store.clone(), matrix.clone(), namer, running.clone(), RetryPolicy::default());
    let mut host = AdapterHost::new(factories, running, store.clone(), router.clone(), matrix.clone());
    let links = config.media.as_ref().map(|media| {
        let lifetime = Duration::from_secs(u64::from(media.link_days) * 86_400);
        Arc::new(SignedLinks::new(&media.public_url, &media.secret, lifetime))
    });
    if let Some(links) = &links {
        host = host.with_media_links(links.clone());
    }
    let host = Arc::new(host);
    Ok(Parts { store, host, router, matrix, links })
}

/// Runs the bridge until SIGINT or SIGTERM.
pub async fn run(config: Config, factories: Vec<Arc<dyn AdapterFactory>>) -> anyhow::Result<()> {
    let Parts { store, host, router, matrix, links } = assemble(&config, factories).await?;
    tenants::seed(store.as_ref(), &host, &config.tenants).await?;

    // Undelivered events resume before anything new is accepted, so order holds.
    let resumed = router.recover().await.context("resuming stored events")?;
    tracing::info!(queues = resumed, "resumed undelivered events");

    let shutdown = CancellationToken::new();
    let mut server_settings = ServerSettings::new(config.appservice.hs_token.clone());
    server_settings.max_body_bytes = config.appservice.max_body_bytes;
    let mut appservice = brygga_matrix::server::router(Arc::new(router.clone()), server_settings);
    if let Some(links) = links {
        appservice = appservice.merge(crate::media_links::routes(links, matrix.clone()));
    }
    appservice = appservice.merge(crate::webhooks::routes(host.clone()));
    let as_listener = TcpListener::bind(config.appservice.listen)
        .await
        .with_context(|| format!("binding config key `appservice.listen` ({})", config.appservice.listen))?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("binding config key `admin.listen` ({})", config.admin.listen))?;
    let api =
        ApiState::new(store.clone(), host.clone(), matrix.clone(), router.clone(), config.admin.operator_token.clone());
    let admin_routes =
        admin::routes(Arc::new(AdminState::new(host.clone(), router.clone()))).merge(api::routes(Arc::new(api)));
    let servers = [
        tokio::spawn(serve(as_listener, appservice, shutdown.clone())),
        tokio::spawn(serve(admin_listener, admin_routes, shutdown.clone())),
    ];
    tracing::info!(appservice = %config.appservice.listen, admin = %config.admin.listen, "listening");

    let failures = host.start_enabled().await?;
    if !failures.is_empty() {
        tracing::warn!(count = failures.len(), "some adapters did not start");
    }
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
