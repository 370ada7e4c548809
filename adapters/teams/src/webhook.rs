//! The adapter's webhook: Graph's `notificationUrl` (`…/notify`) and
//! `lifecycleNotificationUrl` (`…/lifecycle`).
//!
//! It answers fast and does the work elsewhere: a validation request gets its
//! token back; each notification is checked (known subscription, its
//! `clientState` in constant time, the tenant, a resource inside the
//! subscribed conversation) and handed to the conversation's worker, and the
//! batch is acknowledged with 202. A batch with nothing acceptable in it is
//! refused with 403 and has no effect at all. With resource data, the
//! batch's validation tokens must all be valid before anything in it counts,
//! and a change whose encrypted content does not open (or names another
//! message) counts as not acceptable.

use std::sync::Arc;

use crate::config::ResourceData;
use crate::ids::{Conversation, MessageRef};
use crate::model::ChatMessage;
use crate::notify::{self, Batch, ChangedMessage, Lifecycle, Notification, Reply};
use crate::resource_data::{EncryptedContent, Expected};
use crate::shared::Shared;
use crate::subs::{self, Sub};
use crate::workers::Work;

/// Which of the two URLs was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Notify,
    Lifecycle,
}

impl Endpoint {
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        match path.trim_matches('/') {
            "notify" => Some(Self::Notify),
            "lifecycle" => Some(Self::Lifecycle),
            _ => None,
        }
    }
}

/// Handles one request to the webhook.
pub(crate) async fn handle(shared: &Arc<Shared>, path: &str, method: &str, query: &str, body: &[u8]) -> Reply {
    let Some(endpoint) = Endpoint::from_path(path) else { return Reply::text(404, "unknown webhook path") };
    if let Some(reply) = notify::validation(query) {
        return reply;
    }
    if !method.eq_ignore_ascii_case("POST") {
        return Reply::text(405, "POST only");
    }
    let Batch { notifications: batch, validation_tokens } = match notify::parse(body) {
        Ok(batch) => batch,
        Err(why) => return Reply::text(400, why),
    };
    let rich = shared.config().resource_data.is_some() && batch.iter().any(|n| n.encrypted_content.is_some());
    if rich && let Err(why) = check_tokens(shared, &batch, &validation_tokens).await {
        tracing::warn!(tenant = %shared.tenant, reason = %why, "Teams webhook: a batch with invalid validation tokens refused");
        return Reply::text(403, "refused");
    }
    let mut accepted = 0usize;
    for notification in &batch {
        let Some(sub) = authentic(shared, notification) else { continue };
        let Some(conversation) = Conversation::parse(&sub.room) else { continue };
        let ok = match endpoint {
            Endpoint::Notify => changed(shared, &conversation, notification),
            Endpoint::Lifecycle => lifecycle(shared, sub, conversation, notification),
        };
        accepted += usize::from(ok);
    }
    if accepted == 0 && !batch.is_empty() {
        tracing::warn!(tenant = %shared.tenant, count = batch.len(), "Teams webhook: notifications refused (unknown subscription or wrong clientState)");
        return Reply::text(403, "refused");
    }
    Reply::text(202, "")
}

/// The subscription a notification is really from, if it is.
fn authentic(shared: &Shared, notification: &Notification) -> Option<Sub> {
    let sub = shared.subs.by_id(&notification.subscription_id)?;
    if !notify::client_state_matches(notification, &sub.client_state) {
        return None;
    }
    // Only an agency given by GUID can be compared (a domain cannot).
    let ours = &shared.config().tenant_id;
    if let Some(theirs) = &notification.tenant_id
        && ours.len() == 36
        && !theirs.eq_ignore_ascii_case(ours)
    {
        return None;
    }
    Some(sub)
}

/// Checks the batch's validation tokens: signed by the identity platform, for this app and tenant.
async fn check_tokens(shared: &Shared, batch: &[Notification], tokens: &[String]) -> Result<(), String> {
    let config = shared.config();
    // A tenant given by domain is known by GUID only from the notifications, which must agree.
    let tenant = if config.tenant_id.len() == 36 {
        config.tenant_id.clone()
    } else {
        let mut ids = batch.iter().filter_map(|n| n.tenant_id.as_deref());
        let first = ids.next().ok_or("no tenant id")?;
        if ids.any(|id| !id.eq_ignore_ascii_case(first)) {
            return Err("notifications of several tenants".into());
        }
        first.to_owned()
    };
    shared.signing_keys.all_valid(tokens, &Expected { client_id: &config.client_id, tenant: &tenant }).await
}

