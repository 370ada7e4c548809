#!/usr/bin/env python3
"""A scriptable XMPP user for brygga's end-to-end tests, built on slixmpp.

Usage: python xmpp_client.py JID HOST PORT, with the password in $BRYGGA_XMPP_PASSWORD
(not argv, which other processes can read). It logs in over plain TCP (the
test Prosody does not require TLS), prints {"type":"ready","jid":...}, then
reads one JSON command per line on stdin and prints one JSON object per line
on stdout: a result per command, and an event per received message or presence.
Command: {"id": N, "cmd": "send", "args": {...}}; result: {"type": "result",
"id": N, "ok": true, "data": {...}} or {"type": "result", "id": N, "ok": false,
"error": "..."}. Stanzas are parsed from their XML here, not via slixmpp's
stanza plugins, so tests see exactly what arrived on the wire.
"""

import asyncio
import base64
import hashlib
import json
import logging
import os
import sys
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

C = "{jabber:client}"
NS = {
    "sid": "urn:xmpp:sid:0",
    "correct": "urn:xmpp:message-correct:0",
    "retract": "urn:xmpp:message-retract:1",
    "moderate": "urn:xmpp:message-moderate:1",
    "fasten": "urn:xmpp:fasten:0",
    "retract0": "urn:xmpp:message-retract:0",
    "moderate0": "urn:xmpp:message-moderate:0",
    "reactions": "urn:xmpp:reactions:0",
    "reply": "urn:xmpp:reply:0",
    "fallback": "urn:xmpp:fallback:0",
    "oob": "jabber:x:oob",
    "chatstates": "http://jabber.org/protocol/chatstates",
    "receipts": "urn:xmpp:receipts",
    "markers": "urn:xmpp:chat-markers:0",
    "delay": "urn:xmpp:delay",
    "occupant": "urn:xmpp:occupant-id:0",
    "muc": "http://jabber.org/protocol/muc",
    "muc_user": "http://jabber.org/protocol/muc#user",
    "mam": "urn:xmpp:mam:2",
    "forward": "urn:xmpp:forward:0",
    "rsm": "http://jabber.org/protocol/rsm",
    "xdata": "jabber:x:data",
    "hints": "urn:xmpp:hints",
    "upload": "urn:xmpp:http:upload:0",
    "disco_info": "http://jabber.org/protocol/disco#info",
    "disco_items": "http://jabber.org/protocol/disco#items",
    "vcard": "vcard-temp",
    "vcard_update": "vcard-temp:x:update",
    "stanzas": "urn:ietf:params:xml:ns:xmpp-stanzas",
}
PLUGINS = ["xep_0030", "xep_0045", "xep_0054", "xep_0084", "xep_0066", "xep_0085", "xep_0184", "xep_0199",
           "xep_0308", "xep_0313", "xep_0333", "xep_0359", "xep_0424", "xep_0425", "xep_0444", "xep_0461"]
RETRACT_FALLBACK = "This person attempted to retract a previous message, but it's unsupported by your client."


def q(ns, tag):
    return "{%s}%s" % (NS[ns], tag)


def el(ns, tag, attrs=None, text=None):
    e = ET.Element(q(ns, tag), {k: v for k, v in (attrs or {}).items() if v is not None})
    e.text = text
    return e


def emit(obj):
    try:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The test that started us is gone: nobody can read events or send commands any more.
        os._exit(0)


def bare(jid):
    return (jid or "").split("/")[0]


def xml_text(xml):
    return ET.tostring(xml, encoding="unicode")


def error_info(xml):
    err = xml.find(C + "error")
    if err is None:
        return None
    conditions = [c.tag.split("}")[1] for c in err if c.tag.startswith("{%s}" % NS["stanzas"])]
    cond = next((c for c in conditions if c != "text"), None)
    text = err.find(q("stanzas", "text"))
    return {"type": err.get("type"), "condition": cond, "text": text.text if text is not None else None}


