//! A throwaway Synapse homeserver on 127.0.0.1 with SQLite, from the venv that
//! `cargo xtask test` installs.

use crate::process::{ProcessGuard, rm_rf_snippet};
use crate::{HarnessError, TempDir, base64_unpadded, http, ports, random_bytes, tail, workspace_root};
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long Synapse may take to answer `/versions`; generous because tests run
/// servers in parallel on small CI machines.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// What to start Synapse with.
#[derive(Debug, Clone, Default)]
pub struct SynapseOptions {
    /// An appservice registration file's YAML; written next to homeserver.yaml and loaded.
    pub registration_yaml: Option<String>,
    /// A fixed port instead of a free one.
    pub port: Option<u16>,
    /// Raise every `rc_*` rate limit so load tests are not throttled with 429s.
    pub relaxed_rate_limits: bool,
    /// Turn on what an encrypting appservice needs: to-device messages (MSC2409)
    /// and device lists and one-time-key counts (MSC3202) in transactions.
    /// Device masquerading and appservice device management (MSC4190) need no
    /// server flag in Synapse 1.163, only the registration's own keys.
    pub appservice_encryption: bool,
    /// YAML appended to homeserver.yaml; a repeated top-level key overrides the earlier one.
    pub extra_yaml: String,
}

/// A running Synapse; dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct Synapse {
    // Field order matters: the process must stop before its directory goes.
    process: ProcessGuard,
    dir: TempDir,
    port: u16,
}

/// The Synapse venv: `$BRYGGA_SYNAPSE_VENV`, else `<workspace>/.venv-synapse`.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("BRYGGA_SYNAPSE_VENV").map_or_else(|| workspace_root().join(".venv-synapse"), PathBuf::from)
}

impl Synapse {
    /// Writes a config into a fresh temp dir, starts Synapse and waits until it answers.
    pub fn start(opts: SynapseOptions) -> Result<Self, HarnessError> {
        let python = venv_dir().join("bin/python");
        if !python.exists() {
            return Err(HarnessError::new(format!(
                "Synapse venv not found at {} (set BRYGGA_SYNAPSE_VENV); run `cargo xtask test` to install it",
                venv_dir().display()
            )));
        }
        // A free port can be taken by someone else before Synapse binds it; retry then.
        let attempts = if opts.port.is_some() { 1 } else { 3 };
        let mut last_error = HarnessError::new("Synapse was not started");
        for _ in 0..attempts {
            let port = opts.port.unwrap_or_else(ports::free_port);
            match Self::start_once(&python, &opts, port) {
                Ok(synapse) => return Ok(synapse),
                Err((e, port_taken)) if port_taken => last_error = e,
                Err((e, _)) => return Err(e),
            }
        }
        Err(last_error)
    }

