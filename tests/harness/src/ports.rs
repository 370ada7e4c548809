//! Free TCP ports on 127.0.0.1.

use std::net::TcpListener;

/// A port that was free on 127.0.0.1 a moment ago (the OS picks it; another
/// process may still take it before the caller binds, so servers retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("binding 127.0.0.1:0")
}
