//! A throwaway Prosody XMPP server on 127.0.0.1 (Debian's package), with a MUC
//! service, HTTP file upload and external components (XEP-0114) for the bridge.

use crate::process::{ProcessGuard, rm_rf_snippet};
use crate::{HarnessError, TempDir, ports, tail, workspace_root};
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Prosody is ready in well under a second; generous for loaded CI machines.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// What Prosody logs when a port cannot be bound; it keeps running without it.
const PORT_TAKEN: &str = "Failed to open server port";
/// Largest file `upload.localhost` accepts.
pub const UPLOAD_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// What to start Prosody with.
#[derive(Debug, Clone, Default)]
pub struct ProsodyOptions {
    /// External components as `(domain, secret)`, e.g. `("bridge.localhost", "s3cret")`.
    pub components: Vec<(String, String)>,
    /// Users `(localpart, password)` registered on `localhost` before the start.
    pub users: Vec<(String, String)>,
    /// Lua lines for the global section (before the first VirtualHost), e.g. limits.
    pub extra_global: String,
}

/// A running Prosody; dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct Prosody {
    // Field order matters: the process must stop before its directory goes.
    process: Option<ProcessGuard>,
    dir: TempDir,
    c2s_port: u16,
    component_port: u16,
    http_port: u16,
}

/// The venv holding slixmpp for the test client: `$BRYGGA_XMPP_VENV`, else `<workspace>/.venv-xmpp`.
pub fn xmpp_venv_dir() -> PathBuf {
    std::env::var_os("BRYGGA_XMPP_VENV").map_or_else(|| workspace_root().join(".venv-xmpp"), PathBuf::from)
}

/// Debian's community module for XEP-0425 message moderation (package `prosody-modules`).
pub const MODERATION_MODULE: &str = "/usr/lib/prosody/modules/mod_muc_moderation/mod_muc_moderation.lua";

/// The Prosody binary: `$BRYGGA_PROSODY`, else `/usr/bin/prosody` (prosodyctl lives next to it).
pub fn prosody_binary() -> PathBuf {
    std::env::var_os("BRYGGA_PROSODY").map_or_else(|| PathBuf::from("/usr/bin/prosody"), PathBuf::from)
}

impl Prosody {
    /// Writes config and certificate into a fresh temp dir, registers the users,
    /// starts Prosody and waits until its c2s, component and HTTP ports accept connections.
    pub fn start(opts: ProsodyOptions) -> Result<Self, HarnessError> {
        if !prosody_binary().exists() {
            return Err(HarnessError::new(format!(
                "Prosody not found at {} (set BRYGGA_PROSODY); run `cargo xtask test` to install it",
                prosody_binary().display()
            )));
        }
        if !Path::new(MODERATION_MODULE).exists() {
            return Err(HarnessError::new(format!(
                "{MODERATION_MODULE} is missing: apt-get install prosody-modules (or run `cargo xtask test`)"
            )));
        }
        // A free port can be taken by someone else before Prosody binds it; retry then.
        let mut last_error = HarnessError::new("Prosody was not started");
        for _ in 0..3 {
            let dir = TempDir::new("prosody")?;
            let mut prosody = Self {
                process: None,
                dir,
                c2s_port: ports::free_port(),
                component_port: ports::free_port(),
                http_port: ports::free_port(),
            };
            prosody.write_files(&opts)?;
            for (user, password) in &opts.users {
                prosody.register(user, password)?;
            }
            match prosody.launch() {
                Ok(()) => return Ok(prosody),
                Err((e, port_taken)) if port_taken => last_error = e,
                Err((e, _)) => return Err(e),
            }
        }
        Err(last_error)
    }

    fn write_files(&self, opts: &ProsodyOptions) -> Result<(), HarnessError> {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("data"))?;
        std::fs::create_dir_all(d.join("certs"))?;
        let mut names = vec![self.domain().to_owned(), self.muc_domain().to_owned(), self.upload_domain().to_owned()];
        names.extend(opts.components.iter().map(|(domain, _)| domain.clone()));
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        run(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=localhost"])
                .arg("-addext")
                .arg(format!("subjectAltName={}", san.join(",")))
                .arg("-keyout")
                .arg(d.join("certs/localhost.key"))
                .arg("-out")
                .arg(d.join("certs/localhost.crt")),
            "openssl req",
        )
        .map_err(|e| HarnessError::new(format!("{e}\n(on Debian: apt-get install openssl)")))?;
        std::fs::write(self.config_path(), self.config_lua(opts))?;
        Ok(())
    }

    fn config_lua(&self, opts: &ProsodyOptions) -> String {
        let (base, c2s, comp, http) =
            (lua_str(&self.dir.path().to_string_lossy()), self.c2s_port, self.component_port, self.http_port);
        let components: String = opts
            .components
            .iter()
            .map(|(domain, secret)| {
                format!("Component {}\n  component_secret = {}\n", lua_str(domain), lua_str(secret))
            })
            .collect();
        format!(
            r#"local base = {base}
run_as_root = true
pidfile = base.."/prosody.pid"
data_path = base.."/data"
interfaces = {{ "127.0.0.1" }}; local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}; c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {comp} }}; component_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{ }}; s2s_ports = {{ }}
http_ports = {{ {http} }}; http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}; https_interfaces = {{ }}
modules_enabled = {{ "disco"; "roster"; "saslauth"; "tls"; "private"; "vcard4"; "vcard_legacy";
  "pep"; "carbons"; "ping"; "time"; "uptime"; "version"; "register"; "mam"; "smacks"; }}
