//! End-to-bridge encryption: every bridge user (the bot and each ghost) has
//! a device of its own, backed by `matrix-sdk-crypto` with one encrypted
//! SQLite store per device.
//!
//! The interface speaks JSON and string ids only: this crate builds on the
//! ruma version `matrix-sdk-crypto` brings, which is not the bridge's.

mod attachment;
mod decrypt;
mod device;
mod devices;
mod holders;
mod homeserver;
mod room;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use matrix_sdk_common::ruma::{OwnedDeviceId, OwnedUserId, UserId};
use sha2::{Digest, Sha256};

pub use attachment::{FileError, SealedFile, decrypt_file, encrypt_file};
pub use decrypt::{DecryptError, Decrypted};
pub use homeserver::Homeserver;
pub use sync::TransactionCrypto;

use device::Device;

/// The device id every bridge user's device has.
pub const DEVICE_ID: &str = "BRYGGA";

/// Why a crypto operation failed (never carries key material).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The crypto store failed.
    #[error("crypto store: {0}")]
    Store(String),
    /// The homeserver refused or could not be reached.
    #[error("homeserver: {0}")]
    Homeserver(String),
    /// Olm or Megolm refused the operation.
    #[error("olm: {0}")]
    Olm(String),
    /// An id or event is not what Matrix allows.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl CryptoError {
    fn store(err: impl std::fmt::Display) -> Self {
        Self::Store(err.to_string())
    }
}

/// Where the devices' stores live and the key sealing them.
#[derive(Clone)]
#[non_exhaustive]
pub struct CryptoConfig {
    /// One sub-directory per device goes here.
    pub store_dir: PathBuf,
    /// Seals every store (pickles, keys) at rest.
    pub key: [u8; 32],
    /// The bridge bot, whose store also keeps which users hold which room's keys.
    pub bot: String,
}

impl CryptoConfig {
    /// A config with the given directory and key.
    pub fn new(store_dir: PathBuf, key: [u8; 32], bot: impl Into<String>) -> Self {
        Self { store_dir, key, bot: bot.into() }
    }
}

impl std::fmt::Debug for CryptoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoConfig")
            .field("store_dir", &self.store_dir)
            .field("bot", &self.bot)
            .finish_non_exhaustive()
    }
}

/// The bridge users' devices.
pub struct Crypto {
    config: CryptoConfig,
    homeserver: Arc<dyn Homeserver>,
    devices: devices::Devices<Device>,
    /// Which bridge users received keys of which room.
    holders: holders::Holders,
}

impl Crypto {
    /// Devices in `config.store_dir`, talking to `homeserver`.
    pub fn new(config: CryptoConfig, homeserver: Arc<dyn Homeserver>) -> Self {
        Self { config, homeserver, devices: devices::Devices::default(), holders: holders::Holders::default() }
    }

    /// Makes sure `user` has its device and keys on the homeserver.
    pub async fn ensure_device(&self, user: &str) -> Result<(), CryptoError> {
        self.device(user).await.map(|_| ())
    }

    /// The user's device, opened (and created) on first use.
    async fn device(&self, user: &str) -> Result<Arc<Device>, CryptoError> {
        let user: OwnedUserId = user.try_into().map_err(|_| CryptoError::Invalid("user id".into()))?;
        let cell = self.devices.slot(&user);
        let device = cell
            .get_or_try_init(|| async {
                let dir = self.config.store_dir.join(store_name(&user));
                let device_id: OwnedDeviceId = DEVICE_ID.into();
                Device::open(self.homeserver.as_ref(), &dir, &self.config.key, user.clone(), device_id)
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(device.clone())
    }

    /// The devices already open, for device-list changes.
    fn open_devices(&self) -> Vec<Arc<Device>> {
        self.devices.open()
    }

    /// Closes the ghosts' devices unused for `idle` (a closed device
    /// reopens on its next use and then refreshes the device lists it tracks,
    /// whose changes it missed); returns how many closed.
    pub fn close_idle(&self, idle: std::time::Duration) -> usize {
        self.devices.close_idle(idle, &self.config.bot)
    }
}

/// A store's directory name: a digest, so any user id makes a safe name.
fn store_name(user: &UserId) -> String {
    let digest = Sha256::digest(user.as_str().as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_are_stable_and_distinct() {
        let a: OwnedUserId = "@bot:example.org".try_into().unwrap();
        let b: OwnedUserId = "@teams_a_1:example.org".try_into().unwrap();
        assert_eq!(store_name(&a), store_name(&a));
        assert_ne!(store_name(&a), store_name(&b));
        assert_eq!(store_name(&a).len(), 32);
    }

    #[test]
    fn config_debug_hides_the_key() {
        let config = CryptoConfig::new("/tmp/x".into(), [7; 32], "@bot:hs");
        assert!(!format!("{config:?}").contains('7'));
    }
}
