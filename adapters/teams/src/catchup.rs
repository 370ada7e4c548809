//! Catch-up after downtime, a `missed` lifecycle event or a new subscription:
//! everything changed since the conversation's watermark is read back and
//! pushed oldest first; the store's dedupe on each change's own id makes
//! what was bridged already a no-op, so nothing is lost or doubled.
//!
//! Channels use `/messages/delta` filtered on `lastModifiedDateTime` (root
//! messages only, as Graph documents) and then each changed root's replies;
//! chats list their messages by `lastModifiedDateTime`, newest first, to the
//! watermark. A conversation without a watermark (a new portal) is read
//! from a few minutes back only, which covers what was said while its first
//! subscription was being made.

use brygga_core::BridgeError;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::ids::{Conversation, seg};
use crate::model::{ChatMessage, Page};
use crate::reactions::ReactionMemory;
use crate::shared::Shared;
use crate::workers::{push, watermark_key};

/// Pages read per catch-up before giving up (a runaway `nextLink` loop).
const MAX_PAGES: usize = 500;

/// Runs one catch-up of a conversation.
pub(crate) async fn run(
    shared: &Shared,
    conversation: &Conversation,
    reactions: &mut ReactionMemory,
) -> Result<(), BridgeError> {
    let room = conversation.room_id();
    let since_time = match shared.state.get(&watermark_key(&room)).await? {
        Some(since) => DateTime::parse_from_rfc3339(&since)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| BridgeError::permanent("a stored watermark does not parse"))?,
        None => Utc::now() - crate::workers::WATERMARK_MARGIN,
    };
    let filter = format!("lastModifiedDateTime gt {}", since_time.to_rfc3339_opts(SecondsFormat::Millis, true));
    let mut messages: Vec<ChatMessage> = match conversation {
        Conversation::Channel { .. } => {
            let roots: Vec<ChatMessage> = pages(
                shared,
                &room,
                &with_query(&format!("{}/delta", conversation.messages_path()), &[("$filter", &filter)]),
            )
            .await?;
            let mut all = Vec::new();
            for root in roots {
                let replies_path = format!("{}/{}/replies", conversation.messages_path(), seg(&root.id));
                let replies: Vec<ChatMessage> = pages(shared, &room, &replies_path).await?;
                all.push(root);
                all.extend(replies.into_iter().filter(|r| modified_after(r, since_time)));
            }
            all
        }
        Conversation::Chat { .. } => {
            let query = [("$top", "50"), ("$orderby", "lastModifiedDateTime desc"), ("$filter", filter.as_str())];
            pages(shared, &room, &with_query(&conversation.messages_path(), &query)).await?
        }
    };
    // Oldest first, so a thread's root and a reply's target come before them.
    messages.sort_by(|a, b| a.created_date_time.cmp(&b.created_date_time).then_with(|| a.id.cmp(&b.id)));
    messages.dedup_by(|a, b| a.id == b.id && a.reply_to_id == b.reply_to_id);
    tracing::debug!(tenant = %shared.tenant, changed = messages.len(), "Teams catch-up read");
    for message in &messages {
        push(shared, conversation, message, reactions).await?;
    }
    Ok(())
}

fn modified_after(message: &ChatMessage, since: DateTime<Utc>) -> bool {
    let stamp = message.last_modified_date_time.as_deref().or(message.created_date_time.as_deref());
    stamp.and_then(|s| DateTime::parse_from_rfc3339(s).ok()).is_none_or(|t| t.with_timezone(&Utc) > since)
}

fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    format!("{path}?{encoded}")
}

/// Every item of a collection, following `@odata.nextLink` (never outside Graph).
async fn pages<T: DeserializeOwned>(shared: &Shared, pace: &str, first: &str) -> Result<Vec<T>, BridgeError> {
    let mut items = Vec::new();
    let mut next = Some(first.to_owned());
    for _ in 0..MAX_PAGES {
        let Some(link) = next.take() else { return Ok(items) };
        let answer = shared.app_call(Method::GET, &link, None, pace).await?;
        let page: Page<T> = serde_json::from_value(answer.body)
            .map_err(|e| BridgeError::permanent(format!("Graph sent a page that does not parse: {e}")))?;
        items.extend(page.value);
        next = page.next_link;
    }
    Err(BridgeError::permanent("a Graph collection did not end"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_stamps_compared() {
        let path =
            with_query("chats/19:x/messages", &[("$filter", "lastModifiedDateTime gt 2026-01-01T00:00:00.000Z")]);
        assert_eq!(path, "chats/19:x/messages?%24filter=lastModifiedDateTime+gt+2026-01-01T00%3A00%3A00.000Z");
        let since = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let at = |stamp: &str| ChatMessage { last_modified_date_time: Some(stamp.into()), ..Default::default() };
        assert!(modified_after(&at("2026-01-01T00:00:01Z"), since));
        assert!(!modified_after(&at("2025-12-31T23:59:59Z"), since));
        assert!(modified_after(&ChatMessage::default(), since));
    }
}
