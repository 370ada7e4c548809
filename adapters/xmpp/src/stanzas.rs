//! Building the stanzas the component sends.

use tokio_xmpp::jid::{FullJid, Jid};
use tokio_xmpp::minidom::rxml::NcName;
use tokio_xmpp::minidom::{Element, ElementBuilder};
use tokio_xmpp::parsers::ns;

use std::time::SystemTime;

use crate::history::xmpp_datetime;
use crate::payload::xmlns;

/// Sets an attribute by a static name.
fn attr(builder: ElementBuilder, name: &'static str, value: impl Into<String>) -> ElementBuilder {
    let name = NcName::try_from(name).expect("static attribute names are valid");
    builder.attr(name, value.into())
}

/// Removes what XML 1.0 cannot carry (most control characters), so text
/// from Matrix never breaks the stream.
pub(crate) fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'))
        .collect()
}

/// An archive (XEP-0313) query of a room for messages since `since`,
/// continuing after archive id `after`; `id` doubles as the `queryid`.
pub(crate) fn archive_query(from: &FullJid, room: &Jid, id: &str, since: SystemTime, after: Option<&str>) -> Element {
    let field = |var: &'static str, value: String, hidden: bool| {
        let field = attr(Element::builder("field", ns::DATA_FORMS), "var", var);
        let field = if hidden { attr(field, "type", "hidden") } else { field };
        field.append(Element::builder("value", ns::DATA_FORMS).append(value).build()).build()
    };
    let form = attr(Element::builder("x", ns::DATA_FORMS), "type", "submit")
        .append(field("FORM_TYPE", ns::MAM.to_owned(), true))
        .append(field("start", xmpp_datetime(since), false));
    let mut set = Element::builder("set", ns::RSM).append(Element::builder("max", ns::RSM).append("100").build());
    if let Some(after) = after {
        set = set.append(Element::builder("after", ns::RSM).append(after.to_owned()).build());
    }
    let query = attr(Element::builder("query", ns::MAM), "queryid", id).append(form.build()).append(set.build());
    iq_reply(&Jid::from(from.clone()), room, id, "set").append(query.build()).build()
}

/// Presence that joins `occupant` (room/nick) as `from`, without history.
pub(crate) fn join(from: &FullJid, occupant: &FullJid) -> Element {
    let history = attr(Element::builder("history", ns::MUC), "maxstanzas", "0").build();
    let x = Element::builder("x", ns::MUC).append(history).build();
    let presence =
        attr(attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str()), "to", occupant.as_str());
    presence.append(x).build()
}

/// Presence of `from` to `to` with a `show` (away, xa…) and status, or
/// unavailable presence when `show` is `None` and `available` is false.
pub(crate) fn presence(from: &FullJid, to: &Jid, available: bool, show: Option<&str>, status: Option<&str>) -> Element {
    let mut presence =
        attr(attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    if !available {
        presence = attr(presence, "type", "unavailable");
    }
    if let Some(show) = show {
        presence = presence.append(Element::builder("show", ns::COMPONENT).append(show.to_owned()).build());
    }
    if let Some(status) = status {
        presence = presence.append(Element::builder("status", ns::COMPONENT).append(xml_safe(status)).build());
    }
    presence.build()
}

/// Presence that leaves the room `occupant` is in.
pub(crate) fn leave(from: &FullJid, occupant: &Jid, status: Option<&str>) -> Element {
    let mut presence = attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str());
    presence = attr(attr(presence, "to", occupant.as_str()), "type", "unavailable");
    if let Some(status) = status {
        presence = presence.append(Element::builder("status", ns::COMPONENT).append(xml_safe(status)).build());
    }
    presence.build()
}

/// A message stanza under construction; `id` doubles as XEP-0359 origin id.
pub(crate) struct MessageBuilder(ElementBuilder);

/// What a retraction says to clients that do not understand it.
const RETRACT_FALLBACK: &str =
    "This person attempted to retract a previous message, but it's unsupported by your client.";

