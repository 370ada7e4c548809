//! The crypto parts of an appservice transaction (MSC2409 to-device events,
//! MSC3202 device lists and key counts), handed to the devices they concern.

use std::collections::{BTreeMap, HashMap};

use matrix_sdk_common::ruma::api::client::sync::sync_events::DeviceLists;
use matrix_sdk_common::ruma::events::AnyToDeviceEvent;
use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_common::ruma::{OneTimeKeyAlgorithm, OwnedUserId, UInt};
use matrix_sdk_crypto::{DecryptionSettings, EncryptionSyncChanges, TrustRequirement};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Crypto, CryptoError, DEVICE_ID};

type Counts = BTreeMap<OneTimeKeyAlgorithm, UInt>;

/// A transaction's crypto sections, as Synapse sends them (unstable names).
#[derive(Debug, Default, Deserialize)]
pub struct TransactionCrypto {
    #[serde(default, rename = "de.sorunome.msc2409.to_device")]
    to_device: Vec<Box<RawValue>>,
    #[serde(default, rename = "org.matrix.msc3202.device_lists")]
    device_lists: DeviceLists,
    // Synapse sends the counts under two names (the MSC changed its mind);
    // they carry the same map.
    #[serde(default, rename = "org.matrix.msc3202.device_one_time_keys_count")]
    key_counts: BTreeMap<OwnedUserId, BTreeMap<String, Counts>>,
    #[serde(default, rename = "org.matrix.msc3202.device_one_time_key_counts")]
    key_counts_alt: BTreeMap<OwnedUserId, BTreeMap<String, Counts>>,
    #[serde(default, rename = "org.matrix.msc3202.device_unused_fallback_key_types")]
    fallback_keys: BTreeMap<OwnedUserId, BTreeMap<String, Vec<OneTimeKeyAlgorithm>>>,
}

impl TransactionCrypto {
    /// Whether there is nothing for the devices.
    pub fn is_empty(&self) -> bool {
        self.to_device.is_empty()
            && self.device_lists.changed.is_empty()
            && self.device_lists.left.is_empty()
            && self.key_counts.is_empty()
            && self.key_counts_alt.is_empty()
            && self.fallback_keys.is_empty()
    }

    /// Each user's to-device events for our device (others are not ours).
    fn to_device_by_user(&self) -> HashMap<OwnedUserId, Vec<Raw<AnyToDeviceEvent>>> {
        #[derive(Deserialize)]
        struct Addressed {
            to_user_id: OwnedUserId,
            to_device_id: String,
        }
        let mut by_user: HashMap<OwnedUserId, Vec<Raw<AnyToDeviceEvent>>> = HashMap::new();
        for raw in &self.to_device {
            match serde_json::from_str::<Addressed>(raw.get()) {
                Ok(to) if to.to_device_id == DEVICE_ID => {
                    by_user.entry(to.to_user_id).or_default().push(Raw::from_json(raw.clone()));
                }
                Ok(_) => {}
                Err(_) => tracing::warn!("skipping a to-device event without its recipient"),
            }
        }
        by_user
    }

    fn counts_of(&self, user: &OwnedUserId) -> Option<&Counts> {
        [&self.key_counts, &self.key_counts_alt].into_iter().find_map(|map| map.get(user)?.get(DEVICE_ID))
    }

    fn fallback_of(&self, user: &OwnedUserId) -> Option<&[OneTimeKeyAlgorithm]> {
        self.fallback_keys.get(user)?.get(DEVICE_ID).map(Vec::as_slice)
    }
}

/// Decrypt to-device messages from anyone: the bridge cannot verify people.
pub(crate) fn decryption_settings() -> DecryptionSettings {
    DecryptionSettings { sender_device_trust_requirement: TrustRequirement::Untrusted }
}

