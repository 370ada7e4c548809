//! The XMPP adapter of one tenant: a component connection, a listener seat
//! in every bridged group chat, and a puppet seat per Matrix user who speaks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::{
    Adapter, AdapterState, BridgeError, Capabilities, InboundEvent, InboundSink, MatrixUserId, MediaLinks,
    OutboundEvent, PortalDirectory, Presence, RemoteMedia, RemoteRoomId, RemoteUserId, SendReceipt, StatusReporter,
};
use tokio_util::sync::CancellationToken;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;

use crate::config::XmppConfig;
use crate::history::History;
use crate::inbound::pushers::Pushers;
use crate::link::Link;
use crate::media::{LinkFetcher, XmppMedia};
use crate::muc::{Rooms, Seat};
use crate::reactions::Reactions;
use crate::{inbound, stanzas};

/// How long a join may take before the send is retried.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Nicks tried before a join gives up on conflicts.
const NICK_ATTEMPTS: usize = 4;
/// How often the portal list is re-read, so rooms linked at run time get a listener.
const PORTAL_REFRESH: Duration = Duration::from_secs(30);

/// State shared by the adapter's tasks.
pub(crate) struct Shared {
    pub(crate) config: XmppConfig,
    pub(crate) sink: Arc<dyn InboundSink>,
    pub(crate) portals: Arc<dyn PortalDirectory>,
    pub(crate) rooms: Mutex<Rooms>,
    /// Per-room memory across reconnects (catch-up, our own messages).
    pub(crate) history: Mutex<History>,
    /// Users' reaction sets per message (XEP-0444 sends whole sets).
    pub(crate) reactions: Reactions,
    /// State that survives restarts (catch-up points).
    pub(crate) state: Arc<dyn AdapterState>,
    /// The listener's JID: the component domain with a resource.
    pub(crate) listener: FullJid,
    pub(crate) domain: BareJid,
    /// Signed links to Matrix media, when the bridge serves them.
    pub(crate) links: Option<Arc<dyn MediaLinks>>,
    /// Group chats the component hosts itself.
    pub(crate) hosted: crate::hosted::Hosted,
    link: Mutex<Option<Link>>,
    pushers: Mutex<Option<Arc<Pushers>>>,
    /// Where the link reports its health.
    pub(crate) status: Arc<dyn StatusReporter>,
}

/// One tenant's XMPP adapter.
pub(crate) struct XmppAdapter {
    shared: Arc<Shared>,
    media: XmppMedia,
    stop: Mutex<Option<CancellationToken>>,
}

impl XmppAdapter {
    pub(crate) fn new(
        config: XmppConfig,
        sink: Arc<dyn InboundSink>,
        portals: Arc<dyn PortalDirectory>,
        links: Option<Arc<dyn MediaLinks>>,
        state: Arc<dyn AdapterState>,
        status: Arc<dyn StatusReporter>,
    ) -> Result<Self, BridgeError> {
        let fetcher = LinkFetcher::new(config.max_file_bytes)?;
        let domain = config.link().domain;
        let listener = domain.with_resource_str("bridge").expect("a static resource is valid");
        let shared = Shared {
            config,
            sink,
            portals,
            rooms: Mutex::default(),
            history: Mutex::default(),
            reactions: Reactions::new(state.clone()),
            state,
            listener,
            domain,
            links,
            hosted: Default::default(),
            link: Mutex::new(None),
            pushers: Mutex::default(),
            status,
        };
        let shared = Arc::new(shared);
        let media = XmppMedia { links: fetcher, shared: shared.clone() };
        Ok(Self { shared, media, stop: Mutex::new(None) })
    }
}

