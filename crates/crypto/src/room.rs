//! Encrypting a bridge user's event for a room: the room key is shared with
//! every device of the room's members first, as Matrix clients expect.

use matrix_sdk_common::ruma::events::AnyMessageLikeEventContent;
use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_common::ruma::{OwnedRoomId, OwnedUserId};
use matrix_sdk_crypto::EncryptionSettings;

use crate::{Crypto, CryptoError};

impl Crypto {
    /// Encrypts `content` of `event_type` as `sender` for `room`, whose
    /// current members (joined and invited) are `members`. Returns the
    /// `m.room.encrypted` content to send instead.
    pub async fn encrypt(
        &self,
        sender: &str,
        room: &str,
        members: &[String],
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<serde_json::Value, CryptoError> {
        let room: OwnedRoomId = room.try_into().map_err(|_| CryptoError::Invalid("room id".into()))?;
        let members: Vec<OwnedUserId> = members.iter().filter_map(|m| m.as_str().try_into().ok()).collect();
        let device = self.device(sender).await?;
        let homeserver = self.homeserver.as_ref();
        let lock = device.room_lock(&room);
        let _one_share = lock.lock().await;

        let machine = &device.machine;
        machine.update_tracked_users(members.iter().map(AsRef::as_ref)).await.map_err(CryptoError::store)?;
        // Key queries for new or changed members.
        device.flush(homeserver).await?;
        if let Some((id, request)) =
            machine.get_missing_sessions(members.iter().map(AsRef::as_ref)).await.map_err(CryptoError::store)?
        {
            device.claim_keys(homeserver, &id, request).await?;
        }
        let settings = EncryptionSettings::default();
        let shares = machine
            .share_room_key(&room, members.iter().map(AsRef::as_ref), settings)
            .await
            .map_err(|e| CryptoError::Olm(e.to_string()))?;
        for share in shares {
            device.send_to_device(homeserver, &share).await?;
        }
        let raw: Raw<AnyMessageLikeEventContent> =
            Raw::new(content).map_err(|_| CryptoError::Invalid("event content".into()))?.cast_unchecked();
        let encrypted = machine
            .encrypt_room_event_raw(&room, event_type, &raw)
            .await
            .map_err(|e| CryptoError::Olm(e.to_string()))?;
        serde_json::from_str(encrypted.content.json().get())
            .map_err(|_| CryptoError::Invalid("encrypted content".into()))
    }
}
