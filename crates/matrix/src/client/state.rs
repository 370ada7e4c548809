//! Setting room state as the bridge bot (e.g. a portal's bridge status).

use brygga_core::{BridgeError, MatrixRoomId};
use ruma::api::client::state::send_state_event;
use ruma::events::StateEventType;
use ruma::serde::Raw;

use super::{MatrixClient, Versions, room_id};

impl MatrixClient {
    /// Puts one state event as the bot; a retried call sets the same state again.
    pub(super) async fn put_state(
        &self,
        room: &MatrixRoomId,
        event_type: &str,
        state_key: &str,
        content: &serde_json::Value,
    ) -> Result<(), BridgeError> {
        if !content.is_object() {
            return Err(BridgeError::permanent("state content must be a JSON object"));
        }
        let raw = serde_json::value::to_raw_value(content)
            .map_err(|_| BridgeError::permanent("cannot encode state content"))?;
        let request = send_state_event::v3::Request::new_raw(
            room_id(room)?,
            StateEventType::from(event_type),
            state_key.to_owned(),
            Raw::from_json(raw),
        );
        self.http
            .call("set state", request, None, Versions::Modern)
            .await
            .map(|_| ())
            .map_err(|e| e.into_bridge("set state"))
    }
}
