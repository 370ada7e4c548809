//! Commands in encrypted management rooms: decrypted before they are read.

use std::time::Duration;

use super::BotCommands;
use super::replies;
use crate::event::MatrixEvent;
use crate::matrix::DecryptFailure;
use crate::txn::txn_id;

/// How long a command waits for its room key, which may be a moment behind it.
const KEY_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again meanwhile.
const KEY_POLL: Duration = Duration::from_millis(250);

impl BotCommands {
    /// Decrypts an encrypted message of a management room and answers it
    /// when it is a command; one that cannot be decrypted is answered so.
    pub(super) async fn answer_sealed(&self, event: &MatrixEvent) {
        let deadline = tokio::time::Instant::now() + KEY_WAIT;
        let reason = loop {
            match self.inner.matrix.decrypt(event).await {
                Ok(plain) => {
                    if let Some(text) = Self::command_text(&plain.body) {
                        self.answer(&plain, text).await;
                    }
                    return;
                }
                Err(DecryptFailure::KeyMissing | DecryptFailure::Failed(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(KEY_POLL).await;
                }
                Err(DecryptFailure::KeyMissing) => break "its room key never reached the bridge".to_owned(),
                Err(DecryptFailure::Never(reason) | DecryptFailure::Failed(reason)) => break reason,
            }
        };
        tracing::warn!(room = %event.room_id, reason, "an encrypted bot command could not be decrypted");
        let text = format!("The bridge could not decrypt your command ({reason}); please send it again.");
        let txn = txn_id(&["bot-undecryptable", event.room_id.as_str(), event.event_id.as_str()]);
        let bot = self.inner.matrix.bot_user_id().clone();
        if let Err(err) = self.inner.matrix.send(&event.room_id, &bot, &txn, &replies::notice(&text)).await {
            tracing::warn!(room = %event.room_id, error = %err, "the bot could not answer in a management room");
        }
    }
}
