//! Reading room members' profiles, for naming Matrix users on the remote
//! side, and who sent an event.

use brygga_core::{BridgeError, MatrixEventId, MatrixRoomId, MatrixUserId};
use ruma::api::client::room::get_room_event;
use ruma::api::client::state::get_state_event_for_key;
use ruma::events::StateEventType;

use super::{MatrixClient, Versions, room_id};

impl MatrixClient {
    /// The sender of an event of `room`, read as the bot; `None` when it is unknown.
    pub(super) async fn sender_of(
        &self,
        room: &MatrixRoomId,
        event: &MatrixEventId,
    ) -> Result<Option<MatrixUserId>, BridgeError> {
        let event_id =
            ruma::OwnedEventId::try_from(event.as_str()).map_err(|_| BridgeError::permanent("bad event id"))?;
        let request = get_room_event::v3::Request::new(room_id(room)?, event_id);
        match self.http.call("get event", request, None, Versions::Modern).await {
            Ok(response) => {
                let sender = response.event.get_field::<String>("sender").ok().flatten();
                Ok(sender.and_then(|s| MatrixUserId::new(s).ok()))
            }
            Err(err) if err.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(err) => Err(err.into_bridge("get event")),
        }
    }

    /// The member's display name in `room`, read as the bot; `None` when unset.
    pub(super) async fn display_name_in(
        &self,
        room: &MatrixRoomId,
        user: &MatrixUserId,
    ) -> Result<Option<String>, BridgeError> {
        let request =
            get_state_event_for_key::v3::Request::new(room_id(room)?, StateEventType::RoomMember, user.to_string());
        match self.http.call("get member", request, None, Versions::Modern).await {
            Ok(response) => Ok(display_name(response.event_or_content.get())),
            Err(err) if err.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(err) => Err(err.into_bridge("get member")),
        }
    }
}

/// The `displayname` of member content (or of a whole event, by format).
fn display_name(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let content = value.get("content").unwrap_or(&value);
    content.get("displayname")?.as_str().filter(|n| !n.trim().is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names_come_from_content_or_event() {
        assert_eq!(display_name(r#"{"membership":"join","displayname":"Alice"}"#), Some("Alice".into()));
        assert_eq!(display_name(r#"{"content":{"membership":"join","displayname":"Al"}}"#), Some("Al".into()));
        assert_eq!(display_name(r#"{"membership":"join"}"#), None);
        assert_eq!(display_name(r#"{"membership":"join","displayname":" "}"#), None);
    }
}
