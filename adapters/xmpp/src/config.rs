//! The per-tenant XMPP adapter config, as stored with the tenant.

use serde::Deserialize;
use tokio_xmpp::jid::BareJid;

use crate::link::LinkConfig;

/// Config of one tenant's component.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XmppConfig {
    /// `host:port` of the server's component listener (XEP-0114).
    pub(crate) server: String,
    /// The component's domain, e.g. `matrix.agency.example`; unique per tenant.
    pub(crate) domain: String,
    /// The component secret shared with the server.
    pub(crate) secret: String,
    /// The server's main XMPP domain (answers pings), e.g. `agency.example`.
    pub(crate) server_domain: String,
    /// Nick of the bridge's listener in each bridged group chat.
    #[serde(default = "default_bot_nick")]
    pub(crate) bot_nick: String,
    /// Seconds an occupant may be gone before their leave is bridged (a
    /// brief disconnect is not a leave).
    #[serde(default = "default_leave_grace_secs")]
    pub(crate) leave_grace_secs: u64,
    /// Largest file fetched from XMPP links for Matrix, in bytes.
    #[serde(default = "default_max_file_bytes")]
    pub(crate) max_file_bytes: u64,
    /// Group chat services whose rooms Matrix users may open by alias; empty allows any.
    #[serde(default)]
    pub(crate) muc_domains: Vec<String>,
    /// Longest message body accepted from XMPP, in bytes; longer ones are refused.
    #[serde(default = "default_max_body_bytes")]
    pub(crate) max_body_bytes: usize,
}

fn default_bot_nick() -> String {
    "Matrix bridge".into()
}

fn default_leave_grace_secs() -> u64 {
    15
}

fn default_max_file_bytes() -> u64 {
    16 * 1024 * 1024
}

fn default_max_body_bytes() -> usize {
    // Matrix events are limited to 64 KiB in all; leave room for the envelope.
    48 * 1024
}

impl XmppConfig {
    /// Parses and checks a stored config, naming the offending key.
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let config: Self = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        if !config.server.contains(':') {
            return Err("key `server` must be host:port of the component listener".into());
        }
        for (key, domain) in [("domain", &config.domain), ("server_domain", &config.server_domain)] {
            match BareJid::new(domain) {
                Ok(jid) if jid.node().is_none() => {}
                _ => return Err(format!("key `{key}` must be a bare XMPP domain, not {domain:?}")),
            }
        }
        if config.secret.is_empty() {
            return Err("key `secret` must not be empty".into());
        }
        if config.bot_nick.trim().is_empty() {
            return Err("key `bot_nick` must not be empty".into());
        }
        if config.max_body_bytes < 1024 {
            return Err("key `max_body_bytes` must be at least 1024".into());
        }
        Ok(config)
    }

    /// How long a leave waits for the occupant to come back.
    pub(crate) fn leave_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.leave_grace_secs)
    }

    /// Whether Matrix users may open rooms of this group chat service by alias.
    pub(crate) fn allows_muc(&self, domain: &str) -> bool {
        self.muc_domains.is_empty() || self.muc_domains.iter().any(|d| d == domain)
    }

    /// Where and as whom to connect.
    pub(crate) fn link(&self) -> LinkConfig {
        LinkConfig {
            address: self.server.clone(),
            domain: BareJid::new(&self.domain).expect("validated domain"),
            secret: self.secret.clone(),
            server_domain: BareJid::new(&self.server_domain).expect("validated domain"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({"server": "127.0.0.1:5347", "domain": "matrix.localhost", "secret": "s", "server_domain": "localhost"})
    }

    #[test]
    fn a_minimal_config_gets_defaults() {
        let config = XmppConfig::parse(&base()).unwrap();
        assert_eq!(config.bot_nick, "Matrix bridge");
        assert_eq!(config.link().domain.as_str(), "matrix.localhost");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = base();
        c["domain"] = json!("user@matrix.localhost");
        assert!(XmppConfig::parse(&c).unwrap_err().contains("`domain`"));
        let mut c = base();
        c["server"] = json!("localhost");
        assert!(XmppConfig::parse(&c).unwrap_err().contains("`server`"));
        let mut c = base();
        c["secret"] = json!("");
        assert!(XmppConfig::parse(&c).unwrap_err().contains("`secret`"));
        let mut c = base();
        c["colour"] = json!("red");
        assert!(XmppConfig::parse(&c).unwrap_err().contains("colour"));
    }
}
