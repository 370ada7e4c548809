//! Throwaway PostgreSQL clusters on 127.0.0.1, from the Debian binaries.

use crate::process::spawn_reaper;
use crate::{HarnessError, TempDir, ports, sh_quote, tail};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL binaries: `$BRYGGA_PG_BIN`, else `/usr/lib/postgresql/15/bin`.
pub fn pg_bin_dir() -> PathBuf {
    std::env::var_os("BRYGGA_PG_BIN").map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from)
}

/// A new empty database on this test process's shared cluster, as
/// `postgres://postgres@127.0.0.1:PORT/<db>`. The cluster starts on first use
/// and is stopped and deleted by a reaper when the process exits.
///
/// Panics with an explanation if PostgreSQL cannot be started (run `cargo xtask test`).
pub fn fresh_database_url() -> String {
    static SHARED: OnceLock<Result<PgCluster, HarnessError>> = OnceLock::new();
    // Never dropped: statics do not run Drop, so the cluster's reaper cleans up.
    let cluster = SHARED.get_or_init(PgCluster::start).as_ref().unwrap_or_else(|e| panic!("{e}"));
    cluster.create_database().unwrap_or_else(|e| panic!("{e}"))
}

/// A running cluster owned by the caller; dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct PgCluster {
    // Field order matters: the reaper must be cancelled before the directory goes.
    reaper: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl PgCluster {
    /// Runs initdb in a fresh temp dir and starts the server with `pg_ctl -w start`.
    pub fn start() -> Result<Self, HarnessError> {
        let initdb = pg_bin_dir().join("initdb");
        if !initdb.exists() {
            return Err(HarnessError::new(format!(
                "PostgreSQL not found at {} (set BRYGGA_PG_BIN); run `cargo xtask test` to install it",
                initdb.display()
            )));
        }
        let dir = TempDir::new("pg")?;
        // initdb and postgres refuse to run as root, so root hands the dir to the postgres user.
        if is_root() {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        // The reaper exists before initdb so even a kill mid-setup leaves nothing behind.
        let mut cluster = Self { reaper: None, dir, port: 0 };
        // Run twice: a process killed mid-initdb or mid-start leaves those still running briefly.
        let stop = cluster.stop_script();
        cluster.reaper = Some(spawn_reaper(&format!("{stop}; sleep 2; {stop}"))?);
        let data = cluster.dir.path().join("data");
        let data_arg = data.to_string_lossy();
        run(as_pg_user(&initdb).args(["-D", &data_arg, "-A", "trust", "-U", "postgres", "--no-sync"]).args([
            "-E",
            "UTF8",
            "--locale=C",
        ]))?;

        // A free port can be taken before the server binds it; retry with another.
        let mut last_error = HarnessError::new("PostgreSQL was not started");
        for _ in 0..3 {
            cluster.port = ports::free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn pg_ctl_start(&self) -> Result<(), HarnessError> {
        let dir = self.dir.path();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=300",
            self.port,
            dir.display()
        );
        let log = dir.join("postgres.log");
        let pg_ctl = pg_bin_dir().join("pg_ctl");
        run(as_pg_user(&pg_ctl)
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"]))
        .map_err(|e| HarnessError::new(format!("{e}\nserver log tail:\n{}", tail(&log, 20))))
    }

    /// Shell commands that stop the server at once and delete its directory.
    fn stop_script(&self) -> String {
        let pg_ctl = sh_quote(&pg_bin_dir().join("pg_ctl").to_string_lossy());
        let data = sh_quote(&self.dir.path().join("data").to_string_lossy());
        let runas = if is_root() { "runuser -u postgres -- " } else { "" };
        format!(
            "{runas}{pg_ctl} -D {data} -m immediate -w stop >/dev/null 2>&1; rm -rf {}",
            sh_quote(&self.dir.path().to_string_lossy())
        )
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data dir, socket, server log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new uniquely named database and returns its URL.
    pub fn create_database(&self) -> Result<String, HarnessError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("brygga_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        run(Command::new(pg_bin_dir().join("createdb")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            &name,
        ]))?;
        Ok(self.url(&name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        let _ = Command::new("sh").args(["-c", &self.stop_script()]).status();
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the effective user; std has no getuid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_ids() -> Result<(u32, u32), HarnessError> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| HarnessError::new("running as root but there is no `postgres` user; install postgresql"))
}

fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), HarnessError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| HarnessError::new(format!("running {cmd:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::new(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
