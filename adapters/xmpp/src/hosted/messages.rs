//! Messages in hosted rooms from XMPP occupants, the rooms' archives, and
//! the iqs the rooms answer (disco, MAM).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use brygga_core::{BridgeError, InboundEvent, RemoteMessageId, RemoteRoomId};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use super::archive::{Archive, Entry, Query};
use super::occupancy::{ghost, left};
use super::wire::CLIENT;
use super::{FLUSH_DELAY, ROOM_FEATURES, known, now_secs, wire};
use crate::adapter::Shared;
use crate::link::Link;
use crate::stanzas::{self, Disco};

/// The room's archive, loaded.
pub(super) async fn archive_of(
    shared: &Shared,
    room: &BareJid,
) -> Result<Arc<tokio::sync::Mutex<Archive>>, BridgeError> {
    let archive = shared.hosted.archives.lock().expect("archives poisoned").entry(room.clone()).or_default().clone();
    archive.lock().await.load(shared.state.as_ref(), room).await?;
    Ok(archive)
}

/// Writes the archive soon (writes of a burst are gathered).
pub(super) fn schedule_flush(
    shared: &Shared,
    room: &BareJid,
    handle: &Arc<tokio::sync::Mutex<Archive>>,
    archive: &mut Archive,
) {
    if archive.flushing {
        return;
    }
    archive.flushing = true;
    let (state, handle, room) = (shared.state.clone(), handle.clone(), room.clone());
    tokio::spawn(async move {
        tokio::time::sleep(FLUSH_DELAY).await;
        let mut archive = handle.lock().await;
        archive.flushing = false;
        if let Err(err) = archive.flush(state.as_ref(), &room).await {
            tracing::warn!(room = %room, error = %err, "writing a hosted room's archive failed; retried with the next message");
        }
    });
}

/// A stanza id of ours, unique across rooms and restarts.
pub(super) fn new_stanza_id(seq: u64) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{nanos:x}-{seq}")
}

