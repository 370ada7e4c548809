//! Installs what the web console's browser test needs besides Debian's
//! `chromium`: `playwright-core` (which drives the system Chromium and never
//! downloads a browser of its own) into `target/console-deps/`. Idempotent:
//! a marker file records the pinned version.

use crate::install::run;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned Playwright release.
pub const PLAYWRIGHT_CORE: &str = "playwright-core@1.65.1";
/// The environment variable the console test reads the folder (holding
/// `node_modules/playwright-core`) from.
pub const ENV_VAR: &str = "BRYGGA_CONSOLE_DEPS";
/// The browser the test drives.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Makes sure `playwright-core` is installed; returns the folder holding its `node_modules`.
pub fn ensure() -> Result<PathBuf, String> {
    let dir = brygga_harness::workspace_root().join("target/console-deps");
    let marker = dir.join(".brygga-console-deps");
    if !Path::new(CHROMIUM).exists() {
        println!("xtask: warning: {CHROMIUM} is missing; the console test will fail (apt-get install chromium)");
    }
    if dir.join("node_modules/playwright-core/package.json").exists()
        && std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == PLAYWRIGHT_CORE)
    {
        println!("xtask: {PLAYWRIGHT_CORE} present in {}", dir.display());
        return Ok(dir);
    }
    println!("xtask: installing {PLAYWRIGHT_CORE} for the console test");
    // A fresh folder: a half-finished earlier attempt must not leak into this one.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    write(&dir.join("package.json"), r#"{"name":"brygga-console-deps","private":true}"#)?;
    run(Command::new(std::env::var_os("BRYGGA_NPM").unwrap_or_else(|| "npm".into())).current_dir(&dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--save-exact",
        PLAYWRIGHT_CORE,
    ]))
    .map_err(|e| format!("{e}\n(needs node and npm: apt-get install nodejs npm)"))?;
    write(&marker, PLAYWRIGHT_CORE)?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
