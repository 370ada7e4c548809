//! Reading inbound stanzas: each element is classified on its own, leniently,
//! so a malformed or hostile stanza is skipped without touching the others.

use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use crate::payload::{self, Payload};

/// What the adapter acts on.
#[derive(Debug, PartialEq)]
pub(crate) enum Inbound {
    /// A message in a group chat, from one occupant.
    GroupMessage(GroupMessage),
    /// A one-to-one message to one of our JIDs.
    DirectMessage(DirectMessage),
    /// An occupant's presence in a group chat.
    Occupant(OccupantPresence),
    /// An iq request addressed to us.
    IqRequest { from: Jid, to: Jid, id: String, kind: IqKind, payload: Option<Element> },
    /// A group chat message replayed from the room's archive for our query `query`.
    Archived { query: String, message: GroupMessage },
    /// The end of one of our archive queries (an iq result or error no waiter claimed).
    QueryEnd { id: String, from: Jid, complete: bool, last: Option<String> },
    /// Something we do not handle (logged at debug level by the caller).
    Ignored(&'static str),
}

/// Whether an iq asks or sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IqKind {
    Get,
    Set,
}

/// A group chat message as the occupant `room/nick` sent it.
#[derive(Debug, PartialEq)]
pub(crate) struct GroupMessage {
    /// The room's bare JID.
    pub(crate) room: BareJid,
    /// The sender's nick.
    pub(crate) nick: String,
    /// Which of our JIDs received this copy.
    pub(crate) to: Jid,
    /// The sender's `id` attribute.
    pub(crate) id: Option<String>,
    /// XEP-0359 stanza id assigned by the room.
    pub(crate) stanza_id: Option<String>,
    /// XEP-0359 origin id set by the sender.
    pub(crate) origin_id: Option<String>,
    /// XEP-0421 occupant id (trustworthy only where the room announces the feature).
    pub(crate) occupant_id: Option<String>,
    /// What it says.
    pub(crate) payload: Payload,
    /// Room subject, when this message sets it.
    pub(crate) subject: Option<String>,
    /// True for history replayed on join (XEP-0203 delay).
    pub(crate) delayed: bool,
}

/// A one-to-one message.
#[derive(Debug, PartialEq)]
pub(crate) struct DirectMessage {
    /// The sender.
    pub(crate) from: Jid,
    /// Which of our JIDs it was sent to.
    pub(crate) to: BareJid,
    /// The sender's `id` attribute.
    pub(crate) id: Option<String>,
    /// XEP-0359 origin id set by the sender.
    pub(crate) origin_id: Option<String>,
    /// What it says.
    pub(crate) payload: Payload,
}

/// One occupant's presence.
#[derive(Debug, PartialEq)]
pub(crate) struct OccupantPresence {
    /// The room's bare JID.
    pub(crate) room: BareJid,
    /// The occupant's nick.
    pub(crate) nick: String,
    /// Which of our JIDs received it.
    pub(crate) to: Jid,
    /// False for `type="unavailable"`.
    pub(crate) available: bool,
    /// The error condition of a `type="error"` presence (a failed join).
    pub(crate) error: Option<String>,
    /// MUC status codes (110 self, 307 kicked, 301 banned, 303 nick change…).
    pub(crate) codes: Vec<u16>,
    /// The occupant's real JID, when the room shows it.
    pub(crate) real_jid: Option<BareJid>,
    /// The new nick, for a nick change (303).
    pub(crate) new_nick: Option<String>,
    /// XEP-0421 occupant id (trustworthy only where the room announces the feature).
    pub(crate) occupant_id: Option<String>,
    /// XEP-0153 avatar hash (`Some("")` when they have none).
    pub(crate) photo: Option<String>,
    /// `show` (away, chat, dnd, xa).
    pub(crate) show: Option<String>,
    /// Free-text status.
    pub(crate) status: Option<String>,
    /// Reason given for a kick or ban.
    pub(crate) reason: Option<String>,
}

/// Classifies one element read from the component stream.
pub(crate) fn classify(element: &Element) -> Inbound {
    if element.ns() != ns::COMPONENT {
        return Inbound::Ignored("not a stanza");
    }
    match element.name() {
        "message" => message(element),
        "presence" => presence(element),
        "iq" => iq(element),
        _ => Inbound::Ignored("unknown stanza"),
    }
}

