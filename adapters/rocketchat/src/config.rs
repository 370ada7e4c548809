//! The per-tenant Rocket.Chat adapter config, as stored with the tenant.

use std::fmt;

use serde::Deserialize;
use url::Url;

/// How Matrix users appear on Rocket.Chat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum PuppetMode {
    /// A real Rocket.Chat user per Matrix user (`users.create` + `users.createToken`).
    #[default]
    Users,
    /// The bot sends with the Matrix user's name as `alias` (needs `message-impersonate`).
    Impersonate,
}

/// How the bridge bot logs in.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum BotAuth {
    /// A personal access token of the bot user.
    Token { user_id: String, token: String },
    /// A username and password, exchanged for a token at start (`/api/v1/login`).
    Password { username: String, password: String },
}

impl fmt::Debug for BotAuth {
    // Secrets never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { user_id, .. } => write!(f, "Token {{ user_id: {user_id:?}, token: <redacted> }}"),
            Self::Password { username, .. } => write!(f, "Password {{ username: {username:?}, password: <redacted> }}"),
        }
    }
}

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
    url: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    puppet_mode: Option<String>,
    #[serde(default)]
    create_tokens_secret: Option<String>,
    #[serde(default = "default_puppet_prefix")]
    puppet_prefix: String,
    #[serde(default = "default_puppet_email_domain")]
    puppet_email_domain: String,
    #[serde(default)]
    matrix_server_name: Option<String>,
    #[serde(default = "default_max_file_bytes")]
    max_file_bytes: u64,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
    #[serde(default = "default_max_message_chars")]
    max_message_chars: usize,
}

fn default_puppet_prefix() -> String {
    "matrix.".into()
}

fn default_puppet_email_domain() -> String {
    "matrix.invalid".into()
}

fn default_max_file_bytes() -> u64 {
    16 * 1024 * 1024
}

fn default_max_message_chars() -> usize {
    // Rocket.Chat's default Message_MaxAllowedSize.
    5000
}

fn default_max_body_bytes() -> usize {
    // Matrix events are limited to 64 KiB in all; leave room for the envelope.
    48 * 1024
}

/// Config of one tenant's workspace.
#[derive(Clone, Debug)]
pub(crate) struct RocketChatConfig {
    /// The workspace's base URL, e.g. `https://chat.agency.example/` (always ends with `/`).
    pub(crate) url: Url,
    /// How the bot logs in.
    pub(crate) auth: BotAuth,
    /// How Matrix users appear.
    pub(crate) puppet_mode: PuppetMode,
    /// The server's `CREATE_TOKENS_FOR_USERS_SECRET`, which `users.createToken` requires since 7.x.
    pub(crate) create_tokens_secret: Option<Secret>,
    /// Username prefix of puppet users, e.g. `matrix.` gives `matrix.alice.example.org`.
    pub(crate) puppet_prefix: String,
    /// Domain of the (never mailed) addresses puppet users are created with.
    pub(crate) puppet_email_domain: String,
    /// The bridge's homeserver name, to show mentions of Rocket.Chat users as
    /// pills of their ghosts (which use the default `{kind}_{tenant}_{id}` template).
    pub(crate) matrix_server_name: Option<String>,
    /// Largest file moved in either direction, in bytes.
    pub(crate) max_file_bytes: u64,
    /// Longest message text accepted from Rocket.Chat, in bytes; longer ones are cut.
    pub(crate) max_body_bytes: usize,
    /// The workspace's `Message_MaxAllowedSize`: longer Matrix texts are sent in parts.
    pub(crate) max_message_chars: usize,
}

