//! Reconciling a retried post whose earlier attempt may have reached Graph
//! (the bridge died, or the answer was lost, after the POST went out).
//!
//! The retry lists the messages recently created where the post went (the
//! chat, the channel, or the thread's replies) and adopts the earliest one
//! from the identity that posted, with the same body fingerprint, created
//! after the attempt's intent (less [`CLOCK_SKEW`], as the intent's time is
//! the bridge's clock and `createdDateTime` Graph's); one created after the
//! intent itself is preferred. Never adopted: messages this process knows it
//! posted for other sends, and messages not newer than the bridge's last post
//! in the conversation before the intent (noted in it, on Graph's clock).
//! Only when none matches does it post again.
//!
//! Residual risk: the same identity posting the same words in the same place
//! within the window (a linked person typing them in Teams as well, or,
//! right after a restart, an identical earlier post of the bridge's within
//! the clock skew), and Graph listing a just-created message late (it is
//! then posted twice).

use brygga_core::BridgeError;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::Method;

use super::kept::{Intent, Posts, fingerprint};
use crate::ids::{Conversation, MessageRef, seg};
use crate::model::{ChatMessage, Page};
use crate::shared::Shared;

/// How far Graph's clock may be behind the bridge's.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(3);
/// Pages of 50 read at most (newer messages come first).
const MAX_PAGES: usize = 6;

/// The id (as the bridge writes it) of the message an earlier attempt of
/// `intent` created, if Graph shows one.
pub(super) async fn adopt(
    shared: &Shared,
    conversation: &Conversation,
    intent: &Intent,
) -> Result<Option<String>, BridgeError> {
    let Ok(at) = DateTime::parse_from_rfc3339(&intent.at).map(|t| t.with_timezone(&Utc)) else {
        return Ok(None);
    };
    let since = at - CLOCK_SKEW;
    let stamp = since.to_rfc3339_opts(SecondsFormat::Millis, true);
    let first = match (conversation, &intent.root) {
        (Conversation::Channel { .. }, Some(root)) => {
            format!("{}/{}/replies?$top=50", conversation.messages_path(), seg(root))
        }
        (Conversation::Channel { .. }, None) => format!("{}?$top=50", conversation.messages_path()),
        // Chats filter on the server (the documented form: lastModifiedDateTime
        // with its own $orderby; a message created after `since` was modified after it too).
        (Conversation::Chat { .. }, _) => {
            let filter = format!("lastModifiedDateTime gt {stamp}");
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("$top", "50"), ("$orderby", "lastModifiedDateTime desc"), ("$filter", &filter)])
                .finish();
            format!("{}?{query}", conversation.messages_path())
        }
    };
    let room = conversation.room_id();
    let mut recent = Vec::new();
    let mut next = Some(first);
    for _ in 0..MAX_PAGES {
        let Some(link) = next.take() else { break };
        let answer = shared.app_call(Method::GET, &link, None, &room).await?;
        let page: Page<ChatMessage> = serde_json::from_value(answer.body)
            .map_err(|e| BridgeError::permanent(format!("Graph sent a page that does not parse: {e}")))?;
        // Lists come newest first: a page with nothing new enough ends the search.
        let fresh = page.value.iter().any(|m| created(m).is_none_or(|t| t >= since));
        recent.extend(page.value);
        next = page.next_link.filter(|_| fresh);
    }
    let found = pick(&recent, intent, at, since, &shared.posts);
    if let Some(created) = found.and_then(|m| m.created_date_time.as_deref()) {
        shared.posts.created(&room, created);
    }
    Ok(found.map(|m| match &intent.root {
        Some(root) if matches!(conversation, Conversation::Channel { .. }) => {
            MessageRef { root: root.clone(), reply: Some(m.id.clone()) }.id()
        }
        _ => m.id.clone(),
    }))
}

fn created(message: &ChatMessage) -> Option<DateTime<Utc>> {
    parse(message.created_date_time.as_deref()?)
}

fn parse(stamp: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stamp).ok().map(|t| t.with_timezone(&Utc))
}

/// The message `intent` made, among `recent` ones (see the module docs).
fn pick<'a>(
    recent: &'a [ChatMessage],
    intent: &Intent,
    at: DateTime<Utc>,
    since: DateTime<Utc>,
    posts: &Posts,
) -> Option<&'a ChatMessage> {
    let after = intent.after.as_deref().and_then(parse);
    recent
        .iter()
        .filter_map(|m| Some((m, created(m)?)))
        .filter(|(m, created)| {
            *created >= since
                && after.is_none_or(|after| *created > after)
                && m.sender().is_some_and(|(who, _)| who == intent.who)
                && fingerprint(m.body.content.as_deref().unwrap_or_default(), m.body.is_html()) == intent.fingerprint
                && !posts.posted(&m.id)
                && !posts.posted(&format!("{}/{}", intent.root.as_deref().unwrap_or_default(), m.id))
        })
        .min_by_key(|(_, created)| (*created < at, *created))
        .map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use brygga_core::{RemoteMessageId, SendReceipt};
    use serde_json::json;

    use super::super::kept::Outcome;
    use super::*;

    fn message(id: &str, who: &str, text: &str, created: &str) -> ChatMessage {
        serde_json::from_value(json!({
            "id": id, "createdDateTime": created, "messageType": "message",
            "from": {"user": {"id": who}}, "body": {"contentType": "html", "content": text},
        }))
        .unwrap()
    }

    #[test]
    fn the_earliest_match_after_the_intent_is_adopted() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let since = at - CLOCK_SKEW;
        let mut intent = Intent {
            who: "relay".into(),
            fingerprint: fingerprint("<p>ok</p>", true),
            at: at.to_rfc3339(),
            root: None,
            after: None,
        };
        let posts = Posts::default();
        let recent = [
            message("5", "relay", "<div>ok</div>", "2026-01-01T10:00:03Z"),
            message("4", "relay", "<p>ok</p>", "2026-01-01T10:00:01Z"),
            message("3", "anna", "<p>ok</p>", "2026-01-01T10:00:00.500Z"),
            message("2", "relay", "<p>not ok</p>", "2026-01-01T10:00:00.200Z"),
            message("1", "relay", "<p>ok</p>", "2026-01-01T09:59:58Z"),
            message("0", "relay", "<p>ok</p>", "2026-01-01T09:50:00Z"),
        ];
        assert_eq!(pick(&recent, &intent, at, since, &posts).map(|m| m.id.as_str()), Some("4"));
        // Known as another send's post: skipped.
        posts.record("other", Outcome::Posted(SendReceipt::one(RemoteMessageId::new("4").unwrap())));
        assert_eq!(pick(&recent, &intent, at, since, &posts).map(|m| m.id.as_str()), Some("5"));
        // Only one within the skew before the intent: taken (Graph's clock may lag).
        assert_eq!(pick(&recent[4..], &intent, at, since, &posts).map(|m| m.id.as_str()), Some("1"));
        // Nothing from that identity, with that text, recently enough: post again.
        assert!(pick(&recent[5..], &intent, at, since, &posts).is_none());
        assert!(pick(&recent[2..4], &intent, at, since, &posts).is_none());
        // Not the bridge's own earlier post, by Graph's clock.
        intent.after = Some("2026-01-01T09:59:58Z".into());
        assert!(pick(&recent[4..], &intent, at, since, &posts).is_none());
    }
}