impl Crypto {
    /// Hands a transaction's crypto sections to the devices: room keys are
    /// stored before this returns, so the transaction's events can be
    /// decrypted; key uploads and queries it causes are sent after.
    pub async fn receive(&self, section: &TransactionCrypto) -> Result<(), CryptoError> {
        if section.is_empty() {
            return Ok(());
        }
        let mut to_device = section.to_device_by_user();
        let mut users: Vec<OwnedUserId> = to_device.keys().cloned().collect();
        for user in section.key_counts.keys().chain(section.key_counts_alt.keys()).chain(section.fallback_keys.keys()) {
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        let mut touched = Vec::new();
        for user in users {
            let device = self.device(user.as_str()).await?;
            let no_counts = Counts::new();
            let changes = EncryptionSyncChanges {
                to_device_events: to_device.remove(&user).unwrap_or_default(),
                changed_devices: &section.device_lists,
                one_time_keys_counts: section.counts_of(&user).unwrap_or(&no_counts),
                unused_fallback_keys: section.fallback_of(&user),
                next_batch_token: None,
            };
            let (_, keys) = device.machine.receive_sync_changes(changes, &decryption_settings()).await.map_err(olm)?;
            if !keys.is_empty() {
                let bot = self.device(self.config.bot.as_str()).await?;
                for key in keys {
                    self.holders.record(&bot, key.room_id.as_str(), &user).await?;
                }
            }
            touched.push(device);
        }
        // Devices that received nothing still track the changed users.
        if !section.device_lists.changed.is_empty() || !section.device_lists.left.is_empty() {
            for device in self.open_devices() {
                if touched.iter().any(|t| std::ptr::eq(t.as_ref(), device.as_ref())) {
                    continue;
                }
                let no_counts = Counts::new();
                let changes = EncryptionSyncChanges {
                    to_device_events: Vec::new(),
                    changed_devices: &section.device_lists,
                    one_time_keys_counts: &no_counts,
                    unused_fallback_keys: None,
                    next_batch_token: None,
                };
                device.machine.receive_sync_changes(changes, &decryption_settings()).await.map_err(olm)?;
            }
        }
        for device in touched {
            let homeserver = self.homeserver.clone();
            tokio::spawn(async move {
                if let Err(err) = device.flush(homeserver.as_ref()).await {
                    tracing::warn!(user = %device.user_id(), error = %err, "crypto requests failed; retried on the next transaction");
                }
            });
        }
        Ok(())
    }
}

fn olm(err: impl std::fmt::Display) -> CryptoError {
    CryptoError::Olm(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synapse_sections_parse() {
        let body = r#"{
            "events": [],
            "de.sorunome.msc2409.to_device": [
                {"type": "m.room.encrypted", "sender": "@a:hs", "content": {}, "to_user_id": "@g:hs", "to_device_id": "BRYGGA"},
                {"type": "m.room.encrypted", "sender": "@a:hs", "content": {}, "to_user_id": "@g:hs", "to_device_id": "OTHER"},
                {"type": "m.room.encrypted", "content": {}}
            ],
            "org.matrix.msc3202.device_lists": {"changed": ["@a:hs"], "left": []},
            "org.matrix.msc3202.device_one_time_key_counts": {"@g:hs": {"BRYGGA": {"signed_curve25519": 3}}},
            "org.matrix.msc3202.device_one_time_keys_count": {"@g:hs": {"BRYGGA": {"signed_curve25519": 3}}},
            "org.matrix.msc3202.device_unused_fallback_key_types": {"@g:hs": {"BRYGGA": ["signed_curve25519"]}}
        }"#;
        let section: TransactionCrypto = serde_json::from_str(body).unwrap();
        assert!(!section.is_empty());
        let by_user = section.to_device_by_user();
        let ghost: OwnedUserId = "@g:hs".try_into().unwrap();
        assert_eq!(by_user.len(), 1);
        assert_eq!(by_user[&ghost].len(), 1, "only our device's events");
        let counts = section.counts_of(&ghost).unwrap();
        assert_eq!(counts.get(&OneTimeKeyAlgorithm::SignedCurve25519), Some(&UInt::from(3u32)));
        assert_eq!(section.fallback_of(&ghost), Some(&[OneTimeKeyAlgorithm::SignedCurve25519][..]));
        assert_eq!(section.device_lists.changed.len(), 1);
    }

    #[test]
    fn an_empty_transaction_has_nothing() {
        let section: TransactionCrypto = serde_json::from_str(r#"{"events": []}"#).unwrap();
        assert!(section.is_empty());
    }
}
