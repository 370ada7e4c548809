//! Encrypted rooms from the client's side: sealing what a bridge user sends,
//! decrypting what Matrix users sent, and speaking up when that fails.

use brygga_core::{BridgeError, DecryptFailure, EventBody, MatrixEvent, MatrixRoomId, MatrixUserId, RoomEncryption};
use brygga_crypto::DecryptError;
use ruma::api::client::membership::get_member_events;
use ruma::api::client::state::get_state_event_for_key;
use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use serde_json::value::RawValue;

use super::{MatrixClient, Versions};
use crate::e2ee::E2ee;

impl MatrixClient {
    /// The `m.room.encrypted` content to send instead of `content`, when the
    /// room is encrypted; `None` when it is not (or the bridge does not encrypt).
    pub(super) async fn seal(
        &self,
        room: &ruma::OwnedRoomId,
        user: &ruma::OwnedUserId,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, BridgeError> {
        let Some(e2ee) = &self.e2ee else { return Ok(None) };
        if !self.is_encrypted(e2ee, room, user).await? {
            return Ok(None);
        }
        let members = self.members(e2ee, room, user).await?;
        let sealed = e2ee
            .crypto
            .encrypt(user.as_str(), room.as_str(), &members, event_type, content)
            .await
            .map_err(|e| BridgeError::transient(format!("encrypting: {e}")))?;
        Ok(Some(sealed))
    }

    /// Whether what `user` puts into `room` must be encrypted (never when
    /// the bridge does not encrypt).
    pub(super) async fn room_is_encrypted(
        &self,
        room: &ruma::OwnedRoomId,
        user: &ruma::OwnedUserId,
    ) -> Result<bool, BridgeError> {
        match &self.e2ee {
            Some(e2ee) => self.is_encrypted(e2ee, room, user).await,
            None => Ok(false),
        }
    }

    /// Whether `room` is encrypted, read as `user` once and then learnt
    /// from the room's events.
    async fn is_encrypted(
        &self,
        e2ee: &E2ee,
        room: &ruma::OwnedRoomId,
        user: &ruma::OwnedUserId,
    ) -> Result<bool, BridgeError> {
        if let Some(known) = e2ee.known_encryption(room.as_str()) {
            return Ok(known != RoomEncryption::Clear);
        }
        let state = self.read_encryption(room, user).await?;
        e2ee.set_encryption(room.as_str(), state);
        Ok(state != RoomEncryption::Clear)
    }

    /// The room's encryption as its `m.room.encryption` state says, read as `user`.
    async fn read_encryption(
        &self,
        room: &ruma::OwnedRoomId,
        user: &ruma::OwnedUserId,
    ) -> Result<RoomEncryption, BridgeError> {
        let request =
            get_state_event_for_key::v3::Request::new(room.clone(), StateEventType::RoomEncryption, "".into());
        match self.http.call("get encryption", request, Some(user), Versions::Modern).await {
            Ok(response) if crate::e2ee::names_megolm(response.event_or_content.get()) => Ok(RoomEncryption::Encrypted),
            // Present without an algorithm the bridge speaks: turned off (clients keep encrypting).
            Ok(_) => Ok(RoomEncryption::TurnedOff),
            Err(err) if err.errcode() == Some("M_NOT_FOUND") => Ok(RoomEncryption::Clear),
            Err(err) => Err(err.into_bridge("get encryption")),
        }
    }

    /// Whether `room` is encrypted, read as a bridge user who is in it.
    pub(super) async fn room_encryption_of(&self, room: &MatrixRoomId) -> Result<RoomEncryption, BridgeError> {
        if let Some(known) = self.e2ee.as_ref().and_then(|e2ee| e2ee.known_encryption(room.as_str())) {
            return Ok(known);
        }
        let ruma_room = super::room_id(room)?;
        for user in self.bridge_users_in(room).await {
            let Ok(user) = ruma::OwnedUserId::try_from(user) else { continue };
            match self.read_encryption(&ruma_room, &user).await {
                Ok(state) => {
                    if let Some(e2ee) = &self.e2ee {
                        e2ee.set_encryption(room.as_str(), state);
                    }
                    return Ok(state);
                }
                Err(err) if err.is_transient() => return Err(err),
                Err(_) => {}
            }
        }
        // No bridge user may read the room (yet): treat it as clear, which
        // a policy that requires encryption refuses.
        tracing::debug!(room = %room, "room encryption unreadable; taken as clear");
        Ok(RoomEncryption::Clear)
    }

    /// The joined and invited members of `room`, read as `user`.
    async fn members(
        &self,
        e2ee: &E2ee,
        room: &ruma::OwnedRoomId,
        user: &ruma::OwnedUserId,
    ) -> Result<Vec<String>, BridgeError> {
        if let Some(members) = e2ee.known_members(room.as_str()) {
            return Ok(members);
        }
        let mut request = get_member_events::v3::Request::new(room.clone());
        request.not_membership = Some(MembershipState::Leave);
        let response = self
            .http
            .call("get members", request, Some(user), Versions::Modern)
            .await
            .map_err(|e| e.into_bridge("get members"))?;
        let members: Vec<String> = response
            .chunk
            .iter()
            .filter_map(|raw| raw.deserialize().ok())
            .filter(|event| matches!(event.membership(), MembershipState::Join | MembershipState::Invite))
            .map(|event| event.state_key().to_string())
            .collect();
        e2ee.set_members(room.as_str(), members.clone());
        Ok(members)
    }

    /// Decrypts an encrypted Matrix event into the canonical event it carries.
    pub(super) async fn decrypt_event(&self, event: &MatrixEvent) -> Result<MatrixEvent, DecryptFailure> {
        let Some(e2ee) = &self.e2ee else {
            return Err(DecryptFailure::Never("encryption is not enabled on this bridge".into()));
        };
        let EventBody::Encrypted { event_json } = &event.body else {
            return Ok(event.clone());
        };
        let candidates = self.bridge_users_in(&event.room_id).await;
        let decrypted = match e2ee.crypto.decrypt(event.room_id.as_str(), event_json, &candidates).await {
            Ok(decrypted) => decrypted,
            Err(DecryptError::KeyMissing) => return Err(DecryptFailure::KeyMissing),
            Err(DecryptError::Undecryptable(reason)) => return Err(DecryptFailure::Never(reason)),
            Err(other) => return Err(DecryptFailure::Failed(other.to_string())),
        };
        let raw = RawValue::from_string(decrypted.event_json)
            .map_err(|_| DecryptFailure::Never("the plaintext is not JSON".into()))?;
        crate::server::parse_room_event(&raw)
            .ok_or_else(|| DecryptFailure::Never("the plaintext is no event the bridge carries".into()))
    }

    /// The bot first, then the bridge users known to hold the room's keys
    /// and the ghosts this process joined to it.
    async fn bridge_users_in(&self, room: &MatrixRoomId) -> Vec<String> {
        let mut users = vec![self.bot.to_string()];
        if let Some(e2ee) = &self.e2ee {
            users.extend(e2ee.crypto.holders(room.as_str()).await.unwrap_or_default());
        }
        let joined: Vec<String> = {
            let joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
            joined.iter().filter(|(r, _)| r == room.as_str()).map(|(_, user)| user.clone()).collect()
        };
        for user in joined {
            if !users.contains(&user) {
                users.push(user);
            }
        }
        users
    }

    /// A notice as the bot, else as a ghost in the room (direct chats have no bot).
    pub(super) async fn notify_room(&self, room: &MatrixRoomId, txn_id: &str, text: &str) -> Result<(), BridgeError> {
        let notice = EventBody::Message(brygga_core::Message {
            notice: true,
            ..brygga_core::Message::text(brygga_core::Text::plain(text))
        });
        let mut last = BridgeError::permanent("no bridge user is in the room");
        for user in self.bridge_users_in(room).await {
            let user = MatrixUserId::new(user).map_err(|e| BridgeError::permanent(e.to_string()))?;
            match self.send_event(room, &user, txn_id, &notice).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_transient() => return Err(err),
                Err(err) => last = err,
            }
        }
        Err(last)
    }
}
