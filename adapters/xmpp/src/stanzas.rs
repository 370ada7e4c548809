//! Building the stanzas the component sends.

use tokio_xmpp::jid::{FullJid, Jid};
use tokio_xmpp::minidom::rxml::NcName;
use tokio_xmpp::minidom::{Element, ElementBuilder};
use tokio_xmpp::parsers::ns;

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

/// Presence that joins `occupant` (room/nick) as `from`, without history.
pub(crate) fn join(from: &FullJid, occupant: &FullJid) -> Element {
    let history = attr(Element::builder("history", ns::MUC), "maxstanzas", "0").build();
    let x = Element::builder("x", ns::MUC).append(history).build();
    let presence =
        attr(attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str()), "to", occupant.as_str());
    presence.append(x).build()
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

/// A group chat message with a body; `id` doubles as XEP-0359 origin id.
pub(crate) fn group_message(from: &FullJid, room: &Jid, id: &str, body: &str) -> Element {
    let mut message = attr(Element::builder("message", ns::COMPONENT), "from", from.as_str());
    message = attr(attr(attr(message, "to", room.as_str()), "type", "groupchat"), "id", id);
    message
        .append(Element::builder("body", ns::COMPONENT).append(xml_safe(body)).build())
        .append(attr(Element::builder("origin-id", ns::SID), "id", id).build())
        .build()
}

/// A disco#info query from `from` to `to`.
pub(crate) fn disco_info_query(from: &FullJid, to: &Jid, id: &str) -> Element {
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", "get").append(Element::builder("query", ns::DISCO_INFO).build()).build()
}

/// An empty iq result.
pub(crate) fn iq_result(from: &Jid, to: &Jid, id: &str) -> Element {
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", "result").build()
}

/// An iq error with a defined condition, e.g. `service-unavailable`.
pub(crate) fn iq_error(from: &Jid, to: &Jid, id: &str, error_type: &str, condition: &str) -> Element {
    let condition = Element::builder(condition, ns::XMPP_STANZAS).build();
    let error = attr(Element::builder("error", ns::COMPONENT), "type", error_type).append(condition).build();
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", "error").append(error).build()
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
        let el = group_message(&from, &room, "m1", "hi <b>\u{1}");
        assert_eq!(el.attr("type"), Some("groupchat"));
        assert_eq!(el.get_child("body", ns::COMPONENT).unwrap().text(), "hi <b>");
        assert_eq!(el.get_child("origin-id", ns::SID).unwrap().attr("id"), Some("m1"));
        let xml = String::from(&el);
        assert!(xml.contains("&lt;b&gt;"), "{xml}");
    }

    #[test]
    fn joins_ask_for_no_history() {
        let from = FullJid::new("al@matrix.localhost/matrix").unwrap();
        let occupant = FullJid::new("room@conference.localhost/Al").unwrap();
        let el = join(&from, &occupant);
        let history = el.get_child("x", ns::MUC).unwrap().get_child("history", ns::MUC).unwrap();
        assert_eq!(history.attr("maxstanzas"), Some("0"));
    }
}
