//! Bot commands: a Matrix user talks to the bridge bot in a room with it
//! (a *management room*, usually a DM).
//!
//! Inviting the bot into a direct chat (a room marked `is_direct`) that is
//! no portal makes it a management room of the inviter: the bot joins and
//! greets. The inviter's text
//! messages there are commands (`help`, `status`, `link`, `unlink`),
//! answered with notices. Commands run off the transaction path: the
//! homeserver's 200 never waits for an answer, and a command that fails
//! is answered (or logged), never retried.

mod access;
mod parse;
mod replies;
mod sealed;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::account::{AccountCommand, CommandReplies};
use crate::error::BridgeError;
use crate::event::{EventBody, MatrixEvent, Membership};
use crate::ids::{AdapterKind, MatrixRoomId, MatrixUserId, PortalKey, TenantId};
use crate::matrix::MatrixSide;
use crate::naming::Namer;
use crate::running::RunningAdapters;
use crate::shard::Owners;
use crate::status::StatusBoard;
use crate::store::Store;
use crate::store::{Direction, NewOutboxEntry};
use crate::txn::txn_id;

use parse::{Command, HELP};
use replies::{AccountOf, RoomReplies};

/// The bridge bot's command handling.
#[derive(Clone)]
pub struct BotCommands {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    matrix: Arc<dyn MatrixSide>,
    adapters: RunningAdapters,
    status: StatusBoard,
    namer: Namer,
    /// A tenant owned by another process is answered there.
    owners: Owners,
    /// Management rooms seen, with their user.
    rooms: Mutex<HashMap<MatrixRoomId, MatrixUserId>>,
}

impl BotCommands {
    /// Builds the command handling.
    pub fn new(
        store: Arc<dyn Store>,
        matrix: Arc<dyn MatrixSide>,
        adapters: RunningAdapters,
        status: StatusBoard,
        namer: Namer,
        owners: Owners,
    ) -> Self {
        let rooms = Mutex::new(HashMap::new());
        Self { inner: Arc::new(Inner { store, matrix, adapters, status, namer, owners, rooms }) }
    }

