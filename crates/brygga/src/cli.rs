//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use brygga_core::{AdapterFactory, MatrixRoomId, MatrixUserId, RemoteRoomId, TenantId};
use clap::{Parser, Subcommand};

use crate::app;
use crate::cli_api::ApiClient;
use crate::config::{Config, LogFormat};
use crate::portals::{self, LinkRequest};
use crate::registration;
use crate::tenants;

/// brygga: a multi-tenant Matrix bridge for public-sector chat.
#[derive(Debug, Parser)]
#[command(name = "brygga", version)]
pub struct Cli {
    /// Config file (YAML); `BRYGGA_<SECTION>__<KEY>` variables override it.
    #[arg(short, long, global = true, default_value = "config.yaml", env = "BRYGGA_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the bridge.
    Run,
    /// Applies store migrations and exits.
    Migrate,
    /// Writes the appservice registration file for the homeserver.
    GenerateRegistration {
        /// Output path; `-` for standard output.
        #[arg(short, long, default_value = "registration.yaml")]
        output: PathBuf,
    },
    /// Manages tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Turns adapters on and off per tenant.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// Links Matrix rooms to remote rooms.
    #[command(subcommand)]
    Portal(PortalCommand),
}

#[derive(Debug, Subcommand)]
enum PortalCommand {
    /// Links an existing Matrix room (the bridge bot must be invited) to a remote room.
    Link {
        /// Tenant id.
        tenant: TenantId,
        /// Adapter kind.
        kind: String,
        /// The remote room, e.g. an XMPP group chat JID.
        remote: RemoteRoomId,
        /// The Matrix room id (`!…`).
        room: MatrixRoomId,
        /// The remote room's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists a tenant's portals.
    List {
        /// Tenant id.
        tenant: TenantId,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Adds a tenant.
    Add {
        /// Tenant id (a-z, 0-9, '-').
        id: TenantId,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Matrix users to invite into new portals (repeatable).
        #[arg(long)]
        invite: Vec<MatrixUserId>,
    },
    /// Lists tenants.
    List,
    /// Removes a tenant and all its data.
    Remove {
        /// Tenant id.
        id: TenantId,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdapterCommand {
    /// Enables an adapter for a tenant, optionally (re)configuring it.
    Enable {
        /// Tenant id.
        tenant: TenantId,
        /// Adapter kind.
        kind: String,
        /// Adapter config as JSON (replaces the stored one).
        #[arg(long)]
        adapter_config: Option<String>,
    },
    /// Disables an adapter for a tenant; queued events are kept.
    Disable {
        /// Tenant id.
        tenant: TenantId,
        /// Adapter kind.
        kind: String,
    },
    /// Lists adapter configs.
    List,
}

/// Runs a tenant or adapter command through a running bridge's admin API.
async fn through_api(api: &ApiClient, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tenant(TenantCommand::Add { id, name, invite }) => {
            api.add_tenant(id.as_str(), name, invite.iter().map(|u| u.to_string()).collect()).await?;
            println!(
                "tenant {id} added to the running bridge; regenerate the registration so the homeserver knows its ghosts"
            );
        }
        Command::Tenant(TenantCommand::List) => api.tenant_lines().await?.iter().for_each(|l| println!("{l}")),
        Command::Tenant(TenantCommand::Remove { id, yes }) => {
            if !yes {
                anyhow::bail!("removing tenant {id} deletes all its data; pass --yes to confirm");
            }
            api.remove_tenant(id.as_str()).await?;
            println!("tenant {id} removed from the running bridge");
        }
        Command::Adapter(AdapterCommand::Enable { tenant, kind, adapter_config }) => {
            let config = adapter_config
                .map(|c| serde_json::from_str(&c).context("--adapter-config is not valid JSON"))
                .transpose()?;
            api.set_adapter(tenant.as_str(), &kind, true, config).await?;
            println!("adapter {kind} enabled for {tenant} (running bridge)");
        }
        Command::Adapter(AdapterCommand::Disable { tenant, kind }) => {
            api.set_adapter(tenant.as_str(), &kind, false, None).await?;
            println!("adapter {kind} disabled for {tenant} (running bridge); queued events are kept");
        }
        Command::Adapter(AdapterCommand::List) => api.adapter_lines().await?.iter().for_each(|l| println!("{l}")),
        _ => unreachable!("only tenant and adapter commands go through the API"),
    }
    Ok(())
}

/// Parses arguments and runs a command with the given adapter factories.
pub fn main_with(factories: Vec<Arc<dyn AdapterFactory>>) -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("brygga: bad config {}: {err}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("brygga: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config, factories)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("brygga: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config, factories: Vec<Arc<dyn AdapterFactory>>) -> anyhow::Result<()> {
    if let Command::Run = command {
        return app::run(config, factories).await;
    }
    if matches!(command, Command::Tenant(_) | Command::Adapter(_))
        && let Some(api) = ApiClient::connect(&config).await
    {
        return through_api(&api, command).await;
    }
    let parts = app::assemble(&config, factories).await?;
    let store = parts.store.as_ref();
    match command {
        Command::Run => unreachable!("handled above"),
        Command::Migrate => println!("store migrated"),
        Command::GenerateRegistration { output } => {
            tenants::seed(store, &parts.host, &config.tenants).await?;
            let tenant_ids: Vec<TenantId> = store.tenants().await?.into_iter().map(|t| t.id).collect();
            let reg = registration::registration(&config, &tenant_ids, &parts.host.kinds());
            let encryption = config.encryption.as_ref().is_some_and(|e| e.enabled);
            let yaml = registration::to_yaml(&reg, encryption)?;
            if output.as_os_str() == "-" {
                print!("{yaml}");
            } else {
                std::fs::write(&output, yaml).with_context(|| format!("writing {}", output.display()))?;
                eprintln!("wrote {} ({} tenants); give it to the homeserver", output.display(), tenant_ids.len());
            }
        }
        Command::Tenant(TenantCommand::Add { id, name, invite }) => {
            tenants::add(store, &id, name, invite).await?;
            println!("tenant {id} added; regenerate the registration so the homeserver knows its ghosts");
        }
        Command::Tenant(TenantCommand::List) => {
            for tenant in store.tenants().await? {
                let state = if tenant.suspended { "suspended" } else { "active" };
                println!("{}\t{}\t{state}", tenant.id, tenant.display_name);
            }
        }
        Command::Tenant(TenantCommand::Remove { id, yes }) => {
            if !yes {
                anyhow::bail!("removing tenant {id} deletes all its data; pass --yes to confirm");
            }
            if !store.remove_tenant(&id).await? {
                anyhow::bail!("unknown tenant {id}");
            }
            println!("tenant {id} removed");
        }
        Command::Adapter(AdapterCommand::Enable { tenant, kind, adapter_config }) => {
            let config = adapter_config
                .map(|c| serde_json::from_str(&c).context("--adapter-config is not valid JSON"))
                .transpose()?;
            let kind = tenants::set_adapter(store, &parts.host, &tenant, &kind, true, config).await?;
            println!("adapter {kind} enabled for {tenant}");
        }
        Command::Adapter(AdapterCommand::Disable { tenant, kind }) => {
            let kind = tenants::set_adapter(store, &parts.host, &tenant, &kind, false, None).await?;
            println!("adapter {kind} disabled for {tenant}");
        }
        Command::Portal(PortalCommand::Link { tenant, kind, remote, room, name }) => {
            let request = LinkRequest { tenant: &tenant, kind: &kind, remote: &remote, room: &room, name };
            let key = portals::link(store, &parts.host, parts.matrix.as_ref(), request).await?;
            println!("linked {room} to {key}");
        }
        Command::Portal(PortalCommand::List { tenant }) => {
            for portal in store.portals(&tenant).await? {
                let room = portal.room_id.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
                println!("{}\t{}\t{room}\t{}", portal.key.kind, portal.key.room, portal.name.unwrap_or_default());
            }
        }
        Command::Adapter(AdapterCommand::List) => {
            for config in store.adapter_configs(None).await? {
                let state = if config.enabled { "enabled" } else { "disabled" };
                println!("{}\t{}\t{state}", config.tenant, config.kind);
            }
        }
    }
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRYGGA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
