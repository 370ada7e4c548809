//! End-to-end test support: the fake remote network, the loopback test
//! adapter, a running environment (Synapse + bridge process), a Matrix
//! test client and an XMPP test client. None of this is shipped.

// matrix-sdk's sync futures are deeper than the default limit allows for `Send` checks.
#![recursion_limit = "256"]

pub mod admin_api;
pub mod bridge;
pub mod e2ee_env;
pub mod e2ee_user;
pub mod env;
pub mod front;
pub mod loopback;
pub mod matrix_user;
pub mod remote;
pub mod rocketchat_env;
pub mod store_suite;
pub mod teams_env;
pub mod xmpp_checks;
pub mod xmpp_env;
pub mod xmpp_user;

/// Instantiates async scenario functions `fn(Backend)` as two tests each, in
/// modules `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name($crate::env::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name($crate::env::Backend::Postgres).await })*
        }
    };
}
