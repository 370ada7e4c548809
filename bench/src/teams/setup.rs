//! The Graph double with one Entra tenant (posting users, the relay
//! identity, teams with channels, group chats), and the bridge with the real
//! Teams adapter subscribed to every conversation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use brygga_core::{AdapterKind, MatrixRoomId, Portal, PortalKey, RemoteRoomId};
use brygga_graph_double::{Conversation, GraphDouble, TestUser};
use tokio::net::TcpListener;

use super::Sizes;
use crate::bridge::{self, Core, SERVER_NAME, Setup};
use crate::fake_homeserver::{self, Homeserver};

/// Channels per team.
const CHANNELS_PER_TEAM: usize = 50;
/// The key sealing the relay's refresh token in the adapter state (any 32 bytes).
const TOKEN_KEY: &str = "YnJ5Z2dhLWJlbmNoLXRlYW1zLXRva2VuLWtleS0zMmI=";

/// A running double and bridge.
pub struct Env {
    /// The Graph double.
    pub graph: GraphDouble,
    /// The bridge.
    pub core: Core,
    /// The instant homeserver.
    pub homeserver: Arc<Homeserver>,
    /// The conversations, each with the Teams user who posts in it.
    pub conversations: Vec<(Conversation, TestUser)>,
    /// The relay identity, which posts for Matrix users (Alice is not linked).
    pub relay: TestUser,
    /// The portals' Matrix rooms, in conversation order.
    pub rooms: Vec<String>,
}

impl Env {
    /// Waits until the tenant's queues are empty.
    pub async fn drain(&self, timeout: Duration) -> anyhow::Result<()> {
        crate::scenarios::drain_tenant(&self.core.store, &self.core.tenant, timeout).await
    }
}

/// Starts the double and the bridge, links every conversation as a portal and
/// starts the adapter; returns once Graph holds a subscription for each.
pub async fn start(sizes: &Sizes, store: &str, instrument: bool) -> anyhow::Result<Env> {
    anyhow::ensure!(sizes.conversations > 0 && sizes.users > 0, "Teams sizes must be positive");
    let graph = GraphDouble::start_on(([127, 0, 0, 1], 0).into()).await?;
    let entra = graph.add_tenant();
    let users: Vec<TestUser> = (0..sizes.users).map(|i| graph.add_user(&entra, &format!("Teams User{i}"))).collect();
    let relay = graph.add_user(&entra, "Matrix Relay");
    let channels = sizes.conversations.div_ceil(2);
    let mut conversations = Vec::with_capacity(sizes.conversations);
    let mut members: Vec<&TestUser> = users.iter().collect();
    members.push(&relay);
    for t in 0..channels.div_ceil(CHANNELS_PER_TEAM) {
        let team = graph.add_team(&entra, &format!("Bench team {t}"), &members);
        for c in 0..CHANNELS_PER_TEAM.min(channels - t * CHANNELS_PER_TEAM) {
            conversations.push(graph.add_channel(&entra, &team, &format!("bench {c}")));
        }
    }
    for c in channels..sizes.conversations {
        let poster = &users[c % users.len()];
        conversations.push(graph.add_chat(&entra, Some(&format!("Bench chat {c}")), &[poster, &relay]));
    }
    let conversations: Vec<(Conversation, TestUser)> =
        conversations.into_iter().enumerate().map(|(c, conv)| (conv, users[c % users.len()].clone())).collect();

    let (hs_url, homeserver) = fake_homeserver::start(SERVER_NAME, &bridge::nonce()).await?;
    let core = bridge::assemble(Setup {
        store,
        instrument,
        homeserver_url: &hs_url,
        server_name: SERVER_NAME,
        factories: vec![Arc::new(brygga_teams::TeamsFactory)],
        listener: TcpListener::bind("127.0.0.1:0").await?,
    })
    .await?;
    let rooms: Vec<String> = (0..conversations.len()).map(|c| format!("!teams{c}:{SERVER_NAME}")).collect();
    for ((conversation, _), room) in conversations.iter().zip(&rooms) {
        link(&core, &room_of(conversation)?, room).await?;
    }
    let config = serde_json::json!({
        "client_id": graph.client_id(),
        "client_secret": graph.client_secret(),
        "tenant_id": entra,
        "notification_url_base": format!("{}/_brygga/webhook/{}/teams/", core.appservice_url, core.tenant),
        "token_key": TOKEN_KEY,
        "relay_user_id": relay.id,
        "relay_refresh_token": graph.refresh_token(&relay),
        "graph_url": graph.url(),
        "login_url": graph.login_base(),
        "matrix_server_name": SERVER_NAME,
        "presence_interval_secs": 0,
    });
    core.start_adapter(brygga_teams::KIND, config).await?;
    core.matrix.ping("brygga").await?;
    wait_subscribed(&graph, &conversations, sizes.timeout).await?;
    Ok(Env { graph, core, homeserver, conversations, relay, rooms })
}

/// The bridge's room id of a conversation: `{team}/{channel}` or the chat id.
fn room_of(conversation: &Conversation) -> anyhow::Result<String> {
    match conversation {
        Conversation::Channel { team, channel, .. } => Ok(format!("{team}/{channel}")),
        Conversation::Chat { chat, .. } => Ok(chat.clone()),
        other => bail!("the double made a conversation the bench does not know: {other:?}"),
    }
}

/// Links conversation `remote` to Matrix room `room` in the store, as `brygga portal link` does.
async fn link(core: &Core, remote: &str, room: &str) -> anyhow::Result<()> {
    let kind = AdapterKind::new(brygga_teams::KIND)?;
    let mut portal = Portal::new(PortalKey::new(core.tenant.clone(), kind, RemoteRoomId::new(remote)?));
    portal.room_id = Some(MatrixRoomId::new(room)?);
    portal.name = Some(remote.to_owned());
    core.shared.upsert_portal(&portal).await?;
    Ok(())
}

/// Waits until Graph holds a live subscription of every conversation.
async fn wait_subscribed(
    graph: &GraphDouble,
    conversations: &[(Conversation, TestUser)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = chrono::Utc::now();
        let live: std::collections::HashSet<Conversation> =
            graph.subscriptions().into_iter().filter(|s| s.active(now)).map(|s| s.conversation).collect();
        let waiting = conversations.iter().filter(|(c, _)| !live.contains(c)).count();
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the bridge did not subscribe to {waiting} of {} conversations", conversations.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
