//! Encrypted Matrix events: decrypted when delivered, so a room key that
//! arrives after its message still lets it through, in order. One that never
//! decrypts is not dropped silently: its sender gets a notice in the room.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::BridgeError;
use crate::event::{EventBody, MatrixEvent};
use crate::ids::PortalKey;
use crate::matrix::DecryptFailure;
use crate::router::delivery::Delivery;
use crate::txn::txn_id;

/// How long a message waits for its room key (counted from when it was sent).
const KEY_WAIT: Duration = Duration::from_secs(60);

impl Delivery {
    /// The event itself, or the one it carries when encrypted; `None` when
    /// it cannot be decrypted (the sender has been told).
    pub(crate) async fn unseal(
        &self,
        portal: &PortalKey,
        event: MatrixEvent,
    ) -> Result<Option<MatrixEvent>, BridgeError> {
        if !matches!(event.body, EventBody::Encrypted { .. }) {
            return Ok(Some(event));
        }
        let reason = match self.matrix.decrypt(&event).await {
            Ok(plain) if !matches!(plain.body, EventBody::Encrypted { .. }) => return Ok(Some(plain)),
            Ok(_) => "it was encrypted twice".to_owned(),
            Err(DecryptFailure::KeyMissing) if waited(&event) < KEY_WAIT => {
                return Err(BridgeError::Transient {
                    message: "waiting for the room key".into(),
                    retry_after: Some(Duration::from_millis(500)),
                });
            }
            Err(DecryptFailure::KeyMissing) => "its room key never reached the bridge".to_owned(),
            Err(DecryptFailure::Never(reason)) => reason,
            Err(DecryptFailure::Failed(message)) => return Err(BridgeError::transient(message)),
        };
        tracing::warn!(portal = %portal, event_id = %event.event_id, reason, "undecryptable Matrix event");
        if let Some(observer) = self.observer.get() {
            observer.undecryptable(portal);
        }
        let text =
            format!("The bridge could not decrypt a message from {} ({reason}); it was not delivered.", event.sender);
        let txn = txn_id(&["undecryptable", portal.tenant.as_str(), event.event_id.as_str()]);
        self.matrix.notify(&event.room_id, &txn, &text).await?;
        Ok(None)
    }
}

/// How long ago the event was sent, by its server timestamp.
fn waited(event: &MatrixEvent) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    Duration::from_millis(now.saturating_sub(event.origin_server_ts).max(0) as u64)
}