pub(super) async fn message(
    shared: &Arc<Shared>,
    link: &Link,
    element: &Element,
    room: &BareJid,
    to: &Jid,
    from: &Jid,
) -> Vec<InboundEvent> {
    let Ok(session) = FullJid::try_from(from.clone()) else { return Vec::new() };
    let id_attr = element.attr("id");
    let bounce = |condition| wire::message_error(to, from, id_attr, condition);
    match element.attr("type") {
        // A session that bounces the room's messages is gone.
        Some("error") => {
            left(shared, link, room, &session).await;
            return Vec::new();
        }
        Some("groupchat") if to.resource().is_none() => {}
        Some("chat") if to.resource().is_some() => {
            return super::private::message(shared, link, element, room, to, &session).await;
        }
        _ => {
            shared.send_quietly(link, bounce("feature-not-implemented")).await;
            return Vec::new();
        }
    }
    let Some(nick) = shared.hosted.occupants.lock().expect("occupants poisoned").nick_of(room, &session) else {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    };
    let mut payload = crate::payload::read(element);
    if !crate::inbound::body_fits(shared, &payload) {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    }
    if payload.body.is_none() && element.has_child("subject", ns::COMPONENT) {
        shared.send_quietly(link, bounce("forbidden")).await;
        return Vec::new();
    }
    let bare = session.to_bare();
    let identity = bare.to_string();
    let Ok(occupant) = room.with_resource_str(&nick) else { return Vec::new() };
    let Ok(remote_room) = RemoteRoomId::new(room.as_str()) else { return Vec::new() };
    let Some(sender) = ghost(&bare, &nick) else { return Vec::new() };
    let children = wire::reflectable(element);
    let origin = element.get_child("origin-id", ns::SID).and_then(|o| o.attr("id")).or(id_attr).map(str::to_owned);
    let durable = payload.body.is_some()
        || payload.retraction.is_some()
        || payload.replace.is_some()
        || payload.reactions.is_some()
        || !payload.oob_urls.is_empty();
    let own = |id: &str| RemoteMessageId::new(format!("{identity}#{id}")).ok();
    let by_room = |id: &str| RemoteMessageId::new(id).ok();
    if !durable {
        // Chat states and markers: reflected, not archived.
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
        for s in &sessions {
            shared
                .send_quietly(link, wire::room_message(ns::COMPONENT, &occupant, Some(s), id_attr, &children, None))
                .await;
        }
        let Some(body) = crate::inbound::body_of(payload, by_room, own) else { return Vec::new() };
        return vec![InboundEvent::new(remote_room, crate::inbound::ephemeral_id(), sender, body)];
    }
    let handle = match archive_of(shared, room).await {
        Ok(handle) => handle,
        Err(err) => {
            tracing::warn!(room = %room, error = %err, "hosted room archive unavailable");
            shared.send_quietly(link, bounce("internal-server-error")).await;
            return Vec::new();
        }
    };
    let stanza_id = {
        let mut archive = handle.lock().await;
        // A retraction names the room's stanza id (or, from older clients,
        // the sender's own id); only one's own messages can be retracted.
        let mut retracted = None;
        if let Some(retraction) = &mut payload.retraction {
            let target = archive.get(&retraction.id).or_else(|| archive.by_origin(&identity, &retraction.id)).cloned();
            match target {
                Some(target) if target.sender == identity => {
                    retraction.id = target.id.clone();
                    retracted = Some(target);
                }
                Some(_) => {
                    drop(archive);
                    shared.send_quietly(link, bounce("forbidden")).await;
                    return Vec::new();
                }
                None => {}
            }
        }
        let stanza_id = new_stanza_id(archive.next_seq());
        let archived = wire::room_message(CLIENT, &occupant, None, id_attr, &children, Some((&stanza_id, room)));
        let at = now_secs();
        archive.append(Entry {
            seq: 0,
            id: stanza_id.clone(),
            at,
            sender: identity.clone(),
            origin: origin.clone(),
            xml: String::from(&archived),
            retracted: false,
        });
        if let Some(target) = retracted {
            let from = FullJid::new(
                &target.xml.parse::<Element>().ok().and_then(|e| e.attr("from").map(str::to_owned)).unwrap_or_default(),
            )
            .unwrap_or_else(|_| occupant.clone());
            archive.retract(&target.id, wire::tombstone(from.as_str(), None, &stanza_id, at));
        }
        schedule_flush(shared, room, &handle, &mut archive);
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
        for s in &sessions {
            let copy =
                wire::room_message(ns::COMPONENT, &occupant, Some(s), id_attr, &children, Some((&stanza_id, room)));
            shared.send_quietly(link, copy).await;
        }
        stanza_id
    };
    let Ok(event_id) = RemoteMessageId::new(stanza_id.as_str()) else { return Vec::new() };
    if let Some((target, keys)) = payload.reactions.take() {
        return crate::inbound::reaction_events(shared, remote_room, event_id, sender, &target, keys).await;
    }
    let Some(body) = crate::inbound::body_of(payload, by_room, own) else { return Vec::new() };
    let mut event = InboundEvent::new(remote_room, event_id, sender, body);
    event.aliases.extend(origin.as_deref().and_then(own));
    vec![event]
}

pub(super) async fn iq(shared: &Arc<Shared>, link: &Link, element: &Element, room: &BareJid, to: &Jid, from: &Jid) {
    let Some(id) = element.attr("id") else { return };
    let kind = element.attr("type").unwrap_or_default();
    if !matches!(kind, "get" | "set") {
        return;
    }
    let error = |kind, condition| stanzas::iq_error(to, from, id, kind, condition);
    let Some(payload) = element.children().next() else {
        shared.send_quietly(link, error("modify", "bad-request")).await;
        return;
    };
    let bare = to.resource().is_none();
    let answer = match (kind, payload.name(), payload.ns().as_str()) {
        ("get", "ping", ns::PING) if !bare => {
            // XEP-0410 self-ping: is this session still in under this nick?
            let session = FullJid::try_from(from.clone()).ok();
            let nick =
                session.and_then(|s| shared.hosted.occupants.lock().expect("occupants poisoned").nick_of(room, &s));
            if nick.as_deref() == to.resource().map(|r| r.as_str()) {
                stanzas::iq_result(to, from, id)
            } else {
                error("cancel", "not-acceptable")
            }
        }
        _ if !known(shared, room).await => error("cancel", "item-not-found"),
        ("get", "ping", ns::PING) => stanzas::iq_result(to, from, id),
        ("get", "query", ns::DISCO_INFO) if bare => {
            let named = shared.hosted.occupants.lock().expect("occupants poisoned").details(room).name;
            let name = named.unwrap_or_else(|| room.node().map(|n| n.as_str()).unwrap_or_default().to_owned());
            stanzas::disco_info(
                to,
                from,
                id,
                &Disco { category: "conference", kind: "text", name: &name },
                ROOM_FEATURES,
            )
        }
        ("get", "query", ns::DISCO_ITEMS) if bare => stanzas::disco_items(to, from, id, &[]),
        ("set", "query", ns::MAM) if bare => match mam(shared, link, room, from, id, payload).await {
            Ok(fin) => fin,
            Err(condition) => error(if condition == "internal-server-error" { "wait" } else { "cancel" }, condition),
        },
        _ => error("cancel", "service-unavailable"),
    };
    shared.send_quietly(link, answer).await;
}