modules_disabled = {{ "s2s"; "offline"; }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
ssl = {{ certificate = base.."/certs/localhost.crt"; key = base.."/certs/localhost.key"; }}
authentication = "internal_hashed"; storage = "internal"; allow_registration = false
archive_expires_after = "never"; default_archive_policy = true
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = base.."/prosody.log" }} }}
{extra}
VirtualHost "localhost"
Component "conference.localhost" "muc"
  modules_enabled = {{ "muc_mam"; "muc_moderation" }}
  restrict_room_creation = false
  -- Rooms open on the first join (no owner configuration step) and outlive restarts.
  muc_room_locking = false
  muc_room_default_public = true
  muc_room_default_persistent = true
  muc_log_by_default = true
  muc_log_all_rooms = true
Component "upload.localhost" "http_file_share"
  http_file_share_size_limit = {UPLOAD_SIZE_LIMIT}
  http_file_share_daily_quota = {quota}
  http_host = "127.0.0.1"
  http_external_url = "http://127.0.0.1:{http}/"
{components}"#,
            extra = opts.extra_global,
            quota = UPLOAD_SIZE_LIMIT * 64,
        )
    }

    /// Starts the process on the current ports and waits until it is ready; `Err((_, true))` if a port was taken.
    fn launch(&mut self) -> Result<(), (HarnessError, bool)> {
        let fail = |e: HarnessError| (e, false);
        let d = self.dir.path();
        let log_path = self.log_path();
        // Prosody logs to prosody.log itself; its stdout/stderr only hold early startup errors.
        let out = File::options().create(true).append(true).open(d.join("stdout.log")).map_err(|e| fail(e.into()))?;
        let err = out.try_clone().map_err(|e| fail(e.into()))?;
        let mut cmd = Command::new(prosody_binary());
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("-F")
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut process = ProcessGuard::spawn("prosody", &mut cmd, &rm_rf_snippet(d)).map_err(fail)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = || format!("{}\n{}", tail(&d.join("stdout.log"), 10), tail(&log_path, 30));
            if let Some(status) = process.exited() {
                return Err(fail(HarnessError::new(format!("Prosody exited early ({status}); log tail:\n{}", log()))));
            }
            if std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains(PORT_TAKEN)) {
                process.stop(Duration::from_secs(2));
                return Err((HarnessError::new(format!("Prosody could not bind a port; log tail:\n{}", log())), true));
            }
            if [self.c2s_port, self.component_port, self.http_port].iter().all(|p| accepts(*p)) {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(fail(HarnessError::new(format!(
                    "Prosody ports did not open within {READY_TIMEOUT:?}; log tail:\n{}",
                    log()
                ))));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Registers (or re-passwords) `user@localhost`; works whether or not Prosody is running.
    pub fn register(&self, user: &str, password: &str) -> Result<(), HarnessError> {
        let prosodyctl = prosody_binary().with_file_name("prosodyctl");
        let config = self.config_path();
        let mut cmd = Command::new(prosodyctl);
        cmd.arg("--config").arg(&config).args(["register", user, self.domain(), password]);
        run(&mut cmd, &format!("prosodyctl register {user}"))
    }

    /// Stops Prosody (SIGTERM, then SIGKILL after `grace`) and starts it again on
    /// the same ports and data directory, waiting until it is ready.
    pub fn restart(&mut self, grace: Duration) -> Result<(), HarnessError> {
        self.stop_with(grace);
        self.launch().map_err(|(e, _)| e)
    }

    /// Stops Prosody cleanly (it closes its streams); the directory stays until drop.
    pub fn stop(&mut self) {
        self.stop_with(Duration::from_secs(10));
    }

    fn stop_with(&mut self, grace: Duration) {
        if let Some(mut process) = self.process.take() {
            process.stop(grace);
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// The client-to-server port (plain TCP, STARTTLS offered but not required).
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// The XEP-0114 external component port.
    pub fn component_port(&self) -> u16 {
        self.component_port
    }

    /// The HTTP port serving uploaded files.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The user domain, always `localhost`.
    pub fn domain(&self) -> &'static str {
        "localhost"
    }

    /// The MUC service, `conference.localhost`.
    pub fn muc_domain(&self) -> &'static str {
        "conference.localhost"
    }

    /// The XEP-0363 upload service, `upload.localhost`.
    pub fn upload_domain(&self) -> &'static str {
        "upload.localhost"
    }

    /// Prosody's directory (config, certs, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Prosody's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// The last `lines` lines of Prosody's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }
}

/// A Lua string literal.
fn lua_str(s: &str) -> String {
    format!("{s:?}")
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Runs `cmd`; errors name it as `what`, not by its arguments, which may hold a password.
fn run(cmd: &mut Command, what: &str) -> Result<(), HarnessError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| HarnessError::new(format!("running {what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::new(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
