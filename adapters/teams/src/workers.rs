//! One worker per bridged conversation turns notifications (already
//! acknowledged to Graph) and catch-ups into stored events, strictly in the
//! order they came. A failed step is retried with backoff until it succeeds
//! or the adapter stops; what a stop leaves undone is found again by the
//! catch-up from the conversation's watermark at the next start.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::BridgeError;
use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::graph::GraphError;
use crate::ids::{Conversation, MessageRef};
use crate::map::{MapCtx, map_message, reference};
use crate::model::ChatMessage;
use crate::reactions::{ReactionMemory, state_key};
use crate::shared::Shared;

/// How far before a drained queue the watermark is set: notifications of
/// changes older than this that have not arrived yet are assumed lost and
/// re-read by the next catch-up.
pub(crate) const WATERMARK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// What a worker does next.
#[derive(Clone, Debug)]
pub(crate) enum Work {
    /// A message changed (created, edited, reacted to, deleted).
    Changed(MessageRef),
    /// A message changed, as the notification's resource data shows it (no need to read it back).
    Delivered(Box<ChatMessage>),
    /// Read everything changed since the watermark.
    CatchUp,
}

/// The running workers, by room.
#[derive(Default)]
pub(crate) struct Workers {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Work>>>,
    cancel: Mutex<Option<CancellationToken>>,
}

impl Workers {
    /// Starts accepting work (workers stop with `cancel`).
    pub(crate) fn start(&self, cancel: CancellationToken) {
        self.queues.lock().expect("workers poisoned").clear();
        *self.cancel.lock().expect("workers poisoned") = Some(cancel);
    }

    /// Hands work to the conversation's worker, starting it when needed.
    pub(crate) fn submit(&self, shared: &Arc<Shared>, conversation: &Conversation, work: Work) {
        let Some(cancel) = self.cancel.lock().expect("workers poisoned").clone() else { return };
        let mut queues = self.queues.lock().expect("workers poisoned");
        let room = conversation.room_id();
        if let Some(queue) = queues.get(&room)
            && queue.send(work.clone()).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(work);
        queues.insert(room, tx);
        tokio::spawn(run(shared.clone(), conversation.clone(), rx, cancel));
    }
}

/// The state key of a conversation's watermark.
pub(crate) fn watermark_key(room: &str) -> String {
    format!("seen/{room}")
}

async fn run(
    shared: Arc<Shared>,
    conversation: Conversation,
    mut rx: mpsc::UnboundedReceiver<Work>,
    cancel: CancellationToken,
) {
    let mut reactions = ReactionMemory::default();
    loop {
        let work = tokio::select! {
            // A stopped adapter takes no more work, even when some is queued.
            biased;
            () = cancel.cancelled() => return,
            work = rx.recv() => match work { Some(work) => work, None => return },
        };
        let started = Utc::now();
        let mut attempt = 0u32;
        loop {
            let result = match &work {
                Work::Changed(message) => changed(&shared, &conversation, message, &mut reactions).await,
                Work::Delivered(message) => push(&shared, &conversation, message, &mut reactions).await,
                Work::CatchUp => crate::catchup::run(&shared, &conversation, &mut reactions).await,
            };
            match result {
                Ok(()) => break,
                Err(err) => {
                    let wait = match &err {
                        BridgeError::Transient { retry_after: Some(wait), .. } => *wait,
                        _ => crate::graph::backoff(attempt).min(Duration::from_secs(60)),
                    };
                    attempt += 1;
                    tracing::warn!(tenant = %shared.tenant, error = %err, "Teams: bridging a change failed; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        if rx.is_empty() {
            let mark = (started - WATERMARK_MARGIN).to_rfc3339_opts(SecondsFormat::Millis, true);
            if let Err(err) = shared.state.put(&watermark_key(&conversation.room_id()), Some(&mark)).await {
                tracing::warn!(tenant = %shared.tenant, error = %err, "Teams: keeping a watermark failed");
            }
        }
    }
}

/// Reads one changed message back from Graph and stores its events.
async fn changed(
    shared: &Shared,
    conversation: &Conversation,
    message: &MessageRef,
    reactions: &mut ReactionMemory,
) -> Result<(), BridgeError> {
    let path = conversation.message_path(message);
    let answer = match shared.app_call(Method::GET, &path, None, &conversation.room_id()).await {
        Ok(answer) => answer,
        // Gone for good: nothing left to bridge (a soft delete stays readable).
        Err(GraphError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let message: ChatMessage = serde_json::from_value(answer.body)
        .map_err(|e| BridgeError::permanent(format!("Graph sent a chatMessage that does not parse: {e}")))?;
    push(shared, conversation, &message, reactions).await
}

/// Maps one message and stores its events, skipping the bridge's own echoes.
pub(crate) async fn push(
    shared: &Shared,
    conversation: &Conversation,
    message: &ChatMessage,
    reactions: &mut ReactionMemory,
) -> Result<(), BridgeError> {
    let key = state_key(&conversation.room_id(), &reference(conversation, message));
    let before = reactions.before(shared.state.as_ref(), &key, message).await?;
    // The mapping's callbacks are not `Sync`: they live only in this block, before any await.
    let (events, seen) = {
        let tenant = shared.tenant.clone();
        let server = shared.config().matrix_server_name.clone();
        let pill = |aad: &str| -> Option<String> {
            if let Some(user) = shared.accounts.matrix_of(aad) {
                return Some(user.to_string());
            }
            let server = server.as_ref()?;
            Some(format!("@{}_{}_{}:{server}", crate::KIND, tenant, brygga_core::naming::escape(aad)))
        };
        let graph_root = shared.config().graph_url.to_string();
        let hosted = |src: &str| crate::media::is_hosted(&graph_root, src);
        let ctx = MapCtx { conversation, relay_user: shared.accounts.relay_aad(), pill: &pill, hosted: &hosted };
        map_message(&ctx, message, Some(&before))
    };
    if let Some((sender, _)) = message.sender() {
        shared.watched.saw(&sender, &conversation.room_id());
    }
    for event in events {
        if shared.echoes.take(event.event_id.as_str()) {
            continue;
        }
        shared.sink.push(event).await?;
    }
    // A deleted message's reactions went with it; an undo re-reads them (deduplicated).
    let seen = if message.deleted_date_time.is_some() { BTreeSet::new() } else { seen };
    reactions.keep(shared.state.as_ref(), &key, &before, seen).await
}
