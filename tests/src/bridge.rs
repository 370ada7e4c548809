//! The test bridge as a separate process: its config, registration, start,
//! health wait and SIGKILL, shared by every end-to-end environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use brygga_harness::process::ProcessGuard;
use brygga_harness::{ports, random_hex};

/// Ports, tokens and the store of one bridge.
pub struct BridgeSetup {
    /// The homeserver's port.
    pub hs_port: u16,
    /// The appservice listener's port.
    pub as_port: u16,
    /// The admin listener's port.
    pub admin_port: u16,
    /// The token the homeserver presents to the bridge.
    pub hs_token: String,
    /// The token the bridge presents to the homeserver.
    pub as_token: String,
    /// The store URL.
    pub db_url: String,
    /// The operator's admin API token.
    pub operator_token: String,
}

impl BridgeSetup {
    /// Fresh ports and tokens for a bridge on `db_url`.
    pub fn new(db_url: String) -> Self {
        Self {
            hs_port: ports::free_port(),
            as_port: ports::free_port(),
            admin_port: ports::free_port(),
            hs_token: random_hex(20),
            as_token: random_hex(20),
            db_url,
            operator_token: random_hex(20),
        }
    }

    /// The bridge config with the given `tenants:` entries (YAML list items).
    pub fn config(&self, tenants_yaml: &str) -> String {
        let Self { hs_port, as_port, admin_port, hs_token, as_token, db_url, operator_token } = self;
        format!(
            "homeserver: {{ url: \"http://127.0.0.1:{hs_port}\", server_name: \"localhost\" }}\n\
             appservice:\n  id: brygga\n  listen: \"127.0.0.1:{as_port}\"\n  url: \"http://127.0.0.1:{as_port}\"\n  \
             as_token: \"{as_token}\"\n  hs_token: \"{hs_token}\"\n  bot_localpart: brygga\n\
             database: {{ url: \"{db_url}\" }}\n\
             admin: {{ listen: \"127.0.0.1:{admin_port}\", operator_token: \"{operator_token}\" }}\n\
             media: {{ public_url: \"http://127.0.0.1:{as_port}\", secret: \"{hs_token}-media\" }}\n\
             logging: {{ level: \"info,brygga_core=debug,brygga_xmpp=debug\" }}\n\
             tenants:\n{tenants_yaml}"
        )
    }
}

/// One bridge process (restartable) with its config in a test directory.
pub struct BridgeProcess {
    dir: PathBuf,
    config_path: PathBuf,
    admin_url: String,
    process: Option<ProcessGuard>,
    starts: u32,
}

impl BridgeProcess {
    /// Writes the config into `dir`; starts nothing.
    pub fn new(dir: &Path, config: &str, admin_port: u16) -> Self {
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("write config");
        Self {
            dir: dir.to_owned(),
            config_path,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            process: None,
            starts: 0,
        }
    }

    /// Runs a CLI command of the bridge against its config; returns stdout,
    /// or panics with stderr.
    pub fn cli(&self, args: &[&str]) -> String {
        let output =
            Command::new(bridge_binary()).arg("-c").arg(&self.config_path).args(args).output().expect("run the CLI");
        assert!(output.status.success(), "brygga {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a CLI command that must fail; returns its stderr.
    pub fn cli_failure(&self, args: &[&str]) -> String {
        let output =
            Command::new(bridge_binary()).arg("-c").arg(&self.config_path).args(args).output().expect("run the CLI");
        assert!(!output.status.success(), "brygga {args:?} succeeded: {}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Generates the appservice registration and returns it.
    pub fn registration(&self) -> String {
        let path = self.dir.join("registration.yaml");
        self.cli(&["generate-registration", "-o", path.to_str().expect("utf-8 path")]);
        std::fs::read_to_string(&path).expect("registration written")
    }

    /// Starts the process and waits until its admin listener answers.
    pub async fn start(&mut self) {
        assert!(self.process.is_none(), "bridge already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let mut command = Command::new(bridge_binary());
        command.arg("-c").arg(&self.config_path).arg("run").stdout(Stdio::null()).stderr(log);
        self.process = Some(ProcessGuard::spawn("brygga-test-bridge", &mut command, "").expect("spawn bridge"));
        let health = format!("{}/health", self.admin_url);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.process.as_mut().and_then(ProcessGuard::exited) {
                panic!("bridge exited with {status}:\n{}", self.log());
            }
            assert!(tokio::time::Instant::now() < deadline, "bridge never became healthy:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        // Dropping the guard sends SIGKILL and reaps the process.
        drop(self.process.take().expect("bridge running"));
    }

    /// The current log, for failure messages.
    pub fn log(&self) -> String {
        brygga_harness::tail(&self.log_path(), 60)
    }

    /// The admin listener base URL.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("bridge-{}.log", self.starts))
    }
}

/// The test bridge binary built from this package. Cargo builds a package's
/// binaries before its integration tests, next to their `deps/` folder.
pub fn bridge_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target profile dir");
    let binary = profile_dir.join("brygga-test-bridge");
    assert!(binary.exists(), "{} missing: run the tests through cargo", binary.display());
    binary
}