impl MessageBuilder {
    /// A message of `kind` (`groupchat` or `chat`).
    pub(crate) fn new(from: &FullJid, to: &Jid, kind: &str, id: &str) -> Self {
        let message = attr(Element::builder("message", ns::COMPONENT), "from", from.as_str());
        let message = attr(attr(attr(message, "to", to.as_str()), "type", kind), "id", id);
        Self(message.append(attr(Element::builder("origin-id", ns::SID), "id", id).build()))
    }

    fn child(self, child: Element) -> Self {
        Self(self.0.append(child))
    }

    /// The plain body.
    pub(crate) fn body(self, text: &str) -> Self {
        self.child(Element::builder("body", ns::COMPONENT).append(xml_safe(text)).build())
    }

    /// XEP-0308: corrects the message with this id.
    pub(crate) fn replaces(self, id: &str) -> Self {
        self.child(attr(Element::builder("replace", ns::MESSAGE_CORRECT), "id", id).build())
    }

    /// XEP-0424: retracts the message with this id, with a fallback body and a store hint.
    pub(crate) fn retracts(self, id: &str) -> Self {
        self.child(attr(Element::builder("retract", xmlns::RETRACT), "id", id).build())
            .child(attr(Element::builder("fallback", xmlns::FALLBACK), "for", xmlns::RETRACT).build())
            .body(RETRACT_FALLBACK)
            .child(Element::builder("store", xmlns::HINTS).build())
    }

    /// XEP-0444: the sender's full set of reactions to the message with this id.
    pub(crate) fn reactions(self, id: &str, keys: &[String]) -> Self {
        let reactions = keys
            .iter()
            .map(|k| Element::builder("reaction", ns::REACTIONS).append(xml_safe(k)).build())
            .fold(attr(Element::builder("reactions", ns::REACTIONS), "id", id), |b, r| b.append(r));
        self.child(reactions.build()).child(Element::builder("store", xmlns::HINTS).build())
    }

    /// XEP-0461: replies to the message with this id.
    pub(crate) fn replies_to(self, id: &str) -> Self {
        self.child(attr(Element::builder("reply", xmlns::REPLY), "id", id).build())
    }

    /// XEP-0066: a file by link.
    pub(crate) fn oob(self, url: &str) -> Self {
        let url = Element::builder("url", ns::OOB).append(xml_safe(url)).build();
        self.child(Element::builder("x", ns::OOB).append(url).build())
    }

    /// XEP-0085: a chat state, e.g. `composing`.
    pub(crate) fn chat_state(self, state: &'static str) -> Self {
        self.child(Element::builder(state, ns::CHATSTATES).build())
    }

    /// XEP-0333: the message with this id was displayed.
    pub(crate) fn displayed(self, id: &str) -> Self {
        self.child(attr(Element::builder("displayed", xmlns::CHAT_MARKERS), "id", id).build())
    }

    /// XEP-0333: asks for displayed markers.
    pub(crate) fn markable(self) -> Self {
        self.child(Element::builder("markable", xmlns::CHAT_MARKERS).build())
    }

    /// XEP-0334: not worth archiving (chat states, markers).
    pub(crate) fn no_store(self) -> Self {
        self.child(Element::builder("no-store", xmlns::HINTS).build())
    }

    /// The finished element.
    pub(crate) fn build(self) -> Element {
        self.0.build()
    }
}

