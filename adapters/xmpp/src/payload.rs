//! The extensions a message stanza may carry, read leniently: an extension
//! that does not parse is treated as absent, never as a broken message.

use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

/// Namespaces of extensions xmpp-parsers has no types for.
pub(crate) mod xmlns {
    /// XEP-0333 chat markers.
    pub(crate) const CHAT_MARKERS: &str = "urn:xmpp:chat-markers:0";
    /// XEP-0424 message retraction (current).
    pub(crate) const RETRACT: &str = "urn:xmpp:message-retract:1";
    /// XEP-0424 message retraction (before 0.4, inside a XEP-0422 fastening).
    pub(crate) const RETRACT_0: &str = "urn:xmpp:message-retract:0";
    /// XEP-0422 message fastening.
    pub(crate) const FASTEN: &str = "urn:xmpp:fasten:0";
    /// XEP-0425 moderation (current).
    pub(crate) const MODERATE: &str = "urn:xmpp:message-moderate:1";
    /// XEP-0425 moderation (before 0.3).
    pub(crate) const MODERATE_0: &str = "urn:xmpp:message-moderate:0";
    /// XEP-0461 replies.
    pub(crate) const REPLY: &str = "urn:xmpp:reply:0";
    /// XEP-0428 fallback indication.
    pub(crate) const FALLBACK: &str = "urn:xmpp:fallback:0";
    /// XEP-0045 room administration.
    pub(crate) const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
    /// XEP-0334 message processing hints.
    pub(crate) const HINTS: &str = "urn:xmpp:hints";
}

/// A retraction of an earlier message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Retraction {
    /// The retracted message's id (origin id, or the room's stanza id for moderation).
    pub(crate) id: String,
    /// True when a moderator removed someone else's message (XEP-0425).
    pub(crate) moderated: bool,
    /// The moderator's reason.
    pub(crate) reason: Option<String>,
    /// The moderator (their occupant JID), for a moderation.
    pub(crate) by: Option<String>,
}

/// XEP-0085 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChatState {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

/// What a message stanza says besides its envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Payload {
    /// Plain body, with any reply fallback already removed.
    pub(crate) body: Option<String>,
    /// XEP-0308: the id of the message this one corrects.
    pub(crate) replace: Option<String>,
    /// XEP-0424/0425.
    pub(crate) retraction: Option<Retraction>,
    /// XEP-0444: the id of the message reacted to and the sender's full set.
    pub(crate) reactions: Option<(String, Vec<String>)>,
    /// XEP-0461: the id of the message replied to.
    pub(crate) reply_to: Option<String>,
    /// XEP-0085.
    pub(crate) chat_state: Option<ChatState>,
    /// XEP-0184 receipt or XEP-0333 displayed marker: the id read or received.
    pub(crate) read_up_to: Option<String>,
    /// XEP-0184 request for a receipt.
    pub(crate) wants_receipt: bool,
    /// XEP-0066 out-of-band URLs (files).
    pub(crate) oob_urls: Vec<String>,
}

/// Reads the extensions of a message element.
pub(crate) fn read(message: &Element) -> Payload {
    let mut payload = Payload {
        // Archived messages keep their original (client) namespace.
        body: message.get_child("body", message.ns().as_str()).map(Element::text),
        replace: message.get_child("replace", ns::MESSAGE_CORRECT).and_then(|r| r.attr("id")).map(str::to_owned),
        retraction: retraction(message),
        reactions: message.get_child("reactions", ns::REACTIONS).and_then(|r| {
            let id = r.attr("id")?.to_owned();
            let keys = r.children().filter(|c| c.is("reaction", ns::REACTIONS)).map(Element::text);
            Some((id, dedupe(keys.filter(|k| !k.trim().is_empty()).collect())))
        }),
        reply_to: message.get_child("reply", xmlns::REPLY).and_then(|r| r.attr("id")).map(str::to_owned),
        chat_state: chat_state(message),
        read_up_to: message
            .get_child("displayed", xmlns::CHAT_MARKERS)
            .or_else(|| message.get_child("received", ns::RECEIPTS))
            .and_then(|r| r.attr("id"))
            .map(str::to_owned),
        wants_receipt: message.has_child("request", ns::RECEIPTS),
        oob_urls: message
            .children()
            .filter(|c| c.is("x", ns::OOB))
            .filter_map(|x| x.get_child("url", ns::OOB).map(Element::text))
            .map(|u| u.trim().to_owned())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .collect(),
    };
    if payload.reply_to.is_some() {
        payload.body = payload.body.map(|body| strip_fallback(message, &body, xmlns::REPLY));
    }
    // A file shared by link usually repeats its URL as the body.
    if payload.body.as_deref().is_some_and(|b| payload.oob_urls.iter().any(|u| u == b.trim())) {
        payload.body = None;
    }
    payload
}

fn dedupe(mut keys: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys
}

fn retraction(message: &Element) -> Option<Retraction> {
    if let Some(retract) = message.get_child("retract", xmlns::RETRACT) {
        let moderator = retract.get_child("moderated", xmlns::MODERATE);
        let reason = retract.get_child("reason", xmlns::RETRACT).map(Element::text);
        let by = moderator.and_then(|m| m.attr("by")).map(str::to_owned);
        return Some(Retraction { id: retract.attr("id")?.to_owned(), moderated: moderator.is_some(), reason, by });
    }
    // Older drafts fasten the retraction to the message it removes.
    let apply_to = message.get_child("apply-to", xmlns::FASTEN)?;
    let id = apply_to.attr("id")?.to_owned();
    if apply_to.has_child("retract", xmlns::RETRACT_0) {
        return Some(Retraction { id, moderated: false, reason: None, by: None });
    }
    let moderated = apply_to.get_child("moderated", xmlns::MODERATE_0)?;
    moderated.has_child("retract", xmlns::RETRACT_0).then(|| Retraction {
        id,
        moderated: true,
        reason: moderated.get_child("reason", xmlns::MODERATE_0).map(Element::text),
        by: moderated.attr("by").map(str::to_owned),
    })
}

