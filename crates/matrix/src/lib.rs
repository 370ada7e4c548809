//! brygga-matrix: the Matrix side of the bridge.
//!
//! The [`server`] module is the application service HTTP server the homeserver
//! pushes transactions to; it parses Matrix events into canonical
//! [`brygga_core::MatrixEvent`]s. The [`client`] module acts on the homeserver
//! as the bridge bot or a ghost ("intents") and renders canonical events into
//! Matrix content. Nothing here speaks a remote protocol.

pub mod client;
pub mod e2ee;
mod files;
mod render;
pub mod sanitize;
pub mod server;

pub use client::{ClientBuildError, ClientSettings, MatrixClient};
pub use server::{ServerSettings, router};
