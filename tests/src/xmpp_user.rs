//! A real XMPP user for end-to-end tests: drives `tests/xmpp_client.py`
//! (slixmpp) over JSON lines, logged in to the harness's Prosody over c2s.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_harness::prosody::{Prosody, xmpp_venv_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};

/// How long a command may take before `command` gives up (uploads and MAM are the slowest).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long login may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Driver stderr lines kept for failure messages.
const STDERR_LINES: usize = 40;

/// A stanza sent by a command: its `id` attribute and its XEP-0359 origin-id.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stanza's `id` attribute.
    pub id: String,
    /// The `<origin-id/>`, if one was added.
    pub origin_id: Option<String>,
}

/// A logged-in XMPP user; dropping it kills the driver process (and so its stream).
pub struct XmppUser {
    jid: String,
    stdin: tokio::sync::Mutex<ChildStdin>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    child: Child,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, oneshot::Sender<Value>>,
    inbox: VecDeque<Value>,
    seen: Vec<Value>,
    stderr: VecDeque<String>,
    closed: bool,
}

impl XmppUser {
    /// Logs in as `user@localhost` and waits until the session is ready; panics if it cannot.
    pub async fn connect(prosody: &Prosody, user: &str, password: &str) -> Self {
        let jid = format!("{user}@{}", prosody.domain());
        Self::connect_jid(prosody.c2s_port(), &jid, password).await
    }

    /// Logs in as `jid` on the c2s port `port` of 127.0.0.1.
    pub async fn connect_jid(port: u16, jid: &str, password: &str) -> Self {
        let python = xmpp_venv_dir().join("bin/python");
        assert!(
            python.exists(),
            "{} missing (set BRYGGA_XMPP_VENV); run `cargo xtask test` to install slixmpp",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(driver_script())
            .args([jid, "127.0.0.1", &port.to_string()])
            // The password goes in the environment, not argv, which every process can read.
            .env("BRYGGA_XMPP_PASSWORD", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn xmpp_client.py");
        let shared = Arc::new(Shared::default());
        tokio::spawn(read_stdout(child.stdout.take().expect("stdout"), shared.clone()));
        tokio::spawn(read_stderr(child.stderr.take().expect("stderr"), shared.clone()));
        let stdin = tokio::sync::Mutex::new(child.stdin.take().expect("stdin"));
        let mut user = Self { jid: jid.to_owned(), stdin, shared, next_id: AtomicU64::new(1), child };
        let ready = user.wait_for(READY_TIMEOUT, |e| matches!(e["type"].as_str(), Some("ready" | "failed_auth"))).await;
        assert!(ready["type"] == "ready", "{jid} could not log in: {ready}\n{}", user.stderr_tail());
        user.jid = ready["jid"].as_str().expect("ready has the full jid").to_owned();
        user
    }

    /// The full JID the server bound (`user@localhost/resource`).
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// The bare JID (`user@localhost`).
    pub fn bare_jid(&self) -> &str {
        self.jid.split('/').next().unwrap_or(&self.jid)
    }

    /// Runs a driver command; `Ok` holds the result's `data`, `Err` the driver's error text.
    pub async fn command(&self, name: &str, args: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.state.lock().expect("state").pending.insert(id, tx);
        let line = format!("{}\n", json!({ "id": id, "cmd": name, "args": args }));
        let mut stdin = self.stdin.lock().await;
        if let Err(e) = stdin.write_all(line.as_bytes()).await.and(stdin.flush().await) {
            return Err(format!("driver gone ({e}); stderr:\n{}", self.stderr_tail()));
        }
        drop(stdin);
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(result)) if result["ok"] == true => Ok(result["data"].clone()),
            Ok(Ok(result)) => Err(result["error"].as_str().unwrap_or("unknown error").to_owned()),
            Ok(Err(_)) => Err(format!("driver exited during {name}; stderr:\n{}", self.stderr_tail())),
            Err(_) => Err(format!("{name} got no result within {COMMAND_TIMEOUT:?}")),
        }
    }

    /// Like [`command`](Self::command), panicking with the command name on error.
    pub async fn must(&self, name: &str, args: Value) -> Value {
        self.command(name, args).await.unwrap_or_else(|e| panic!("{} {name} failed: {e}", self.jid))
    }

