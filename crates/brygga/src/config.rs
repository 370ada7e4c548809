//! The bridge config: a YAML file plus `BRYGGA_<SECTION>__<KEY>` environment
//! overrides. Errors name the key and the problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use brygga_core::naming::Template;
use brygga_core::{MatrixUserId, TenantId};
use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use serde::Deserialize;
use url::Url;

/// A config that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable has a wrong or missing key.
    #[error("{0}")]
    Parse(String),
    /// A value is well-formed but unusable.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The whole config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The homeserver the bridge serves.
    pub homeserver: HomeserverConfig,
    /// The application service registration and listener.
    pub appservice: AppserviceConfig,
    /// The store.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The admin listener (health and metrics).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Log output.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Public links to Matrix media, for platforms that take files by URL (XMPP).
    #[serde(default)]
    pub media: Option<MediaConfig>,
    /// Tenants created at start-up when missing.
    #[serde(default)]
    pub tenants: Vec<TenantSeed>,
    /// Several processes sharing one PostgreSQL store, each owning some tenants.
    #[serde(default)]
    pub shard: Option<ShardConfig>,
    /// End-to-bridge encryption of portal rooms.
    #[serde(default)]
    pub encryption: Option<crate::encryption::EncryptionConfig>,
}

/// This process's part in a group of processes sharing one PostgreSQL
/// store: each tenant is owned by one of them at a time, through a lease.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// This process's id among them (default: made up at each start).
    #[serde(default)]
    pub node_id: Option<String>,
    /// Seconds after which the tenants of a silent process are taken over.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u32,
    /// Where the other processes reach this one's admin listener.
    pub admin_url: Url,
    /// Where the other processes reach this one's appservice listener.
    pub appservice_url: Url,
}

fn default_lease_seconds() -> u32 {
    30
}

/// Signed public links to Matrix media, served on the appservice listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Base URL under which remote users reach the appservice listener.
    pub public_url: Url,
    /// Key that signs the links (set it from the environment: `BRYGGA_MEDIA__SECRET`).
    pub secret: String,
    /// Days a link stays valid.
    #[serde(default = "default_link_days")]
    pub link_days: u32,
}

fn default_link_days() -> u32 {
    7
}

/// Where the homeserver is.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// Client-server API base URL.
    pub url: Url,
    /// The server name in user ids.
    pub server_name: String,
}

/// The appservice side.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    /// Registration id.
    #[serde(default = "default_id")]
    pub id: String,
    /// Address the bridge listens on for the homeserver.
    pub listen: SocketAddr,
    /// URL the homeserver uses to reach the bridge.
    pub url: Url,
    /// Token the bridge presents to the homeserver (secret).
    pub as_token: String,
    /// Token the homeserver presents to the bridge (secret).
    pub hs_token: String,
    /// Local part of the bridge bot.
    #[serde(default = "default_id")]
    pub bot_localpart: String,
    /// Ghost localpart template.
    #[serde(default = "default_template")]
    pub ghost_template: String,
    /// Portal alias localpart template.
    #[serde(default = "default_template")]
    pub alias_template: String,
    /// Largest transaction body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

/// The store.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (default) or `postgres://...`.
    #[serde(default = "default_db")]
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: default_db() }
    }
}

/// The admin listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address for `/health`, `/metrics` and the admin API.
    #[serde(default = "default_admin")]
    pub listen: SocketAddr,
    /// The operator's API token (full access); set it from the environment
    /// (`BRYGGA_ADMIN__OPERATOR_TOKEN`). Without it only tenant admins' tokens work.
    #[serde(default)]
    pub operator_token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: default_admin(), operator_token: None }
    }
}

/// Log output.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter, such as `info` or `brygga_core=debug,info`.
    #[serde(default = "default_level")]
    pub level: String,
    /// `pretty` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: default_level(), format: LogFormat::Pretty }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A tenant declared in the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSeed {
    /// Tenant id.
    pub id: TenantId,
    /// Human-readable name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Matrix users invited into every new portal.
    #[serde(default)]
    pub invite: Vec<MatrixUserId>,
    /// Matrix servers the tenant's portals may federate with.
    #[serde(default)]
    pub allowed_servers: Vec<String>,
    /// Matrix users who administer the tenant through the bridge bot.
    #[serde(default)]
    pub matrix_admins: Vec<MatrixUserId>,
    /// Days to keep bridged content.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Which files may cross.
    #[serde(default)]
    pub media: brygga_core::MediaPolicy,
    /// Whether portals may (`allow`), must (`require`) or must not (`deny`) be encrypted rooms.
    #[serde(default)]
    pub encryption: brygga_core::EncryptionPolicy,
    /// Adapter configs by kind.
    #[serde(default)]
    pub adapters: BTreeMap<String, AdapterSeed>,
}