#[async_trait]
impl Adapter for XmppAdapter {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.edits = true;
        caps.redactions = true;
        caps.reactions = true;
        caps.replies = true;
        caps.membership = true;
        // Files go out as links, so only when the bridge can sign them.
        caps.media = self.shared.links.is_some();
        caps.presence = true;
        caps.typing = true;
        caps.read_receipts = true;
        caps
    }

    fn direct_room(&self, remote: &RemoteUserId, matrix: &MatrixUserId) -> Option<RemoteRoomId> {
        crate::direct::room_id(&crate::direct::contact_of(remote, &self.shared.domain)?, matrix)
    }

    fn direct_peer(&self, room: &RemoteRoomId) -> Option<MatrixUserId> {
        crate::direct::parse(room).map(|(_, user)| user)
    }

    fn media(&self) -> Option<&dyn RemoteMedia> {
        Some(&self.media)
    }

    async fn start(&self) -> Result<(), BridgeError> {
        let cancel = CancellationToken::new();
        let (link, inbound) = Link::spawn(self.shared.config.link(), self.shared.status.clone(), cancel.child_token());
        *self.shared.link.lock().expect("link poisoned") = Some(link.clone());
        tokio::spawn(inbound::dispatch(self.shared.clone(), link.clone(), inbound, cancel.child_token()));
        tokio::spawn(keep_listening(self.shared.clone(), link, cancel.child_token()));
        if let Some(old) = self.stop.lock().expect("stop poisoned").replace(cancel) {
            old.cancel();
        }
        Ok(())
    }

    async fn stop(&self) {
        if let Some(cancel) = self.stop.lock().expect("stop poisoned").take() {
            cancel.cancel();
        }
    }

    async fn accepts_room(&self, room: &RemoteRoomId) -> bool {
        let Ok(jid) = BareJid::new(room.as_str()) else { return false };
        // Rooms under our own domain are hosted here and opened by linking.
        if jid.node().is_none()
            || jid.domain() == self.shared.domain.domain()
            || !self.shared.config.allows_muc(jid.domain().as_str())
        {
            return false;
        }
        let Some(link) = self.shared.current_link() else { return false };
        let query = stanzas::disco_info_query(&self.shared.listener, &Jid::from(jid), &link.fresh_id("disco"));
        match link.iq(query).await {
            Ok(answer) => crate::stanza::is_conference(&answer),
            Err(err) => {
                tracing::debug!(room = %room, error = %err, "room discovery failed");
                false
            }
        }
    }

    async fn matrix_presence(&self, user: &MatrixUserId, presence: Presence, status: Option<&str>) {
        let Some(link) = self.shared.current_link() else { return };
        crate::outbound::presence(&self.shared, &link, user, presence, status).await;
    }

    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
        let link = self.shared.current_link().ok_or_else(|| BridgeError::transient("XMPP adapter not started"))?;
        crate::outbound::send(&self.shared, &link, event).await
    }
}

impl Shared {
    /// The current connection, once started.
    pub(crate) fn current_link(&self) -> Option<Link> {
        self.link.lock().expect("link poisoned").clone()
    }

    /// Seats `jid` in `room` under `nick` (or the nick it already has) and
    /// returns the nick the room gave it.
    pub(crate) async fn seat(
        &self,
        link: &Link,
        room: &BareJid,
        jid: &FullJid,
        nick: &str,
    ) -> Result<String, BridgeError> {
        // A nick someone else holds (another tenant's puppet of the same
        // person, or a namesake) is tried again with the component's domain.
        let mut last = String::new();
        for attempt in 0..NICK_ATTEMPTS {
            let nick = match attempt {
                0 => nick.to_owned(),
                1 => format!("{nick} ({})", self.domain),
                n => format!("{nick} ({}) {n}", self.domain),
            };
            match self.seat_once(link, room, jid, &nick).await? {
                Ok(nick) => return Ok(nick),
                Err(condition) if condition == "conflict" => last = condition,
                Err(condition) => return Err(BridgeError::transient(format!("joining {room} failed: {condition}"))),
            }
        }
        Err(BridgeError::transient(format!("joining {room} failed: {last}")))
    }

    /// One join attempt: the nick the room gave, or the condition it refused with.
    async fn seat_once(
        &self,
        link: &Link,
        room: &BareJid,
        jid: &FullJid,
        nick: &str,
    ) -> Result<Result<String, String>, BridgeError> {
        let generation = link.state().borrow().generation;
        let seat = {
            let mut rooms = self.rooms.lock().expect("rooms poisoned");
            rooms.sync_generation(generation);
            rooms.seat(room, jid)
        };
        let waiter = match seat {
            Seat::Taken(nick) => return Ok(Ok(nick)),
            Seat::Wait(rx) => rx,
            Seat::Join(rx) => {
                let occupant = room.with_resource_str(nick).map_err(|_| BridgeError::permanent("invalid nick"))?;
                self.rooms.lock().expect("rooms poisoned").joining_as(room, jid, nick);
                if let Err(err) = link.send(stanzas::join(jid, &occupant)).await {
                    self.rooms.lock().expect("rooms poisoned").left(room, jid, Some("not sent"));
                    return Err(err);
                }
                rx
            }
        };
        match tokio::time::timeout(JOIN_TIMEOUT, waiter).await {
            Ok(Ok(Ok(nick))) => {
                if jid != &self.listener {
                    self.history.lock().expect("history poisoned").our_nick(room, &nick);
                }
                Ok(Ok(nick))
            }
            Ok(Ok(Err(condition))) => Ok(Err(condition)),
            Ok(Err(_)) => Err(BridgeError::transient(format!("joining {room} was interrupted"))),
            Err(_) => {
                self.rooms.lock().expect("rooms poisoned").left(room, jid, Some("timed out"));
                Err(BridgeError::transient(format!("joining {room} timed out")))
            }
        }
    }

