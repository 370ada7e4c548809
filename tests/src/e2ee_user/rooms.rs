//! Creating, joining and inspecting rooms.

use std::time::Duration;

use matrix_sdk::Room;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::api::client::state::get_state_event_for_key;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::{OwnedUserId, RoomAliasId, RoomId, UserId};
use serde_json::Value;

use super::{E2eeError, E2eeResult, E2eeUser, failed};

/// How long a room may take to reach this client's store after a join or an
/// invite (it arrives with the next sync).
const ROOM_SYNC_TIMEOUT: Duration = Duration::from_secs(15);

impl E2eeUser {
    /// Creates an encrypted direct chat with `user_id` (as Element does); returns the room id.
    pub async fn create_encrypted_dm(&self, user_id: &str) -> E2eeResult<String> {
        let user = parse_user(user_id)?;
        let room = self.client.create_dm(&user).await.map_err(failed(format_args!("creating a DM with {user_id}")))?;
        Ok(room.room_id().to_string())
    }

    /// Creates a private encrypted room named `name`, inviting `invites`; returns the room id.
    pub async fn create_encrypted_room(&self, name: &str, invites: &[&str]) -> E2eeResult<String> {
        self.create(name, invites, true).await
    }

    /// Creates a private room without encryption (to turn it on later); returns the room id.
    pub async fn create_room(&self, name: &str, invites: &[&str]) -> E2eeResult<String> {
        self.create(name, invites, false).await
    }

    async fn create(&self, name: &str, invites: &[&str], encrypted: bool) -> E2eeResult<String> {
        let mut request = CreateRoom::new();
        request.name = Some(name.to_owned());
        request.preset = Some(RoomPreset::PrivateChat);
        request.invite = invites.iter().map(|user| parse_user(user)).collect::<E2eeResult<_>>()?;
        if encrypted {
            let encryption = RoomEncryptionEventContent::with_recommended_defaults();
            request.initial_state = vec![InitialStateEvent::with_empty_state_key(encryption).to_raw_any()];
        }
        let room = self.client.create_room(request).await.map_err(failed(format_args!("creating room {name}")))?;
        Ok(room.room_id().to_string())
    }

    /// Turns on encryption in a room (sends `m.room.encryption`); a no-op if it is on.
    pub async fn enable_encryption(&self, room_id: &str) -> E2eeResult<()> {
        let room = self.room(room_id).await?;
        room.enable_encryption().await.map_err(failed(format_args!("enabling encryption in {room_id}")))
    }

    /// Whether the room is encrypted, as the server's current state says.
    pub async fn is_encrypted(&self, room_id: &str) -> E2eeResult<bool> {
        let room = self.room(room_id).await?;
        let state = room.latest_encryption_state().await.map_err(failed(format_args!("reading {room_id}")))?;
        Ok(state.is_encrypted())
    }

    /// Invites a user.
    pub async fn invite(&self, room_id: &str, user_id: &str) -> E2eeResult<()> {
        let room = self.room(room_id).await?;
        let user = parse_user(user_id)?;
        room.invite_user_by_id(&user).await.map_err(failed(format_args!("inviting {user_id} to {room_id}")))
    }

    /// Joins a room by id (needed only with auto-join off, or without an invite).
    pub async fn join(&self, room_id: &str) -> E2eeResult<()> {
        let room = parse_room(room_id)?;
        self.client.join_room_by_id(&room).await.map_err(failed(format_args!("joining {room_id}")))?;
        Ok(())
    }

    /// Waits until `user_id` is a joined member of the room as this client sees it.
    pub async fn wait_for_member(&self, room_id: &str, user_id: &str, timeout: Duration) -> E2eeResult<()> {
        let user = parse_user(user_id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(room) = self.client.get_room(&parse_room(room_id)?) {
                let member = room.get_member_no_sync(&user).await.map_err(failed("reading members"))?;
                if member.is_some_and(|m| *m.membership() == MembershipState::Join) {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(E2eeError(format!("{user_id} did not join {room_id} within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a state event as it is (e.g. an `m.room.encryption` without an
    /// algorithm, which "turns encryption off").
    pub async fn send_state(&self, room_id: &str, event_type: &str, state_key: &str, content: Value) -> E2eeResult<()> {
        let room = self.room(room_id).await?;
        room.send_state_event_raw(event_type, state_key, content)
            .await
            .map_err(failed(format_args!("setting {event_type} in {room_id}")))?;
        Ok(())
    }

    /// A state event's current content on the server (`None`: not set).
    pub async fn state(&self, room_id: &str, event_type: &str, state_key: &str) -> E2eeResult<Option<Value>> {
        let request =
            get_state_event_for_key::v3::Request::new(parse_room(room_id)?, event_type.into(), state_key.to_owned());
        match self.client.send(request).await {
            Ok(response) => serde_json::from_str(response.event_or_content.get())
                .map(Some)
                .map_err(failed(format_args!("{event_type} in {room_id}"))),
            Err(err) if err.client_api_error_kind() == Some(&ErrorKind::NotFound) => Ok(None),
            Err(err) => Err(failed(format_args!("reading {event_type} in {room_id}"))(err)),
        }
    }

    /// The room an alias names, waiting up to `timeout` for it to exist.
    pub async fn room_of_alias(&self, alias: &str, timeout: Duration) -> E2eeResult<String> {
        let alias = RoomAliasId::parse(alias).map_err(failed(format_args!("alias {alias:?}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.client.resolve_room_alias(&alias).await {
                Ok(response) => return Ok(response.room_id.to_string()),
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    return Err(failed(format_args!("resolving {alias}"))(err));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The room in this client's store, waiting for the sync that brings it.
    pub(super) async fn room(&self, room_id: &str) -> E2eeResult<Room> {
        let id = parse_room(room_id)?;
        let deadline = tokio::time::Instant::now() + ROOM_SYNC_TIMEOUT;
        loop {
            if let Some(room) = self.client.get_room(&id) {
                return Ok(room);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(E2eeError(format!("{} does not know room {room_id}", self.user_id)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(super) fn parse_user(user_id: &str) -> E2eeResult<OwnedUserId> {
    UserId::parse(user_id).map_err(failed(format_args!("user id {user_id:?}")))
}

pub(super) fn parse_room(room_id: &str) -> E2eeResult<matrix_sdk::ruma::OwnedRoomId> {
    RoomId::parse(room_id).map_err(failed(format_args!("room id {room_id:?}")))
}