def parse_message(xml):
    """Everything a test may assert about a <message/>, as a JSON-able dict."""
    def attr(path, name="id"):
        e = xml.find(path)
        return e.get(name) if e is not None else None

    def text(path):
        e = xml.find(path)
        return (e.text or "") if e is not None else None

    ev = {"type": "message", "from": xml.get("from"), "to": xml.get("to"), "msg_type": xml.get("type", "normal"),
          "id": xml.get("id"), "body": text(C + "body"), "subject": text(C + "subject"), "thread": text(C + "thread")}
    ids = [{"id": e.get("id"), "by": e.get("by")} for e in xml.findall(q("sid", "stanza-id"))]
    # The room stamps groupchat messages, the user's server stamps chat ones: prefer the expected `by`.
    want = bare(xml.get("from") if ev["msg_type"] == "groupchat" else xml.get("to"))
    ev["stanza_ids"] = ids
    ev["stanza_id"] = next((i["id"] for i in ids if i["by"] == want), ids[0]["id"] if ids else None)
    ev["origin_id"] = attr(q("sid", "origin-id"))
    ev["replace_id"] = attr(q("correct", "replace"))
    retract = xml.find(q("retract", "retract"))
    ev["retract_id"] = retract.get("id") if retract is not None else None
    fasten = xml.find(q("fasten", "apply-to"))
    if ev["retract_id"] is None and fasten is not None and fasten.find(q("retract0", "retract")) is not None:
        ev["retract_id"] = fasten.get("id")
    # XEP-0425 moderation: v1 nests <moderated/> in <retract/>, v0 in a XEP-0422 <apply-to/>.
    ev["moderated"] = None
    for outer, moderated, reason in ((retract, q("moderate", "moderated"), q("retract", "reason")),
                                     (fasten, q("moderate0", "moderated"), None)):
        mod = outer.find(moderated) if outer is not None else None
        if mod is not None and ev["moderated"] is None:
            why = outer.find(reason) if reason else mod.find(q("moderate0", "reason"))
            why = why.text if why is not None else None
            ev["moderated"] = {"id": outer.get("id"), "by": mod.get("by"), "reason": why}
    ev["retracted"] = attr(q("retract", "retracted"))
    reactions = xml.find(q("reactions", "reactions"))
    ev["reactions"] = None if reactions is None else {
        "id": reactions.get("id"), "values": [r.text or "" for r in reactions.findall(q("reactions", "reaction"))]}
    reply = xml.find(q("reply", "reply"))
    ev["reply"] = None if reply is None else {"id": reply.get("id"), "to": reply.get("to")}
    ev["fallback"] = [{"for": f.get("for"), "ranges": [{"start": b.get("start"), "end": b.get("end")}
                                                       for b in f.findall(q("fallback", "body"))]}
                      for f in xml.findall(q("fallback", "fallback"))]
    ev["oob_url"] = text(q("oob", "x") + "/" + q("oob", "url"))
    ev["chat_state"] = next((c.tag.split("}")[1] for c in xml if c.tag.startswith("{%s}" % NS["chatstates"])), None)
    ev["receipt_request"] = xml.find(q("receipts", "request")) is not None
    ev["received_id"] = attr(q("receipts", "received"))
    ev["markable"] = xml.find(q("markers", "markable")) is not None
    ev["displayed_id"] = attr(q("markers", "displayed"))
    ev["occupant_id"] = attr(q("occupant", "occupant-id"))
    delay = xml.find(q("delay", "delay"))
    ev["delay"] = None if delay is None else {"stamp": delay.get("stamp"), "from": delay.get("from")}
    ev["error"] = error_info(xml) if ev["msg_type"] == "error" else None
    ev["raw"] = xml_text(xml)
    return ev


