//! Installs the test servers idempotently: the Synapse venv, PostgreSQL 15,
//! Prosody and the slixmpp venv for the XMPP test client.

use brygga_harness::prosody::{MODERATION_MODULE, prosody_binary, xmpp_venv_dir};
use brygga_harness::{postgres::pg_bin_dir, synapse::venv_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Synapse release the tests run against; changing it reinstalls the venv's Synapse.
pub const SYNAPSE_VERSION: &str = "1.163.2";
/// The slixmpp release the XMPP test client runs on; changing it reinstalls it.
pub const SLIXMPP_VERSION: &str = "1.17.0";

/// Where the installed servers are, as the harness's environment variables.
pub struct ServerEnv {
    venv: PathBuf,
    pg_bin: PathBuf,
    xmpp_venv: PathBuf,
}

impl ServerEnv {
    /// `BRYGGA_SYNAPSE_VENV`, `BRYGGA_PG_BIN` and `BRYGGA_XMPP_VENV` for child processes.
    pub fn vars(&self) -> [(&'static str, &Path); 3] {
        [("BRYGGA_SYNAPSE_VENV", &self.venv), ("BRYGGA_PG_BIN", &self.pg_bin), ("BRYGGA_XMPP_VENV", &self.xmpp_venv)]
    }
}

/// Makes sure Synapse, PostgreSQL, Prosody and slixmpp are installed; quick when they already are.
pub fn ensure_all() -> Result<ServerEnv, String> {
    let venv = ensure_venv(&venv_dir(), "matrix-synapse", SYNAPSE_VERSION, ".brygga-synapse-version")?;
    let pg_bin = ensure_postgres()?;
    ensure_prosody()?;
    let xmpp_venv = ensure_venv(&xmpp_venv_dir(), "slixmpp", SLIXMPP_VERSION, ".brygga-slixmpp-version")?;
    Ok(ServerEnv { venv, pg_bin, xmpp_venv })
}

/// A venv at `dir` with `package==version` from PyPI, recorded in the `marker` file.
fn ensure_venv(dir: &Path, package: &str, version: &str, marker: &str) -> Result<PathBuf, String> {
    let venv = absolute(dir);
    let marker = venv.join(marker);
    let python = venv.join("bin/python");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == version) {
        println!("xtask: {package} {version} present in {}", venv.display());
        return Ok(venv);
    }
    let started = Instant::now();
    if !python.exists() {
        println!("xtask: creating Python venv {}", venv.display());
        let python3 = std::env::var_os("BRYGGA_PYTHON").unwrap_or_else(|| "python3".into());
        run(Command::new(python3).args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e}\n(on Debian: apt-get install python3-venv)"))?;
    }
    println!("xtask: installing {package}=={version} with pip");
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--disable-pip-version-check",
        "--quiet",
        &format!("{package}=={version}"),
    ]))?;
    std::fs::write(&marker, version).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    println!("xtask: {package} {version} installed in {:.0?}", started.elapsed());
    Ok(venv)
}

/// Prosody from Debian with its community modules (for XEP-0425 moderation),
/// plus the openssl CLI the harness makes its certificate with.
fn ensure_prosody() -> Result<(), String> {
    let prosody = prosody_binary();
    let have_openssl = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if prosody.exists() && have_openssl && Path::new(MODERATION_MODULE).exists() {
        println!("xtask: Prosody present at {}", prosody.display());
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "Prosody ({}), prosody-modules or openssl missing: install them (apt-get install prosody prosody-modules openssl) or set BRYGGA_PROSODY",
            prosody.display()
        ));
    }
    let started = Instant::now();
    println!("xtask: installing Prosody, its community modules and openssl with apt-get");
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    // Tests run their own Prosody on free ports, so a system service, if one starts, does not interfere.
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "prosody", "prosody-modules", "openssl"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !prosody.exists() || !Path::new(MODERATION_MODULE).exists() {
        return Err(format!("apt-get installed prosody but {} or {MODERATION_MODULE} is missing", prosody.display()));
    }
    println!("xtask: Prosody installed in {:.0?}", started.elapsed());
    Ok(())
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
