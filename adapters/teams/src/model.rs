//! The Graph v1.0 resources the adapter reads, as far as it uses them.
//! Unknown fields are ignored and missing ones default, so a new Graph
//! field (or an absent optional one) never fails a whole message.

use serde::{Deserialize, Deserializer};

/// Reads `null` as the default (Graph writes `null` for empty collections at times).
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `chatMessage`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ChatMessage {
    pub(crate) id: String,
    pub(crate) reply_to_id: Option<String>,
    pub(crate) message_type: Option<String>,
    pub(crate) created_date_time: Option<String>,
    pub(crate) last_modified_date_time: Option<String>,
    pub(crate) last_edited_date_time: Option<String>,
    pub(crate) deleted_date_time: Option<String>,
    pub(crate) from: Option<IdentitySet>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) body: ItemBody,
    #[serde(deserialize_with = "nullable")]
    pub(crate) attachments: Vec<ChatAttachment>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) mentions: Vec<ChatMention>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) reactions: Vec<ChatReaction>,
    pub(crate) event_detail: Option<EventDetail>,
}

impl ChatMessage {
    /// Who sent it: a user's Entra id, or `app:{id}` for a bot.
    pub(crate) fn sender(&self) -> Option<(String, Option<String>)> {
        let from = self.from.as_ref()?;
        if let Some(user) = from.user.as_ref().filter(|u| !u.id.is_empty()) {
            return Some((user.id.clone(), user.display_name.clone()));
        }
        let app = from.application.as_ref().filter(|a| !a.id.is_empty())?;
        Some((format!("app:{}", app.id), app.display_name.clone()))
    }

    /// True for `systemEventMessage` and other non-chat items.
    pub(crate) fn is_system(&self) -> bool {
        self.message_type.as_deref().is_some_and(|t| t != "message")
    }
}

/// `itemBody`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ItemBody {
    pub(crate) content_type: Option<String>,
    pub(crate) content: Option<String>,
}

impl ItemBody {
    pub(crate) fn is_html(&self) -> bool {
        self.content_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("html"))
    }
}

/// `chatMessageFromIdentitySet` (and the identity sets of reactions and mentions).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct IdentitySet {
    pub(crate) user: Option<Identity>,
    pub(crate) application: Option<Identity>,
}

/// `identity` / `teamworkUserIdentity`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
}

/// `chatMessageAttachment`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ChatAttachment {
    pub(crate) id: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) content_url: Option<String>,
    pub(crate) name: Option<String>,
}

/// `chatMessageMention`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ChatMention {
    pub(crate) id: i64,
    pub(crate) mention_text: Option<String>,
    pub(crate) mentioned: Option<IdentitySet>,
}

/// `chatMessageReaction`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ChatReaction {
    pub(crate) reaction_type: String,
    pub(crate) display_name: Option<String>,
    pub(crate) created_date_time: Option<String>,
    pub(crate) user: Option<IdentitySet>,
}

/// `eventMessageDetail`: the members added or removed by a system message.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventDetail {
    #[serde(rename = "@odata.type")]
    pub(crate) odata_type: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) members: Vec<Identity>,
}

/// A page of a collection (`value` plus `@odata.nextLink`; a delta's last page has a `deltaLink` instead).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub(crate) value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    pub(crate) next_link: Option<String>,
}

/// `presence`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PresenceInfo {
    pub(crate) id: String,
    pub(crate) availability: Option<String>,
    pub(crate) activity: Option<String>,
}

/// `subscription`, as created or renewed.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SubscriptionInfo {
    pub(crate) id: String,
    pub(crate) expiration_date_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_channel_message_parses() {
        let json = r##"{
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#teams('x')/channels('y')/messages/$entity",
            "id": "1616965872395", "replyToId": null, "etag": "1616965872395", "messageType": "message",
            "createdDateTime": "2021-03-28T21:11:12.395Z", "lastModifiedDateTime": "2021-03-28T21:11:12.395Z",
            "lastEditedDateTime": null, "deletedDateTime": null, "subject": null, "summary": null,
            "chatId": null, "importance": "normal", "locale": "en-us", "webUrl": "https://teams.microsoft.com/l/message/x",
            "policyViolation": null, "eventDetail": null,
            "from": {"application": null, "device": null, "user": {"@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": "8ea0e38b-efb3-4757-924a-5f94061cf8c2", "displayName": "Robin Kline", "userIdentityType": "aadUser", "tenantId": "t"}},
            "body": {"contentType": "html", "content": "<div>Hello <at id=\"0\">Adele</at></div>"},
            "channelIdentity": {"teamId": "x", "channelId": "y"},
            "attachments": null, "mentions": [{"id": 0, "mentionText": "Adele",
                "mentioned": {"application": null, "device": null, "conversation": null, "tag": null,
                "user": {"id": "aad-adele", "displayName": "Adele", "userIdentityType": "aadUser"}}}],
            "reactions": [{"reactionType": "like", "displayName": "Like", "reactionContentUrl": null, "createdDateTime": "2021-03-28T21:12:00Z",
                "user": {"application": null, "device": null, "user": {"id": "aad-adele", "displayName": null, "userIdentityType": "aadUser"}}}],
            "messageHistory": []
        }"##;
        let message: ChatMessage = serde_json::from_str(json).unwrap();
        assert_eq!(message.sender(), Some(("8ea0e38b-efb3-4757-924a-5f94061cf8c2".into(), Some("Robin Kline".into()))));
        assert!(message.body.is_html() && !message.is_system());
        assert_eq!(message.mentions[0].mentioned.as_ref().unwrap().user.as_ref().unwrap().id, "aad-adele");
        assert_eq!(message.reactions[0].reaction_type, "like");
    }

    #[test]
    fn bots_and_system_messages_are_told_apart() {
        let bot: ChatMessage =
            serde_json::from_str(r#"{"id":"1","from":{"user":null,"application":{"id":"app-1","displayName":"Bot"}}}"#)
                .unwrap();
        assert_eq!(bot.sender(), Some(("app:app-1".into(), Some("Bot".into()))));
        let system: ChatMessage = serde_json::from_str(
            r##"{"id":"2","messageType":"systemEventMessage","from":null,"eventDetail":{"@odata.type":"#microsoft.graph.membersAddedEventMessageDetail","members":[{"id":"u1","displayName":null}]}}"##,
        )
        .unwrap();
        assert!(system.is_system() && system.sender().is_none());
        assert_eq!(system.event_detail.unwrap().members[0].id, "u1");
    }
}