fn jid_attr(element: &Element, name: &str) -> Option<Jid> {
    element.attr(name).and_then(|v| Jid::new(v).ok())
}

/// `room@service/nick` split into room and nick.
fn occupant(from: &Jid) -> Option<(BareJid, String)> {
    let full: &FullJid = from.try_as_full().ok()?;
    Some((full.to_bare(), full.resource().as_str().to_owned()))
}

fn child_text(element: &Element, name: &str, namespace: &str) -> Option<String> {
    element.get_child(name, namespace).map(Element::text)
}

fn message(element: &Element) -> Inbound {
    let (Some(from), Some(to)) = (jid_attr(element, "from"), jid_attr(element, "to")) else {
        return Inbound::Ignored("message without valid from/to");
    };
    if let Some(result) = element.get_child("result", ns::MAM) {
        return archived(&from, &to, result);
    }
    match element.attr("type") {
        Some("groupchat") => {}
        Some("error") => return Inbound::Ignored("message error"),
        Some("headline") => return Inbound::Ignored("headline"),
        // chat, normal, or none (which means normal)
        _ => {
            return Inbound::DirectMessage(DirectMessage {
                from,
                to: to.to_bare(),
                id: element.attr("id").map(str::to_owned),
                origin_id: origin_id(element),
                payload: payload::read(element),
            });
        }
    }
    let Some((room, nick)) = occupant(&from) else {
        return moderation(element, &from, to);
    };
    Inbound::GroupMessage(group_message(element, room, nick, to, None))
}

/// A message from the room itself: only a moderator's retraction (XEP-0425)
/// is of interest, and it counts as coming from that moderator.
fn moderation(element: &Element, from: &Jid, to: Jid) -> Inbound {
    let payload = payload::read(element);
    let Some(retraction) = payload.retraction.as_ref().filter(|r| r.moderated) else {
        return Inbound::Ignored("group message from the room itself");
    };
    let room = from.to_bare();
    let moderator = retraction.by.as_deref().and_then(|by| Jid::new(by).ok()).and_then(|by| occupant(&by));
    let nick = match moderator {
        Some((by_room, nick)) if by_room == room => nick,
        _ => "moderator".to_owned(),
    };
    Inbound::GroupMessage(group_message(element, room, nick, to, None))
}

/// A group chat message; `archive_id` is the archive's id for replayed ones.
fn group_message(element: &Element, room: BareJid, nick: String, to: Jid, archive_id: Option<&str>) -> GroupMessage {
    let stanza_id = element
        .children()
        .filter(|c| c.is("stanza-id", ns::SID))
        .find(|c| c.attr("by").and_then(|by| BareJid::new(by).ok()).as_ref() == Some(&room))
        .and_then(|c| c.attr("id").map(str::to_owned))
        .or_else(|| archive_id.map(str::to_owned));
    GroupMessage {
        room,
        nick,
        to,
        id: element.attr("id").map(str::to_owned),
        stanza_id,
        origin_id: origin_id(element),
        occupant_id: occupant_id(element),
        payload: payload::read(element),
        subject: child_text(element, "subject", element.ns().as_str()),
        delayed: archive_id.is_some() || element.has_child("delay", ns::DELAY),
    }
}

/// A `<result/>` of an archive query: only from the room itself, holding a
/// group chat message from one of its occupants.
fn archived(from: &Jid, to: &Jid, result: &Element) -> Inbound {
    let (Some(query), Some(archive_id)) = (result.attr("queryid"), result.attr("id")) else {
        return Inbound::Ignored("archive result without ids");
    };
    // The forwarded message keeps the namespace it was archived with (usually jabber:client).
    let forwarded = result.get_child("forwarded", ns::FORWARD);
    let Some(inner) = forwarded.and_then(|f| f.children().find(|c| c.name() == "message")) else {
        return Inbound::Ignored("archive result without a message");
    };
    let Some((room, nick)) = jid_attr(inner, "from").as_ref().and_then(occupant) else {
        return Inbound::Ignored("archived message not from an occupant");
    };
    if from.to_bare() != room || from.resource().is_some() {
        return Inbound::Ignored("archive result from elsewhere than its room");
    }
    let message = group_message(inner, room, nick, to.clone(), Some(archive_id));
    Inbound::Archived { query: query.to_owned(), message }
}

