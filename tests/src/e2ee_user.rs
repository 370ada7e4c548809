//! An end-to-end-encrypting Matrix test client: a real user with a real device
//! (matrix-sdk 0.18 with its in-memory stores), driven through plain types.
//!
//! Its trust settings are what an Element user effectively has: room keys go
//! to every device of the room's members, verified or not, and messages from
//! unverified devices (such as a bridge's ghosts) are decrypted. Like Element
//! and matrix-sdk, it sends reactions and redactions in the clear.
//! A device's keys live only in memory: log in with a fresh device id each time.

mod inbox;
mod receive;
mod rooms;
mod send;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use inbox::Inbox;
pub use inbox::{Encryption, ReceivedEvent};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::ruma::{OwnedRoomId, UInt};
use matrix_sdk::{Client, LoopCtrl};
use matrix_sdk_base::crypto::{CollectStrategy, DecryptionSettings, TrustRequirement};
pub use receive::KEY_GRACE;
use tokio::task::JoinHandle;

/// Event types that Matrix clients send in the clear even in encrypted rooms.
pub const SENT_IN_CLEAR: [&str; 2] = ["m.reaction", "m.room.redaction"];

/// What went wrong, with the step that failed.
#[derive(Debug, Clone)]
pub struct E2eeError(String);

impl fmt::Display for E2eeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for E2eeError {}

/// The result of an [`E2eeUser`] call.
pub type E2eeResult<T> = Result<T, E2eeError>;

/// Wraps an error with what was being done.
fn failed<E: fmt::Display>(doing: impl fmt::Display) -> impl FnOnce(E) -> E2eeError {
    move |e| E2eeError(format!("{doing}: {e}"))
}

/// A logged-in device of a Matrix user with a background sync loop.
pub struct E2eeUser {
    client: Client,
    user_id: String,
    device_id: String,
    inbox: Arc<Inbox>,
    auto_join: Arc<AtomicBool>,
    sync: JoinHandle<()>,
}

impl fmt::Debug for E2eeUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("E2eeUser").field("user_id", &self.user_id).field("device_id", &self.device_id).finish()
    }
}

