//! Decrypting a Matrix user's `m.room.encrypted` event with whichever bridge
//! device received its room key.

use matrix_sdk_common::deserialized_responses::UnableToDecryptReason;
use matrix_sdk_common::ruma::OwnedRoomId;
use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_crypto::RoomEventDecryptionResult;
use matrix_sdk_crypto::types::events::room::encrypted::EncryptedEvent;

use crate::sync::decryption_settings;
use crate::{Crypto, CryptoError};

/// A decrypted event: the full event JSON with its plaintext type and content.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decrypted {
    /// The event as if it had been sent unencrypted.
    pub event_json: String,
}

/// Why an event could not be decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// No bridge device has the room key yet; it may still arrive.
    #[error("the room key has not arrived")]
    KeyMissing,
    /// It will never decrypt (withheld key, bad ciphertext, unknown algorithm).
    #[error("undecryptable: {0}")]
    Undecryptable(String),
    /// The devices could not be used; retrying may help.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Crypto {
    /// Decrypts `event_json` (an `m.room.encrypted` event of `room`) with the
    /// devices known to hold the room's keys, else with each of `candidates`
    /// (bridge users in the room) in turn.
    pub async fn decrypt(
        &self,
        room: &str,
        event_json: &str,
        candidates: &[String],
    ) -> Result<Decrypted, DecryptError> {
        let room_id: OwnedRoomId = room.try_into().map_err(|_| CryptoError::Invalid("room id".into()))?;
        let raw: Raw<EncryptedEvent> = Raw::from_json(
            serde_json::value::RawValue::from_string(event_json.to_owned())
                .map_err(|_| DecryptError::Undecryptable("not JSON".into()))?,
        );
        let mut order = self.holders(room).await?;
        for candidate in candidates {
            if !order.contains(candidate) {
                order.push(candidate.clone());
            }
        }
        let mut failure = DecryptError::KeyMissing;
        for user in order {
            let device = self.device(&user).await?;
            match device
                .machine
                .try_decrypt_room_event(&raw, &room_id, &decryption_settings())
                .await
                .map_err(CryptoError::store)?
            {
                RoomEventDecryptionResult::Decrypted(event) => {
                    return Ok(Decrypted { event_json: event.event.json().get().to_owned() });
                }
                RoomEventDecryptionResult::UnableToDecrypt(info) if info.reason.is_missing_room_key() => {}
                RoomEventDecryptionResult::UnableToDecrypt(info) => failure = undecryptable(&info.reason),
            }
        }
        Err(failure)
    }
}

impl Crypto {
    /// The bridge users known to hold keys of `room`.
    pub async fn holders(&self, room: &str) -> Result<Vec<String>, CryptoError> {
        let bot = self.device(self.config.bot.as_str()).await?;
        Ok(self.holders.of(&bot, room).await?.iter().map(ToString::to_string).collect())
    }
}

fn undecryptable(reason: &UnableToDecryptReason) -> DecryptError {
    let text = match reason {
        UnableToDecryptReason::MissingMegolmSession { withheld_code: Some(code) } => format!("key withheld ({code})"),
        UnableToDecryptReason::MalformedEncryptedEvent => "malformed event".to_owned(),
        UnableToDecryptReason::MegolmDecryptionFailure => "decryption failed".to_owned(),
        UnableToDecryptReason::PayloadDeserializationFailure => "bad plaintext".to_owned(),
        UnableToDecryptReason::MismatchedIdentityKeys => "mismatched identity keys".to_owned(),
        UnableToDecryptReason::SenderIdentityNotTrusted(_) => "sender not trusted".to_owned(),
        _ => "unknown reason".to_owned(),
    };
    DecryptError::Undecryptable(text)
}