fn origin_id(element: &Element) -> Option<String> {
    element.get_child("origin-id", ns::SID).and_then(|c| c.attr("id").map(str::to_owned))
}

fn occupant_id(element: &Element) -> Option<String> {
    element.get_child("occupant-id", OCCUPANT_ID).and_then(|c| c.attr("id").map(str::to_owned))
}

/// XEP-0421 anonymous unique occupant identifiers.
pub(crate) const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";

fn presence(element: &Element) -> Inbound {
    let (Some(from), Some(to)) = (jid_attr(element, "from"), jid_attr(element, "to")) else {
        return Inbound::Ignored("presence without valid from/to");
    };
    let Some((room, nick)) = occupant(&from) else {
        return Inbound::Ignored("presence not from an occupant");
    };
    let kind = element.attr("type");
    let error = (kind == Some("error")).then(|| {
        element
            .get_child("error", ns::COMPONENT)
            .and_then(|e| e.children().next())
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|| "undefined-condition".into())
    });
    let muc = element.get_child("x", ns::MUC_USER);
    if muc.is_none() && error.is_none() {
        return Inbound::Ignored("presence without MUC data");
    }
    let codes = muc
        .map(|x| x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code")?.parse().ok()).collect())
        .unwrap_or_default();
    let item = muc.and_then(|x| x.get_child("item", ns::MUC_USER));
    Inbound::Occupant(OccupantPresence {
        room,
        nick,
        to,
        available: kind.is_none(),
        error,
        codes,
        real_jid: item.and_then(|i| i.attr("jid")).and_then(|j| Jid::new(j).ok()).map(|j| j.to_bare()),
        new_nick: item.and_then(|i| i.attr("nick")).map(str::to_owned),
        occupant_id: occupant_id(element),
        photo: element
            .get_child("x", ns::VCARD_UPDATE)
            .and_then(|x| x.get_child("photo", ns::VCARD_UPDATE))
            .map(Element::text),
        show: child_text(element, "show", ns::COMPONENT),
        status: child_text(element, "status", ns::COMPONENT),
        reason: item.and_then(|i| i.get_child("reason", ns::MUC_USER)).map(Element::text),
    })
}

fn iq(element: &Element) -> Inbound {
    let (Some(from), Some(to), Some(id)) = (jid_attr(element, "from"), jid_attr(element, "to"), element.attr("id"))
    else {
        return Inbound::Ignored("iq without valid from/to/id");
    };
    let kind = match element.attr("type") {
        Some("get") => IqKind::Get,
        Some("set") => IqKind::Set,
        Some("result") => {
            let fin = element.get_child("fin", ns::MAM);
            let complete = fin.is_none_or(|f| f.attr("complete") == Some("true"));
            let last = fin.and_then(|f| f.get_child("set", ns::RSM)).and_then(|s| s.get_child("last", ns::RSM));
            return Inbound::QueryEnd { id: id.to_owned(), from, complete, last: last.map(Element::text) };
        }
        Some("error") => return Inbound::QueryEnd { id: id.to_owned(), from, complete: true, last: None },
        _ => return Inbound::Ignored("iq of unknown type"),
    };
    Inbound::IqRequest { from, to, id: id.to_owned(), kind, payload: element.children().next().cloned() }
}

/// Whether a disco#info answer describes a group chat room.
pub(crate) fn is_conference(answer: &Element) -> bool {
    answer.attr("type") == Some("result")
        && answer.get_child("query", ns::DISCO_INFO).is_some_and(|q| {
            q.children().any(|c| c.is("identity", ns::DISCO_INFO) && c.attr("category") == Some("conference"))
        })
}

