//! Change notification subscriptions: one per bridged channel or chat, with
//! a fresh random `clientState` each, created with the app's token, renewed
//! before they expire, and made again when Graph removed them. They are kept
//! in the adapter state so a restarted bridge knows its subscriptions (and
//! still accepts their notifications) before renewing them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use brygga_core::BridgeError;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::graph::GraphError;
use crate::ids::{Conversation, seg};
use crate::model::SubscriptionInfo;
use crate::shared::Shared;

/// The state key of the subscriptions.
const STATE_KEY: &str = "subscriptions";

/// One subscription.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Sub {
    pub(crate) id: String,
    /// The portal's room id.
    pub(crate) room: String,
    /// The secret Graph echoes in every notification of it.
    pub(crate) client_state: String,
    /// When it expires (RFC 3339).
    pub(crate) expires: String,
}

impl Sub {
    /// Whether it should be renewed now (a quarter of its lifetime or less left).
    pub(crate) fn due(&self, lifetime: Duration, now: DateTime<Utc>) -> bool {
        let Ok(expires) = DateTime::parse_from_rfc3339(&self.expires) else { return true };
        let left = expires.with_timezone(&Utc) - now;
        left.to_std().map_or(true, |left| left < lifetime / 4)
    }
}

/// The tenant's subscriptions, by room.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_room: Mutex<HashMap<String, Sub>>,
}

impl Subscriptions {
    /// The subscription with this id.
    pub(crate) fn by_id(&self, id: &str) -> Option<Sub> {
        self.by_room.lock().expect("subs poisoned").values().find(|s| s.id == id).cloned()
    }

    /// The subscription of a room.
    pub(crate) fn of_room(&self, room: &str) -> Option<Sub> {
        self.by_room.lock().expect("subs poisoned").get(room).cloned()
    }

    /// All subscriptions.
    pub(crate) fn all(&self) -> Vec<Sub> {
        self.by_room.lock().expect("subs poisoned").values().cloned().collect()
    }

    fn put(&self, sub: Sub) {
        self.by_room.lock().expect("subs poisoned").insert(sub.room.clone(), sub);
    }

    fn remove(&self, room: &str) {
        self.by_room.lock().expect("subs poisoned").remove(room);
    }

    fn snapshot(&self) -> String {
        let mut subs = self.all();
        subs.sort_by(|a, b| a.room.cmp(&b.room));
        serde_json::to_string(&subs).expect("serialisable")
    }
}

/// Loads the kept subscriptions.
pub(crate) async fn load(shared: &Shared) -> Result<(), BridgeError> {
    let Some(text) = shared.state.get(STATE_KEY).await? else { return Ok(()) };
    let subs: Vec<Sub> = serde_json::from_str(&text).unwrap_or_default();
    for sub in subs {
        shared.subs.put(sub);
    }
    Ok(())
}

async fn save(shared: &Shared) -> Result<(), GraphError> {
    let text = shared.subs.snapshot();
    shared.state.put(STATE_KEY, Some(&text)).await.map_err(|e| GraphError::Unavailable(e.to_string()))
}

