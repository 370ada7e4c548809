//! The component's connection to the XMPP server (XEP-0114), kept up by one
//! task that reconnects with backoff.
//!
//! Stanzas are read as plain elements and parsed one by one by the adapter,
//! so a stanza the typed parsers reject costs only that stanza, never the
//! stream. Writes return once the bytes are flushed; [`Link::barrier`] waits
//! until the server has also processed them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::{BridgeError, Health, StatusReporter};
use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_xmpp::connect::{DnsConfig, ServerConnector, TcpServerConnector};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::xmlstream::{ReadError, Timeouts, XmlStream};

use brygga_core::Backoff;

type Stream = XmlStream<BufStream<TcpStream>, Element>;

/// How often the server is pinged when nothing else is said.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// How long an iq waits for its answer.
const IQ_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and as whom the component connects.
#[derive(Clone, Debug)]
pub(crate) struct LinkConfig {
    /// `host:port` of the server's component listener.
    pub(crate) address: String,
    /// The component's domain.
    pub(crate) domain: BareJid,
    /// The shared secret.
    pub(crate) secret: String,
    /// A domain the server answers pings for (its main host).
    pub(crate) server_domain: BareJid,
}

/// Whether the link is up; `generation` grows with every new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub(crate) connected: bool,
    pub(crate) generation: u64,
}

struct Outgoing {
    element: Element,
    written: oneshot::Sender<Result<(), BridgeError>>,
}

/// Iqs waiting for their answer, by id, with the JID that must answer.
type PendingIqs = Arc<Mutex<HashMap<String, (String, oneshot::Sender<Element>)>>>;

/// A handle to the connection; cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    out: mpsc::Sender<Outgoing>,
    state: watch::Receiver<LinkState>,
    pending: PendingIqs,
    next_id: Arc<AtomicU64>,
    config: Arc<LinkConfig>,
}

impl Link {
    /// Starts the connection task; inbound stanzas (not iq results) arrive on the receiver.
    pub(crate) fn spawn(
        config: LinkConfig,
        status: Arc<dyn StatusReporter>,
        cancel: CancellationToken,
    ) -> (Self, mpsc::Receiver<Element>) {
        let (out_tx, out_rx) = mpsc::channel(256);
        let (in_tx, in_rx) = mpsc::channel(1024);
        let (state_tx, state_rx) = watch::channel(LinkState::default());
        let pending: PendingIqs = Arc::default();
        let config = Arc::new(config);
        let link = Self {
            out: out_tx,
            state: state_rx,
            pending: pending.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
            config: config.clone(),
        };
        let keepalive_id = link.next_id.clone();
        let task = Connection { config, out_rx, in_tx, state: state_tx, pending, keepalive_id, status };
        tokio::spawn(task.run(cancel));
        (link, in_rx)
    }

    /// Watches connection state changes.
    pub(crate) fn state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    /// A fresh stanza id, unique for this process.
    pub(crate) fn fresh_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes one stanza; fails (transiently) when the link is down.
    pub(crate) async fn send(&self, element: Element) -> Result<(), BridgeError> {
        if !self.state.borrow().connected {
            return Err(BridgeError::transient("XMPP server not connected"));
        }
        let (written, done) = oneshot::channel();
        self.out.send(Outgoing { element, written }).await.map_err(|_| BridgeError::transient("XMPP link stopped"))?;
        done.await.map_err(|_| BridgeError::transient("XMPP connection lost while sending"))?
    }

