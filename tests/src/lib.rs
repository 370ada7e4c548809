//! End-to-end test support: the fake remote network, the loopback test
//! adapter, a running environment (Synapse + bridge process) and a Matrix
//! test client. None of this is shipped.

pub mod env;
pub mod loopback;
pub mod matrix_user;
pub mod remote;
pub mod store_suite;