/// A MUC admin request (XEP-0045 §8/§9) setting an occupant's role by nick
/// or a user's affiliation by JID, e.g. a kick (`role=none`) or a ban
/// (`affiliation=outcast`).
pub(crate) fn muc_admin(
    from: &FullJid,
    room: &Jid,
    id: &str,
    target: (&'static str, &str),
    change: (&'static str, &str),
    reason: Option<&str>,
) -> Element {
    let mut item = attr(attr(Element::builder("item", xmlns::MUC_ADMIN), target.0, target.1), change.0, change.1);
    if let Some(reason) = reason {
        item = item.append(Element::builder("reason", xmlns::MUC_ADMIN).append(xml_safe(reason)).build());
    }
    let query = Element::builder("query", xmlns::MUC_ADMIN).append(item.build()).build();
    iq_reply(&Jid::from(from.clone()), room, id, "set").append(query).build()
}

/// Which XEP-0425 draft a moderation request follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModerationDraft {
    /// 0.3 and later: `<moderate id=…>` in `urn:xmpp:message-moderate:1`.
    Current,
    /// Before 0.3: fastened to the message (XEP-0422), as Prosody's
    /// `mod_muc_moderation` in Debian 12 still expects.
    Fastened,
}

/// A moderation request (XEP-0425): the room retracts message `id` (its stanza id).
pub(crate) fn moderate(
    from: &FullJid,
    room: &Jid,
    iq_id: &str,
    (id, reason): (&str, Option<&str>),
    draft: ModerationDraft,
) -> Element {
    let (moderate_ns, retract_ns) = match draft {
        ModerationDraft::Current => (xmlns::MODERATE, xmlns::RETRACT),
        ModerationDraft::Fastened => (xmlns::MODERATE_0, xmlns::RETRACT_0),
    };
    let mut moderate =
        Element::builder("moderate", moderate_ns).append(Element::builder("retract", retract_ns).build());
    if let Some(reason) = reason {
        moderate = moderate.append(Element::builder("reason", moderate_ns).append(xml_safe(reason)).build());
    }
    let payload = match draft {
        ModerationDraft::Current => attr(moderate, "id", id).build(),
        ModerationDraft::Fastened => {
            attr(Element::builder("apply-to", xmlns::FASTEN), "id", id).append(moderate.build()).build()
        }
    };
    iq_reply(&Jid::from(from.clone()), room, iq_id, "set").append(payload).build()
}

/// A vCard (vcard-temp) query from `from` to `to`.
pub(crate) fn vcard_query(from: &FullJid, to: &Jid, id: &str) -> Element {
    iq_reply(&Jid::from(from.clone()), to, id, "get").append(Element::builder("vCard", ns::VCARD).build()).build()
}

/// A disco#info query from `from` to `to`.
pub(crate) fn disco_info_query(from: &FullJid, to: &Jid, id: &str) -> Element {
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", "get").append(Element::builder("query", ns::DISCO_INFO).build()).build()
}

/// A service discovery identity.
pub(crate) struct Disco<'a> {
    pub(crate) category: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
}

fn iq_reply(from: &Jid, to: &Jid, id: &str, kind: &str) -> ElementBuilder {
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", kind)
}

/// A disco#info result with one identity and the given features.
pub(crate) fn disco_info(from: &Jid, to: &Jid, id: &str, identity: &Disco<'_>, features: &[&str]) -> Element {
    disco_info_identities(from, to, id, std::slice::from_ref(identity), features)
}

