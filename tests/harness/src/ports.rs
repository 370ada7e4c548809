//! Free TCP ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports below the kernel's ephemeral range (32768 and up on Linux), so the
/// source port of some other outgoing connection cannot take a port between
/// the moment it is handed out and the moment its server binds it.
const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Ports handed out by this process, never handed out twice.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free on 127.0.0.1 a moment ago and that this process has
/// not handed out before (another process may still take it, so servers retry).
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let start = std::process::id() as usize + given.len() * 7919;
    let span = RANGE.len();
    for i in 0..span {
        let port = RANGE.start + ((start + i * 104_729) % span) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port in {RANGE:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_never_repeat() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|p| RANGE.contains(p)));
    }
}