/// Whether a disco#info answer announces a feature.
pub(crate) fn has_feature(answer: &Element, feature: &str) -> bool {
    answer.attr("type") == Some("result")
        && answer
            .get_child("query", ns::DISCO_INFO)
            .is_some_and(|q| q.children().any(|c| c.is("feature", ns::DISCO_INFO) && c.attr("var") == Some(feature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test XML parses")
    }

    #[test]
    fn group_messages_carry_the_rooms_stanza_id_only() {
        let el = parse(
            "<message xmlns='jabber:component:accept' type='groupchat' id='m1' \
             from='room@conference.localhost/Bob' to='bot@matrix.localhost/bridge'>\
             <body>hi</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='evil@localhost' id='forged'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='room@conference.localhost' id='s1'/>\
             <origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
        );
        let Inbound::GroupMessage(m) = classify(&el) else { panic!("not a group message") };
        assert_eq!(m.room.as_str(), "room@conference.localhost");
        assert_eq!(m.nick, "Bob");
        assert_eq!(m.stanza_id.as_deref(), Some("s1"));
        assert_eq!(m.origin_id.as_deref(), Some("o1"));
        assert_eq!(m.payload.body.as_deref(), Some("hi"));
        assert!(!m.delayed);
    }

    #[test]
    fn occupant_presences_carry_codes_and_real_jids() {
        let el = parse(
            "<presence xmlns='jabber:component:accept' from='room@conference.localhost/Bob' \
             to='bot@matrix.localhost/bridge' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none' jid='bob@localhost/phone'><reason>spam</reason></item>\
             <status code='307'/></x></presence>",
        );
        let Inbound::Occupant(p) = classify(&el) else { panic!("not an occupant presence") };
        assert!(!p.available);
        assert_eq!(p.codes, vec![307]);
        assert_eq!(p.real_jid.unwrap().as_str(), "bob@localhost");
        assert_eq!(p.reason.as_deref(), Some("spam"));
    }

    #[test]
    fn moderations_come_from_the_moderator() {
        let el = parse(
            "<message xmlns='jabber:component:accept' type='groupchat' id='x' \
             from='room@conference.localhost' to='matrix.localhost/bridge'>\
             <retract xmlns='urn:xmpp:message-retract:1' id='s1'>\
             <moderated xmlns='urn:xmpp:message-moderate:1' by='room@conference.localhost/Mod'/>\
             <reason>spam</reason></retract></message>",
        );
        let Inbound::GroupMessage(m) = classify(&el) else { panic!("not a group message") };
        assert_eq!(m.nick, "Mod");
        assert_eq!(m.payload.retraction.unwrap().id, "s1");
        let plain = parse(
            "<message xmlns='jabber:component:accept' type='groupchat' from='room@conference.localhost' \
             to='matrix.localhost/bridge'><subject>topic</subject></message>",
        );
        assert!(matches!(classify(&plain), Inbound::Ignored(_)));
    }

    #[test]
    fn chat_messages_are_direct() {
        let el = parse(
            "<message xmlns='jabber:component:accept' type='chat' id='c1' from='bob@localhost/phone' \
             to='alice\\3alocalhost@matrix.localhost'><body>psst</body></message>",
        );
        let Inbound::DirectMessage(m) = classify(&el) else { panic!("not a direct message") };
        assert_eq!(m.from.as_str(), "bob@localhost/phone");
        assert_eq!(m.to.as_str(), "alice\\3alocalhost@matrix.localhost");
        assert_eq!(m.payload.body.as_deref(), Some("psst"));
    }

    #[test]
    fn join_errors_are_reported() {
        let el = parse(
            "<presence xmlns='jabber:component:accept' from='room@conference.localhost/Al' \
             to='al@matrix.localhost/matrix' type='error'>\
             <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
        );
        let Inbound::Occupant(p) = classify(&el) else { panic!("not an occupant presence") };
        assert_eq!(p.error.as_deref(), Some("conflict"));
    }

    #[test]
    fn malformed_stanzas_are_ignored() {
        for xml in [
            "<message xmlns='jabber:component:accept' type='groupchat' from='@@@' to='x@y'><body>x</body></message>",
            "<message xmlns='jabber:component:accept' type='groupchat' to='x@y'/>",
            "<presence xmlns='jabber:component:accept' from='room@conference.localhost' to='x@y'/>",
            "<iq xmlns='jabber:component:accept' type='get' from='a@b' to='c@d'/>",
            "<weird xmlns='urn:example'/>",
        ] {
            assert!(matches!(classify(&parse(xml)), Inbound::Ignored(_)), "{xml}");
        }
    }
}