/// Answers a MAM query: the results, then (returned) the iq with `<fin/>`.
pub(super) async fn mam(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    from: &Jid,
    id: &str,
    query: &Element,
) -> Result<Element, &'static str> {
    let query_id = query.attr("queryid").unwrap_or_default().chars().take(256).collect::<String>();
    let parsed = parse_query(query)?;
    let handle = archive_of(shared, room).await.map_err(|_| "internal-server-error")?;
    let (results, fin) = {
        let archive = handle.lock().await;
        let page = archive.query(&parsed)?;
        let results: Vec<Element> =
            page.items.iter().filter_map(|e| wire::mam_result(room, from, &query_id, e)).collect();
        (results, wire::mam_fin(room, from, id, &page))
    };
    for result in results {
        shared.send_quietly(link, result).await;
    }
    Ok(fin)
}

/// A MAM query's paging and time window; `with` and other fields are not filtered on.
pub(super) fn parse_query(query: &Element) -> Result<Query, &'static str> {
    let mut parsed = Query::default();
    if let Some(set) = query.get_child("set", ns::RSM) {
        let text = |name| set.get_child(name, ns::RSM).map(Element::text);
        parsed.max = text("max").map(|m| m.trim().parse().map_err(|_| "bad-request")).transpose()?;
        parsed.after = text("after").filter(|a| !a.is_empty());
        parsed.before = text("before");
    }
    if let Some(form) = query.get_child("x", ns::DATA_FORMS) {
        for field in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
            let value = field.get_child("value", ns::DATA_FORMS).map(Element::text).unwrap_or_default();
            match field.attr("var") {
                Some("start") => parsed.start = Some(parse_datetime(&value).ok_or("bad-request")?),
                Some("end") => parsed.end = Some(parse_datetime(&value).ok_or("bad-request")?),
                _ => {}
            }
        }
    }
    Ok(parsed)
}

/// An XEP-0082 date-time (`2026-11-23T15:04:05.123Z`, `...+01:00`) as seconds since the epoch.
pub(super) fn parse_datetime(value: &str) -> Option<u64> {
    let value = value.trim();
    let num = |s: &str| -> Option<i64> { s.parse().ok() };
    let (date, time) = value.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let (year, month, day) = (num(date.next()?)?, num(date.next()?)?, num(date.next()?)?);
    let (clock, offset) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, "Z"),
    };
    let clock = clock.split('.').next()?;
    let mut parts = clock.splitn(3, ':');
    let (h, m, s) = (num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?);
    let offset = match offset {
        "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (num(oh)? * 3600 + num(om)? * 60)
        }
    };
    // Days from civil (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s - offset).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn datetimes_parse_both_ways() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_446_245);
        assert_eq!(parse_datetime(&crate::history::xmpp_datetime(at)), Some(1_795_446_245));
        assert_eq!(parse_datetime("2026-11-23T16:04:05.250+01:00"), Some(1_795_446_245));
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn mam_queries_read_paging_and_windows() {
        let query: Element = "<query xmlns='urn:xmpp:mam:2' queryid='q'>\
             <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>\
             <field var='start'><value>1970-01-01T00:01:40Z</value></field></x>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set></query>"
            .parse()
            .unwrap();
        let parsed = parse_query(&query).unwrap();
        assert_eq!(parsed.max, Some(10));
        assert_eq!(parsed.before.as_deref(), Some(""));
        assert_eq!(parsed.start, Some(100));
        let bad: Element =
            "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set></query>"
                .parse()
                .unwrap();
        assert_eq!(parse_query(&bad).unwrap_err(), "bad-request");
    }
}