    /// Sends an iq (with an id from [`Link::fresh_id`]) and waits for its result or error element.
    pub(crate) async fn iq(&self, iq: Element) -> Result<Element, BridgeError> {
        let id = iq.attr("id").ok_or_else(|| BridgeError::permanent("iq without an id"))?.to_owned();
        let to = iq.attr("to").unwrap_or_default().to_owned();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("iq map poisoned").insert(id.clone(), (to, tx));
        let result = async {
            self.send(iq).await?;
            match tokio::time::timeout(IQ_TIMEOUT, rx).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(BridgeError::transient("XMPP connection lost before the iq was answered")),
                Err(_) => Err(BridgeError::transient("XMPP iq timed out")),
            }
        }
        .await;
        self.pending.lock().expect("iq map poisoned").remove(&id);
        result
    }

    /// Returns once the server has processed everything written before it:
    /// a ping round trip on the same ordered stream.
    pub(crate) async fn barrier(&self) -> Result<(), BridgeError> {
        let ping = ping_iq(&self.config, self.fresh_id("barrier"));
        let answer = self.iq(ping).await?;
        match answer.attr("type") {
            Some("result") => Ok(()),
            // An error reply still proves the server processed what came before.
            Some("error") => Ok(()),
            _ => Err(BridgeError::transient("unexpected answer to a ping")),
        }
    }
}

fn ping_iq(config: &LinkConfig, id: String) -> Element {
    Iq::from_get(id, Ping)
        .with_from(Jid::from(config.domain.clone()))
        .with_to(Jid::from(config.server_domain.clone()))
        .into()
}

/// The task that owns the socket.
struct Connection {
    config: Arc<LinkConfig>,
    out_rx: mpsc::Receiver<Outgoing>,
    in_tx: mpsc::Sender<Element>,
    state: watch::Sender<LinkState>,
    pending: PendingIqs,
    keepalive_id: Arc<AtomicU64>,
    status: Arc<dyn StatusReporter>,
}