impl RocketChatConfig {
    /// Parses and checks a stored config, naming the offending key.
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let mut url = Url::parse(&raw.url).map_err(|e| format!("key `url` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("key `url` must be an http(s) URL of the workspace".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("key `url` must not have a query or fragment".into());
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let auth = match (nonempty(raw.user_id), nonempty(raw.token), nonempty(raw.username), nonempty(raw.password)) {
            (Some(user_id), Some(token), None, None) => BotAuth::Token { user_id, token },
            (None, None, Some(username), Some(password)) => BotAuth::Password { username, password },
            (Some(_), None, _, _) => return Err("key `token` is required with `user_id`".into()),
            (None, Some(_), _, _) => return Err("key `user_id` is required with `token`".into()),
            (None, None, Some(_), None) => return Err("key `password` is required with `username`".into()),
            (None, None, None, Some(_)) => return Err("key `username` is required with `password`".into()),
            (None, None, None, None) => {
                return Err("keys `user_id` and `token` (or `username` and `password`) are required".into());
            }
            _ => return Err("keys `user_id`/`token` and `username`/`password` exclude each other".into()),
        };
        let puppet_mode = match raw.puppet_mode.as_deref() {
            None | Some("users") => PuppetMode::Users,
            Some("impersonate") => PuppetMode::Impersonate,
            Some(other) => return Err(format!("key `puppet_mode` must be `users` or `impersonate`, not {other:?}")),
        };
        if raw.puppet_prefix.is_empty()
            || !raw.puppet_prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("key `puppet_prefix` must be non-empty and only contain a-z, A-Z, 0-9, '.', '_', '-'".into());
        }
        if raw.puppet_email_domain.is_empty() || raw.puppet_email_domain.contains(['@', ' ']) {
            return Err("key `puppet_email_domain` must be a domain name".into());
        }
        if raw.max_file_bytes == 0 {
            return Err("key `max_file_bytes` must be positive".into());
        }
        if raw.max_message_chars < 100 {
            return Err("key `max_message_chars` must be at least 100".into());
        }
        if raw.max_body_bytes < 1024 {
            return Err("key `max_body_bytes` must be at least 1024".into());
        }
        Ok(Self {
            url,
            auth,
            puppet_mode,
            create_tokens_secret: raw.create_tokens_secret.filter(|s| !s.is_empty()).map(Secret),
            puppet_prefix: raw.puppet_prefix,
            puppet_email_domain: raw.puppet_email_domain,
            matrix_server_name: raw.matrix_server_name.filter(|s| !s.is_empty()),
            max_file_bytes: raw.max_file_bytes,
            max_body_bytes: raw.max_body_bytes,
            max_message_chars: raw.max_message_chars,
        })
    }

    /// The REST endpoint `path` (e.g. `chat.sendMessage`) under `/api/v1/`.
    pub(crate) fn api(&self, path: &str) -> Url {
        self.url.join("api/v1/").and_then(|u| u.join(path)).expect("API paths are relative URLs")
    }

    /// The realtime endpoint, `ws(s)://…/websocket`.
    pub(crate) fn websocket(&self) -> Url {
        let mut url = self.url.join("websocket").expect("a relative path");
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).expect("ws and wss are valid schemes here");
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({"url": "https://chat.example.org", "user_id": "botid", "token": "secret-token"})
    }

    #[test]
    fn a_minimal_config_gets_defaults_and_endpoints() {
        let config = RocketChatConfig::parse(&base()).unwrap();
        assert_eq!(config.puppet_mode, PuppetMode::Users);
        assert_eq!(config.api("chat.sendMessage").as_str(), "https://chat.example.org/api/v1/chat.sendMessage");
        assert_eq!(config.websocket().as_str(), "wss://chat.example.org/websocket");
        assert_eq!(config.max_file_bytes, 16 * 1024 * 1024);
        let mut sub = base();
        sub["url"] = json!("http://127.0.0.1:3000/chat");
        sub["puppet_mode"] = json!("impersonate");
        let config = RocketChatConfig::parse(&sub).unwrap();
        assert_eq!(config.api("rooms.media/r1").as_str(), "http://127.0.0.1:3000/chat/api/v1/rooms.media/r1");
        assert_eq!(config.websocket().as_str(), "ws://127.0.0.1:3000/chat/websocket");
        assert_eq!(config.puppet_mode, PuppetMode::Impersonate);
    }

    #[test]
    fn password_login_is_an_alternative() {
        let config = RocketChatConfig::parse(
            &json!({"url": "https://c.example", "username": "bot", "password": "pw", "create_tokens_secret": "s3cr3t"}),
        )
        .unwrap();
        assert_eq!(config.create_tokens_secret, Some(Secret("s3cr3t".into())));
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(matches!(config.auth, BotAuth::Password { .. }));
        let printed = format!("{config:?}");
        assert!(!printed.contains("pw\""), "{printed}");
        let printed = format!("{:?}", RocketChatConfig::parse(&base()).unwrap());
        assert!(!printed.contains("secret-token"), "{printed}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = |patch: serde_json::Value| {
            let mut c = base();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            RocketChatConfig::parse(&c).unwrap_err()
        };
        assert!(err(json!({"url": "chat.example.org"})).contains("`url`"));
        assert!(err(json!({"url": "ftp://chat.example.org"})).contains("`url`"));
        assert!(err(json!({"token": null})).contains("`token`"));
        assert!(err(json!({"user_id": ""})).contains("`user_id`"));
        assert!(err(json!({"username": "x", "password": "y"})).contains("exclude"));
        assert!(err(json!({"user_id": null, "token": null})).contains("required"));
        assert!(err(json!({"puppet_mode": "ghosts"})).contains("`puppet_mode`"));
        assert!(err(json!({"puppet_prefix": "a b"})).contains("`puppet_prefix`"));
        assert!(err(json!({"max_file_bytes": 0})).contains("`max_file_bytes`"));
        assert!(err(json!({"max_message_chars": 5})).contains("`max_message_chars`"));
        assert!(err(json!({"colour": "red"})).contains("colour"));
    }
}