    /// Takes an event of a room that is no portal. Returns whether it was
    /// for the bot. Only remembering a new management room happens before
    /// returning (a store failure fails the transaction, so the homeserver
    /// retries it); joining and answering run in the background.
    pub async fn take(&self, event: &MatrixEvent) -> Result<bool, BridgeError> {
        let bot = self.inner.matrix.bot_user_id();
        if &event.sender == bot || self.inner.namer.parse_ghost(&event.sender).is_some() {
            return Ok(false);
        }
        let target = event.state_key.as_deref();
        match &event.body {
            // Only a direct chat becomes a management room: a room the bot is
            // invited into to be linked as a portal is left to that.
            EventBody::Membership { membership: Membership::Invite, .. }
                if target == Some(bot.as_str()) && event.direct =>
            {
                self.inner.store.put_management_room(&event.room_id, &event.sender).await?;
                self.remember(&event.room_id, &event.sender);
                tracing::info!(room = %event.room_id, "the bot was invited into a management room");
                let this = self.clone();
                let event = event.clone();
                tokio::spawn(async move { this.join_and_greet(&event).await });
                Ok(true)
            }
            EventBody::Membership { membership: Membership::Leave, .. } if target == Some(event.sender.as_str()) => {
                if self.owner(&event.room_id).await?.as_ref() != Some(&event.sender) {
                    return Ok(false);
                }
                self.inner.store.remove_management_room(&event.room_id).await?;
                self.inner.rooms.lock().expect("rooms poisoned").remove(&event.room_id);
                let this = self.clone();
                let event = event.clone();
                tokio::spawn(async move { this.leave(&event).await });
                Ok(true)
            }
            body if let Some(text) = Self::command_text(body) => {
                if self.owner(&event.room_id).await?.as_ref() != Some(&event.sender) {
                    return Ok(false);
                }
                let this = self.clone();
                let event = event.clone();
                let text = text.to_owned();
                tokio::spawn(async move { this.answer(&event, &text).await });
                Ok(true)
            }
            // Encrypted management rooms: decrypted off the transaction path.
            EventBody::Encrypted { .. } => {
                if self.owner(&event.room_id).await?.as_ref() != Some(&event.sender) {
                    return Ok(false);
                }
                let this = self.clone();
                let event = event.clone();
                tokio::spawn(async move { this.answer_sealed(&event).await });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether a message is a command: typed text, not a notice, emote or file.
    fn command_text(body: &EventBody<crate::ids::MatrixEventId>) -> Option<&str> {
        match body {
            EventBody::Message(m) if !m.notice && !m.emote && m.attachments.is_empty() => Some(&m.text.body),
            _ => None,
        }
    }

    fn remember(&self, room: &MatrixRoomId, user: &MatrixUserId) {
        self.inner.rooms.lock().expect("rooms poisoned").insert(room.clone(), user.clone());
    }

    /// The user a management room belongs to, if it is one.
    async fn owner(&self, room: &MatrixRoomId) -> Result<Option<MatrixUserId>, BridgeError> {
        if let Some(user) = self.inner.rooms.lock().expect("rooms poisoned").get(room) {
            return Ok(Some(user.clone()));
        }
        let user = self.inner.store.management_room(room).await?;
        if let Some(user) = &user {
            self.remember(room, user);
        }
        Ok(user)
    }

    async fn join_and_greet(&self, invite: &MatrixEvent) {
        let (matrix, room) = (&self.inner.matrix, &invite.room_id);
        let bot = matrix.bot_user_id().clone();
        if let Err(err) = matrix.ensure_joined(room, &bot).await {
            tracing::warn!(room = %room, error = %err, "the bot could not join a management room");
            return;
        }
        let txn = txn_id(&["bot-greeting", room.as_str(), invite.event_id.as_str()]);
        if let Err(err) = matrix.send(room, &bot, &txn, &replies::notice(HELP)).await {
            tracing::warn!(room = %room, error = %err, "the bot could not greet in a management room");
        }
    }

    async fn leave(&self, event: &MatrixEvent) {
        let bot = self.inner.matrix.bot_user_id().clone();
        let txn = txn_id(&["bot-leave", event.room_id.as_str(), event.event_id.as_str()]);
        let leave = EventBody::Membership { membership: Membership::Leave, display_name: None, reason: None };
        if let Err(err) = self.inner.matrix.send(&event.room_id, &bot, &txn, &leave).await {
            tracing::debug!(room = %event.room_id, error = %err, "the bot could not leave a management room");
        }
    }

    /// Runs one command and answers it; failures are answered and logged.
    async fn answer(&self, event: &MatrixEvent, text: &str) {
        self.answer_as(event, text, None).await;
    }

    /// Answers a command that another process stored in the lobby of a
    /// tenant this one owns, for that tenant alone.
    pub(crate) async fn answer_in_lobby(&self, lobby: &PortalKey, event: &MatrixEvent) {
        let EventBody::Message(message) = &event.body else { return };
        self.answer_as(event, &message.text.body, Some(&lobby.tenant)).await;
    }

    /// Answers a command; `only` limits it to one tenant (in its lobby).
    async fn answer_as(&self, event: &MatrixEvent, text: &str, only: Option<&TenantId>) {
        let replies = Arc::new(RoomReplies::new(
            self.inner.matrix.clone(),
            self.inner.store.clone(),
            event.room_id.clone(),
            event.event_id.clone(),
            only.map_or("", TenantId::as_str),
        ));
        let user = &event.sender;
        let outcome = match parse::parse(text) {
            Err(answer) => Ok(answer),
            Ok(Command::Help) => Ok(HELP.to_owned()),
            Ok(Command::Status { tenant }) => self.status(event, tenant.as_ref().or(only)).await,
            Ok(Command::Link { kind, tenant }) => {
                let command = AccountCommand::Link { user: user.clone() };
                self.account(event, command, "link", &kind, tenant.as_ref().or(only), &replies)
                    .await
                    .map(|()| String::new())
            }
            Ok(Command::Unlink { kind, tenant }) => {
                let command = AccountCommand::Unlink { user: user.clone() };
                self.account(event, command, "unlink", &kind, tenant.as_ref().or(only), &replies)
                    .await
                    .map(|()| String::new())
            }
        };
        match outcome {
            Ok(answer) if answer.is_empty() => {}
            Ok(answer) => replies.notice(&answer).await,
            Err(err) => {
                tracing::warn!(room = %event.room_id, error = %err, "a bot command failed");
                let reason = match &err {
                    BridgeError::Transient { message, .. } => message.as_str(),
                    BridgeError::Permanent(message) => message.as_str(),
                };
                replies.notice(&format!("Sorry, that did not work: {reason}")).await;
            }
        }
    }

    async fn status(&self, event: &MatrixEvent, named: Option<&TenantId>) -> Result<String, BridgeError> {
        let tenants = self.inner.store.tenants().await?;
        let scope = match access::status_scope(&tenants, &event.sender, named) {
            Ok(scope) => scope,
            Err(refusal) => return Ok(refusal),
        };
        let mut parts = Vec::new();
        for tenant in scope {
            let configs = self.inner.store.adapter_configs(Some(&tenant.id)).await?;
            // Only the owner knows its adapters' health: it answers for them.
            if let Some(config) = configs.first().filter(|_| !self.inner.owners.owns(&tenant.id)) {
                self.to_lobby(&tenant.id, &config.kind, event).await?;
                continue;
            }
            parts.push(status::render(tenant, &configs, &self.inner.status));
        }
        Ok(parts.join("\n\n"))
    }

    /// Hands a command to the process owning `tenant`, through the lobby
    /// queue of one of its adapters (delivered there, see `answer_in_lobby`).
    async fn to_lobby(&self, tenant: &TenantId, kind: &AdapterKind, event: &MatrixEvent) -> Result<(), BridgeError> {
        let payload = serde_json::to_string(event).map_err(|e| BridgeError::permanent(e.to_string()))?;
        let lobby = PortalKey::lobby(tenant.clone(), kind.clone());
        let key = format!("bot-command {}", event.event_id);
        self.inner.store.enqueue(NewOutboxEntry::new(Direction::ToRemote, lobby, key, payload)).await?;
        tracing::info!(tenant = %tenant, "bot command handed to the tenant's owner");
        Ok(())
    }

    /// An account command: picks the tenant, then hands it to that tenant's adapter.
    async fn account(
        &self,
        event: &MatrixEvent,
        command: AccountCommand,
        verb: &str,
        kind: &AdapterKind,
        named: Option<&TenantId>,
        replies: &Arc<RoomReplies>,
    ) -> Result<(), BridgeError> {
        let configs = self.inner.store.adapter_configs(None).await?;
        let mut offering = Vec::new();
        for config in configs.iter().filter(|c| &c.kind == kind && c.enabled) {
            offering.extend(self.inner.store.tenant(&config.tenant).await?);
        }
        let own = self.inner.matrix.bot_user_id().server_name();
        let tenant = match access::account_scope(&offering, command.user(), own, verb, kind, named) {
            Ok(tenant) => tenant.id.clone(),
            Err(refusal) => {
                replies.notice(&refusal).await;
                return Ok(());
            }
        };
        if !self.inner.owners.owns(&tenant) {
            return self.to_lobby(&tenant, kind, event).await;
        }
        replies.about(AccountOf { tenant: tenant.clone(), kind: kind.clone(), user: command.user().clone() });
        tracing::info!(tenant = %tenant, kind = %kind, verb, "account command");
        dispatch(&self.inner.adapters, &tenant, kind, command, replies.clone()).await
    }
}

/// Hands an account command to the adapter that carries it out: the one
/// place commands reach running adapters.
async fn dispatch(
    adapters: &RunningAdapters,
    tenant: &TenantId,
    kind: &AdapterKind,
    command: AccountCommand,
    replies: Arc<dyn CommandReplies>,
) -> Result<(), BridgeError> {
    let Some(adapter) = adapters.get(tenant, kind) else {
        return Err(BridgeError::transient(format!(
            "the {kind} adapter of tenant {tenant} is not running right now; try again later"
        )));
    };
    adapter.account_command(command, replies).await
}
