//! What a store is opened with: the database URL and tuning options.

use std::str::FromStr;
use std::time::Duration;

use brygga_core::StoreError;

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file, the embedded default.
    Sqlite,
    /// A PostgreSQL server, for a HUB.
    Postgres,
}

impl Backend {
    /// Stable lower-case name: `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// SQLite's `synchronous` pragma: how hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// No fsync; a power loss may lose recent commits or corrupt the file.
    Off,
    /// In WAL mode: a power loss may lose the latest commits, never corrupts.
    Normal,
    /// Every commit is on disk before it is acknowledged (the default).
    #[default]
    Full,
    /// Like `Full`, also syncing the directory after deleting journal files.
    Extra,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

impl FromStr for Synchronous {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Ok(Self::Off),
            "normal" | "1" => Ok(Self::Normal),
            "full" | "2" => Ok(Self::Full),
            "extra" | "3" => Ok(Self::Extra),
            _ => Err(StoreError::Database(format!(
                "invalid synchronous setting {s:?}: expected off, normal, full or extra"
            ))),
        }
    }
}

/// Tuning for [`SqlStore::connect_with`](crate::SqlStore::connect_with).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreOptions {
    /// SQLite durability; a `synchronous=` URL query parameter overrides it.
    pub synchronous: Synchronous,
    /// Size of the read pool.
    pub read_connections: u32,
    /// Most write requests committed in one transaction.
    pub max_batch: usize,
    /// How long SQLite waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// How long a caller waits for a pooled connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            read_connections: 4,
            max_batch: 1024,
            busy_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

impl StoreOptions {
    /// Sets the SQLite `synchronous` pragma.
    pub fn synchronous(mut self, value: Synchronous) -> Self {
        self.synchronous = value;
        self
    }

    /// Sets the read pool size (at least 1).
    pub fn read_connections(mut self, n: u32) -> Self {
        self.read_connections = n.max(1);
        self
    }

    /// Sets the largest group-commit batch (at least 1).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }
}

/// A URL split into what sqlx understands and our own parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    pub backend: Backend,
    pub sqlx_url: String,
    pub synchronous: Option<Synchronous>,
}

/// Accepts `sqlite://PATH[?synchronous=...]` and `postgres://...`.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(ParsedUrl { backend: Backend::Postgres, sqlx_url: url.to_owned(), synchronous: None });
    }
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Err(StoreError::Database("unsupported database URL: expected sqlite://PATH or postgres://...".into()));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Database(
            "SQLite needs a file path (sqlite://PATH): the store uses WAL and several connections".into(),
        ));
    }
    let mut synchronous = None;
    let mut has_mode = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "synchronous" => synchronous = Some(value.parse()?),
            "mode" if value == "memory" => {
                return Err(StoreError::Database("SQLite mode=memory is not supported; use a file".into()));
            }
            "mode" => {
                has_mode = true;
                kept.push(pair);
            }
            _ => kept.push(pair),
        }
    }
    if !has_mode {
        // Create the database file when it is missing.
        kept.push("mode=rwc");
    }
    Ok(ParsedUrl { backend: Backend::Sqlite, sqlx_url: format!("sqlite://{path}?{}", kept.join("&")), synchronous })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode_and_lose_our_parameters() {
        let p = parse_url("sqlite:///tmp/x/brygga.db?synchronous=normal").unwrap();
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.sqlx_url, "sqlite:///tmp/x/brygga.db?mode=rwc");
        assert_eq!(p.synchronous, Some(Synchronous::Normal));

        let p = parse_url("sqlite://data.db?mode=rw").unwrap();
        assert_eq!(p.sqlx_url, "sqlite://data.db?mode=rw");
        assert_eq!(p.synchronous, None);
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        let err = parse_url("mysql://x").unwrap_err().to_string();
        assert!(err.contains("unsupported database URL"), "{err}");
        assert!(parse_url("sqlite::memory:").is_err());
        assert!(parse_url("sqlite://db?mode=memory").is_err());
        let err = parse_url("sqlite://db?synchronous=sometimes").unwrap_err().to_string();
        assert!(err.contains("synchronous"), "{err}");
    }

    #[test]
    fn postgres_urls_pass_through() {
        let url = "postgres://postgres@127.0.0.1:5432/db";
        let p = parse_url(url).unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        assert_eq!(p.sqlx_url, url);
    }
}
