//! Display names of Matrix users per room, so adapters can show Matrix users
//! under their names (XMPP nicks, relay prefixes).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::event::{EventBody, MatrixEvent, MatrixSender};
use crate::ids::{MatrixRoomId, MatrixUserId};
use crate::matrix::MatrixSide;

/// Known display names; an entry of `None` means the user has none.
#[derive(Default)]
pub(crate) struct DisplayNames {
    names: Mutex<HashMap<(MatrixRoomId, MatrixUserId), Option<String>>>,
}

impl DisplayNames {
    /// The sender of `event` with their display name in its room. Membership
    /// events of the sender carry the new name; others are looked up once.
    pub(crate) async fn sender_of(&self, matrix: &dyn MatrixSide, event: &MatrixEvent) -> MatrixSender {
        let key = (event.room_id.clone(), event.sender.clone());
        if let EventBody::Membership { display_name, .. } = &event.body
            && event.state_key.as_deref() == Some(event.sender.as_str())
        {
            self.names.lock().expect("names poisoned").insert(key, display_name.clone());
            return MatrixSender { user_id: event.sender.clone(), display_name: display_name.clone() };
        }
        let cached = self.names.lock().expect("names poisoned").get(&key).cloned();
        let display_name = match cached {
            Some(name) => name,
            None => {
                // Not worth failing a delivery for: the remote side falls back to the user id,
                // and the next membership event brings the name.
                let name = matrix.display_name(&event.room_id, &event.sender).await.unwrap_or_else(|err| {
                    tracing::debug!(error = %err, "display name lookup failed");
                    None
                });
                self.names.lock().expect("names poisoned").insert(key, name.clone());
                name
            }
        };
        MatrixSender { user_id: event.sender.clone(), display_name }
    }
}