    /// Joins a MUC room as `nick`; returns `{occupants, self, subject}` once the room sent its subject.
    pub async fn join_muc(&self, room: &str, nick: &str) -> Value {
        self.must("join_muc", json!({ "room": room, "nick": nick })).await
    }

    /// Leaves a MUC room.
    pub async fn leave_muc(&self, room: &str) {
        self.must("leave_muc", json!({ "room": room })).await;
    }

    /// Sends a message; `args` as the driver's `send` (to, type, body, reply_to, oob_url, ...).
    pub async fn send(&self, args: Value) -> Sent {
        sent(self.must("send", args).await)
    }

    /// Sends a groupchat message with a body to a room.
    pub async fn send_groupchat(&self, room: &str, body: &str) -> Sent {
        self.send(json!({ "to": room, "type": "groupchat", "body": body })).await
    }

    /// Sends a chat message with a body to a JID.
    pub async fn send_chat(&self, to: &str, body: &str) -> Sent {
        self.send(json!({ "to": to, "type": "chat", "body": body })).await
    }

    /// Corrects message `replace_id` (XEP-0308) with a new body.
    pub async fn correct(&self, to: &str, msg_type: &str, replace_id: &str, body: &str) -> Sent {
        let args = json!({ "to": to, "type": msg_type, "replace_id": replace_id, "body": body });
        sent(self.must("correct", args).await)
    }

    /// Retracts message `id` (XEP-0424 v1, with a fallback body).
    pub async fn retract(&self, to: &str, msg_type: &str, id: &str) -> Sent {
        sent(self.must("retract", json!({ "to": to, "type": msg_type, "id": id })).await)
    }

    /// Sets this user's full reaction set on message `id` (XEP-0444); empty removes all.
    pub async fn react(&self, to: &str, msg_type: &str, id: &str, reactions: &[&str]) -> Sent {
        sent(self.must("react", json!({ "to": to, "type": msg_type, "id": id, "reactions": reactions })).await)
    }

    /// Sends a bare chat state (XEP-0085), e.g. `composing`.
    pub async fn chat_state(&self, to: &str, msg_type: &str, state: &str) {
        self.must("chat_state", json!({ "to": to, "type": msg_type, "state": state })).await;
    }

    /// Marks message `id` as displayed (XEP-0333).
    pub async fn displayed(&self, to: &str, msg_type: &str, id: &str) {
        self.must("displayed", json!({ "to": to, "type": msg_type, "id": id })).await;
    }

    /// Broadcasts presence with an optional show (`away`, `dnd`, ...) and status text.
    pub async fn presence(&self, show: Option<&str>, status: Option<&str>) {
        self.must("presence", json!({ "show": show, "status": status })).await;
    }

    /// Uploads bytes via XEP-0363 to upload.localhost; returns the GET URL.
    pub async fn upload(&self, data: &[u8], filename: &str, content_type: &str) -> String {
        let args = json!({ "data_b64": base64(data), "filename": filename, "content_type": content_type });
        let data = self.must("upload", args).await;
        data["get_url"].as_str().expect("get_url").to_owned()
    }

    /// The newest `max` messages of a room's archive (XEP-0313), oldest first.
    pub async fn mam_room(&self, room: &str, max: u32) -> Vec<Value> {
        mam_messages(self.must("mam", json!({ "room": room, "max": max })).await)
    }

    /// A room's whole archive, oldest first, fetched page by page.
    pub async fn mam_room_all(&self, room: &str) -> Vec<Value> {
        mam_messages(self.must("mam", json!({ "room": room, "max": 100, "all": true, "timeout": 30 })).await)
    }

    /// The newest `max` messages exchanged with `with`, from this user's own archive.
    pub async fn mam_with(&self, with: &str, max: u32) -> Vec<Value> {
        mam_messages(self.must("mam", json!({ "with": with, "max": max })).await)
    }

    /// Sends raw XML on the stream, unchecked (for hostile input).
    pub async fn raw(&self, xml: &str) {
        self.must("raw", json!({ "xml": xml })).await;
    }

    /// Publishes an avatar in the vCard (Prosody mirrors it to XEP-0084); returns its SHA-1.
    pub async fn vcard_avatar(&self, data: &[u8], mime: &str) -> String {
        let data = self.must("vcard_avatar", json!({ "data_b64": base64(data), "mime": mime })).await;
        data["sha1"].as_str().expect("sha1").to_owned()
    }

