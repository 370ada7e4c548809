//! Waiting for received events, downloading their files and checking that
//! they were encrypted.

use std::time::Duration;

use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::OwnedMxcUri;
use matrix_sdk::ruma::events::room::EncryptedFile;
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;

use super::inbox::Found;
use super::{E2eeError, E2eeResult, E2eeUser, Encryption, ReceivedEvent, SENT_IN_CLEAR, failed};

/// How long an undecryptable event is retried before it is reported: its room
/// key may still be on its way in a later to-device message.
pub const KEY_GRACE: Duration = Duration::from_secs(5);

/// How often an undecryptable event is retried within the grace time.
const RETRY_EVERY: Duration = Duration::from_millis(250);

impl E2eeUser {
    /// The next event from `sender` in the room not yet handed out, with any
    /// file downloaded; an undecryptable one is retried for [`KEY_GRACE`] (its
    /// key may come late) and then returned as undecryptable, never skipped.
    pub async fn next_event(&self, room_id: &str, sender: &str, timeout: Duration) -> E2eeResult<ReceivedEvent> {
        self.next_event_where(room_id, sender, timeout, |_| true).await
    }

    /// Like [`next_event`](Self::next_event), of one (decrypted) type, or an
    /// undecryptable event (whose type is unknown); other events stay queued.
    pub async fn next_event_of_type(
        &self,
        room_id: &str,
        sender: &str,
        event_type: &str,
        timeout: Duration,
    ) -> E2eeResult<ReceivedEvent> {
        self.next_event_where(room_id, sender, timeout, |e| e.is_undecryptable() || e.event_type == event_type).await
    }

    /// Like [`next_event`](Self::next_event), for the first event `wanted`
    /// accepts; it sees undecryptable events too (as `m.room.encrypted`).
    pub async fn next_event_where(
        &self,
        room_id: &str,
        sender: &str,
        timeout: Duration,
        wanted: impl Fn(&ReceivedEvent) -> bool,
    ) -> E2eeResult<ReceivedEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut undecryptable_since = None;
        loop {
            let arrival = self.inbox.arrival();
            if let Some(found) = self.inbox.find(room_id, sender, &wanted) {
                let found = self.decrypt_again(found).await?;
                let since = *undecryptable_since.get_or_insert_with(tokio::time::Instant::now);
                let give_up = since.elapsed() >= KEY_GRACE || tokio::time::Instant::now() >= deadline;
                if !found.event.is_undecryptable() || give_up {
                    self.inbox.take(found.index);
                    return self.with_file(found.event).await;
                }
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
            undecryptable_since = None;
            if tokio::time::timeout_at(deadline, arrival).await.is_err() {
                return Err(E2eeError(format!(
                    "{} got no matching event from {sender} in {room_id} within {timeout:?}",
                    self.user_id
                )));
            }
        }
    }

    /// Every event received so far from `sender` in the room, handed out or
    /// not, without files.
    pub fn received(&self, room_id: &str, sender: &str) -> Vec<ReceivedEvent> {
        self.inbox.all_from(room_id, sender).into_iter().map(|found| found.event).collect()
    }

    /// Checks that every event received from `sender` in the room arrived
    /// encrypted and decrypted, except the types clients send in the clear
    /// ([`SENT_IN_CLEAR`]) and events redacted before they arrived; returns
    /// how many decrypted events were checked.
    pub async fn assert_all_encrypted(&self, room_id: &str, sender: &str) -> usize {
        let mut offenders = Vec::new();
        let mut checked = 0;
        for found in self.inbox.all_from(room_id, sender) {
            let event = self.decrypt_again(found).await.map(|found| found.event);
            match event {
                Ok(event) => match &event.encryption {
                    Encryption::Decrypted { .. } => checked += 1,
                    Encryption::Redacted => {}
                    Encryption::Plaintext if SENT_IN_CLEAR.contains(&event.event_type.as_str()) => {}
                    other => offenders.push(format!("{} {} {other:?}", event.event_id, event.event_type)),
                },
                Err(e) => offenders.push(e.to_string()),
            }
        }
        assert!(offenders.is_empty(), "events from {sender} in {room_id} not encrypted and decrypted: {offenders:#?}");
        checked
    }

    /// Retries decrypting an undecryptable event, recording the outcome.
    async fn decrypt_again(&self, found: Found) -> E2eeResult<Found> {
        if !found.event.is_undecryptable() {
            return Ok(found);
        }
        let room = self.room(&found.event.room_id).await?;
        let encrypted = found.raw.cast_ref_unchecked::<OriginalSyncRoomEncryptedEvent>();
        let timeline = room.decrypt_event(encrypted, None).await.map_err(failed("decrypting again"))?;
        let Some(event) = ReceivedEvent::from_timeline(&found.event.room_id, &timeline) else {
            return Ok(found);
        };
        self.inbox.replace(found.index, event.clone());
        Ok(Found { event, ..found })
    }

    /// Downloads (and decrypts) the file a message carries.
    async fn with_file(&self, mut event: ReceivedEvent) -> E2eeResult<ReceivedEvent> {
        let Some(source) = media_source(&event)? else {
            return Ok(event);
        };
        let request = MediaRequestParameters { source, format: MediaFormat::File };
        let bytes = self
            .client
            .media()
            .get_media_content(&request, false)
            .await
            .map_err(failed(format_args!("downloading the file of {}", event.event_id)))?;
        event.file = Some(bytes);
        Ok(event)
    }
}

/// Where a file, image, audio or video message's content is: `file` when encrypted, `url` when not.
fn media_source(event: &ReceivedEvent) -> E2eeResult<Option<MediaSource>> {
    let msgtype = event.content["msgtype"].as_str().unwrap_or_default();
    if event.event_type != "m.room.message" || !["m.file", "m.image", "m.audio", "m.video"].contains(&msgtype) {
        return Ok(None);
    }
    if let Some(file) = event.content.get("file") {
        let file: EncryptedFile = serde_json::from_value(file.clone()).map_err(failed("the event's encrypted file"))?;
        return Ok(Some(MediaSource::Encrypted(Box::new(file))));
    }
    match event.content["url"].as_str() {
        Some(url) => Ok(Some(MediaSource::Plain(OwnedMxcUri::from(url)))),
        None => Err(E2eeError(format!("{msgtype} event {} has neither file nor url", event.event_id))),
    }
}
