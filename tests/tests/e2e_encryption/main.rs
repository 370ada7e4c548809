//! Encrypted portal rooms against real Synapse with the appservice
//! encryption extensions on, and Alice on a real E2EE client (one test
//! binary, so the heavy client is linked once).

// matrix-sdk's futures are deeper than the default limit allows for `Send` checks.
#![recursion_limit = "256"]

mod devices;
mod exchange;
mod files;
mod policy;
mod portal;
mod xmpp;