    /// Service discovery info of `jid`: `{identities, features, raw}`.
    pub async fn disco_info(&self, jid: &str) -> Result<Value, String> {
        self.command("disco_info", json!({ "jid": jid })).await
    }

    /// Service discovery items of `jid`.
    pub async fn disco_items(&self, jid: &str) -> Result<Vec<Value>, String> {
        let data = self.command("disco_items", json!({ "jid": jid })).await?;
        Ok(data["items"].as_array().cloned().unwrap_or_default())
    }

    /// Closes the stream cleanly and waits (briefly) for the driver to exit.
    pub async fn quit(self) {
        let _ = self.command("quit", json!({})).await;
        let mut child = self.child;
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }

    /// Waits for the first not yet consumed event matching `predicate` and consumes it.
    /// Other events stay for later waits. Panics on timeout or if the driver exits,
    /// showing the last events seen.
    pub async fn wait_for(&self, timeout: Duration, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so an event arriving in between still wakes us.
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let closed = {
                let mut state = self.shared.state.lock().expect("state");
                if let Some(pos) = state.inbox.iter().position(&predicate) {
                    return state.inbox.remove(pos).expect("position is in range");
                }
                state.closed
            };
            let timed_out = closed || tokio::time::timeout_at(deadline, notified).await.is_err();
            if timed_out {
                let why = if closed { "the driver exited" } else { "timed out" };
                panic!(
                    "{}: no matching event within {timeout:?} ({why}); last events:\n{}\ndriver stderr:\n{}",
                    self.jid,
                    self.recent_events(8),
                    self.stderr_tail()
                );
            }
        }
    }

    /// Every event received so far, consumed or not, oldest first.
    pub fn events_seen(&self) -> Vec<Value> {
        self.shared.state.lock().expect("state").seen.clone()
    }

    /// The last `n` events, one line each without their raw XML, for failure messages.
    pub fn recent_events(&self, n: usize) -> String {
        let state = self.shared.state.lock().expect("state");
        let lines: Vec<String> = state.seen[state.seen.len().saturating_sub(n)..]
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(map) = e.as_object_mut() {
                    map.remove("raw");
                    map.retain(|_, v| !(v.is_null() || v == &json!([]) || v == &json!(false)));
                }
                format!("  {e}")
            })
            .collect();
        lines.join("\n")
    }

    fn stderr_tail(&self) -> String {
        let state = self.shared.state.lock().expect("state");
        state.stderr.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Routes results to their waiting command and keeps every other line as an event.
async fn read_stdout(stdout: tokio::process::ChildStdout, shared: Arc<Shared>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            shared.state.lock().expect("state").stderr.push_back(format!("(unparsable stdout) {line}"));
            continue;
        };
        let mut state = shared.state.lock().expect("state");
        if value["type"] == "result" {
            if let Some(tx) = value["id"].as_u64().and_then(|id| state.pending.remove(&id)) {
                let _ = tx.send(value);
            }
        } else {
            state.seen.push(value.clone());
            state.inbox.push_back(value);
        }
        drop(state);
        shared.notify.notify_waiters();
    }
    let mut state = shared.state.lock().expect("state");
    state.closed = true;
    // Dropping the senders fails every command still waiting.
    state.pending.clear();
    drop(state);
    shared.notify.notify_waiters();
}

async fn read_stderr(stderr: tokio::process::ChildStderr, shared: Arc<Shared>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut state = shared.state.lock().expect("state");
        state.stderr.push_back(line);
        if state.stderr.len() > STDERR_LINES {
            state.stderr.pop_front();
        }
    }
}

fn driver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("xmpp_client.py")
}

fn sent(data: Value) -> Sent {
    Sent {
        id: data["id"].as_str().expect("sent stanza id").to_owned(),
        origin_id: data["origin_id"].as_str().map(str::to_owned),
    }
}

fn mam_messages(data: Value) -> Vec<Value> {
    data["messages"].as_array().cloned().unwrap_or_default()
}

/// Padded standard base64, as Python's `b64decode` requires.
fn base64(data: &[u8]) -> String {
    let mut s = brygga_harness::base64_unpadded(data);
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}
