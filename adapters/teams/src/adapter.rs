//! The Teams adapter of one tenant: subscriptions kept alive by a
//! supervisor, notifications through the webhook into per-conversation
//! workers, REST for sending, presence polling.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brygga_core::{
    AccountCommand, Adapter, AdapterContext, BridgeError, Capabilities, CommandReplies, MatrixUserId, OutboundEvent,
    RemoteMedia, SendReceipt, WebhookRequest, WebhookResponse,
};
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::config::TeamsConfig;
use crate::graph::Graph;
use crate::ids::Conversation;
use crate::link::{LinkOutcome, LinkPrompt};
use crate::media::Files;
use crate::notify::Reply;
use crate::shared::{Shared, token_failure};
use crate::status::{Health, Status};
use crate::token::{Identity, TokenError};
use crate::workers::Work;

/// How often portals are listed (a newly linked one gets its subscription)
/// and subscriptions checked; Graph is only called for new or due ones.
const SUPERVISE_EVERY: Duration = Duration::from_secs(5);

/// One tenant's Teams adapter.
pub struct TeamsAdapter {
    shared: Arc<Shared>,
    files: Files,
    cancel: Mutex<Option<CancellationToken>>,
}

impl TeamsAdapter {
    pub(crate) fn new(config: TeamsConfig, ctx: AdapterContext) -> Result<Self, BridgeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BridgeError::permanent(format!("building the HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            tenant: ctx.tenant.clone(),
            graph: Graph::new(http.clone(), config.clone(), ctx.status.clone()),
            identity: Identity::new(http.clone(), config.clone()),
            signing_keys: crate::resource_data::SigningKeys::new(http, config.signing_keys_url()),
            accounts: Accounts::new(ctx.tenant.clone(), ctx.state.clone(), config),
            subs: Default::default(),
            workers: Default::default(),
            echoes: Default::default(),
            status: Status::new(ctx.tenant, ctx.status),
            sink: ctx.sink,
            portals: ctx.portals,
            state: ctx.state,
            media_links: ctx.media_links,
            watched: Default::default(),
            posts: Default::default(),
        });
        Ok(Self { files: Files { shared: shared.clone() }, shared, cancel: Mutex::new(None) })
    }

    /// Starts linking a Matrix user's Teams account (device code flow).
    pub async fn start_link(&self, user: MatrixUserId) -> Result<(LinkPrompt, LinkOutcome), BridgeError> {
        crate::link::start(&self.shared, user).await
    }

    /// Links a Matrix user to the Teams account `aad` with a refresh token
    /// obtained elsewhere (operator tooling, tests).
    pub async fn link_with_refresh_token(
        &self,
        user: &MatrixUserId,
        aad: &str,
        refresh_token: &str,
    ) -> Result<(), BridgeError> {
        crate::link::with_refresh_token(&self.shared, user, aad, refresh_token).await
    }
}

#[async_trait]
impl Adapter for TeamsAdapter {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.edits = true;
        caps.redactions = true;
        caps.reactions = true;
        caps.replies = true;
        caps.threads = true;
        caps.media = true;
        caps.membership = true;
        caps.presence = true;
        caps.backfill = true;
        caps
    }

    fn media(&self) -> Option<&dyn RemoteMedia> {
        Some(&self.files)
    }

    /// Graph's `notificationUrl` (`notify`) and `lifecycleNotificationUrl` (`lifecycle`).
    async fn webhook(&self, request: WebhookRequest) -> WebhookResponse {
        let Reply { status, content_type, body } =
            crate::webhook::handle(&self.shared, &request.path, &request.method, &request.query, &request.body).await;
        WebhookResponse::new(status, content_type, body.into_bytes())
    }

    async fn start(&self) -> Result<(), BridgeError> {
        let shared = &self.shared;
        shared.accounts.load().await?;
        crate::subs::load(shared).await?;
        // Wrong credentials are reported to whoever starts the tenant; an
        // unreachable identity platform is retried in the background.
        match shared.identity.app_token().await {
            Err(err @ TokenError::BadCredentials(_)) => {
                shared.status.set(Health::BadCredentials(err.to_string()));
                return Err(BridgeError::permanent(format!("Teams: {err}")));
            }
            Err(err) => shared.status.set(Health::TransientError(err.to_string())),
            Ok(_) => {}
        }
        let cancel = CancellationToken::new();
        if let Some(old) = self.cancel.lock().expect("cancel poisoned").replace(cancel.clone()) {
            old.cancel();
        }
        shared.workers.start(cancel.clone());
        tokio::spawn(supervise(shared.clone(), cancel.clone()));
        if let Some(interval) = shared.config().presence_interval {
            tokio::spawn(crate::presence::run(shared.clone(), interval, cancel));
        }
        Ok(())
    }

    async fn stop(&self) {
        if let Some(cancel) = self.cancel.lock().expect("cancel poisoned").take() {
            cancel.cancel();
        }
    }

    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
        crate::outbound::send(&self.shared, event).await
    }

    /// `link teams` (device code sign-in) and `unlink teams` from the bridge bot.
    async fn account_command(
        &self,
        command: AccountCommand,
        replies: Arc<dyn CommandReplies>,
    ) -> Result<(), BridgeError> {
        crate::commands::run(&self.shared, command, replies).await
    }
}

/// Keeps every portal subscribed: catches each up once at start (the
/// downtime), again whenever its subscription had to be made anew, and
/// drops subscriptions of portals that are gone.
async fn supervise(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut caught_up: HashSet<String> = HashSet::new();
    loop {
        match round(&shared, &mut caught_up).await {
            Ok(()) => shared.status.set(Health::Connected),
            Err(err) => {
                tracing::warn!(tenant = %shared.tenant, error = %err, "Teams: keeping subscriptions failed; retrying");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(SUPERVISE_EVERY) => {}
        }
    }
}

async fn round(shared: &Arc<Shared>, caught_up: &mut HashSet<String>) -> Result<(), BridgeError> {
    shared.identity.app_token().await.map_err(|e| shared.note(token_failure(e)))?;
    let rooms = shared.portals.rooms().await?;
    let mut live = HashSet::new();
    let mut failure = None;
    for room in rooms {
        let Some(conversation) = Conversation::parse(room.as_str()) else { continue };
        let id = conversation.room_id();
        live.insert(id.clone());
        // A portal's first round (after a start) checks its kept subscription
        // with Graph and catches up on the downtime.
        let first = !caught_up.contains(&id);
        match crate::subs::ensure(shared, &conversation, first).await {
            Ok(created) => {
                if created || first {
                    caught_up.insert(id);
                    shared.workers.submit(shared, &conversation, Work::CatchUp);
                }
            }
            Err(err) => failure = Some(err),
        }
    }
    for sub in shared.subs.all().into_iter().filter(|s| !live.contains(&s.room)) {
        if let Err(err) = crate::subs::delete(shared, &sub).await {
            failure = Some(err);
        }
    }
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}
