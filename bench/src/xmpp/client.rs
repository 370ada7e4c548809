//! A minimal XMPP client (c2s) for load: plain TCP, SASL PLAIN, resource
//! binding, one group chat. The workspace builds xmpp-parsers for components,
//! so tokio-xmpp's own client cannot be used; its XML stream framing can.
//!
//! One task owns the stream: it writes queued stanzas and reads incoming
//! ones. The room's reflection of our own message frees a send window slot;
//! messages from anyone else go to a [`Probe`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_xmpp::minidom::rxml::NcName;
use tokio_xmpp::minidom::{Element, ElementBuilder};
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};

use crate::stats::{Probe, Stamps};

type Stream = XmlStream<BufStream<TcpStream>, Element>;

const NS_CLIENT: &str = "jabber:client";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_DELAY: &str = "urn:xmpp:delay";
/// How long any step of the login may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a client reports to the benchmark.
pub struct Hooks {
    /// Messages from other occupants whose nick does not start with this
    /// prefix (the other load clients) are recorded here.
    pub probe: Arc<Probe>,
    /// Nick prefix of the load clients.
    pub own_prefix: String,
    /// Nick of the bridge's listener, whose presence shows the room is bridged.
    pub listener_nick: String,
}

/// One logged-in user sitting in one group chat.
pub struct XmppClient {
    room: String,
    nick: String,
    out: mpsc::UnboundedSender<Element>,
    window: Arc<Semaphore>,
    listener_seen: watch::Receiver<bool>,
}

impl XmppClient {
    /// Logs `user@localhost` in on `port`, joins `room` as `nick` and
    /// returns once the room confirmed the join. At most `window` of its
    /// messages may wait for their reflection.
    pub async fn join(
        port: u16,
        user: &str,
        password: &str,
        room: &str,
        nick: &str,
        window: usize,
        hooks: Hooks,
    ) -> anyhow::Result<Self> {
        let mut stream = tokio::time::timeout(STEP_TIMEOUT, login(port, user, password))
            .await
            .context("XMPP login timed out")?
            .with_context(|| format!("logging in {user}@localhost"))?;
        let occupant = format!("{room}/{nick}");
        let history = attr(Element::builder("history", NS_MUC), "maxstanzas", "0").build();
        let presence = attr(Element::builder("presence", NS_CLIENT), "to", &occupant)
            .append(Element::builder("x", NS_MUC).append(history).build())
            .build();
        stream.send(&presence).await?;
        let (seen_tx, listener_seen) = watch::channel(false);
        let joined = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                let element = next(&mut stream).await?;
                if element.name() != "presence" {
                    continue;
                }
                if element.attr("type") == Some("error") {
                    bail!("joining {room} failed: {}", String::from(&element));
                }
                let from_nick = element.attr("from").and_then(nick_of).unwrap_or_default();
                if from_nick == hooks.listener_nick {
                    seen_tx.send_replace(true);
                }
                if status_codes(&element).any(|c| c == "110") {
                    return Ok(());
                }
            }
        })
        .await;
        joined.with_context(|| format!("joining {room} timed out"))??;
        let (out, out_rx) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(window.max(1)));
        let task = Task { nick: nick.to_owned(), hooks, window: window.clone(), listener_seen: seen_tx };
        tokio::spawn(task.run(stream, out_rx));
        Ok(Self { room: room.to_owned(), nick: nick.to_owned(), out, window, listener_seen })
    }

    /// Waits until the bridge's listener sits in the room.
    pub async fn wait_listener(&mut self, timeout: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, self.listener_seen.wait_for(|seen| *seen))
            .await
            .with_context(|| format!("the bridge never joined {}", self.room))?
            .map(|_| ())
            .context("the XMPP client stopped")
    }

    /// Sends a group chat message once a window slot is free; stamps
    /// `departed` (at `seq`) just before it is handed to the writer.
    pub async fn say(&self, body: &str, departed: Option<(&Stamps, usize)>) -> anyhow::Result<()> {
        self.window.acquire().await.context("the XMPP client stopped")?.forget();
        let message = attr(attr(Element::builder("message", NS_CLIENT), "to", &self.room), "type", "groupchat")
            .append(Element::builder("body", NS_CLIENT).append(body.to_owned()).build())
            .build();
        if let Some((stamps, seq)) = departed {
            stamps.mark(seq);
        }
        self.out.send(message).ok().context("the XMPP client stopped")
    }

    /// Waits until every message sent so far was reflected by the room.
    pub async fn settle(&self, window: usize, timeout: Duration) -> anyhow::Result<()> {
        let all = u32::try_from(window.max(1))?;
        let permits = tokio::time::timeout(timeout, self.window.acquire_many(all))
            .await
            .with_context(|| format!("{} in {}: messages were not reflected", self.nick, self.room))?;
        drop(permits.context("the XMPP client stopped")?);
        Ok(())
    }
}

/// The reading and writing task of one client.
struct Task {
    nick: String,
    hooks: Hooks,
    window: Arc<Semaphore>,
    listener_seen: watch::Sender<bool>,
}

