//! Sending canonical events into a room as a ghost.

use std::time::Duration;

use brygga_core::{BridgeError, EventBody, MatrixEventId, MatrixRoomId, MatrixUserId, Membership, Presence};
use ruma::api::client::membership::{ban_user, kick_user, leave_room};
use ruma::api::client::message::send_message_event;
use ruma::api::client::presence::set_presence;
use ruma::api::client::receipt::create_receipt::{self, v3::ReceiptType};
use ruma::api::client::redact::redact_event;
use ruma::api::client::typing::create_typing_event::{
    self,
    v3::{Typing, TypingInfo},
};
use ruma::events::MessageLikeEventContent;
use ruma::presence::PresenceState;
use ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId, OwnedUserId};

use super::{MatrixClient, Versions, room_id, user_id};
use crate::render;

/// How long a typing notification lasts unless renewed or cancelled.
const TYPING_TIMEOUT: Duration = Duration::from_secs(30);

impl MatrixClient {
    pub(super) async fn send_event(
        &self,
        room: &MatrixRoomId,
        user: &MatrixUserId,
        txn_id: &str,
        body: &EventBody<MatrixEventId>,
    ) -> Result<Option<MatrixEventId>, BridgeError> {
        if txn_id.is_empty() {
            return Err(BridgeError::permanent("empty transaction id"));
        }
        let txn = OwnedTransactionId::from(txn_id);
        let ruma_room = room_id(room)?;
        let ruma_user = user_id(user)?;
        match body {
            EventBody::Message(message) => {
                let content = render::message(message)?;
                self.send_content(&ruma_room, &ruma_user, txn, &content).await.map(Some)
            }
            EventBody::Edit { target, text } => {
                let content = render::edit(target, text)?;
                self.send_content(&ruma_room, &ruma_user, txn, &content).await.map(Some)
            }
            EventBody::Reaction { removed: true, .. } => {
                Err(BridgeError::permanent("removing a reaction is a redaction of the reaction event"))
            }
            EventBody::Reaction { target, key, .. } => {
                let content = render::reaction(target, key)?;
                self.send_content(&ruma_room, &ruma_user, txn, &content).await.map(Some)
            }
            EventBody::Redaction { target, reason } => {
                let mut request = redact_event::v3::Request::new(ruma_room, render::event_id(target)?, txn);
                request.reason.clone_from(reason);
                let response = self
                    .http
                    .call("redact", request, Some(&ruma_user), Versions::Modern)
                    .await
                    .map_err(|e| e.into_bridge("redact"))?;
                core_event_id(response.event_id).map(Some)
            }
            EventBody::Membership { membership, reason, .. } => {
                self.membership(room, user, ruma_room, &ruma_user, *membership, reason.as_deref()).await?;
                Ok(None)
            }
            EventBody::Typing { typing } => {
                let state = if *typing { Typing::Yes(TypingInfo::new(TYPING_TIMEOUT)) } else { Typing::No };
                let request = create_typing_event::v3::Request::new(ruma_user.clone(), ruma_room, state);
                self.call_unit("typing", request, Some(&ruma_user)).await?;
                Ok(None)
            }
            EventBody::Presence { presence, status } => {
                let state = match presence {
                    Presence::Online => PresenceState::Online,
                    Presence::Unavailable => PresenceState::Unavailable,
                    _ => PresenceState::Offline,
                };
                let mut request = set_presence::v3::Request::new(ruma_user.clone(), state);
                request.status_msg.clone_from(status);
                self.call_unit("presence", request, Some(&ruma_user)).await?;
                Ok(None)
            }
            EventBody::ReadReceipt { up_to } => {
                let request = create_receipt::v3::Request::new(ruma_room, ReceiptType::Read, render::event_id(up_to)?);
                self.call_unit("receipt", request, Some(&ruma_user)).await?;
                Ok(None)
            }
            other => Err(BridgeError::permanent(format!("cannot send {} events to Matrix", other.kind_name()))),
        }
    }

