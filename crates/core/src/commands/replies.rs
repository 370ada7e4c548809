//! Answers of the bridge bot in a management room: notices with
//! deterministic transaction ids (a retried reply is not doubled), and the
//! outcome of account commands recorded in the store.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::account::CommandReplies;
use crate::event::{EventBody, Message, Text};
use crate::ids::{AdapterKind, MatrixEventId, MatrixRoomId, MatrixUserId, RemoteUserId, TenantId};
use crate::matrix::MatrixSide;
use crate::store::{LinkedAccount, Store};
use crate::txn::txn_id;

/// Whose account an account command is about.
pub(crate) struct AccountOf {
    pub(crate) tenant: TenantId,
    pub(crate) kind: AdapterKind,
    pub(crate) user: MatrixUserId,
}

/// The replies to one command message.
pub(crate) struct RoomReplies {
    matrix: Arc<dyn MatrixSide>,
    store: Arc<dyn Store>,
    room: MatrixRoomId,
    /// The command's event: replies are numbered after it.
    command: MatrixEventId,
    /// Who answers (empty, or the tenant whose owner answers in its lobby):
    /// two processes answering one command number their replies apart.
    scope: String,
    sent: AtomicU32,
    account: Mutex<Option<AccountOf>>,
}

impl RoomReplies {
    pub(crate) fn new(
        matrix: Arc<dyn MatrixSide>,
        store: Arc<dyn Store>,
        room: MatrixRoomId,
        command: MatrixEventId,
        scope: &str,
    ) -> Self {
        let scope = scope.to_owned();
        Self { matrix, store, room, command, scope, sent: AtomicU32::new(0), account: Mutex::new(None) }
    }

    /// Notes whose account the command is about, for [`CommandReplies::linked`].
    pub(crate) fn about(&self, account: AccountOf) {
        *self.account.lock().expect("replies poisoned") = Some(account);
    }

    fn account(&self) -> Option<(TenantId, AdapterKind, MatrixUserId)> {
        let account = self.account.lock().expect("replies poisoned");
        account.as_ref().map(|a| (a.tenant.clone(), a.kind.clone(), a.user.clone()))
    }
}

/// A notice from the bot.
pub(crate) fn notice(text: &str) -> EventBody<MatrixEventId> {
    let mut message = Message::text(Text::plain(text));
    message.notice = true;
    EventBody::Message(message)
}

#[async_trait]
impl CommandReplies for RoomReplies {
    async fn notice(&self, text: &str) {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        let txn = txn_id(&["bot-reply", self.room.as_str(), self.command.as_str(), &self.scope, &n.to_string()]);
        let bot = self.matrix.bot_user_id().clone();
        if let Err(err) = self.matrix.send(&self.room, &bot, &txn, &notice(text)).await {
            tracing::warn!(room = %self.room, error = %err, "the bot's reply could not be sent");
        }
    }

    async fn linked(&self, remote: &RemoteUserId) {
        let Some((tenant, kind, user)) = self.account() else { return };
        let account = LinkedAccount::new(tenant.clone(), kind.clone(), user, remote.clone());
        if let Err(err) = self.store.link_account(&account).await {
            tracing::warn!(tenant = %tenant, kind = %kind, error = %err, "recording a linked account failed");
        }
    }

    async fn unlinked(&self) {
        let Some((tenant, kind, user)) = self.account() else { return };
        if let Err(err) = self.store.unlink_account(&tenant, &kind, &user).await {
            tracing::warn!(tenant = %tenant, kind = %kind, error = %err, "forgetting a linked account failed");
        }
    }
}
