//! Test harness for brygga: starts real servers (Synapse, PostgreSQL, Prosody) on
//! 127.0.0.1 with free ports and throwaway directories, and stops them by PID
//! when dropped, also when a test panics.
//!
//! The servers are installed by `cargo xtask test`, which also sets
//! `BRYGGA_SYNAPSE_VENV` and `BRYGGA_PG_BIN` for the tests it runs, and
//! `BRYGGA_XMPP_VENV` (slixmpp for the XMPP test client) next to Debian's Prosody.
//!
//! ```no_run
//! use brygga_harness::synapse::{Synapse, SynapseOptions};
//! let hs = Synapse::start(SynapseOptions::default()).unwrap();
//! let (user_id, token) = hs.register_user("alice", "secret").unwrap();
//! let db_url = brygga_harness::postgres::fresh_database_url();
//! ```
//!
//! The crate is std-only apart from `serde_json` so `xtask` can build it cheaply,
//! and knows nothing about the bridge's own config format.

pub mod http;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod prosody;
pub mod synapse;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Error from starting or talking to a test server; the message says what to do.
#[derive(Debug, Clone)]
pub struct HarnessError(pub String);

impl HarnessError {
    /// Builds an error from any message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

impl From<std::io::Error> for HarnessError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

/// The workspace root: the nearest ancestor of this crate holding a `[workspace]` Cargo.toml.
pub fn workspace_root() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// `n` random bytes from /dev/urandom.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("reading /dev/urandom");
    buf
}

/// A random lowercase hex string of `bytes * 2` characters.
pub fn random_hex(bytes: usize) -> String {
    random_bytes(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 without padding, as Synapse writes signing keys.
pub fn base64_unpadded(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A directory under the system temp dir, removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/brygga-<prefix>-<pid>-<n>-<random>`.
    pub fn new(prefix: &str) -> Result<Self, HarnessError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("brygga-{prefix}-{}-{n}-{}", std::process::id(), random_hex(4));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).map_err(|e| HarnessError::new(format!("creating {}: {e}", path.display())))?;
        Ok(Self { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // BRYGGA_KEEP_TEMP=1 keeps a failed run's files (logs, databases) for a look.
        if std::env::var_os("BRYGGA_KEEP_TEMP").is_some() && std::thread::panicking() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The last `lines` lines of a text file, for error messages ("" if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Quotes `s` for a POSIX shell command line.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_unpadded(b""), "");
        assert_eq!(base64_unpadded(b"f"), "Zg");
        assert_eq!(base64_unpadded(b"fo"), "Zm8");
        assert_eq!(base64_unpadded(b"foo"), "Zm9v");
        assert_eq!(base64_unpadded(b"foob"), "Zm9vYg");
        assert_eq!(base64_unpadded(&[0xfb, 0xff]), "+/8");
        assert_eq!(base64_unpadded(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn workspace_root_has_workspace_manifest() {
        let root = workspace_root();
        assert!(std::fs::read_to_string(root.join("Cargo.toml")).unwrap().contains("[workspace]"));
    }

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("selftest").unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("f"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
