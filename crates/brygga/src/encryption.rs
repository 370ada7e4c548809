//! The `encryption:` config section: end-to-bridge encryption of portal rooms.

use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

/// Devices for the bot and the ghosts, so encrypted rooms are bridged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Off by default: it needs the homeserver's appservice encryption
    /// support (MSC2409 to-device, MSC3202, MSC4190).
    #[serde(default)]
    pub enabled: bool,
    /// Where the devices' stores go (one sub-directory each).
    #[serde(default = "default_store_dir")]
    pub store_dir: PathBuf,
    /// The key sealing the stores: 32 bytes in base64. Prefer `key_env`.
    #[serde(default)]
    pub key: Option<String>,
    /// The environment variable holding `key`.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Seconds a Matrix user's message waits for its room key before the
    /// sender is told the bridge could not decrypt it.
    #[serde(default = "default_key_wait_secs")]
    pub key_wait_secs: u64,
}

fn default_key_wait_secs() -> u64 {
    brygga_core::router::DEFAULT_KEY_WAIT.as_secs()
}

fn default_store_dir() -> PathBuf {
    PathBuf::from("crypto")
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionConfig")
            .field("enabled", &self.enabled)
            .field("store_dir", &self.store_dir)
            .field("key_env", &self.key_env)
            .field("key_wait_secs", &self.key_wait_secs)
            .finish_non_exhaustive()
    }
}

impl EncryptionConfig {
    /// The sealing key, from `key` or the variable `key_env` names; the
    /// error names the config key.
    pub fn sealing_key(&self) -> Result<[u8; 32], (&'static str, String)> {
        let (key, text) = match (&self.key, &self.key_env) {
            (Some(text), None) => ("encryption.key", text.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(text) => ("encryption.key_env", text),
                Err(_) => return Err(("encryption.key_env", format!("environment variable {var} is not set"))),
            },
            (Some(_), Some(_)) => return Err(("encryption.key", "set either key or key_env, not both".into())),
            (None, None) => return Err(("encryption.key_env", "a key is needed to seal the crypto stores".into())),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| (key, "must be base64 (openssl rand -base64 32)".to_owned()))?;
        bytes.try_into().map_err(|_| (key, "must be 32 bytes (openssl rand -base64 32)".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: Option<&str>, key_env: Option<&str>) -> EncryptionConfig {
        EncryptionConfig {
            enabled: true,
            store_dir: "x".into(),
            key: key.map(str::to_owned),
            key_env: key_env.map(str::to_owned),
            key_wait_secs: 60,
        }
    }

    #[test]
    fn the_key_is_32_bytes_of_base64() {
        let good = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(config(Some(&good), None).sealing_key().unwrap(), [9u8; 32]);
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        assert_eq!(config(Some(&short), None).sealing_key().unwrap_err().0, "encryption.key");
        assert!(config(Some("not base64!"), None).sealing_key().is_err());
        assert_eq!(config(None, None).sealing_key().unwrap_err().0, "encryption.key_env");
        assert!(config(Some(&good), Some("X")).sealing_key().is_err());
        assert!(config(None, Some("BRYGGA_TEST_SURELY_UNSET_VAR")).sealing_key().is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", config(Some("c2VjcmV0"), None));
        assert!(!shown.contains("c2VjcmV0"));
    }
}