    async fn send_content<C>(
        &self,
        room: &OwnedRoomId,
        user: &OwnedUserId,
        txn: OwnedTransactionId,
        content: &C,
    ) -> Result<MatrixEventId, BridgeError>
    where
        C: MessageLikeEventContent + serde::Serialize,
    {
        let event_type = content.event_type().to_string();
        let plain = serde_json::to_value(content).map_err(|_| BridgeError::permanent("cannot encode event content"))?;
        let request = match self.seal(room, user, &event_type, &plain).await? {
            Some(sealed) => {
                let raw = serde_json::value::to_raw_value(&sealed)
                    .map_err(|_| BridgeError::permanent("cannot encode encrypted content"))?;
                send_message_event::v3::Request::new_raw(
                    room.clone(),
                    txn,
                    "m.room.encrypted".into(),
                    ruma::serde::Raw::from_json(raw),
                )
            }
            None => send_message_event::v3::Request::new(room.clone(), txn, content)
                .map_err(|_| BridgeError::permanent("cannot encode event content"))?,
        };
        let response =
            self.http.call("send", request, Some(user), Versions::Modern).await.map_err(|e| e.into_bridge("send"))?;
        core_event_id(response.event_id)
    }

    async fn membership(
        &self,
        room: &MatrixRoomId,
        user: &MatrixUserId,
        ruma_room: OwnedRoomId,
        ruma_user: &OwnedUserId,
        membership: Membership,
        reason: Option<&str>,
    ) -> Result<(), BridgeError> {
        match membership {
            Membership::Join => self.join(room, user).await,
            Membership::Leave => {
                let mut request = leave_room::v3::Request::new(ruma_room);
                request.reason = reason.map(str::to_owned);
                match self.http.call("leave", request, Some(ruma_user), Versions::Modern).await {
                    Ok(_) => {}
                    // Not in the room (any more): the leave has happened.
                    Err(err) if err.errcode() == Some("M_FORBIDDEN") => {
                        tracing::debug!("leave refused; ghost was not in the room");
                    }
                    Err(err) => return Err(err.into_bridge("leave")),
                }
                self.remember_joined(room, user, false);
                Ok(())
            }
            // Removal is done to the ghost, so the bot (room admin) does it.
            Membership::Kick => {
                let mut request = kick_user::v3::Request::new(ruma_room, ruma_user.clone());
                request.reason = reason.map(str::to_owned);
                self.call_unit("kick", request, None).await?;
                self.remember_joined(room, user, false);
                Ok(())
            }
            Membership::Ban => {
                let mut request = ban_user::v3::Request::new(ruma_room, ruma_user.clone());
                request.reason = reason.map(str::to_owned);
                self.call_unit("ban", request, None).await?;
                self.remember_joined(room, user, false);
                Ok(())
            }
            other => {
                tracing::debug!(membership = ?other, "ignoring membership change a ghost cannot make itself");
                Ok(())
            }
        }
    }

    /// Makes a call without a useful answer, as `user` or (with `None`) as the bot.
    async fn call_unit<R>(&self, what: &str, request: R, user: Option<&OwnedUserId>) -> Result<(), BridgeError>
    where
        R: ruma::api::OutgoingRequest,
        for<'a> R::Authentication:
            ruma::api::auth_scheme::AuthScheme<Input<'a> = ruma::api::auth_scheme::SendAccessToken<'a>>,
        R::PathBuilder: super::http::PathInput,
    {
        self.http
            .call(what, request, user.map(|u| &**u), Versions::Modern)
            .await
            .map(|_| ())
            .map_err(|e| e.into_bridge(what))
    }
}

fn core_event_id(id: OwnedEventId) -> Result<MatrixEventId, BridgeError> {
    MatrixEventId::new(id.as_str()).map_err(|_| BridgeError::permanent("homeserver returned an invalid event id"))
}