def parse_presence(xml):
    """Everything a test may assert about a <presence/>, including MUC occupant details."""
    show, status = xml.find(C + "show"), xml.find(C + "status")
    ev = {"type": "presence", "from": xml.get("from"), "to": xml.get("to"),
          "presence_type": xml.get("type", "available"), "show": show.text if show is not None else None,
          "status": status.text if status is not None else None, "muc": None, "avatar_hash": None}
    x = xml.find(q("muc_user", "x"))
    if x is not None:
        item = x.find(q("muc_user", "item"))
        item = item if item is not None else ET.Element("item")
        ev["muc"] = {"status_codes": sorted(int(s.get("code", "0")) for s in x.findall(q("muc_user", "status"))),
                     "nick": item.get("nick") or (xml.get("from") or "").partition("/")[2],
                     "jid": item.get("jid"), "role": item.get("role"), "affiliation": item.get("affiliation")}
    photo = xml.find(q("vcard_update", "x") + "/" + q("vcard_update", "photo"))
    if photo is not None:
        ev["avatar_hash"] = photo.text or ""
    ev["error"] = error_info(xml) if ev["presence_type"] == "error" else None
    ev["raw"] = xml_text(xml)
    return ev


class Join:
    """A MUC join in progress: occupants seen so far, then self-presence, then the subject."""

    def __init__(self, nick):
        self.nick = nick
        self.occupants = []
        self.self_presence = asyncio.get_running_loop().create_future()
        self.subject = asyncio.get_running_loop().create_future()


