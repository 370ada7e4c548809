//! The per-tenant Teams adapter config, as stored with the tenant.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::crypto::TokenKey;

/// A secret that never shows in `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The config as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    tenant_id: String,
    notification_url_base: String,
    #[serde(default)]
    relay_user_id: Option<String>,
    #[serde(default)]
    relay_refresh_token: Option<String>,
    #[serde(default)]
    token_key: Option<String>,
    #[serde(default)]
    token_key_env: Option<String>,
    #[serde(default = "default_graph_url")]
    graph_url: String,
    #[serde(default = "default_login_url")]
    login_url: String,
    #[serde(default)]
    matrix_server_name: Option<String>,
    #[serde(default = "default_presence_interval")]
    presence_interval_secs: u64,
    #[serde(default = "default_channel_rate")]
    channel_requests_per_sec: u32,
    #[serde(default = "default_subscription_minutes")]
    subscription_minutes: u64,
    #[serde(default = "default_max_file_bytes")]
    max_file_bytes: u64,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com/v1.0/".into()
}

fn default_login_url() -> String {
    "https://login.microsoftonline.com/".into()
}

fn default_presence_interval() -> u64 {
    60
}

fn default_channel_rate() -> u32 {
    // Graph allows about 4 requests per second per app per channel or chat.
    4
}

fn default_subscription_minutes() -> u64 {
    // chatMessage subscriptions live at most 60 minutes; renew well before.
    60
}

fn default_max_file_bytes() -> u64 {
    16 * 1024 * 1024
}

/// Config of one tenant's Teams side.
#[derive(Clone, Debug)]
pub(crate) struct TeamsConfig {
    /// The multi-tenant app registration's client (application) id.
    pub(crate) client_id: String,
    /// Its client secret.
    pub(crate) client_secret: Secret,
    /// The agency's Entra tenant id (a GUID or a verified domain).
    pub(crate) tenant_id: String,
    /// Public base URL of the bridge's webhook route (always ends with `/`).
    pub(crate) notification_url_base: Url,
    /// The relay identity's Entra object id, for unlinked Matrix users.
    pub(crate) relay_user_id: Option<String>,
    /// A first refresh token of the relay identity (later ones are kept encrypted in the state).
    pub(crate) relay_refresh_token: Option<Secret>,
    /// The key sealing stored refresh tokens.
    pub(crate) token_key: TokenKey,
    /// Graph's v1.0 endpoint (always ends with `/`).
    pub(crate) graph_url: Url,
    /// The identity platform's authority (always ends with `/`).
    pub(crate) login_url: Url,
    /// The bridge's homeserver name, to turn Teams mentions into pills of ghosts.
    pub(crate) matrix_server_name: Option<String>,
    /// How often presence of ghosts in active portals is polled; `None`: never.
    pub(crate) presence_interval: Option<Duration>,
    /// Requests per second allowed per channel or chat.
    pub(crate) channel_requests_per_sec: u32,
    /// Lifetime asked for new and renewed subscriptions.
    pub(crate) subscription_lifetime: Duration,
    /// Largest file moved in either direction, in bytes.
    pub(crate) max_file_bytes: u64,
}

impl TeamsConfig {
    /// Parses and checks a stored config, naming the offending key.
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, String> {
        Self::parse_with_env(value, &|name| std::env::var(name).ok())
    }

