//! Reading room members' profiles, for naming Matrix users on the remote side.

use brygga_core::{BridgeError, MatrixRoomId, MatrixUserId};
use ruma::api::client::state::get_state_event_for_key;
use ruma::events::StateEventType;

use super::{MatrixClient, Versions, room_id};

impl MatrixClient {
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