/// A disco#info result with several identities and the given features.
pub(crate) fn disco_info_identities(
    from: &Jid,
    to: &Jid,
    id: &str,
    identities: &[Disco<'_>],
    features: &[&str],
) -> Element {
    let identities = identities.iter().map(|identity| {
        attr(
            attr(
                attr(Element::builder("identity", ns::DISCO_INFO), "category", identity.category),
                "type",
                identity.kind,
            ),
            "name",
            identity.name,
        )
        .build()
    });
    let query = features
        .iter()
        .map(|f| attr(Element::builder("feature", ns::DISCO_INFO), "var", *f).build())
        .fold(identities.fold(Element::builder("query", ns::DISCO_INFO), |q, i| q.append(i)), |q, f| q.append(f));
    iq_reply(from, to, id, "result").append(query.build()).build()
}

/// A disco#items result listing JIDs.
pub(crate) fn disco_items(from: &Jid, to: &Jid, id: &str, items: &[tokio_xmpp::jid::BareJid]) -> Element {
    let query = items
        .iter()
        .map(|jid| attr(Element::builder("item", ns::DISCO_ITEMS), "jid", jid.as_str()).build())
        .fold(Element::builder("query", ns::DISCO_ITEMS), |q, i| q.append(i));
    iq_reply(from, to, id, "result").append(query.build()).build()
}

/// An empty iq result.
pub(crate) fn iq_result(from: &Jid, to: &Jid, id: &str) -> Element {
    iq_reply(from, to, id, "result").build()
}

/// An iq error with a defined condition, e.g. `service-unavailable`.
pub(crate) fn iq_error(from: &Jid, to: &Jid, id: &str, error_type: &str, condition: &str) -> Element {
    let condition = Element::builder(condition, ns::XMPP_STANZAS).build();
    let error = attr(Element::builder("error", ns::COMPONENT), "type", error_type).append(condition).build();
    iq_reply(from, to, id, "error").append(error).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(xml_safe("a\u{0}b\u{7}c\td\ne\u{FFFF}"), "abc\td\ne");
    }

    #[test]
    fn group_messages_carry_body_and_origin_id() {
        let from = FullJid::new("al@matrix.localhost/matrix").unwrap();
        let room = Jid::new("room@conference.localhost").unwrap();
        let el = MessageBuilder::new(&from, &room, "groupchat", "m1").body("hi <b>\u{1}").build();
        assert_eq!(el.attr("type"), Some("groupchat"));
        assert_eq!(el.get_child("body", ns::COMPONENT).unwrap().text(), "hi <b>");
        assert_eq!(el.get_child("origin-id", ns::SID).unwrap().attr("id"), Some("m1"));
        let xml = String::from(&el);
        assert!(xml.contains("&lt;b&gt;"), "{xml}");
    }

    #[test]
    fn retractions_carry_a_fallback_and_a_store_hint() {
        let from = FullJid::new("al@matrix.localhost/matrix").unwrap();
        let to = Jid::new("bob@localhost").unwrap();
        let el = MessageBuilder::new(&from, &to, "chat", "r1").retracts("m1").build();
        assert_eq!(el.get_child("retract", xmlns::RETRACT).unwrap().attr("id"), Some("m1"));
        assert!(el.has_child("store", xmlns::HINTS));
        assert!(el.get_child("body", ns::COMPONENT).unwrap().text().contains("retract"));
        let parsed = crate::payload::read(&el);
        assert_eq!(parsed.retraction.unwrap().id, "m1");
    }

    #[test]
    fn joins_ask_for_no_history() {
        let from = FullJid::new("al@matrix.localhost/matrix").unwrap();
        let occupant = FullJid::new("room@conference.localhost/Al").unwrap();
        let el = join(&from, &occupant);
        let history = el.get_child("x", ns::MUC).unwrap().get_child("history", ns::MUC).unwrap();
        assert_eq!(history.attr("maxstanzas"), Some("0"));
    }

    #[test]
    fn moderation_requests_follow_either_draft() {
        let from = FullJid::new("listener@matrix.localhost/bridge").unwrap();
        let room = Jid::new("room@conference.localhost").unwrap();
        let current = moderate(&from, &room, "q1", ("s1", Some("spam")), ModerationDraft::Current);
        let request = current.get_child("moderate", xmlns::MODERATE).unwrap();
        assert_eq!((current.attr("type"), request.attr("id")), (Some("set"), Some("s1")));
        assert!(request.has_child("retract", xmlns::RETRACT));
        assert_eq!(request.get_child("reason", xmlns::MODERATE).unwrap().text(), "spam");

        let fastened = moderate(&from, &room, "q2", ("s1", None), ModerationDraft::Fastened);
        let apply_to = fastened.get_child("apply-to", xmlns::FASTEN).unwrap();
        assert_eq!(apply_to.attr("id"), Some("s1"));
        let request = apply_to.get_child("moderate", xmlns::MODERATE_0).unwrap();
        assert!(request.has_child("retract", xmlns::RETRACT_0));
        assert!(!request.has_child("reason", xmlns::MODERATE_0));
    }
}
