//! Graph change and lifecycle notifications as they reach the webhook: the
//! validation handshake, parsing, and the checks that keep forged or stale
//! notifications from having any effect.

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// What the webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: u16,
    /// `Content-Type` of the body.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

/// Graph's validation handshake: a request with `?validationToken=…` is
/// answered 200 with the decoded token as `text/plain` (and nothing else happens).
pub(crate) fn validation(query: &str) -> Option<Reply> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "validationToken")
        .map(|(_, token)| Reply::text(200, token.into_owned()))
}

/// The collection Graph POSTs: notifications and, with resource data, the
/// tokens proving they come from Graph.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Batch {
    #[serde(rename = "value")]
    pub(crate) notifications: Vec<Notification>,
    #[serde(default)]
    pub(crate) validation_tokens: Vec<String>,
}

/// One change or lifecycle notification. Its plain `resourceData` is never
/// trusted: the message is read back from Graph, or taken from the
/// `encryptedContent` once the batch's validation tokens are checked.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    pub(crate) subscription_id: String,
    #[serde(default)]
    pub(crate) client_state: Option<String>,
    #[serde(default)]
    pub(crate) change_type: Option<String>,
    #[serde(default)]
    pub(crate) resource: Option<String>,
    #[serde(default)]
    pub(crate) lifecycle_event: Option<String>,
    #[serde(default)]
    pub(crate) tenant_id: Option<String>,
    #[serde(default)]
    pub(crate) encrypted_content: Option<crate::resource_data::EncryptedContent>,
}

/// A lifecycle event of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// The access token behind it is about to expire: reauthorize or renew.
    ReauthorizationRequired,
    /// Graph removed it: create it again and catch up.
    SubscriptionRemoved,
    /// Notifications were lost: catch up.
    Missed,
}

impl Notification {
    /// The lifecycle event, if this is one (unknown ones are ignored).
    pub(crate) fn lifecycle(&self) -> Option<Lifecycle> {
        match self.lifecycle_event.as_deref()? {
            "reauthorizationRequired" => Some(Lifecycle::ReauthorizationRequired),
            "subscriptionRemoved" => Some(Lifecycle::SubscriptionRemoved),
            "missed" => Some(Lifecycle::Missed),
            _ => None,
        }
    }
}

/// Parses a notification batch.
pub(crate) fn parse(body: &[u8]) -> Result<Batch, String> {
    serde_json::from_slice::<Batch>(body).map_err(|e| format!("not a notification batch: {e}"))
}

/// Whether a notification's `clientState` is the subscription's, in constant time.
pub(crate) fn client_state_matches(notification: &Notification, expected: &str) -> bool {
    let given = notification.client_state.as_deref().unwrap_or("");
    bool::from(given.as_bytes().ct_eq(expected.as_bytes())) && !expected.is_empty()
}

/// A message a change notification is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChangedMessage {
    /// A channel message, or a reply in its thread.
    Channel { team: String, channel: String, message: String, reply: Option<String> },
    /// A chat message.
    Chat { chat: String, message: String },
}

/// Reads a notification's `resource`, in Graph's `teams('t')/channels('c')/messages('m')`
/// form or the path form `teams/t/channels/c/messages/m`.
pub(crate) fn changed_message(resource: &str) -> Option<ChangedMessage> {
    let segments = segments(resource.trim_start_matches('/'))?;
    let parts: Vec<(&str, &str)> = segments.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    match parts.as_slice() {
        [("teams", t), ("channels", c), ("messages", m)] => {
            Some(ChangedMessage::Channel { team: (*t).into(), channel: (*c).into(), message: (*m).into(), reply: None })
        }
        [("teams", t), ("channels", c), ("messages", m), ("replies", r)] => Some(ChangedMessage::Channel {
            team: (*t).into(),
            channel: (*c).into(),
            message: (*m).into(),
            reply: Some((*r).into()),
        }),
        [("chats", c), ("messages", m)] => Some(ChangedMessage::Chat { chat: (*c).into(), message: (*m).into() }),
        _ => None,
    }
}

/// `name('key')` or `name/key` pairs of a resource path.
fn segments(resource: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    if resource.contains("('") {
        for part in resource.split(")/") {
            let (name, rest) = part.split_once("('")?;
            let key = rest.trim_end_matches(')').strip_suffix('\'')?;
            out.push((name.to_owned(), decode(key)?));
        }
    } else {
        let items: Vec<&str> = resource.split('/').collect();
        if !items.len().is_multiple_of(2) {
            return None;
        }
        for pair in items.chunks(2) {
            out.push((pair[0].to_owned(), decode(pair[1])?));
        }
    }
    out.iter().all(|(n, k)| !n.is_empty() && !k.is_empty()).then_some(out)
}

fn decode(key: &str) -> Option<String> {
    percent_encoding::percent_decode_str(key).decode_utf8().ok().map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_token_is_echoed_as_plain_text() {
        let reply = validation("validationToken=Validation%3A+Testing+client+application+reachability").unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, "text/plain; charset=utf-8");
        assert_eq!(reply.body, "Validation: Testing client application reachability");
        assert_eq!(validation("other=1"), None);
        assert_eq!(validation(""), None);
    }

    #[test]
    fn notifications_and_lifecycle_events_parse() {
        let body = br##"{"value":[
            {"subscriptionId":"s1","clientState":"cs","changeType":"created","tenantId":"t",
             "resource":"teams('fbe2')/channels('19:4a95@thread.tacv2')/messages('1612289765949')/replies('1612289792432')",
             "resourceData":{"id":"1612289792432","@odata.type":"#Microsoft.Graph.chatMessage"}},
            {"subscriptionId":"s2","clientState":"cs","lifecycleEvent":"missed"},
            {"subscriptionId":"s3","lifecycleEvent":"somethingNew"}]}"##;
        let batch = parse(body).unwrap().notifications;
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].lifecycle(), None);
        assert_eq!(batch[1].lifecycle(), Some(Lifecycle::Missed));
        assert_eq!(batch[2].lifecycle(), None);
        assert_eq!(
            changed_message(batch[0].resource.as_deref().unwrap()),
            Some(ChangedMessage::Channel {
                team: "fbe2".into(),
                channel: "19:4a95@thread.tacv2".into(),
                message: "1612289765949".into(),
                reply: Some("1612289792432".into()),
            })
        );
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"value":[{"clientState":"x"}]}"#).is_err());
    }

    #[test]
    fn resources_parse_in_both_forms_and_nonsense_is_refused() {
        let chat = Some(ChangedMessage::Chat { chat: "19:a_b@unq.gbl.spaces".into(), message: "17".into() });
        assert_eq!(changed_message("chats('19:a_b@unq.gbl.spaces')/messages('17')"), chat);
        assert_eq!(changed_message("/chats/19%3Aa_b%40unq.gbl.spaces/messages/17"), chat);
        assert_eq!(changed_message("users('u')/messages('1')"), None);
        assert_eq!(changed_message("chats('')/messages('1')"), None);
        assert_eq!(changed_message("chats('x')/messages"), None);
        assert_eq!(changed_message("chats('x"), None);
    }

    #[test]
    fn client_state_must_match_exactly() {
        let mut n =
            parse(br#"{"value":[{"subscriptionId":"s","clientState":"secret-1"}]}"#).unwrap().notifications.remove(0);
        assert!(client_state_matches(&n, "secret-1"));
        assert!(!client_state_matches(&n, "secret-2"));
        assert!(!client_state_matches(&n, "secret-10"));
        n.client_state = None;
        assert!(!client_state_matches(&n, "secret-1"));
        assert!(!client_state_matches(&n, ""));
    }
}
