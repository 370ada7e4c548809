//! The `brygga` binary as a library: config, CLI, registration, admin
//! listener and the run loop, so test and custom builds can add adapters.

pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod cli_api;
pub mod config;
pub mod console;
pub mod encryption;
pub mod media_links;
pub mod metrics;
pub mod portals;
pub mod registration;
pub mod shard;
pub mod tenants;
pub mod webhooks;

pub use cli::main_with;
