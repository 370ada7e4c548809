//! Installs Rocket.Chat's published request schemas for the Rocket.Chat double:
//! packs `@rocket.chat/rest-typings` and `@rocket.chat/core-typings` (their
//! `npm install` fails on a yarn-only dependency), installs ajv, ajv-formats and
//! esbuild beside them and bundles the double's validator entry point into one
//! script under `target/rocketchat-schemas/`. Idempotent: a marker file records
//! the pinned versions.

use crate::install::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Rocket.Chat typings release whose request schemas the double enforces.
pub const REST_TYPINGS_VERSION: &str = "8.8.1";
/// Validator and bundler versions (rest-typings 8.8.1 asks for ajv ^8.20.0, ajv-formats ^3.0.1).
const TOOLS: [&str; 3] = ["ajv@8.20.0", "ajv-formats@3.0.1", "esbuild@0.28.2"];
/// The environment variable the double reads the bundled validator's path from.
pub const ENV_VAR: &str = "BRYGGA_RC_SCHEMAS";

/// Makes sure the bundled validator exists and is current; returns its path.
pub fn ensure() -> Result<PathBuf, String> {
    let root = brygga_harness::workspace_root();
    let dir = root.join("target/rocketchat-schemas");
    let bundle = dir.join("validator.cjs");
    let entry = root.join("tests/rocketchat-double/validator/entry.mjs");
    let marker = dir.join(".brygga-rest-typings-version");
    let want = format!("{REST_TYPINGS_VERSION} {} {}", TOOLS.join(" "), entry_digest(&entry)?);
    if bundle.exists() && std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == want) {
        println!("xtask: Rocket.Chat request schemas {REST_TYPINGS_VERSION} present in {}", bundle.display());
        return Ok(bundle);
    }
    let started = Instant::now();
    println!("xtask: preparing Rocket.Chat request schemas (@rocket.chat/rest-typings {REST_TYPINGS_VERSION})");
    let work = dir.join("npm");
    // A fresh work dir: a half-finished earlier attempt must not leak into this one.
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("clearing {}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    write(&work.join("package.json"), r#"{"name":"brygga-rocketchat-schemas","private":true}"#)?;
    run(npm(&work).args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--save-exact"]).args(TOOLS))
        .map_err(|e| format!("{e}\n(needs node and npm: apt-get install nodejs npm)"))?;
    for package in ["rest-typings", "core-typings"] {
        unpack(&work, package)?;
    }
    // esbuild resolves packages from the entry point's folder, so bundle a copy placed beside node_modules.
    let local_entry = work.join("entry.mjs");
    std::fs::copy(&entry, &local_entry).map_err(|e| format!("copying {}: {e}", entry.display()))?;
    run(Command::new(work.join("node_modules/.bin/esbuild"))
        .current_dir(&work)
        .arg(&local_entry)
        .args(["--bundle", "--platform=node", "--format=cjs", "--log-level=warning"])
        .arg(format!("--outfile={}", bundle.display())))?;
    write(&marker, &want)?;
    println!("xtask: Rocket.Chat request schemas ready in {:.0?}", started.elapsed());
    Ok(bundle)
}

/// `npm pack`s `@rocket.chat/<package>` at the pinned version into `node_modules/@rocket.chat/<package>`.
fn unpack(work: &Path, package: &str) -> Result<(), String> {
    let spec = format!("@rocket.chat/{package}@{REST_TYPINGS_VERSION}");
    let out =
        npm(work).args(["pack", "--silent", &spec]).output().map_err(|e| format!("running npm pack {spec}: {e}"))?;
    if !out.status.success() {
        return Err(format!("npm pack {spec} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let tarball = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
    let target = work.join("node_modules/@rocket.chat").join(package);
    std::fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    run(Command::new("tar").arg("xzf").arg(work.join(&tarball)).arg("-C").arg(&target).arg("--strip-components=1"))
}

fn npm(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("BRYGGA_NPM").unwrap_or_else(|| "npm".into()));
    cmd.current_dir(dir);
    cmd
}

/// A cheap fingerprint of the entry point, so editing it rebuilds the bundle.
fn entry_digest(entry: &Path) -> Result<String, String> {
    let text = std::fs::read(entry).map_err(|e| format!("reading {}: {e}", entry.display()))?;
    // FNV-1a: no dependency needed, and collisions only cost a missed rebuild.
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    Ok(format!("{hash:016x}"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
