//! The stanzas a hosted room sends: occupant presences, reflected
//! messages, history, the subject, MAM results and errors.

use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::rxml::{Namespace, NcName};
use tokio_xmpp::minidom::{Element, ElementBuilder, Node};
use tokio_xmpp::parsers::ns;

use super::archive::{Entry, Page};
use super::rooms::{Seen, Shown};
use crate::stanzas::xml_safe;

/// The namespace clients' stanzas are archived in.
pub(crate) const CLIENT: &str = "jabber:client";

fn attr(builder: ElementBuilder, name: &'static str, value: impl Into<String>) -> ElementBuilder {
    builder.attr(NcName::try_from(name).expect("static attribute names are valid"), value.into())
}

fn status(code: u16) -> Element {
    attr(Element::builder("status", ns::MUC_USER), "code", code.to_string()).build()
}

/// An occupant's presence (`room/nick`) for `to`; `codes` such as 110 (it is
/// you), 100 (real JIDs are shown), 307 (kicked).
pub(crate) fn occupant_presence(
    room: &BareJid,
    to: &FullJid,
    seen: &Seen,
    available: bool,
    codes: &[u16],
) -> Option<Element> {
    let from = room.with_resource_str(&seen.nick).ok()?;
    let mut item = attr(attr(Element::builder("item", ns::MUC_USER), "affiliation", "none"), "role", {
        if available { "participant" } else { "none" }
    });
    if !seen.jid.is_empty() {
        item = attr(item, "jid", seen.jid.clone());
    }
    let x = codes.iter().fold(Element::builder("x", ns::MUC_USER).append(item.build()), |x, c| x.append(status(*c)));
    let mut presence =
        attr(attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    if !available {
        presence = attr(presence, "type", "unavailable");
    }
    let Shown { show, status } = &seen.shown;
    if let Some(show) = show.as_deref().filter(|s| matches!(*s, "away" | "chat" | "dnd" | "xa")) {
        presence = presence.append(Element::builder("show", ns::COMPONENT).append(show.to_owned()).build());
    }
    if let Some(status) = status {
        presence = presence.append(Element::builder("status", ns::COMPONENT).append(xml_safe(status)).build());
    }
    Some(presence.append(x.build()).build())
}

/// The unavailable presence of an occupant's old nick that names the new one.
pub(crate) fn nick_change(room: &BareJid, to: &FullJid, before: &Seen, nick: &str, codes: &[u16]) -> Option<Element> {
    let mut presence = occupant_presence(room, to, before, false, codes)?;
    let item = presence.get_child_mut("x", ns::MUC_USER)?.get_child_mut("item", ns::MUC_USER)?;
    for (name, value) in [("nick", nick), ("role", "participant")] {
        item.set_attr(Namespace::NONE, NcName::try_from(name).expect("static attribute names are valid"), value);
    }
    Some(presence)
}

/// A presence error for a refused join, from the occupant JID asked for.
pub(crate) fn presence_error(from: &Jid, to: &Jid, condition: &str) -> Element {
    let kind = if condition == "service-unavailable" || condition == "resource-constraint" { "wait" } else { "cancel" };
    let error = attr(Element::builder("error", ns::COMPONENT), "type", kind)
        .append(Element::builder(condition, ns::XMPP_STANZAS).build())
        .build();
    attr(
        attr(attr(Element::builder("presence", ns::COMPONENT), "from", from.as_str()), "to", to.as_str()),
        "type",
        "error",
    )
    .append(Element::builder("x", ns::MUC).build())
    .append(error)
    .build()
}

/// A message error bounced back to its sender.
pub(crate) fn message_error(from: &Jid, to: &Jid, id: Option<&str>, condition: &str) -> Element {
    let error = attr(Element::builder("error", ns::COMPONENT), "type", "cancel")
        .append(Element::builder(condition, ns::XMPP_STANZAS).build())
        .build();
    let mut message = attr(attr(Element::builder("message", ns::COMPONENT), "from", from.as_str()), "to", to.as_str());
    if let Some(id) = id {
        message = attr(message, "id", id);
    }
    attr(message, "type", "error").append(error).build()
}

/// The room's subject, from the room (ending the join sequence) or from the
/// occupant who changed it.
pub(crate) fn subject(from: &Jid, to: &FullJid, subject: &str) -> Element {
    let message = attr(Element::builder("message", ns::COMPONENT), "from", from.as_str());
    attr(attr(attr(message, "to", to.as_str()), "type", "groupchat"), "id", format!("subject-{}", super::now_secs()))
        .append(Element::builder("subject", ns::COMPONENT).append(xml_safe(subject)).build())
        .build()
}

/// The children of a client's message worth reflecting: everything but
/// stanza ids (only the room's own count) and errors.
pub(crate) fn reflectable(message: &Element) -> Vec<Element> {
    message
        .children()
        .filter(|c| !c.is("stanza-id", ns::SID) && c.name() != "error" && !c.is("delay", ns::DELAY))
        .cloned()
        .collect()
}

/// A group chat message from `from` (`room/nick`) to `to` (or to nobody,
/// for the archive) in namespace `namespace`, with our stanza id.
pub(crate) fn room_message(
    namespace: &str,
    from: &FullJid,
    to: Option<&FullJid>,
    id: Option<&str>,
    children: &[Element],
    stanza_id: Option<(&str, &BareJid)>,
) -> Element {
    let mut message = attr(Element::builder("message", namespace), "from", from.as_str());
    if let Some(to) = to {
        message = attr(message, "to", to.as_str());
    }
    message = attr(message, "type", "groupchat");
    if let Some(id) = id {
        message = attr(message, "id", id);
    }
    for child in children {
        message = message.append(renamespace(child, ns::COMPONENT, namespace));
    }
    if let Some((id, by)) = stanza_id {
        message =
            message.append(attr(attr(Element::builder("stanza-id", ns::SID), "id", id), "by", by.as_str()).build());
    }
    message.build()
}

/// The same element with `from` namespaces (e.g. the component's) turned into `to`'s.
pub(crate) fn renamespace(element: &Element, from: &str, to: &str) -> Element {
    let namespace = if element.ns() == from { to.to_owned() } else { element.ns() };
    let mut out = Element::bare(element.name(), namespace);
    *out.attrs_mut() = element.attrs().clone();
    for node in element.nodes() {
        match node {
            Node::Element(child) => {
                out.append_child(renamespace(child, from, to));
            }
            Node::Text(text) => out.append_text_node(text.clone()),
        }
    }
    out
}

/// An archived message, re-addressed to `to` as history, with its delay (XEP-0203).
pub(crate) fn history(room: &BareJid, to: &FullJid, entry: &Entry) -> Option<Element> {
    let archived: Element = entry.xml.parse().ok()?;
    let from = FullJid::new(archived.attr("from")?).ok()?;
    let children: Vec<Element> = archived.children().map(|c| renamespace(c, CLIENT, ns::COMPONENT)).collect();
    let mut message = room_message(ns::COMPONENT, &from, Some(to), archived.attr("id"), &children, None);
    message.append_child(delay(room, entry.at));
    Some(message)
}

fn delay(room: &BareJid, at: u64) -> Element {
    let stamp = crate::history::xmpp_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
    attr(attr(Element::builder("delay", ns::DELAY), "stamp", stamp), "from", room.as_str()).build()
}

/// One MAM result (XEP-0313) for query `query_id`, sent to the asker.
pub(crate) fn mam_result(room: &BareJid, to: &Jid, query_id: &str, entry: &Entry) -> Option<Element> {
    let archived: Element = entry.xml.parse().ok()?;
    let forwarded = Element::builder("forwarded", ns::FORWARD).append(delay(room, entry.at)).append(archived).build();
    let result = attr(attr(Element::builder("result", ns::MAM), "queryid", query_id), "id", entry.id.clone())
        .append(forwarded)
        .build();
    let message = attr(attr(Element::builder("message", ns::COMPONENT), "from", room.as_str()), "to", to.as_str());
    Some(attr(message, "id", format!("mam-{}-{}", query_id, entry.seq)).append(result).build())
}

/// The end of a MAM query: the iq result with `<fin/>` and the page's RSM data.
pub(crate) fn mam_fin(room: &BareJid, to: &Jid, id: &str, page: &Page<'_>) -> Element {
    let mut set = Element::builder("set", ns::RSM);
    if let (Some(first), Some(last)) = (page.items.first(), page.items.last()) {
        set = set
            .append(
                attr(Element::builder("first", ns::RSM), "index", page.first_index.to_string())
                    .append(first.id.clone())
                    .build(),
            )
            .append(Element::builder("last", ns::RSM).append(last.id.clone()).build());
    }
    set = set.append(Element::builder("count", ns::RSM).append(page.count.to_string()).build());
    let fin = attr(Element::builder("fin", ns::MAM), "complete", if page.complete { "true" } else { "false" })
        .append(set.build())
        .build();
    let iq = attr(attr(Element::builder("iq", ns::COMPONENT), "from", room.as_str()), "to", to.as_str());
    attr(attr(iq, "id", id), "type", "result").append(fin).build()
}

/// A retraction tombstone (XEP-0424) in place of an archived message.
pub(crate) fn tombstone(from: &str, id: Option<&str>, retraction_id: &str, at: u64) -> String {
    let stamp = crate::history::xmpp_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
    let retracted =
        attr(attr(Element::builder("retracted", crate::payload::xmlns::RETRACT), "id", retraction_id), "stamp", stamp);
    let mut message = attr(attr(Element::builder("message", CLIENT), "from", from), "type", "groupchat");
    if let Some(id) = id {
        message = attr(message, "id", id);
    }
    String::from(&message.append(retracted.build()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archived_messages_come_back_in_the_client_namespace_and_as_history() {
        let room = BareJid::new("town@matrix.localhost").unwrap();
        let from = room.with_resource_str("Bob").unwrap();
        let original: Element = "<message xmlns='jabber:component:accept' type='groupchat' id='m1'>\
             <body>hi &lt;there&gt;</body><stanza-id xmlns='urn:xmpp:sid:0' by='evil@x' id='forged'/>\
             <origin-id xmlns='urn:xmpp:sid:0' id='m1'/></message>"
            .parse()
            .unwrap();
        let children = reflectable(&original);
        let archived = room_message(CLIENT, &from, None, Some("m1"), &children, Some(("s1", &room)));
        let xml = String::from(&archived);
        assert!(!xml.contains("forged") && xml.contains("jabber:client"), "{xml}");
        let entry = Entry {
            seq: 0,
            id: "s1".into(),
            at: 0,
            sender: "bob@localhost".into(),
            origin: None,
            xml,
            retracted: false,
        };
        let to = FullJid::new("dave@localhost/x").unwrap();
        let replay = history(&room, &to, &entry).unwrap();
        assert_eq!(replay.ns(), ns::COMPONENT);
        assert_eq!(replay.get_child("body", ns::COMPONENT).unwrap().text(), "hi <there>");
        assert_eq!(replay.get_child("stanza-id", ns::SID).unwrap().attr("id"), Some("s1"));
        assert!(replay.has_child("delay", ns::DELAY));
        let result = mam_result(&room, &Jid::from(to), "q1", &entry).unwrap();
        let inner = result.get_child("result", ns::MAM).unwrap().get_child("forwarded", ns::FORWARD).unwrap();
        assert_eq!(inner.get_child("message", CLIENT).unwrap().get_child("body", CLIENT).unwrap().text(), "hi <there>");
    }
}
