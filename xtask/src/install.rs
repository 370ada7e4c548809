//! Installs the test servers idempotently: the Synapse venv and PostgreSQL 15.

use brygga_harness::{postgres::pg_bin_dir, synapse::venv_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Synapse release the tests run against; changing it reinstalls the venv's Synapse.
pub const SYNAPSE_VERSION: &str = "1.163.2";

/// Where the installed servers are, as the harness's environment variables.
pub struct ServerEnv {
    venv: PathBuf,
    pg_bin: PathBuf,
}

impl ServerEnv {
    /// `BRYGGA_SYNAPSE_VENV` and `BRYGGA_PG_BIN` for child processes.
    pub fn vars(&self) -> [(&'static str, &Path); 2] {
        [("BRYGGA_SYNAPSE_VENV", &self.venv), ("BRYGGA_PG_BIN", &self.pg_bin)]
    }
}

/// Makes sure Synapse and PostgreSQL are installed; quick when they already are.
pub fn ensure_all() -> Result<ServerEnv, String> {
    let venv = ensure_synapse()?;
    let pg_bin = ensure_postgres()?;
    Ok(ServerEnv { venv, pg_bin })
}

fn ensure_synapse() -> Result<PathBuf, String> {
    let venv = absolute(&venv_dir());
    let marker = venv.join(".brygga-synapse-version");
    let python = venv.join("bin/python");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == SYNAPSE_VERSION) {
        println!("xtask: Synapse {SYNAPSE_VERSION} present in {}", venv.display());
        return Ok(venv);
    }
    let started = Instant::now();
    if !python.exists() {
        println!("xtask: creating Python venv {}", venv.display());
        let python3 = std::env::var_os("BRYGGA_PYTHON").unwrap_or_else(|| "python3".into());
        run(Command::new(python3).args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e}\n(on Debian: apt-get install python3-venv)"))?;
    }
    println!("xtask: installing matrix-synapse=={SYNAPSE_VERSION} with pip");
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--disable-pip-version-check",
        "--quiet",
        &format!("matrix-synapse=={SYNAPSE_VERSION}"),
    ]))?;
    std::fs::write(&marker, SYNAPSE_VERSION).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    println!("xtask: Synapse {SYNAPSE_VERSION} installed in {:.0?}", started.elapsed());
    Ok(venv)
}

fn ensure_postgres() -> Result<PathBuf, String> {
    let bin = pg_bin_dir();
    if bin.join("initdb").exists() {
        println!("xtask: PostgreSQL present in {}", bin.display());
        return Ok(bin);
    }
    if !is_root() {
        return Err(format!(
            "PostgreSQL 15 not found in {}: install it (apt-get install postgresql) or set BRYGGA_PG_BIN",
            bin.display()
        ));
    }
    let started = Instant::now();
    println!("xtask: installing PostgreSQL with apt-get");
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !bin.join("initdb").exists() {
        return Err(format!("apt-get installed postgresql but {} has no initdb", bin.display()));
    }
    println!("xtask: PostgreSQL installed in {:.0?}", started.elapsed());
    Ok(bin)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command with inherited output; an error names it and its status.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}