/// An adapter declared for a tenant in the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSeed {
    /// Whether it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Adapter-specific settings.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn default_id() -> String {
    "brygga".into()
}
fn default_template() -> String {
    "{kind}_{tenant}_{id}".into()
}
fn default_max_body() -> usize {
    32 * 1024 * 1024
}
fn default_db() -> String {
    "sqlite://brygga.db".into()
}
fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 29334))
}
fn default_level() -> String {
    "info".into()
}
fn yes() -> bool {
    true
}
fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl Config {
    /// Loads a YAML file with `BRYGGA_*` overrides and checks it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Parse(format!("config file {} does not exist", path.display())));
        }
        // Only `BRYGGA_<SECTION>__<KEY>` overrides: plain `BRYGGA_*` variables
        // (BRYGGA_CONFIG, BRYGGA_LOG, the test harness's) are not config keys.
        let env = Env::prefixed("BRYGGA_").filter(|key| key.as_str().contains("__")).split("__");
        let figment = Figment::new().merge(Yaml::file_exact(path)).merge(env);
        Self::from_figment(figment)
    }

    /// Parses a YAML string (no environment), for tests and tools.
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Yaml::string(yaml)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| Err(ConfigError::Invalid { key, problem: problem.to_owned() });
        for (key, url) in [("homeserver.url", &self.homeserver.url), ("appservice.url", &self.appservice.url)] {
            if !matches!(url.scheme(), "http" | "https") {
                return invalid(key, "must be an http:// or https:// URL");
            }
        }
        if self.homeserver.server_name.is_empty() || self.homeserver.server_name.contains(['/', ' ', '@']) {
            return invalid("homeserver.server_name", "must be a server name such as example.org");
        }
        let a = &self.appservice;
        if a.as_token.len() < 16 {
            return invalid("appservice.as_token", "must be at least 16 characters");
        }
        if a.hs_token.len() < 16 {
            return invalid("appservice.hs_token", "must be at least 16 characters");
        }
        if a.as_token == a.hs_token {
            return invalid("appservice.hs_token", "must differ from appservice.as_token");
        }
        if MatrixUserId::new(format!("@{}:{}", a.bot_localpart, self.homeserver.server_name)).is_err()
            || a.bot_localpart.is_empty()
        {
            return invalid("appservice.bot_localpart", "must be a valid Matrix localpart");
        }
        if let Err(e) = Template::new(&a.ghost_template) {
            return invalid("appservice.ghost_template", &e.to_string());
        }
        if let Err(e) = Template::new(&a.alias_template) {
            return invalid("appservice.alias_template", &e.to_string());
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres")) {
            return invalid("database.url", "must start with sqlite:// or postgres://");
        }
        if let Some(encryption) = self.encryption.as_ref().filter(|e| e.enabled) {
            if let Err((key, problem)) = encryption.sealing_key() {
                return invalid(key, &problem);
            }
            if encryption.key_wait_secs == 0 {
                // Keys usually arrive just after their first message.
                return invalid("encryption.key_wait_secs", "must be at least 1");
            }
            if self.shard.is_some() {
                // Each device's Olm state lives in one process's store directory.
                return invalid("encryption.enabled", "cannot be combined with shard (yet)");
            }
        }
        let encrypts = self.encryption.as_ref().is_some_and(|e| e.enabled);
        if !encrypts && self.tenants.iter().any(|t| t.encryption == brygga_core::EncryptionPolicy::Require) {
            return invalid(
                "tenants.encryption",
                "`require` needs end-to-bridge encryption (encryption.enabled: true)",
            );
        }
        if let Some(shard) = &self.shard {
            if !self.database.url.starts_with("postgres") {
                return invalid("shard", "needs a PostgreSQL store (database.url = postgres://...)");
            }
            if shard.lease_seconds < 3 {
                return invalid("shard.lease_seconds", "must be at least 3");
            }
            if shard.node_id.as_ref().is_some_and(|id| id.is_empty() || id.len() > 64) {
                return invalid("shard.node_id", "must be 1 to 64 characters");
            }
            for (key, url) in [("shard.admin_url", &shard.admin_url), ("shard.appservice_url", &shard.appservice_url)] {
                if !matches!(url.scheme(), "http" | "https") {
                    return invalid(key, "must be an http:// or https:// URL");
                }
            }
        }
        if let Some(media) = &self.media {
            if !matches!(media.public_url.scheme(), "http" | "https") {
                return invalid("media.public_url", "must be an http:// or https:// URL");
            }
            if media.secret.len() < 16 {
                return invalid("media.secret", "must be at least 16 characters");
            }
            if media.link_days == 0 {
                return invalid("media.link_days", "must be at least 1");
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return invalid("logging.level", "is not a valid log filter");
        }
        Ok(())
    }

    /// The ghost and alias namer.
    pub fn namer(&self) -> brygga_core::naming::Namer {
        let template = |t: &str| Template::new(t).expect("checked when loading");
        brygga_core::naming::Namer::new(
            self.homeserver.server_name.clone(),
            template(&self.appservice.ghost_template),
            template(&self.appservice.alias_template),
        )
    }

    /// The bridge bot's user id.
    pub fn bot_user_id(&self) -> MatrixUserId {
        MatrixUserId::new(format!("@{}:{}", self.appservice.bot_localpart, self.homeserver.server_name))
            .expect("checked when loading")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
homeserver: { url: "http://127.0.0.1:8008", server_name: "localhost" }
appservice:
  listen: "127.0.0.1:29333"
  url: "http://127.0.0.1:29333"
  as_token: "aaaaaaaaaaaaaaaaaaaa"
  hs_token: "bbbbbbbbbbbbbbbbbbbb"
tenants:
  - id: fk
    invite: ["@alice:localhost"]
    adapters: { loopback: { config: { x: 1 } } }
"#;

    #[test]
    fn the_shipped_example_config_is_valid() {
        use brygga_core::AdapterFactory;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.yaml");
        let config = Config::load(&path).unwrap();
        assert!(config.media.is_some());
        let xmpp = &config.tenants[0].adapters["xmpp"];
        brygga_xmpp::XmppFactory.validate(&xmpp.config).unwrap();
        let rocketchat = &config.tenants[0].adapters["rocketchat"];
        brygga_rocketchat::RocketChatFactory.validate(&rocketchat.config).unwrap();
    }

    #[test]
    fn a_good_config_loads_with_defaults() {
        let config = Config::from_yaml(GOOD).unwrap();
        assert_eq!(config.appservice.id, "brygga");
        assert_eq!(config.database.url, "sqlite://brygga.db");
        assert!(config.tenants[0].adapters["loopback"].enabled);
        assert_eq!(config.bot_user_id().as_str(), "@brygga:localhost");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn environment_overrides_sections_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, GOOD).unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("BRYGGA_DATABASE__URL", "postgres://db.example/brygga");
            jail.set_env("BRYGGA_UNRELATED", "ignored");
            let config = Config::load(&path).map_err(|e| e.to_string())?;
            assert_eq!(config.database.url, "postgres://db.example/brygga");
            jail.set_env("BRYGGA_APPSERVICE__LISTEN", "not-an-address");
            let err = Config::load(&path).unwrap_err().to_string();
            assert!(err.to_lowercase().contains("listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        let bad_listen = GOOD.replace("\"127.0.0.1:29333\"\n  url", "\"nowhere\"\n  url");
        let err = Config::from_yaml(&bad_listen).unwrap_err().to_string();
        assert!(err.contains("appservice.listen"), "{err}");

        let unknown = format!("{GOOD}\nextra_key: 1\n");
        let err = Config::from_yaml(&unknown).unwrap_err().to_string();
        assert!(err.contains("extra_key"), "{err}");

        let short = GOOD.replace("aaaaaaaaaaaaaaaaaaaa", "short");
        let err = Config::from_yaml(&short).unwrap_err().to_string();
        assert!(err.contains("appservice.as_token"), "{err}");

        let bad_tenant = GOOD.replace("id: fk", "id: Bad_Tenant");
        let err = Config::from_yaml(&bad_tenant).unwrap_err().to_string();
        assert!(err.contains("tenants") && err.contains("TenantId"), "{err}");

        let bad_template = format!("{}  ghost_template: \"{{id}}\"\n", GOOD.split("tenants:").next().unwrap());
        let err = Config::from_yaml(&bad_template).unwrap_err().to_string();
        assert!(err.contains("appservice.ghost_template"), "{err}");

        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let no_wait = format!("{GOOD}\nencryption: {{ enabled: true, key: \"{key}\", key_wait_secs: 0 }}\n");
        let err = Config::from_yaml(&no_wait).unwrap_err().to_string();
        assert!(err.contains("encryption.key_wait_secs"), "{err}");
        let waits = Config::from_yaml(&no_wait.replace("key_wait_secs: 0", "key_wait_secs: 5")).unwrap();
        assert_eq!(waits.encryption.unwrap().key_wait_secs, 5);
    }
}