fn expiry(shared: &Shared) -> String {
    let lifetime = shared.config().subscription_lifetime;
    // A little short of the maximum, so clock skew never makes Graph refuse it.
    let asked = chrono::Duration::from_std(lifetime - lifetime / 20).unwrap_or_default();
    (Utc::now() + asked).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn client_state() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes sure a room has a live subscription: creates one when it has none,
/// renews it when due, and with `verify` asks Graph whether a kept one still
/// exists (its removal may have been announced while the bridge was down).
/// Returns true when a new one was made (the caller catches up on what
/// happened without one).
pub(crate) async fn ensure(shared: &Shared, conversation: &Conversation, verify: bool) -> Result<bool, GraphError> {
    let room = conversation.room_id();
    if verify && let Some(sub) = shared.subs.of_room(&room) {
        let path = format!("subscriptions/{}", seg(&sub.id));
        if let Err(GraphError::NotFound(_)) = shared.app_call(Method::GET, &path, None, &room).await {
            forget(shared, &sub).await?;
        }
    }
    match shared.subs.of_room(&room) {
        Some(sub) if !sub.due(shared.config().subscription_lifetime, Utc::now()) => Ok(false),
        Some(sub) => match renew(shared, &sub).await {
            Err(GraphError::NotFound(_)) => create(shared, conversation).await.map(|()| true),
            other => other.map(|()| false),
        },
        None => create(shared, conversation).await.map(|()| true),
    }
}

async fn create(shared: &Shared, conversation: &Conversation) -> Result<(), GraphError> {
    let base = &shared.config().notification_url_base;
    let state = client_state();
    let room = conversation.room_id();
    let mut body = json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": base.join("notify").expect("relative").as_str(),
        "lifecycleNotificationUrl": base.join("lifecycle").expect("relative").as_str(),
        "resource": conversation.resource(),
        "expirationDateTime": expiry(shared),
        "clientState": state,
        "includeResourceData": false,
    });
    if let Some(resource_data) = &shared.config().resource_data {
        // Graph encrypts each changed message for this certificate (its public part).
        body["includeResourceData"] = json!(true);
        body["encryptionCertificate"] =
            json!(base64::engine::general_purpose::STANDARD.encode(&resource_data.certificate.der));
        body["encryptionCertificateId"] = json!(resource_data.certificate_id);
    }
    // Graph validates the notification URL before it answers; the webhook
    // echoes any validation token, so nothing needs to be known by then.
    let answer = shared.app_call(Method::POST, "subscriptions", Some(&body), &room).await?;
    let info: SubscriptionInfo = serde_json::from_value(answer.body).unwrap_or_default();
    if info.id.is_empty() {
        return Err(GraphError::Unavailable("Graph created a subscription without an id".into()));
    }
    let expires = info.expiration_date_time.unwrap_or_else(|| expiry(shared));
    tracing::info!(tenant = %shared.tenant, subscription = %info.id, "Teams subscription created");
    shared.subs.put(Sub { id: info.id, room, client_state: state, expires });
    save(shared).await
}

async fn renew(shared: &Shared, sub: &Sub) -> Result<(), GraphError> {
    let body = json!({ "expirationDateTime": expiry(shared) });
    let path = format!("subscriptions/{}", seg(&sub.id));
    let answer = shared.app_call(Method::PATCH, &path, Some(&body), &sub.room).await?;
    let info: SubscriptionInfo = serde_json::from_value(answer.body).unwrap_or_default();
    let expires = info.expiration_date_time.unwrap_or_else(|| expiry(shared));
    shared.subs.put(Sub { expires, ..sub.clone() });
    save(shared).await
}

/// Answers `reauthorizationRequired`: reauthorize, then renew.
pub(crate) async fn reauthorize(shared: &Shared, sub: &Sub) -> Result<(), GraphError> {
    let path = format!("subscriptions/{}/reauthorize", seg(&sub.id));
    match shared.app_call(Method::POST, &path, None, &sub.room).await {
        Ok(_) | Err(GraphError::Refused { .. }) => {}
        Err(err) => return Err(err),
    }
    renew(shared, sub).await
}

/// Forgets a subscription Graph removed (a new one is made by the next `ensure`).
pub(crate) async fn forget(shared: &Shared, sub: &Sub) -> Result<(), GraphError> {
    shared.subs.remove(&sub.room);
    save(shared).await
}

/// Deletes the subscription of a room that is no longer bridged.
pub(crate) async fn delete(shared: &Shared, sub: &Sub) -> Result<(), GraphError> {
    let path = format!("subscriptions/{}", seg(&sub.id));
    match shared.app_call(Method::DELETE, &path, None, &sub.room).await {
        Ok(_) | Err(GraphError::NotFound(_)) => forget(shared, sub).await,
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_in_the_last_quarter_of_the_lifetime() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let sub =
            |expires: &str| Sub { id: "s".into(), room: "r".into(), client_state: "c".into(), expires: expires.into() };
        let hour = Duration::from_secs(3600);
        assert!(!sub("2026-01-01T10:50:00.000Z").due(hour, now));
        assert!(sub("2026-01-01T10:14:00Z").due(hour, now));
        assert!(sub("2026-01-01T09:59:00Z").due(hour, now));
        assert!(sub("garbage").due(hour, now));
    }

    #[test]
    fn client_states_are_long_and_random() {
        let (a, b) = (client_state(), client_state());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
