//! Generates JSON Schemas of the Microsoft Graph types the Graph double
//! answers with, from the published `@microsoft/microsoft-graph-types`
//! TypeScript declarations (with `ts-json-schema-generator`), into
//! `target/graph-schemas/<Type>.json`. The double's own tests validate its
//! responses against them. Idempotent: a marker file records the pinned
//! versions and the type list.

use crate::install::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Graph typings release the schemas come from.
pub const GRAPH_TYPES_VERSION: &str = "2.43.1";
/// The generator release.
const GENERATOR: &str = "ts-json-schema-generator@2.10.0";
/// The environment variable the double's tests read the schema folder from.
pub const ENV_VAR: &str = "BRYGGA_GRAPH_SCHEMAS";
/// The Graph types (interfaces of `microsoft-graph.d.ts`) the double's responses are checked against.
const TYPES: &[&str] = &[
    "ChatMessage",
    "TeamworkUserIdentity",
    "MembersAddedEventMessageDetail",
    "MembersDeletedEventMessageDetail",
    "ChatMessageHostedContent",
    "AadUserConversationMember",
    "User",
    "Presence",
    "Subscription",
    "ChangeNotificationCollection",
    "Team",
    "Channel",
    "Chat",
];

/// Makes sure the schemas exist and are current; returns their folder.
pub fn ensure() -> Result<PathBuf, String> {
    let dir = brygga_harness::workspace_root().join("target/graph-schemas");
    let marker = dir.join(".brygga-graph-types-version");
    let want = format!("{GRAPH_TYPES_VERSION} {GENERATOR} {}", TYPES.join(","));
    if std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == want) {
        println!("xtask: Graph schemas ({GRAPH_TYPES_VERSION}) present in {}", dir.display());
        return Ok(dir);
    }
    let started = Instant::now();
    println!("xtask: generating Graph schemas from @microsoft/microsoft-graph-types {GRAPH_TYPES_VERSION}");
    let work = dir.join("npm");
    // A fresh work dir: a half-finished earlier attempt must not leak into this one.
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("clearing {}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    write(&work.join("package.json"), r#"{"name":"brygga-graph-schemas","private":true}"#)?;
    let types = format!("@microsoft/microsoft-graph-types@{GRAPH_TYPES_VERSION}");
    run(npm(&work).args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--save-exact", &types, GENERATOR]))
        .map_err(|e| format!("{e}\n(needs node and npm: apt-get install nodejs npm)"))?;
    let declarations = work.join("node_modules/@microsoft/microsoft-graph-types/microsoft-graph.d.ts");
    for ty in TYPES {
        run(Command::new(work.join("node_modules/.bin/ts-json-schema-generator"))
            .current_dir(&work)
            .arg("--path")
            .arg(&declarations)
            .args(["--type", ty, "--no-type-check", "--out"])
            .arg(dir.join(format!("{ty}.json"))))?;
    }
    write(&marker, &want)?;
    println!("xtask: Graph schemas ready in {:.0?}", started.elapsed());
    Ok(dir)
}

fn npm(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("BRYGGA_NPM").unwrap_or_else(|| "npm".into()));
    cmd.current_dir(dir);
    cmd
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