/// The chatMessage of a notification's encrypted content, if it opens and is the message `about`.
fn open(content: &EncryptedContent, resource_data: &ResourceData, about: &MessageRef) -> Result<ChatMessage, String> {
    let plain = crate::resource_data::decrypt(content, &resource_data.certificate)?;
    let message: ChatMessage =
        serde_json::from_slice(&plain).map_err(|e| format!("the resource is not a chatMessage: {e}"))?;
    let (id, parent) = match &about.reply {
        Some(reply) => (reply, Some(&about.root)),
        None => (&about.root, None),
    };
    if &message.id != id || (parent.is_some() && message.reply_to_id.as_ref() != parent) {
        return Err("the resource is another message than the notification names".into());
    }
    Ok(message)
}

fn changed(shared: &Arc<Shared>, conversation: &Conversation, notification: &Notification) -> bool {
    let Some(changed) = notification.resource.as_deref().and_then(notify::changed_message) else { return false };
    let (about, message) = match changed {
        ChangedMessage::Channel { team, channel, message, reply } => {
            (Conversation::Channel { team, channel }, MessageRef { root: message, reply })
        }
        ChangedMessage::Chat { chat, message } => (Conversation::Chat { chat }, MessageRef::root(message)),
    };
    // A subscription speaks only for its own conversation.
    if !same_conversation(&about, conversation) {
        return false;
    }
    let work = match (&notification.encrypted_content, &shared.config().resource_data) {
        (Some(content), Some(resource_data)) => match open(content, resource_data, &message) {
            Ok(opened) => Work::Delivered(Box::new(opened)),
            Err(why) => {
                tracing::warn!(tenant = %shared.tenant, reason = %why, "Teams webhook: encrypted resource data refused");
                return false;
            }
        },
        _ => Work::Changed(message),
    };
    shared.workers.submit(shared, conversation, work);
    true
}

fn same_conversation(a: &Conversation, b: &Conversation) -> bool {
    match (a, b) {
        (Conversation::Channel { team: t1, channel: c1 }, Conversation::Channel { team: t2, channel: c2 }) => {
            t1.eq_ignore_ascii_case(t2) && c1 == c2
        }
        (Conversation::Chat { chat: a }, Conversation::Chat { chat: b }) => a == b,
        _ => false,
    }
}

fn lifecycle(shared: &Arc<Shared>, sub: Sub, conversation: Conversation, notification: &Notification) -> bool {
    let Some(event) = notification.lifecycle() else { return false };
    let shared = shared.clone();
    tokio::spawn(async move {
        let result = match event {
            Lifecycle::Missed => {
                shared.workers.submit(&shared, &conversation, Work::CatchUp);
                Ok(())
            }
            Lifecycle::ReauthorizationRequired => subs::reauthorize(&shared, &sub).await,
            Lifecycle::SubscriptionRemoved => match subs::forget(&shared, &sub).await {
                Ok(()) => subs::ensure(&shared, &conversation, false).await.map(|_| ()),
                Err(err) => Err(err),
            },
        };
        if matches!(event, Lifecycle::SubscriptionRemoved) {
            shared.workers.submit(&shared, &conversation, Work::CatchUp);
        }
        if let Err(err) = result {
            // The renewal loop tries again; the tenant's state says what is wrong.
            tracing::warn!(tenant = %shared.tenant, error = %err, lifecycle = ?event, "Teams: handling a lifecycle event failed");
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_paths_exist() {
        assert_eq!(Endpoint::from_path("notify"), Some(Endpoint::Notify));
        assert_eq!(Endpoint::from_path("/lifecycle/"), Some(Endpoint::Lifecycle));
        assert_eq!(Endpoint::from_path("other"), None);
    }

    #[test]
    fn conversations_compare_by_identity() {
        let ch = |t: &str, c: &str| Conversation::Channel { team: t.into(), channel: c.into() };
        assert!(same_conversation(&ch("ABC", "19:x"), &ch("abc", "19:x")));
        assert!(!same_conversation(&ch("abc", "19:x"), &ch("abc", "19:y")));
        assert!(!same_conversation(&ch("abc", "19:x"), &Conversation::Chat { chat: "19:x".into() }));
    }
}
