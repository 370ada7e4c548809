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

/// How long a message waits for its room key by default (counted from when it was sent).
pub const DEFAULT_KEY_WAIT: Duration = Duration::from_secs(60);

/// How often a message waiting for its room key is tried again.
const KEY_RETRY: Duration = Duration::from_millis(500);

/// What becomes of an encrypted event after one attempt to decrypt it.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Decrypted: deliver what it carries.
    Deliver(Box<MatrixEvent>),
    /// Its room key may still come: try again shortly.
    AwaitKey,
    /// The bridge's crypto failed for now.
    Retry(String),
    /// It will never decrypt here, for this reason.
    Undecryptable(String),
}

/// Judges one decryption attempt of an event sent `waited` ago.
fn verdict(attempt: Result<MatrixEvent, DecryptFailure>, waited: Duration, key_wait: Duration) -> Verdict {
    match attempt {
        Ok(plain) if matches!(plain.body, EventBody::Encrypted { .. }) => {
            Verdict::Undecryptable("it was encrypted twice".into())
        }
        Ok(plain) => Verdict::Deliver(Box::new(plain)),
        Err(DecryptFailure::KeyMissing) if waited < key_wait => Verdict::AwaitKey,
        Err(DecryptFailure::KeyMissing) => Verdict::Undecryptable("its room key never reached the bridge".into()),
        Err(DecryptFailure::Never(reason)) => Verdict::Undecryptable(reason),
        Err(DecryptFailure::Failed(message)) => Verdict::Retry(message),
    }
}

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
        let attempt = self.matrix.decrypt(&event).await;
        let reason = match verdict(attempt, waited(&event), self.key_wait()) {
            Verdict::Deliver(plain) => return Ok(Some(*plain)),
            Verdict::AwaitKey => {
                return Err(BridgeError::Transient {
                    message: "waiting for the room key".into(),
                    retry_after: Some(KEY_RETRY),
                });
            }
            Verdict::Retry(message) => return Err(BridgeError::transient(message)),
            Verdict::Undecryptable(reason) => reason,
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

    fn key_wait(&self) -> Duration {
        self.key_wait.get().copied().unwrap_or(DEFAULT_KEY_WAIT)
    }
}

/// How long ago the event was sent, by its server timestamp.
fn waited(event: &MatrixEvent) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    Duration::from_millis(now.saturating_sub(event.origin_server_ts).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Message, Text};
    use crate::ids::{MatrixEventId, MatrixRoomId, MatrixUserId};

    const WAIT: Duration = Duration::from_secs(60);

    fn event(body: EventBody<MatrixEventId>, sent_ms_ago: i64) -> MatrixEvent {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        MatrixEvent {
            room_id: MatrixRoomId::new("!r:hs").unwrap(),
            event_id: MatrixEventId::new("$e").unwrap(),
            sender: MatrixUserId::new("@alice:hs").unwrap(),
            origin_server_ts: now - sent_ms_ago,
            state_key: None,
            direct: false,
            body,
        }
    }

    fn text() -> EventBody<MatrixEventId> {
        EventBody::Message(Message::text(Text::plain("hi")))
    }

    #[test]
    fn a_decrypted_event_is_delivered_unless_it_is_still_encrypted() {
        let plain = event(text(), 0);
        assert_eq!(verdict(Ok(plain.clone()), Duration::ZERO, WAIT), Verdict::Deliver(Box::new(plain)));
        let twice = event(EventBody::Encrypted { event_json: "{}".into() }, 0);
        assert_eq!(verdict(Ok(twice), Duration::ZERO, WAIT), Verdict::Undecryptable("it was encrypted twice".into()));
    }

    #[test]
    fn a_missing_key_is_awaited_until_the_wait_is_over() {
        let missing = || Err(DecryptFailure::KeyMissing);
        assert_eq!(verdict(missing(), Duration::from_secs(59), WAIT), Verdict::AwaitKey);
        assert_eq!(
            verdict(missing(), WAIT, WAIT),
            Verdict::Undecryptable("its room key never reached the bridge".into())
        );
        assert_eq!(verdict(missing(), Duration::from_secs(3), Duration::from_secs(2)), verdict(missing(), WAIT, WAIT));
    }

    #[test]
    fn hopeless_events_are_named_at_once_and_crypto_failures_retried() {
        let never = Err(DecryptFailure::Never("malformed event".into()));
        assert_eq!(verdict(never, Duration::ZERO, WAIT), Verdict::Undecryptable("malformed event".into()));
        let failed = Err(DecryptFailure::Failed("store locked".into()));
        assert_eq!(verdict(failed, Duration::from_secs(600), WAIT), Verdict::Retry("store locked".into()));
    }

    #[test]
    fn waiting_is_counted_from_the_server_timestamp() {
        let sent = event(text(), 5_000);
        let waited = waited(&sent);
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(6), "{waited:?}");
        // A sender's clock ahead of ours does not make the wait negative.
        assert_eq!(super::waited(&event(text(), -60_000)), Duration::ZERO);
    }
}