    /// As [`Self::parse`], reading environment variables through `env`.
    pub(crate) fn parse_with_env(
        value: &serde_json::Value,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        if raw.client_id.trim().is_empty() {
            return Err("key `client_id` must not be empty".into());
        }
        if nonempty(raw.client_certificate).is_some() {
            return Err("key `client_certificate` is not supported yet: use `client_secret`".into());
        }
        let client_secret = nonempty(raw.client_secret).ok_or("key `client_secret` is required")?;
        let tenant_id = raw.tenant_id.trim().to_owned();
        if tenant_id.is_empty() || !tenant_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')) {
            return Err("key `tenant_id` must be the agency's Entra tenant id (a GUID or domain)".into());
        }
        let notification_url_base = base_url(&raw.notification_url_base, "notification_url_base")?;
        if notification_url_base.scheme() != "https" && !is_loopback(&notification_url_base) {
            return Err("key `notification_url_base` must be https (Graph delivers only there)".into());
        }
        let relay_user_id = nonempty(raw.relay_user_id);
        let relay_refresh_token = nonempty(raw.relay_refresh_token).map(Secret);
        if relay_refresh_token.is_some() && relay_user_id.is_none() {
            return Err("key `relay_user_id` is required with `relay_refresh_token`".into());
        }
        let key_text = match (nonempty(raw.token_key), nonempty(raw.token_key_env)) {
            (Some(key), None) => key,
            (None, Some(var)) => {
                env(&var).ok_or_else(|| format!("key `token_key_env`: environment variable {var} is not set"))?
            }
            (Some(_), Some(_)) => return Err("keys `token_key` and `token_key_env` exclude each other".into()),
            (None, None) => return Err("key `token_key` (or `token_key_env`) is required".into()),
        };
        let token_key = TokenKey::from_base64(&key_text).map_err(|e| format!("key `token_key`: {e}"))?;
        if raw.channel_requests_per_sec == 0 {
            return Err("key `channel_requests_per_sec` must be positive".into());
        }
        if !(1..=60).contains(&raw.subscription_minutes) {
            return Err("key `subscription_minutes` must be between 1 and 60".into());
        }
        if raw.max_file_bytes == 0 {
            return Err("key `max_file_bytes` must be positive".into());
        }
        Ok(Self {
            client_id: raw.client_id.trim().to_owned(),
            client_secret: Secret(client_secret),
            tenant_id,
            notification_url_base,
            relay_user_id,
            relay_refresh_token,
            token_key,
            graph_url: base_url(&raw.graph_url, "graph_url")?,
            login_url: base_url(&raw.login_url, "login_url")?,
            matrix_server_name: nonempty(raw.matrix_server_name),
            presence_interval: (raw.presence_interval_secs > 0)
                .then(|| Duration::from_secs(raw.presence_interval_secs.max(5))),
            channel_requests_per_sec: raw.channel_requests_per_sec,
            subscription_lifetime: Duration::from_secs(raw.subscription_minutes * 60),
            max_file_bytes: raw.max_file_bytes,
        })
    }

    /// A Graph URL for `path` (relative, e.g. `chats/19:x/messages`), segments already escaped.
    pub(crate) fn graph(&self, path: &str) -> Url {
        self.graph_url.join(path.trim_start_matches('/')).expect("Graph paths are relative URLs")
    }

    /// The identity platform endpoint `leaf` (`token` or `devicecode`) of the agency's tenant.
    pub(crate) fn login(&self, leaf: &str) -> Url {
        let path = format!("{}/oauth2/v2.0/{leaf}", self.tenant_id);
        self.login_url.join(&path).expect("login paths are relative URLs")
    }
}