class Driver(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        # Without TLS slixmpp refuses every mechanism unless allowed; SCRAM is preferred, PLAIN is the fallback.
        mechanisms = {"unencrypted_scram": True, "unencrypted_plain": True}
        super().__init__(jid, password, plugin_config={"feature_mechanisms": mechanisms})
        # Plain TCP with PLAIN auth: the test server has no trusted certificate.
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.use_message_ids = True
        for plugin in PLUGINS:
            self.register_plugin(plugin)
        self.joins = {}
        self.rooms = {}
        self.mam_queries = {}
        self.tasks = set()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("disconnected", lambda _e: emit({"type": "disconnected"}))
        self.add_event_handler("failed_auth", lambda _e: emit({"type": "failed_auth"}))
        self.register_handler(Callback("all messages", MatchXPath(C + "message"), self.on_message))
        self.register_handler(Callback("all presences", MatchXPath(C + "presence"), self.on_presence))

    async def on_session_start(self, _event):
        self.send_presence()
        emit({"type": "ready", "jid": str(self.boundjid)})
        self.spawn(self.read_commands())

    def on_message(self, msg):
        xml = msg.xml
        result = xml.find(q("mam", "result"))
        if result is not None and result.get("queryid") in self.mam_queries:
            fwd = result.find(q("forward", "forwarded"))
            inner = fwd.find(C + "message") if fwd is not None else None
            if inner is not None:
                item = parse_message(inner)
                item["mam_id"] = result.get("id")
                # The archive id is the stanza-id the archive stamped on the live message.
                item["stanza_id"] = item["stanza_id"] or result.get("id")
                delay = fwd.find(q("delay", "delay"))
                item["delay"] = None if delay is None else {"stamp": delay.get("stamp"), "from": delay.get("from")}
                self.mam_queries[result.get("queryid")].append(item)
            return
        ev = parse_message(xml)
        room = bare(ev["from"])
        join = self.joins.get(room)
        if join and ev["msg_type"] == "groupchat" and ev["subject"] is not None and ev["body"] is None \
                and join.self_presence.done() and not join.subject.done():
            join.subject.set_result(ev["subject"])
        emit(ev)

    def on_presence(self, pres):
        ev = parse_presence(pres.xml)
        room, _, nick = (ev["from"] or "").partition("/")
        join = self.joins.get(room)
        if join and not join.self_presence.done():
            if ev["presence_type"] == "error":
                join.self_presence.set_exception(RuntimeError("join refused: %s" % json.dumps(ev["error"])))
            elif ev["muc"] and 110 in ev["muc"]["status_codes"]:
                join.self_presence.set_result(ev)
            elif ev["muc"] and ev["presence_type"] == "available":
                join.occupants.append(dict(ev["muc"], show=ev["show"], status=ev["status"]))
        emit(ev)

    def spawn(self, coro):
        # asyncio keeps only weak references to tasks; without this a pending task can be collected.
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def read_commands(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip():
                self.spawn(self.run_command(line))
        self.disconnect()

    async def run_command(self, line):
        cmd_id = None
        try:
            envelope = json.loads(line)
            cmd_id = envelope.get("id")
            handler = getattr(self, "cmd_" + str(envelope.get("cmd")), None)
            if handler is None:
                raise ValueError("unknown command %r" % envelope.get("cmd"))
            data = await handler(envelope.get("args") or {})
            emit({"type": "result", "id": cmd_id, "ok": True, "data": data or {}})
        except IqError as e:
            error = "iq error: %s" % json.dumps(error_info(e.iq.xml))
            emit({"type": "result", "id": cmd_id, "ok": False, "error": error, "raw": xml_text(e.iq.xml)})
        except IqTimeout:
            emit({"type": "result", "id": cmd_id, "ok": False, "error": "iq timeout"})
        except Exception as e:  # noqa: BLE001 - a failing command must not stop the driver
            emit({"type": "result", "id": cmd_id, "ok": False, "error": "%s: %s" % (type(e).__name__, e)})

    def new_message(self, cmd, body=None, origin_id=True):
        msg = self.make_message(mto=cmd["to"], mtype=cmd.get("type", "chat"))
        msg["id"] = cmd.get("stanza_id") or self.new_id()
        if body is not None:
            msg["body"] = body
        oid = None
        if origin_id:
            oid = origin_id if isinstance(origin_id, str) else msg["id"]
            msg.xml.append(el("sid", "origin-id", {"id": oid}))
        return msg, oid

    async def cmd_join_muc(self, cmd):
        # Keyed like the room's own presence `from`, which the server has normalized.
        room, nick = str(slixmpp.JID(cmd["room"]).bare), cmd["nick"]
        join = self.joins[room] = Join(nick)
        pres = self.make_presence(pto="%s/%s" % (room, nick))
        x = el("muc", "x")
        if cmd.get("history") is not None:
            x.append(el("muc", "history", {"maxstanzas": str(cmd["history"])}))
        if cmd.get("password"):
            x.append(el("muc", "password", text=cmd["password"]))
        pres.xml.append(x)
        pres.send()
        try:
            me = await asyncio.wait_for(join.self_presence, cmd.get("timeout", 10))
            self.rooms[room] = nick
            # The room sends its subject after the occupants and history; without it the join is not complete.
            subject = await asyncio.wait_for(join.subject, cmd.get("timeout", 10))
        finally:
            self.joins.pop(room, None)
        return {"occupants": join.occupants, "self": me["muc"], "subject": subject}

    async def cmd_leave_muc(self, cmd):
        room = str(slixmpp.JID(cmd["room"]).bare)
        nick = self.rooms.pop(room, None)
        if nick is None:
            raise ValueError("not in room %s" % room)
        self.send_presence(pto="%s/%s" % (room, nick), ptype="unavailable", pstatus=cmd.get("status"))
        return {}

    async def cmd_send(self, cmd):
        body = cmd.get("body")
        reply = cmd.get("reply_to")
        if reply and reply.get("fallback") and body is not None:
            body = reply["fallback"] + body
        msg, oid = self.new_message(cmd, body, cmd.get("origin_id", True))
        if reply:
            msg.xml.append(el("reply", "reply", {"id": reply["id"], "to": reply.get("to")}))
            if reply.get("fallback"):
                fb = el("fallback", "fallback", {"for": NS["reply"]})
                fb.append(el("fallback", "body", {"start": "0", "end": str(len(reply["fallback"]))}))
                msg.xml.append(fb)
        if cmd.get("oob_url"):
            x = el("oob", "x")
            x.append(el("oob", "url", text=cmd["oob_url"]))
            msg.xml.append(x)
        if cmd.get("chat_state"):
            msg.xml.append(el("chatstates", cmd["chat_state"]))
        if cmd.get("request_receipt"):
            msg.xml.append(el("receipts", "request"))
        if cmd.get("markable"):
            msg.xml.append(el("markers", "markable"))
        msg.send()
        return {"id": msg["id"], "origin_id": oid}

    async def cmd_correct(self, cmd):
        msg, oid = self.new_message(cmd, cmd["body"], cmd.get("origin_id", True))
        msg.xml.append(el("correct", "replace", {"id": cmd["replace_id"]}))
        msg.send()
        return {"id": msg["id"], "origin_id": oid}

    async def cmd_retract(self, cmd):
        msg, oid = self.new_message(cmd, RETRACT_FALLBACK, cmd.get("origin_id", True))
        msg.xml.append(el("retract", "retract", {"id": cmd["id"]}))
        msg.xml.append(el("fallback", "fallback", {"for": NS["retract"]}))
        msg.xml.append(el("hints", "store"))
        msg.send()
        return {"id": msg["id"], "origin_id": oid}

    async def cmd_react(self, cmd):
        msg, oid = self.new_message(cmd, None, cmd.get("origin_id", True))
        reactions = el("reactions", "reactions", {"id": cmd["id"]})
        for value in cmd["reactions"]:
            reactions.append(el("reactions", "reaction", text=value))
        msg.xml.append(reactions)
        msg.xml.append(el("hints", "store"))
        msg.send()
        return {"id": msg["id"], "origin_id": oid}

    async def cmd_chat_state(self, cmd):
        msg, _ = self.new_message(cmd, None, False)
        msg.xml.append(el("chatstates", cmd["state"]))
        msg.xml.append(el("hints", "no-store"))
        msg.send()
        return {"id": msg["id"]}

    async def cmd_displayed(self, cmd):
        msg, _ = self.new_message(cmd, None, False)
        msg.xml.append(el("markers", "displayed", {"id": cmd["id"]}))
        msg.send()
        return {"id": msg["id"]}

    async def cmd_presence(self, cmd):
        self.send_presence(pto=cmd.get("to"), pshow=cmd.get("show"), pstatus=cmd.get("status"),
                           ptype=cmd.get("presence_type"))
        return {}

    async def cmd_upload(self, cmd):
        data = open(cmd["path"], "rb").read() if cmd.get("path") else base64.b64decode(cmd.get("data_b64", ""))
        iq = self.make_iq_get(ito=cmd.get("service", "upload.localhost"))
        iq.xml.append(el("upload", "request", {"filename": cmd["filename"], "size": str(len(data)),
                                               "content-type": cmd.get("content_type", "application/octet-stream")}))
        reply = await iq.send(timeout=cmd.get("timeout", 10))
        slot = reply.xml.find(q("upload", "slot"))
        put, get = slot.find(q("upload", "put")), slot.find(q("upload", "get"))
        headers = {h.get("name"): (h.text or "") for h in put.findall(q("upload", "header"))}
        headers["Content-Type"] = cmd.get("content_type", "application/octet-stream")
        request = urllib.request.Request(put.get("url"), data=data, method="PUT", headers=headers)
        # urllib blocks; keep the stream's event loop running meanwhile.
        status = await asyncio.get_running_loop().run_in_executor(
            None, lambda: urllib.request.urlopen(request, timeout=30).status)
        return {"put_url": put.get("url"), "get_url": get.get("url"), "http_status": status}

    async def cmd_mam(self, cmd):
        """The newest `max` archived messages, oldest first; with `all`, the whole archive, page by page."""
        messages, after, complete = [], None, False
        while True:
            query_id = uuid.uuid4().hex
            iq = self.make_iq_set(ito=cmd.get("room"))
            query = el("mam", "query", {"queryid": query_id})
            if cmd.get("with"):
                form = ET.SubElement(query, q("xdata", "x"), {"type": "submit"})
                for var, value in (("FORM_TYPE", NS["mam"]), ("with", cmd["with"])):
                    field = ET.SubElement(form, q("xdata", "field"), {"var": var})
                    ET.SubElement(field, q("xdata", "value")).text = value
            rsm = ET.SubElement(query, q("rsm", "set"))
            ET.SubElement(rsm, q("rsm", "max")).text = str(cmd.get("max", 100))
            if cmd.get("all"):
                if after:
                    ET.SubElement(rsm, q("rsm", "after")).text = after
            else:
                ET.SubElement(rsm, q("rsm", "before"))  # the newest page
            iq.xml.append(query)
            self.mam_queries[query_id] = []
            try:
                reply = await iq.send(timeout=cmd.get("timeout", 10))
                page = self.mam_queries[query_id]
            finally:
                self.mam_queries.pop(query_id, None)
            messages.extend(page)
            fin = reply.xml.find(q("mam", "fin"))
            complete = fin is not None and fin.get("complete") == "true"
            last = fin.find(q("rsm", "set") + "/" + q("rsm", "last")) if fin is not None else None
            if not cmd.get("all") or complete or not page or last is None:
                break
            after = last.text
        return {"messages": messages, "complete": complete}

    async def cmd_raw(self, cmd):
        self.send_raw(cmd["xml"])
        return {}

    async def cmd_iq(self, cmd):
        make = self.make_iq_set if cmd.get("iq_type", "get") == "set" else self.make_iq_get
        iq = make(ito=cmd.get("to"))
        iq.xml.append(ET.fromstring(cmd["payload"]))
        reply = await iq.send(timeout=cmd.get("timeout", 10))
        return {"raw": xml_text(reply.xml)}

    async def cmd_vcard_avatar(self, cmd):
        data = base64.b64decode(cmd["data_b64"])
        vcard = el("vcard", "vCard")
        photo = ET.SubElement(vcard, q("vcard", "PHOTO"))
        ET.SubElement(photo, q("vcard", "TYPE")).text = cmd.get("mime", "image/png")
        ET.SubElement(photo, q("vcard", "BINVAL")).text = cmd["data_b64"]
        iq = self.make_iq_set()
        iq.xml.append(vcard)
        # Prosody's mod_vcard_legacy also publishes a vcard-temp PHOTO as the XEP-0084 avatar.
        await iq.send(timeout=cmd.get("timeout", 10))
        sha1 = hashlib.sha1(data).hexdigest()
        # slixmpp's xep_0153 (pulled in by other plugins) stamps the hash on outgoing presence itself.
        stamped = "xep_0153" in self.plugin
        if stamped:
            await self.plugin["xep_0153"].api["set_hash"](self.boundjid, args=sha1)
        for to in [None] + ["%s/%s" % r for r in self.rooms.items()]:
            pres = self.make_presence(pto=to)
            if not stamped:
                update = el("vcard_update", "x")
                update.append(el("vcard_update", "photo", text=sha1))
                pres.xml.append(update)
            pres.send()
        return {"sha1": sha1}

    async def cmd_disco_info(self, cmd):
        reply = await self.disco_query(cmd, "disco_info")
        query = reply.find(q("disco_info", "query"))
        return {"identities": [dict(i.attrib) for i in query.findall(q("disco_info", "identity"))],
                "features": [f.get("var") for f in query.findall(q("disco_info", "feature"))],
                "raw": xml_text(reply)}

    async def cmd_disco_items(self, cmd):
        reply = await self.disco_query(cmd, "disco_items")
        query = reply.find(q("disco_items", "query"))
        return {"items": [dict(i.attrib) for i in query.findall(q("disco_items", "item"))]}

    async def disco_query(self, cmd, ns):
        # A raw IQ, not xep_0030's helpers, which may answer from a local cache.
        iq = self.make_iq_get(ito=cmd["jid"])
        iq.xml.append(el(ns, "query", {"node": cmd.get("node")}))
        return (await iq.send(timeout=cmd.get("timeout", 10))).xml

    async def cmd_quit(self, _cmd):
        asyncio.get_running_loop().call_later(0.1, self.disconnect)
        return {}


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    jid, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    driver = Driver(jid, os.environ.get("BRYGGA_XMPP_PASSWORD", ""))
    driver.connect(host, port)
    driver.loop.run_until_complete(driver.disconnected)


if __name__ == "__main__":
    main()
