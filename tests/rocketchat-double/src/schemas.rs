//! Request validation against Rocket.Chat's published request schemas
//! (`@rocket.chat/rest-typings`), run by one long-lived `node` process that
//! executes the validator bundle `cargo xtask test` prepares.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

/// Environment variable naming the bundled validator script.
pub const SCHEMAS_ENV: &str = "BRYGGA_RC_SCHEMAS";

/// A request body that did not match its rest-typings schema.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SchemaViolation {
    /// `METHOD endpoint`, e.g. `POST chat.sendMessage`.
    pub endpoint: String,
    /// The rest-typings validator that refused it.
    pub validator: String,
    /// The body (or query) as received.
    pub body: Value,
    /// ajv's errors.
    pub errors: Value,
}

struct Node {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// The validator process; requests are answered one at a time, in order.
pub struct Validator {
    node: Mutex<Node>,
}

/// Where the validator bundle is: `$BRYGGA_RC_SCHEMAS`, else the workspace's `target/rocketchat-schemas/`.
pub fn bundle_path() -> PathBuf {
    match std::env::var_os(SCHEMAS_ENV) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/rocketchat-schemas/validator.cjs"),
    }
}

impl Validator {
    /// Starts `node` on the bundle and checks it offers every validator the double uses.
    pub async fn start(required: &[&str]) -> Result<Self, String> {
        let bundle = bundle_path();
        if !bundle.exists() {
            return Err(format!(
                "Rocket.Chat request schemas not found at {}: run `cargo xtask test` once (it installs them), \
                 or set {SCHEMAS_ENV} to the bundled validator.cjs",
                bundle.display()
            ));
        }
        let mut child = Command::new(std::env::var_os("BRYGGA_NODE").unwrap_or_else(|| "node".into()))
            .arg(&bundle)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting node for the schema validator: {e}"))?;
        let stdin = child.stdin.take().ok_or("node has no stdin")?;
        let stdout = child.stdout.take().ok_or("node has no stdout")?;
        let mut stdout = BufReader::new(stdout).lines();
        let ready = stdout.next_line().await.map_err(|e| format!("reading from node: {e}"))?;
        let ready: Value =
            ready.as_deref().and_then(|l| serde_json::from_str(l).ok()).ok_or("the schema validator did not start")?;
        let offered: Vec<&str> =
            ready["validators"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let missing: Vec<&&str> = required.iter().filter(|r| !offered.contains(r)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "the schema bundle lacks validators {missing:?}: rerun `cargo xtask test` to rebuild it"
            ));
        }
        Ok(Self { node: Mutex::new(Node { _child: child, stdin, stdout, next_id: 0 }) })
    }

    /// Validates `data` with rest-typings' `validator`; `Ok(None)` when valid, `Ok(Some(errors))` when not.
    pub async fn check(&self, validator: &str, data: &Value) -> Result<Option<Value>, String> {
        let mut node = self.node.lock().await;
        node.next_id += 1;
        let id = node.next_id;
        let mut line = json!({ "id": id, "validator": validator, "data": data }).to_string();
        line.push('\n');
        node.stdin.write_all(line.as_bytes()).await.map_err(|e| format!("writing to the schema validator: {e}"))?;
        node.stdin.flush().await.map_err(|e| format!("writing to the schema validator: {e}"))?;
        let reply = node.stdout.next_line().await.map_err(|e| format!("reading the schema validator: {e}"))?;
        let reply: Value =
            reply.as_deref().and_then(|l| serde_json::from_str(l).ok()).ok_or("the schema validator exited")?;
        if reply["id"] != json!(id) {
            return Err(format!("the schema validator answered out of order: {reply}"));
        }
        Ok(if reply["ok"] == json!(true) { None } else { Some(reply["errors"].clone()) })
    }
}

/// ajv's error messages joined the way Rocket.Chat's router joins them.
pub fn describe(errors: &Value) -> String {
    let messages: Vec<&str> = errors.as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
    messages.join("\n ")
}
