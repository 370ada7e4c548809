//! Developer commands, run as `cargo xtask <command>`:
//!
//! - `test [ARGS...]`: install Synapse, PostgreSQL, Prosody and the XMPP test
//!   client, the Rocket.Chat request schemas, the Graph response schemas and
//!   the console test's Playwright if missing, then
//!   `cargo test --workspace --all-targets ARGS...`
//!   with the harness pointed at them.
//! - `demo`: install, build the bridge, start Prosody, Synapse and the bridge
//!   wired together with a demo tenant and one linked room, print the Matrix
//!   and XMPP logins, and run until Ctrl-C or end of stdin. `demo --rocketchat`
//!   also starts the Rocket.Chat test double as a stand-in workspace for the
//!   demo tenant, with a second linked room and a person to act as over REST;
//!   `demo --teams` starts the Graph test double as a stand-in Teams tenant
//!   with a channel and a chat linked to Matrix rooms and a person to act as
//!   over Graph's REST API (the flags combine).

mod console_deps;
mod demo;
mod demo_rocketchat;
mod demo_teams;
mod graph_schemas;
mod install;
mod rocketchat_schemas;

use std::process::{Command, ExitCode};

/// What was asked for.
enum Task {
    /// `test [ARGS...]`.
    Test,
    /// `demo [FLAGS...]`.
    Demo(demo::StandIns),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        Some("test") => Some(Task::Test),
        Some("demo") => demo::StandIns::parse(&args[1..]).map(Task::Demo),
        _ => None,
    };
    let result = match command {
        Some(Task::Test) => test(&args[1..]),
        Some(Task::Demo(stand_ins)) => demo::run(stand_ins),
        None => {
            eprintln!("usage: cargo xtask test [CARGO TEST ARGS...] | cargo xtask demo [--rocketchat] [--teams]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Installs what is missing and runs the workspace tests against it.
fn test(args: &[String]) -> Result<ExitCode, String> {
    let env = install::ensure_all()?;
    let rc_schemas = rocketchat_schemas::ensure()?;
    let console_deps = console_deps::ensure()?;
    let graph_schemas = graph_schemas::ensure()?;
    let mut cmd = cargo();
    cmd.arg("test");
    // Defaults only where the caller did not choose packages or targets (before any `--`).
    let ours: Vec<&str> = args.iter().map(String::as_str).take_while(|a| *a != "--").collect();
    let chose = |flags: &[&str]| ours.iter().any(|a| flags.iter().any(|f| a == f || a.starts_with(&format!("{f}="))));
    if !chose(&["-p", "--package", "--workspace", "--all"]) {
        cmd.arg("--workspace");
    }
    if !chose(&[
        "--lib",
        "--bin",
        "--bins",
        "--example",
        "--examples",
        "--test",
        "--tests",
        "--bench",
        "--benches",
        "--doc",
        "--all-targets",
    ]) {
        cmd.arg("--all-targets");
    }
    cmd.args(args)
        .envs(env.vars())
        .env(rocketchat_schemas::ENV_VAR, &rc_schemas)
        .env(console_deps::ENV_VAR, &console_deps)
        .env(graph_schemas::ENV_VAR, &graph_schemas);
    println!("xtask: running {}", describe(&cmd));
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    Ok(exit_code(status))
}

/// `cargo` as invoked us (`$CARGO`), run from the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(brygga_harness::workspace_root());
    cmd
}

fn describe(cmd: &Command) -> String {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("cargo {}", args.join(" "))
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    // A signal-terminated child has no code; report plain failure then.
    ExitCode::from(status.code().map_or(1, |c| c.clamp(0, 255) as u8))
}