fn chat_state(message: &Element) -> Option<ChatState> {
    message.children().filter(|c| c.ns() == ns::CHATSTATES).find_map(|c| match c.name() {
        "active" => Some(ChatState::Active),
        "composing" => Some(ChatState::Composing),
        "paused" => Some(ChatState::Paused),
        "inactive" => Some(ChatState::Inactive),
        "gone" => Some(ChatState::Gone),
        _ => None,
    })
}

/// Removes the XEP-0428 fallback ranges (in characters) marked `for` a
/// namespace, e.g. the quoted text of a reply.
fn strip_fallback(message: &Element, body: &str, for_ns: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = message
        .children()
        .filter(|c| c.is("fallback", xmlns::FALLBACK) && c.attr("for") == Some(for_ns))
        .flat_map(|f| f.children().filter(|c| c.is("body", xmlns::FALLBACK)))
        .filter_map(|b| Some((b.attr("start")?.parse().ok()?, b.attr("end")?.parse().ok()?)))
        .filter(|(start, end)| start < end)
        .collect();
    if ranges.is_empty() {
        return body.to_owned();
    }
    ranges.sort_unstable();
    let chars: Vec<char> = body.chars().collect();
    let kept: String = chars
        .iter()
        .enumerate()
        .filter(|(i, _)| !ranges.iter().any(|(s, e)| i >= s && i < e))
        .map(|(_, c)| c)
        .collect();
    kept.trim_start_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(children: &str) -> Element {
        format!("<message xmlns='jabber:component:accept' type='groupchat'>{children}</message>").parse().unwrap()
    }

    #[test]
    fn corrections_reactions_and_states_are_read() {
        let p = read(&message(
            "<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/>\
             <composing xmlns='http://jabber.org/protocol/chatstates'/>",
        ));
        assert_eq!(p.body.as_deref(), Some("fixed"));
        assert_eq!(p.replace.as_deref(), Some("m1"));
        assert_eq!(p.chat_state, Some(ChatState::Composing));
        let p = read(&message(
            "<reactions xmlns='urn:xmpp:reactions:0' id='s1'><reaction>👍</reaction><reaction>👍</reaction>\
             <reaction> </reaction><reaction>🎉</reaction></reactions>",
        ));
        assert_eq!(p.reactions, Some(("s1".into(), vec!["👍".into(), "🎉".into()])));
    }

    #[test]
    fn both_retraction_drafts_and_moderation_are_read() {
        let current = read(&message("<retract xmlns='urn:xmpp:message-retract:1' id='o1'/>"));
        assert_eq!(current.retraction, Some(Retraction { id: "o1".into(), moderated: false, reason: None, by: None }));
        let moderated = read(&message(
            "<retract xmlns='urn:xmpp:message-retract:1' id='s1'>\
             <moderated xmlns='urn:xmpp:message-moderate:1' by='room@c/mod'/><reason>spam</reason></retract>",
        ));
        assert_eq!(
            moderated.retraction,
            Some(Retraction {
                id: "s1".into(),
                moderated: true,
                reason: Some("spam".into()),
                by: Some("room@c/mod".into())
            })
        );
        let old = read(&message(
            "<apply-to xmlns='urn:xmpp:fasten:0' id='s2'><moderated xmlns='urn:xmpp:message-moderate:0' by='x'>\
             <retract xmlns='urn:xmpp:message-retract:0'/><reason>off topic</reason></moderated></apply-to>",
        ));
        assert_eq!(
            old.retraction,
            Some(Retraction {
                id: "s2".into(),
                moderated: true,
                reason: Some("off topic".into()),
                by: Some("x".into())
            })
        );
    }

    #[test]
    fn reply_fallbacks_are_cut_from_the_body() {
        let p = read(&message(
            "<body>&gt; Alice wrote:\n&gt; hi\nhello back</body><reply xmlns='urn:xmpp:reply:0' id='s1' to='r@c/Alice'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='20'/></fallback>",
        ));
        assert_eq!(p.reply_to.as_deref(), Some("s1"));
        assert_eq!(p.body.as_deref(), Some("hello back"));
    }

    #[test]
    fn oob_links_replace_a_body_that_only_repeats_them() {
        let p = read(&message(
            "<body>https://up.example/f.png</body><x xmlns='jabber:x:oob'><url>https://up.example/f.png</url></x>\
             <x xmlns='jabber:x:oob'><url>javascript:alert(1)</url></x>",
        ));
        assert_eq!(p.oob_urls, vec!["https://up.example/f.png".to_owned()]);
        assert_eq!(p.body, None);
    }

    #[test]
    fn receipts_and_markers_name_the_message_read() {
        let p =
            read(&message("<displayed xmlns='urn:xmpp:chat-markers:0' id='s9'/><request xmlns='urn:xmpp:receipts'/>"));
        assert_eq!(p.read_up_to.as_deref(), Some("s9"));
        assert!(p.wants_receipt);
    }
}
