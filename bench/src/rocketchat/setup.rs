//! The Rocket.Chat double with its users and channels, and the bridge with
//! the real Rocket.Chat adapter listening in every channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use brygga_core::{AdapterKind, MatrixRoomId, Portal, PortalKey, RemoteRoomId};
use brygga_rocketchat_double::{RocketChatDouble, TestUser};
use tokio::net::TcpListener;

use super::{PUPPET_PREFIX, Sizes};
use crate::bridge::{self, Core, SERVER_NAME, Setup};
use crate::fake_homeserver::{self, Homeserver};

/// A running double and bridge.
pub struct Env {
    /// The double, shared with the posting tasks.
    pub rc: Arc<RocketChatDouble>,
    /// The bridge.
    pub core: Core,
    /// The instant homeserver.
    pub homeserver: Arc<Homeserver>,
    /// Posting users, each with the channel it posts in.
    pub users: Vec<(TestUser, String)>,
    /// A member of every channel that watches them over the realtime API.
    pub watcher: TestUser,
    /// The portals' Matrix rooms, in channel order.
    pub rooms: Vec<String>,
}

impl Env {
    /// Waits until the tenant's queues are empty.
    pub async fn drain(&self, timeout: Duration) -> anyhow::Result<()> {
        crate::scenarios::drain_tenant(&self.core.store, &self.core.tenant, timeout).await
    }

    /// Fails listing the request bodies that did not match Rocket.Chat's schemas.
    pub fn check_schemas(&self) -> anyhow::Result<()> {
        let violations = self.rc.schema_violations();
        if let Some(first) = violations.first() {
            bail!(
                "{} request(s) did not match Rocket.Chat's request schemas; the first: {} ({}): {} in {}",
                violations.len(),
                first.endpoint,
                first.validator,
                first.errors,
                first.body
            );
        }
        Ok(())
    }
}

/// Starts the double, creates users and channels, links them as portals and
/// starts the adapter; returns once the bot listens in every channel.
pub async fn start(sizes: &Sizes, store: &str, instrument: bool) -> anyhow::Result<Env> {
    let rc = RocketChatDouble::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await.context(
        "starting the Rocket.Chat double (it validates every request with Rocket.Chat's schemas in node; \
         `cargo xtask test` prepares them once)",
    )?;
    let bot = rc.create_user_with_roles("matrix-bridge", &["admin", "bot", "user"]);
    let watcher = rc.create_user("watcher");
    let people: Vec<TestUser> = (0..sizes.users).map(|i| rc.create_user(&format!("rc{i}"))).collect();
    let mut rids = Vec::new();
    for r in 0..sizes.rooms {
        let mut members: Vec<&TestUser> = people.iter().skip(r).step_by(sizes.rooms).collect();
        members.extend([&bot, &watcher]);
        rids.push(rc.create_channel(&format!("bench{r}"), members[0], &members[1..]));
    }

    let (hs_url, homeserver) = fake_homeserver::start(SERVER_NAME, &bridge::nonce()).await?;
    let core = bridge::assemble(Setup {
        store,
        instrument,
        homeserver_url: &hs_url,
        server_name: SERVER_NAME,
        factories: vec![Arc::new(brygga_rocketchat::RocketChatFactory)],
        listener: TcpListener::bind("127.0.0.1:0").await?,
    })
    .await?;
    let rooms: Vec<String> = (0..sizes.rooms).map(|r| format!("!rc{r}:{SERVER_NAME}")).collect();
    for (rid, room) in rids.iter().zip(&rooms) {
        link(&core, rid, room).await?;
    }
    let config = serde_json::json!({
        "url": rc.url(),
        "user_id": bot.id,
        "token": bot.token,
        "create_tokens_secret": rc.create_tokens_secret(),
        "puppet_mode": "users",
        "puppet_prefix": PUPPET_PREFIX,
        "matrix_server_name": SERVER_NAME,
    });
    core.start_adapter(brygga_rocketchat::KIND, config).await?;
    core.matrix.ping("brygga").await?;
    for rid in &rids {
        let param = format!("{rid}/deleteMessage");
        if !rc.wait_for_subscription(&bot.id, "stream-notify-room", &param, sizes.timeout).await {
            bail!("the bridge never subscribed to channel {rid}");
        }
    }
    let users = people.into_iter().enumerate().map(|(i, u)| (u, rids[i % sizes.rooms].clone())).collect();
    Ok(Env { rc: Arc::new(rc), core, homeserver, users, watcher, rooms })
}

/// Links channel `rid` to Matrix room `room` in the store, as `brygga portal link` does.
async fn link(core: &Core, rid: &str, room: &str) -> anyhow::Result<()> {
    let kind = AdapterKind::new(brygga_rocketchat::KIND)?;
    let mut portal = Portal::new(PortalKey::new(core.tenant.clone(), kind, RemoteRoomId::new(rid)?));
    portal.room_id = Some(MatrixRoomId::new(room)?);
    portal.name = Some(rid.to_owned());
    core.shared.upsert_portal(&portal).await?;
    Ok(())
}