    /// Seats the listener in a bridged room, after learning whether the room
    /// vouches for occupant ids (which decides who its occupants' ghosts are).
    pub(crate) async fn listen(&self, link: &Link, room: &BareJid) -> Result<(), BridgeError> {
        let generation = link.state().borrow().generation;
        let known = {
            let mut rooms = self.rooms.lock().expect("rooms poisoned");
            rooms.sync_generation(generation);
            rooms.occupant_ids(room).is_some()
        };
        if !known {
            let query = stanzas::disco_info_query(&self.listener, &Jid::from(room.clone()), &link.fresh_id("disco"));
            let supported = crate::stanza::has_feature(&link.iq(query).await?, crate::stanza::OCCUPANT_ID);
            self.rooms.lock().expect("rooms poisoned").set_occupant_ids(room, supported);
        }
        let nick = self.config.bot_nick.clone();
        self.seat(link, room, &self.listener.clone(), &nick).await.map(|_| ())
    }

    /// The Matrix user behind one of our puppet JIDs.
    pub(crate) fn puppet_owner(&self, jid: &BareJid) -> Option<MatrixUserId> {
        crate::puppet::matrix_user_of(&self.domain, jid)
    }

    /// Sets the current connection's pushers (at start).
    pub(crate) fn set_pushers(&self, pushers: Arc<Pushers>) {
        *self.pushers.lock().expect("pushers poisoned") = Some(pushers);
    }

    /// Queues an event behind the earlier ones of its room (for events made
    /// outside the dispatcher, such as leaves after their grace period).
    pub(crate) fn route(&self, event: InboundEvent) {
        let pushers = self.pushers.lock().expect("pushers poisoned").clone();
        if let Some(pushers) = pushers
            && pushers.route(event).is_err()
        {
            tracing::warn!("an XMPP event was dropped: its room is flooded");
        }
    }

    /// Writes an element, logging (not failing) when the link is down.
    pub(crate) async fn send_quietly(&self, link: &Link, element: Element) {
        if let Err(err) = link.send(element).await {
            tracing::debug!(error = %err, "XMPP stanza not sent");
        }
    }
}

/// Keeps the listener in every portal room: after each (re)connect and
/// periodically, for portals linked while running.
async fn keep_listening(shared: Arc<Shared>, link: Link, cancel: CancellationToken) {
    let mut state = link.state();
    let mut refresh = tokio::time::interval(PORTAL_REFRESH);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
            _ = refresh.tick() => {}
        }
        if !state.borrow().connected {
            continue;
        }
        crate::hosted::sync(&shared, &link);
        let rooms = match shared.portals.rooms().await {
            Ok(rooms) => rooms,
            Err(err) => {
                tracing::warn!(error = %err, "listing XMPP portals failed");
                continue;
            }
        };
        // Direct chats have no room to sit in.
        for room in rooms.into_iter().filter(|r| crate::direct::parse(r).is_none()) {
            let Ok(room) = BareJid::new(room.as_str()) else {
                tracing::warn!(room = %room, "portal room is not a bare JID");
                continue;
            };
            // Rooms we host need no listener, only their record read.
            if crate::hosted::is_hosted(&shared, room.as_str()) {
                crate::hosted::restore(&shared, &room).await;
                continue;
            }
            let (shared, link) = (shared.clone(), link.clone());
            tokio::spawn(async move {
                if let Err(err) = shared.listen(&link, &room).await {
                    tracing::warn!(room = %room, error = %err, "listener could not join");
                }
            });
        }
    }
}