fn base_url(text: &str, key: &str) -> Result<Url, String> {
    let mut url = Url::parse(text.trim()).map_err(|e| format!("key `{key}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("key `{key}` must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("key `{key}` must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn base() -> serde_json::Value {
        json!({
            "client_id": "app-id",
            "client_secret": "very-secret",
            "tenant_id": "5f2b1a3c-0000-4000-8000-000000000001",
            "notification_url_base": "https://bridge.example.org/_brygga/webhook/agency/teams",
            "token_key": KEY,
        })
    }

    fn err(patch: serde_json::Value) -> String {
        let mut c = base();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        TeamsConfig::parse_with_env(&c, &|_| None).unwrap_err()
    }

    #[test]
    fn a_minimal_config_gets_defaults_and_endpoints() {
        let config = TeamsConfig::parse(&base()).unwrap();
        assert_eq!(config.graph("chats/x/messages").as_str(), "https://graph.microsoft.com/v1.0/chats/x/messages");
        assert_eq!(
            config.login("token").as_str(),
            "https://login.microsoftonline.com/5f2b1a3c-0000-4000-8000-000000000001/oauth2/v2.0/token"
        );
        assert_eq!(config.notification_url_base.path(), "/_brygga/webhook/agency/teams/");
        assert_eq!(config.presence_interval, Some(Duration::from_secs(60)));
        assert_eq!(config.channel_requests_per_sec, 4);
        assert_eq!(config.subscription_lifetime, Duration::from_secs(3600));
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(!printed.contains(KEY), "{printed}");
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.yaml");
        let yaml: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let teams = &yaml["tenants"][0]["adapters"]["teams"]["config"];
        let config = TeamsConfig::parse_with_env(teams, &|_| None).unwrap();
        assert_eq!(config.notification_url_base.join("notify").unwrap().path(), "/_brygga/webhook/agency/teams/notify");
    }

    #[test]
    fn the_token_key_can_come_from_the_environment() {
        let mut c = base();
        c.as_object_mut().unwrap().remove("token_key");
        c["token_key_env"] = json!("TEAMS_KEY");
        let env = |name: &str| (name == "TEAMS_KEY").then(|| KEY.to_owned());
        assert!(TeamsConfig::parse_with_env(&c, &env).is_ok());
        let missing = TeamsConfig::parse_with_env(&c, &|_| None).unwrap_err();
        assert!(missing.contains("TEAMS_KEY") && missing.contains("`token_key_env`"), "{missing}");
    }

    #[test]
    fn local_test_endpoints_are_allowed() {
        let mut c = base();
        c["notification_url_base"] = json!("http://127.0.0.1:8008/_brygga/webhook/t/teams/");
        c["graph_url"] = json!("http://127.0.0.1:9000/v1.0");
        c["login_url"] = json!("http://127.0.0.1:9000/login");
        c["presence_interval_secs"] = json!(0);
        let config = TeamsConfig::parse(&c).unwrap();
        assert_eq!(config.graph("subscriptions").as_str(), "http://127.0.0.1:9000/v1.0/subscriptions");
        assert!(config.login("devicecode").as_str().starts_with("http://127.0.0.1:9000/login/5f2b"));
        assert_eq!(config.presence_interval, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(err(json!({"client_id": " "})).contains("`client_id`"));
        assert!(err(json!({"client_secret": null})).contains("`client_secret`"));
        assert!(err(json!({"client_certificate": "pem"})).contains("not supported yet"));
        assert!(err(json!({"tenant_id": "a/b"})).contains("`tenant_id`"));
        assert!(err(json!({"notification_url_base": "http://bridge.example.org/"})).contains("https"));
        assert!(err(json!({"notification_url_base": "bridge"})).contains("`notification_url_base`"));
        assert!(err(json!({"graph_url": "ftp://x"})).contains("`graph_url`"));
        assert!(err(json!({"relay_refresh_token": "rt"})).contains("`relay_user_id`"));
        assert!(err(json!({"token_key": null})).contains("`token_key`"));
        assert!(err(json!({"token_key": "c2hvcnQ="})).contains("`token_key`"));
        assert!(err(json!({"token_key_env": "X"})).contains("exclude"));
        assert!(err(json!({"channel_requests_per_sec": 0})).contains("`channel_requests_per_sec`"));
        assert!(err(json!({"subscription_minutes": 61})).contains("`subscription_minutes`"));
        assert!(err(json!({"subscription_minutes": 0})).contains("`subscription_minutes`"));
        assert!(err(json!({"max_file_bytes": 0})).contains("`max_file_bytes`"));
        assert!(err(json!({"colour": "red"})).contains("colour"));
    }
}
