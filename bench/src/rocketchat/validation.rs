//! What the double's request validation costs on its own: the same bundled
//! rest-typings validator, in its own `node` process, checking a
//! `chat.sendMessage` body like the adapter's, one request at a time (the
//! double's one process also answers one at a time).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use brygga_rocketchat_double::SCHEMAS_ENV;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::stats::Percentiles;

/// Where the double finds the bundle: `$BRYGGA_RC_SCHEMAS`, else the workspace's target dir.
fn bundle() -> PathBuf {
    match std::env::var_os(SCHEMAS_ENV) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rocketchat-schemas/validator.cjs"),
    }
}

/// Times `samples` validations, each from writing the request to reading the answer.
pub async fn round_trips(samples: usize) -> anyhow::Result<Percentiles> {
    let mut child = Command::new(std::env::var_os("BRYGGA_NODE").unwrap_or_else(|| "node".into()))
        .arg(bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node for the schema validator")?;
    let mut stdin = child.stdin.take().context("node has no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("node has no stdout")?).lines();
    lines.next_line().await?.context("the schema validator did not start")?;
    let mut times = Vec::with_capacity(samples);
    for id in 0..samples {
        let message = json!({ "_id": format!("bench{id:012}"), "rid": "GENERAL", "msg": format!("#{id}") });
        let mut line =
            json!({ "id": id, "validator": "isChatSendMessageProps", "data": { "message": message } }).to_string();
        line.push('\n');
        let sent = Instant::now();
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await?;
        let reply = lines.next_line().await?.context("the schema validator exited")?;
        times.push(sent.elapsed());
        let reply: Value = serde_json::from_str(&reply)?;
        if reply["ok"] != json!(true) {
            bail!("the schema validator refused a chat.sendMessage body like the adapter's: {reply}");
        }
    }
    Ok(Percentiles::new(times))
}