impl Drop for E2eeUser {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl E2eeUser {
    /// Logs an existing user in with password as a new device `device_id`,
    /// uploads its keys, and starts syncing. Invites are accepted automatically
    /// until [`set_auto_join`](Self::set_auto_join) turns that off.
    pub async fn login(homeserver: &str, user_id: &str, password: &str, device_id: &str) -> E2eeResult<Self> {
        let client = Client::builder()
            .homeserver_url(homeserver)
            .with_encryption_settings(EncryptionSettings { auto_enable_cross_signing: true, ..Default::default() })
            .with_room_key_recipient_strategy(CollectStrategy::AllDevices)
            .with_decryption_settings(DecryptionSettings {
                sender_device_trust_requirement: TrustRequirement::Untrusted,
            })
            // Room-history bundles for invitees (MSC4268) are not what common clients send.
            .with_enable_share_history_on_invite(false)
            .build()
            .await
            .map_err(failed("building the client"))?;
        client
            .matrix_auth()
            .login_username(user_id, password)
            .device_id(device_id)
            .initial_device_display_name(&format!("brygga e2ee test {device_id}"))
            .send()
            .await
            .map_err(failed(format_args!("logging in {user_id}")))?;
        client.encryption().wait_for_e2ee_initialization_tasks().await;

        let inbox = Arc::new(Inbox::default());
        let auto_join = Arc::new(AtomicBool::new(true));
        // One sync before returning uploads the device keys, so others can encrypt to it at once.
        let settings = sync_settings();
        let first = client.sync_once(settings.clone()).await.map_err(failed("the first sync"))?;
        inbox.record(&first);
        accept_invites(&client, first.rooms.invited.keys().cloned().collect(), &auto_join).await;
        let sync =
            tokio::spawn(sync_loop(client.clone(), settings.token(first.next_batch), inbox.clone(), auto_join.clone()));
        Ok(Self { client, user_id: user_id.to_owned(), device_id: device_id.to_owned(), inbox, auto_join, sync })
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Whether invites are joined as soon as they are synced (on by default).
    pub fn set_auto_join(&self, on: bool) {
        self.auto_join.store(on, Ordering::Relaxed);
    }

    /// Waits until this client knows `device_id` of `user_id` (learned from a
    /// device-list change in sync), so that what it sends next is shared with it.
    pub async fn wait_for_device(&self, user_id: &str, device_id: &str, timeout: Duration) -> E2eeResult<()> {
        let user = rooms::parse_user(user_id)?;
        let device = matrix_sdk::ruma::OwnedDeviceId::from(device_id);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let known = self.client.encryption().get_device(&user, &device).await;
            if known.map_err(failed("reading the device store"))?.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(E2eeError(format!(
                    "{} did not learn of {user_id}'s {device_id} within {timeout:?}",
                    self.user_id
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the user's cross-signing identity is set up and trusted by this device.
    pub async fn has_cross_signing(&self) -> bool {
        self.client.encryption().cross_signing_status().await.is_some_and(|status| status.is_complete())
    }
}

/// Long-polls for 10 s at most so aborting never waits long; a generous
/// timeline limit keeps bursts from being cut into gaps.
fn sync_settings() -> SyncSettings {
    let mut filter = FilterDefinition::default();
    filter.room.timeline.limit = Some(UInt::from(200u32));
    SyncSettings::default().timeout(Duration::from_secs(10)).filter(Filter::FilterDefinition(filter))
}

async fn sync_loop(client: Client, settings: SyncSettings, inbox: Arc<Inbox>, auto_join: Arc<AtomicBool>) {
    let outcome = client
        .sync_with_result_callback(settings, |result| {
            let (client, inbox, auto_join) = (client.clone(), inbox.clone(), auto_join.clone());
            async move {
                match result {
                    Ok(response) => {
                        inbox.record(&response);
                        accept_invites(&client, response.rooms.invited.keys().cloned().collect(), &auto_join).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "e2ee test client: sync failed, retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                Ok(LoopCtrl::Continue)
            }
        })
        .await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "e2ee test client: sync loop ended");
    }
}

async fn accept_invites(client: &Client, invited: Vec<OwnedRoomId>, auto_join: &AtomicBool) {
    if !auto_join.load(Ordering::Relaxed) {
        return;
    }
    for room_id in invited {
        if let Err(e) = client.join_room_by_id(&room_id).await {
            tracing::warn!(room = %room_id, error = %e, "e2ee test client: joining an invite failed");
        }
    }
}

impl E2eeUser {
    /// The bytes the homeserver stores for `mxc`, fetched with plain HTTP as
    /// this user (authenticated media) and not decrypted: for an encrypted
    /// file, what the homeserver could read of it.
    pub async fn download_stored(&self, mxc: &str) -> E2eeResult<Vec<u8>> {
        let path = mxc.strip_prefix("mxc://").ok_or_else(|| E2eeError(format!("{mxc:?} is no mxc URI")))?;
        let token = self.client.access_token().ok_or_else(|| E2eeError("not logged in".into()))?;
        let base = self.client.homeserver();
        let url = format!("{}/_matrix/client/v1/media/download/{path}", base.as_str().trim_end_matches('/'));
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed(format_args!("downloading {mxc}")))?;
        let bytes = response.bytes().await.map_err(failed(format_args!("reading {mxc}")))?;
        Ok(bytes.to_vec())
    }
}

impl E2eeUser {
    /// Sends an event exactly as given, never encrypted, with plain HTTP as
    /// this user: for what no honest client sends, such as an
    /// `m.room.encrypted` event whose key nobody has.
    pub async fn send_as_is(&self, room_id: &str, event_type: &str, content: &serde_json::Value) -> E2eeResult<String> {
        let token = self.client.access_token().ok_or_else(|| E2eeError("not logged in".into()))?;
        let base = self.client.homeserver();
        let txn = format!("as-is-{}", rand_suffix());
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/{event_type}/{txn}",
            base.as_str().trim_end_matches('/'),
            crate::matrix_user::enc(room_id)
        );
        let response = reqwest::Client::new()
            .put(&url)
            .bearer_auth(token)
            .json(content)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed(format_args!("sending {event_type} to {room_id}")))?;
        let sent: serde_json::Value = response.json().await.map_err(failed("reading the send answer"))?;
        sent["event_id"].as_str().map(str::to_owned).ok_or_else(|| E2eeError(format!("no event id in {sent}")))
    }
}

/// A transaction id part no two sends share.
fn rand_suffix() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{}", now.as_nanos(), NEXT.fetch_add(1, Ordering::Relaxed))
}
