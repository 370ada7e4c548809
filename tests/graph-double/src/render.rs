//! Stored records rendered in Graph's JSON shapes.

use crate::model::{Conversation, MessageRecord};
use crate::time::iso;
use serde_json::{Value, json};

/// The `chatMessage` JSON of a stored message (a soft-deleted one shows an empty body, as Graph does).
pub fn message(base: &str, conversation: &Conversation, m: &MessageRecord) -> Value {
    let (channel_identity, chat_id, web_url) = match conversation {
        Conversation::Channel { tenant, team, channel } => (
            json!({ "teamId": team, "channelId": channel }),
            Value::Null,
            format!(
                "https://teams.microsoft.com/l/message/{channel}/{}?groupId={team}&tenantId={tenant}&createdTime={}&parentMessageId={}",
                m.id,
                m.created.timestamp_millis(),
                m.reply_to.as_deref().unwrap_or(&m.id)
            ),
        ),
        Conversation::Chat { chat, .. } => (
            Value::Null,
            json!(chat),
            format!(
                "https://teams.microsoft.com/l/message/{chat}/{}?context=%7B%22contextType%22%3A%22chat%22%7D",
                m.id
            ),
        ),
    };
    let from = match (&m.from_user, &m.from_name) {
        (Some(id), name) => json!({
            "application": null,
            "device": null,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": id,
                "displayName": name,
                "userIdentityType": "aadUser",
            },
        }),
        _ => Value::Null,
    };
    let deleted = m.deleted.is_some();
    let reactions: Vec<Value> = if deleted { Vec::new() } else { m.reactions.iter().map(reaction).collect() };
    json!({
        "id": m.id,
        "replyToId": m.reply_to,
        "etag": m.last_modified.timestamp_millis().to_string(),
        "messageType": m.message_type,
        "createdDateTime": iso(m.created),
        "lastModifiedDateTime": iso(m.last_modified),
        "lastEditedDateTime": m.last_edited.map(iso),
        "deletedDateTime": m.deleted.map(iso),
        "subject": if deleted { None } else { m.subject.clone() },
        "summary": null,
        "chatId": chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": web_url,
        "policyViolation": null,
        "eventDetail": m.event_detail,
        "from": from,
        "body": {
            "contentType": m.content_type,
            "content": if deleted { String::new() } else { absolute_hosted_urls(base, conversation, m) },
        },
        "channelIdentity": channel_identity,
        "attachments": if deleted { Vec::new() } else { m.attachments.clone() },
        "mentions": if deleted { Vec::new() } else { m.mentions.clone() },
        "reactions": reactions,
        "messageHistory": [],
    })
}

fn reaction(r: &crate::model::Reaction) -> Value {
    json!({
        "reactionType": r.reaction_type,
        "displayName": r.reaction_type,
        "reactionContentUrl": null,
        "createdDateTime": iso(r.created),
        "user": {
            "application": null,
            "device": null,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": r.user,
                "displayName": null,
                "userIdentityType": "aadUser",
            },
        },
    })
}

/// The URL of one hosted content's bytes.
pub fn hosted_url(base: &str, conversation: &Conversation, m: &MessageRecord, hosted_id: &str) -> String {
    let path = match (conversation, &m.reply_to) {
        (Conversation::Channel { team, channel, .. }, Some(parent)) => {
            format!("teams/{team}/channels/{channel}/messages/{parent}/replies/{}", m.id)
        }
        (Conversation::Channel { team, channel, .. }, None) => {
            format!("teams/{team}/channels/{channel}/messages/{}", m.id)
        }
        (Conversation::Chat { chat, .. }, _) => format!("chats/{chat}/messages/{}", m.id),
    };
    format!("{base}/{path}/hostedContents/{hosted_id}/$value")
}

/// Graph serves inline images as absolute `.../hostedContents/{id}/$value` URLs; the control
/// API stores them as the placeholder `hostedContents/{id}` relative reference.
fn absolute_hosted_urls(base: &str, conversation: &Conversation, m: &MessageRecord) -> String {
    m.hosted.iter().fold(m.content.clone(), |html, h| {
        html.replace(
            &format!("\"hostedContents/{}\"", h.id),
            &format!("\"{}\"", hosted_url(base, conversation, m, &h.id)),
        )
    })
}

/// A `{"@odata.context", "value": [...]}` collection with an optional next link.
pub fn collection(context: &str, value: Vec<Value>, next: Option<String>) -> Value {
    let mut body = json!({ "@odata.context": context, "@odata.count": value.len(), "value": value });
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    body
}
