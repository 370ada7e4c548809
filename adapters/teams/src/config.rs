//! The per-tenant Teams adapter config, as stored with the tenant.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::cert::{Certificate, Sources};
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
    client_certificate_file: Option<String>,
    #[serde(default)]
    client_certificate_env: Option<String>,
    #[serde(default)]
    client_key_file: Option<String>,
    #[serde(default)]
    client_key_env: Option<String>,
    #[serde(default)]
    include_resource_data: bool,
    #[serde(default)]
    encryption_certificate_file: Option<String>,
    #[serde(default)]
    encryption_certificate_env: Option<String>,
    #[serde(default)]
    encryption_key_file: Option<String>,
    #[serde(default)]
    encryption_key_env: Option<String>,
    #[serde(default)]
    encryption_certificate_id: Option<String>,
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

/// How the app proves itself at the token endpoint.
#[derive(Clone, Debug)]
pub(crate) enum ClientAuth {
    /// A client secret.
    Secret(Secret),
    /// A signed client assertion made with the app's certificate.
    Certificate(Arc<Certificate>),
}

/// Subscriptions with resource data: Graph encrypts each changed message for this certificate.
#[derive(Clone, Debug)]
pub(crate) struct ResourceData {
    pub(crate) certificate: Arc<Certificate>,
    /// `encryptionCertificateId` (default: the certificate's SHA-1 thumbprint).
    pub(crate) certificate_id: String,
}

/// Config of one tenant's Teams side.
#[derive(Clone, Debug)]
pub(crate) struct TeamsConfig {
    /// The multi-tenant app registration's client (application) id.
    pub(crate) client_id: String,
    /// Its client secret or certificate.
    pub(crate) client_auth: ClientAuth,
    /// Resource data in change notifications, when asked for.
    pub(crate) resource_data: Option<ResourceData>,
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
        let sources = Sources {
            cert_file: nonempty(raw.client_certificate_file),
            cert_env: nonempty(raw.client_certificate_env),
            key_file: nonempty(raw.client_key_file),
            key_env: nonempty(raw.client_key_env),
        };
        let client_certificate = crate::cert::load("client", sources, env)?.map(Arc::new);
        let client_auth = match (nonempty(raw.client_secret), &client_certificate) {
            (Some(secret), None) => ClientAuth::Secret(Secret(secret)),
            (None, Some(cert)) => ClientAuth::Certificate(cert.clone()),
            (Some(_), Some(_)) => {
                return Err("keys `client_secret` and `client_certificate_file` (or `_env`) exclude each other".into());
            }
            (None, None) => {
                return Err(
                    "key `client_secret` or `client_certificate_file` (or `client_certificate_env`) is required".into(),
                );
            }
        };
        let sources = Sources {
            cert_file: nonempty(raw.encryption_certificate_file),
            cert_env: nonempty(raw.encryption_certificate_env),
            key_file: nonempty(raw.encryption_key_file),
            key_env: nonempty(raw.encryption_key_env),
        };
        let encryption = crate::cert::load("encryption", sources, env)?.map(Arc::new);
        let resource_data = match (raw.include_resource_data, encryption.or(client_certificate)) {
            (false, _) => None,
            (true, None) => {
                return Err("key `include_resource_data` needs a certificate: `encryption_certificate_file` \
                            (or `_env`), or the client certificate"
                    .into());
            }
            (true, Some(certificate)) => {
                let certificate_id = nonempty(raw.encryption_certificate_id).unwrap_or_else(|| certificate.sha1_hex());
                if certificate_id.len() > 128 {
                    return Err("key `encryption_certificate_id` must be at most 128 characters".into());
                }
                Some(ResourceData { certificate, certificate_id })
            }
        };
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
            client_auth,
            resource_data,
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

    /// The identity platform's published signing keys (a JWK set).
    pub(crate) fn signing_keys_url(&self) -> Url {
        self.login_url.join("common/discovery/v2.0/keys").expect("a relative path")
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
#[path = "config_tests.rs"]
mod tests;