impl Connection {
    async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut generation = 0;
        loop {
            self.status.report(Health::Connecting, None);
            let connected = tokio::select! {
                _ = cancel.cancelled() => return,
                connected = connect(&self.config) => connected,
            };
            match connected {
                Ok(mut stream) => {
                    generation += 1;
                    tracing::info!(domain = %self.config.domain, "XMPP component connected");
                    self.status.report(Health::Connected, None);
                    self.state.send_replace(LinkState { connected: true, generation });
                    let ended = self.serve(&mut stream, &cancel).await;
                    self.state.send_replace(LinkState { connected: false, generation });
                    self.pending.lock().expect("iq map poisoned").clear();
                    match ended {
                        Ended::Cancelled => {
                            let _ = stream.shutdown().await;
                            return;
                        }
                        Ended::Lost(why) => {
                            tracing::warn!(domain = %self.config.domain, error = %why, "XMPP connection lost");
                            self.status.report(Health::TransientError, Some(&format!("connection lost: {why}")));
                            backoff.reset();
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(domain = %self.config.domain, error = %err, "XMPP component could not connect");
                    // A refused handshake is the only permanent failure: the domain or secret is wrong.
                    let health = if err.is_transient() { Health::TransientError } else { Health::BadCredentials };
                    self.status.report(health, Some(&err.to_string()));
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Moves stanzas both ways until the connection ends.
    async fn serve(&mut self, stream: &mut Stream, cancel: &CancellationToken) -> Ended {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            // Read only when the adapter has room, so a slow consumer slows the
            // server down instead of growing memory; writes go on regardless.
            let permit = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ended::Cancelled,
                Some(out) = self.out_rx.recv() => {
                    if let Err(why) = write(stream, out).await { return Ended::Lost(why) }
                    continue;
                }
                _ = keepalive.tick() => {
                    let id = format!("keepalive-{}", self.keepalive_id.fetch_add(1, Ordering::Relaxed));
                    if let Err(err) = stream.send(&ping_iq(&self.config, id)).await {
                        return Ended::Lost(err.to_string());
                    }
                    continue;
                }
                permit = self.in_tx.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ended::Cancelled,
                },
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ended::Cancelled,
                Some(out) = self.out_rx.recv() => {
                    if let Err(why) = write(stream, out).await { return Ended::Lost(why) }
                }
                item = stream.next() => match item {
                    Some(Ok(element)) => {
                        if let Some(element) = self.answer_iq(element) {
                            permit.send(element);
                        }
                    }
                    Some(Err(ReadError::ParseError(err))) => {
                        tracing::warn!(error = %err, "unparseable XMPP element skipped");
                    }
                    Some(Err(ReadError::SoftTimeout)) => {
                        let id = format!("keepalive-{}", self.keepalive_id.fetch_add(1, Ordering::Relaxed));
                        if let Err(err) = stream.send(&ping_iq(&self.config, id)).await {
                            return Ended::Lost(err.to_string());
                        }
                    }
                    Some(Err(ReadError::HardError(err))) => return Ended::Lost(err.to_string()),
                    Some(Err(ReadError::StreamFooterReceived)) | None => {
                        return Ended::Lost("the server closed the stream".into())
                    }
                },
            }
        }
    }

    /// Hands iq answers to their waiter; returns every other element.
    fn answer_iq(&self, element: Element) -> Option<Element> {
        if element.name() == "iq" && matches!(element.attr("type"), Some("result") | Some("error")) {
            let id = element.attr("id").unwrap_or_default().to_owned();
            if id.starts_with("keepalive-") {
                return None;
            }
            // Only the entity asked may answer: anyone else guessing the id is ignored.
            let mut pending = self.pending.lock().expect("iq map poisoned");
            let asked = pending.get(&id).is_some_and(|(to, _)| element.attr("from").unwrap_or_default() == to);
            if asked && let Some((_, waiter)) = pending.remove(&id) {
                let _ = waiter.send(element);
                return None;
            }
        }
        if element.name() == "error" && element.ns() == ns::STREAM {
            tracing::warn!(condition = ?element.children().next().map(|c| c.name().to_owned()), "XMPP stream error");
        }
        Some(element)
    }
}

enum Ended {
    Cancelled,
    Lost(String),
}

async fn write(stream: &mut Stream, out: Outgoing) -> Result<(), String> {
    match stream.send(&out.element).await {
        Ok(()) => {
            let _ = out.written.send(Ok(()));
            Ok(())
        }
        Err(err) => {
            let _ = out.written.send(Err(BridgeError::transient("XMPP connection lost while sending")));
            Err(err.to_string())
        }
    }
}

/// Opens the stream and performs the XEP-0114 handshake.
async fn connect(config: &LinkConfig) -> Result<Stream, BridgeError> {
    let connector = TcpServerConnector(DnsConfig::addr(&config.address));
    let timeouts = Timeouts { read_timeout: KEEPALIVE * 3, response_timeout: Duration::from_secs(15) };
    let jid = Jid::from(config.domain.clone());
    let (mut pending, _) = connector
        .connect(&jid, ns::COMPONENT, timeouts)
        .await
        .map_err(|e| BridgeError::transient(format!("connecting to {}: {e}", config.address)))?;
    let stream_id =
        pending.take_header().id.ok_or_else(|| BridgeError::transient("the server sent no stream id"))?.into_owned();
    let mut stream: Stream = pending.skip_features();
    let handshake: Element = Handshake::from_stream_id_and_password(stream_id, &config.secret).into();
    stream.send(&handshake).await.map_err(|e| BridgeError::transient(format!("sending the handshake: {e}")))?;
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.next()).await {
            Err(_) => return Err(BridgeError::transient("no answer to the component handshake")),
            Ok(Some(Ok(element))) if element.name() == "handshake" => return Ok(stream),
            Ok(Some(Ok(element))) if element.name() == "error" => {
                let condition = element.children().next().map(|c| c.name().to_owned()).unwrap_or_default();
                return Err(BridgeError::permanent(format!(
                    "the server refused the component {} ({condition}): check domain and secret",
                    config.domain
                )));
            }
            Ok(Some(Ok(_))) | Ok(Some(Err(ReadError::SoftTimeout))) | Ok(Some(Err(ReadError::ParseError(_)))) => {}
            Ok(Some(Err(err))) => return Err(BridgeError::transient(format!("during the handshake: {err}"))),
            Ok(None) => return Err(BridgeError::transient("the server closed the stream during the handshake")),
        }
    }
}