impl Task {
    async fn run(self, mut stream: Stream, mut out: mpsc::UnboundedReceiver<Element>) {
        loop {
            tokio::select! {
                element = out.recv() => match element {
                    Some(element) => {
                        if let Err(err) = stream.send(&element).await {
                            eprintln!("XMPP client {}: write failed: {err}", self.nick);
                            return;
                        }
                    }
                    None => {
                        let _ = stream.shutdown().await;
                        return;
                    }
                },
                item = stream.next() => match item {
                    Some(Ok(element)) => self.incoming(&element),
                    Some(Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
                    Some(Err(err)) => {
                        eprintln!("XMPP client {}: stream ended: {err}", self.nick);
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    fn incoming(&self, element: &Element) {
        let Some(nick) = element.attr("from").and_then(nick_of) else { return };
        match element.name() {
            "presence" if nick == self.hooks.listener_nick && element.attr("type").is_none() => {
                self.listener_seen.send_replace(true);
            }
            "message" if element.attr("type") == Some("groupchat") => {
                // History replayed on join is not live traffic.
                if element.get_child("delay", NS_DELAY).is_some() {
                    return;
                }
                let body = element.get_child("body", NS_CLIENT).map(Element::text);
                if nick == self.nick {
                    self.window.add_permits(1);
                } else if !nick.starts_with(&self.hooks.own_prefix) {
                    self.hooks.probe.received(body.as_deref());
                }
            }
            _ => {}
        }
    }
}

/// Connects, authenticates with SASL PLAIN and binds a resource.
async fn login(port: u16, user: &str, password: &str) -> anyhow::Result<Stream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.context("connecting to the c2s port")?;
    tcp.set_nodelay(true)?;
    let timeouts = Timeouts { read_timeout: Duration::from_secs(120), response_timeout: Duration::from_secs(60) };
    let pending = initiate_stream(BufStream::new(tcp), NS_CLIENT, header(), timeouts).await?;
    let mut stream: Stream = pending.skip_features();
    expect(&mut stream, "features").await?;
    let credentials = base64_padded(format!("\0{user}\0{password}").as_bytes());
    let auth = attr(Element::builder("auth", NS_SASL), "mechanism", "PLAIN").append(credentials).build();
    stream.send(&auth).await?;
    let answer = next(&mut stream).await?;
    if answer.name() != "success" {
        bail!("authentication refused: {}", String::from(&answer));
    }
    let mut stream: Stream = stream.initiate_reset().send_header(header()).await?.skip_features();
    expect(&mut stream, "features").await?;
    let bind = Element::builder("bind", NS_BIND)
        .append(Element::builder("resource", NS_BIND).append("bench".to_owned()).build())
        .build();
    let iq = attr(attr(Element::builder("iq", NS_CLIENT), "type", "set"), "id", "bind-1").append(bind).build();
    stream.send(&iq).await?;
    loop {
        let answer = next(&mut stream).await?;
        if answer.name() == "iq" && answer.attr("id") == Some("bind-1") {
            if answer.attr("type") != Some("result") {
                bail!("resource binding refused: {}", String::from(&answer));
            }
            return Ok(stream);
        }
    }
}

fn header() -> StreamHeader<'static> {
    StreamHeader { from: None, to: Some(Cow::Borrowed("localhost")), id: None }
}

/// The next element, skipping soft timeouts.
async fn next(stream: &mut Stream) -> anyhow::Result<Element> {
    loop {
        match stream.next().await {
            Some(Ok(element)) => return Ok(element),
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(err)) => bail!("XMPP stream: {err}"),
            None => bail!("XMPP stream closed"),
        }
    }
}

async fn expect(stream: &mut Stream, name: &str) -> anyhow::Result<Element> {
    let element = next(stream).await?;
    if element.name() != name {
        bail!("expected <{name}/>, got {}", String::from(&element));
    }
    Ok(element)
}

/// The status codes of a MUC presence.
fn status_codes(presence: &Element) -> impl Iterator<Item = &str> {
    presence
        .get_child("x", NS_MUC_USER)
        .into_iter()
        .flat_map(|x| x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code")))
}

/// The resource of an occupant JID (`room@service/nick`).
fn nick_of(jid: &str) -> Option<&str> {
    jid.split_once('/').map(|(_, nick)| nick)
}

fn attr(builder: ElementBuilder, name: &'static str, value: &str) -> ElementBuilder {
    builder.attr(NcName::try_from(name).expect("static attribute names are valid"), value.to_owned())
}

/// Standard base64 with padding, as SASL wants it.
fn base64_padded(data: &[u8]) -> String {
    let mut out = brygga_harness::base64_unpadded(data);
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_is_padded_base64() {
        assert_eq!(base64_padded(b"\0bob\0pw"), "AGJvYgBwdw==");
        assert_eq!(base64_padded(b"foo"), "Zm9v");
        assert_eq!(nick_of("room@conference.localhost/xb 1"), Some("xb 1"));
        assert_eq!(nick_of("room@conference.localhost"), None);
    }
}