    fn start_once(python: &Path, opts: &SynapseOptions, port: u16) -> Result<Self, (HarnessError, bool)> {
        let fail = |e: HarnessError| (e, false);
        let dir = TempDir::new("synapse").map_err(fail)?;
        let d = dir.path();
        write_signing_key(&d.join("localhost.signing.key")).map_err(fail)?;
        let registration = d.join("registration.yaml");
        if let Some(yaml) = &opts.registration_yaml {
            std::fs::write(&registration, yaml).map_err(|e| fail(e.into()))?;
        }
        let config = d.join("homeserver.yaml");
        let yaml = homeserver_yaml(d, port, opts.registration_yaml.as_ref().map(|_| registration.as_path()), opts);
        std::fs::write(&config, yaml).map_err(|e| fail(e.into()))?;

        let log_path = d.join("synapse.log");
        let log = File::create(&log_path).map_err(|e| fail(e.into()))?;
        let log_err = log.try_clone().map_err(|e| fail(e.into()))?;
        let mut cmd = Command::new(python);
        cmd.args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let process = ProcessGuard::spawn("synapse", &mut cmd, &rm_rf_snippet(d)).map_err(fail)?;
        let mut synapse = Self { process, dir, port };

        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/_matrix/client/versions", synapse.base_url());
        loop {
            if let Some(status) = synapse.process.exited() {
                let log = tail(&log_path, 30);
                let port_taken = log.contains("Address already in use");
                return Err((
                    HarnessError::new(format!("Synapse exited early ({status}); log tail:\n{log}")),
                    port_taken,
                ));
            }
            if http::get(&url).is_ok_and(|r| r.status == 200) {
                return Ok(synapse);
            }
            if Instant::now() > deadline {
                let log = tail(&log_path, 30);
                return Err(fail(HarnessError::new(format!(
                    "Synapse did not answer {url} within {READY_TIMEOUT:?}; log tail:\n{log}"
                ))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The client API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The homeserver's server name, always `localhost`.
    pub fn server_name(&self) -> &'static str {
        "localhost"
    }

    /// Synapse's working directory (config, database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Synapse's combined stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("synapse.log")
    }

    /// Registers an ordinary user via the m.login.dummy flow; returns `(user_id, access_token)`.
    pub fn register_user(&self, localpart: &str, password: &str) -> Result<(String, String), HarnessError> {
        let url = format!("{}/_matrix/client/v3/register", self.base_url());
        let mut body = json!({ "username": localpart, "password": password });
        let mut response = http::send_json("POST", &url, None, &body)?;
        if response.status == 401 {
            // User-interactive auth: repeat the request with the session Synapse handed out.
            let session = response.json()?["session"].clone();
            body["auth"] = json!({ "type": "m.login.dummy", "session": session });
            response = http::send_json("POST", &url, None, &body)?;
        }
        let reply = response.json()?;
        match (response.status, reply["user_id"].as_str(), reply["access_token"].as_str()) {
            (200, Some(user_id), Some(token)) => Ok((user_id.to_owned(), token.to_owned())),
            _ => {
                Err(HarnessError::new(format!("registering {localpart}: HTTP {}: {}", response.status, response.body)))
            }
        }
    }
}

/// Writes a fresh ed25519 key in Synapse's format so no `--generate-keys` run is needed.
fn write_signing_key(path: &Path) -> Result<(), HarnessError> {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let version: String = random_bytes(4).iter().map(|b| ALNUM[usize::from(*b) % ALNUM.len()] as char).collect();
    let seed = base64_unpadded(&random_bytes(32));
    std::fs::write(path, format!("ed25519 a_{version} {seed}\n"))?;
    Ok(())
}

fn homeserver_yaml(dir: &Path, port: u16, registration: Option<&Path>, opts: &SynapseOptions) -> String {
    let d = dir.display();
    let appservices = registration.map_or_else(|| "[]".to_owned(), |p| format!("[\"{}\"]", p.display()));
    let mut yaml = format!(
        r#"server_name: "localhost"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: "{d}/homeserver.pid"
listeners:
  - {{port: {port}, bind_addresses: ['127.0.0.1'], type: http, tls: false,
     x_forwarded: false, resources: [{{names: [client], compress: false}}]}}
database: {{name: sqlite3, args: {{database: "{d}/homeserver.db"}}}}
media_store_path: "{d}/media_store"
signing_key_path: "{d}/localhost.signing.key"
report_stats: false
macaroon_secret_key: "test_macaroon_secret"
form_secret: "test_form_secret"
registration_shared_secret: "test_shared_secret"
enable_registration: true
enable_registration_without_verification: true
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
app_service_config_files: {appservices}
"#
    );
    if opts.relaxed_rate_limits {
        yaml.push_str(&relaxed_rate_limits_yaml());
    }
    if opts.appservice_encryption {
        yaml.push_str(APPSERVICE_ENCRYPTION_YAML);
    }
    yaml.push_str(&opts.extra_yaml);
    yaml.push('\n');
    yaml
}

/// The experimental flags Synapse 1.163 reads for appservice encryption. The
/// key query and one-time-key claim proxies (MSC3983, MSC3984) stay off: ghost
/// devices upload their keys to Synapse, so it answers those itself.
const APPSERVICE_ENCRYPTION_YAML: &str = "experimental_features:
  msc2409_to_device_messages_enabled: true
  msc3202_transaction_extensions: true
";

/// Every `RatelimitSettings` key Synapse reads (checked against Synapse 1.163's
/// ratelimiting config), each set far above what a test can produce.
fn relaxed_rate_limits_yaml() -> String {
    const FLAT: &[&str] = &[
        "rc_message",
        "rc_registration",
        "rc_registration_token_validity",
        "rc_admin_redaction",
        "rc_joins_per_room",
        "rc_key_requests",
        "rc_3pid_validation",
        "rc_third_party_invite",
        "rc_media_create",
        "rc_delayed_event_mgmt",
        "rc_room_creation",
        "rc_reports",
        "rc_user_directory",
        "rc_profile",
    ];
    const NESTED: &[(&str, &[&str])] = &[
        ("rc_login", &["address", "account", "failed_attempts"]),
        ("rc_joins", &["local", "remote"]),
        ("rc_invites", &["per_room", "per_user", "per_issuer"]),
        ("rc_presence", &["per_user"]),
    ];
    let limit = "{per_second: 10000, burst_count: 10000}";
    let mut yaml = String::new();
    for key in FLAT {
        yaml.push_str(&format!("{key}: {limit}\n"));
    }
    for (key, subs) in NESTED {
        yaml.push_str(&format!("{key}:\n"));
        for sub in *subs {
            yaml.push_str(&format!("  {sub}: {limit}\n"));
        }
    }
    yaml
}
