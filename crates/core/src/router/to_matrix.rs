//! Remote to Matrix: one stored inbound event becomes Matrix events sent by
//! the sender's ghost, with references resolved through the message map.

use crate::error::BridgeError;
use crate::event::{Attachment, EventBody, InboundEvent, MediaSource, Membership, Message, Text};
use crate::ids::{MatrixEventId, MatrixRoomId, MatrixUserId, PortalKey, RemoteMessageId};
use crate::matrix::DirectRoom;
use crate::matrix_file::MatrixFile;
use crate::router::delivery::{Delivery, NewRoom};
use crate::router::refs::reaction_identity;
use crate::store::{MappingKind, MessageMapping, OutboxEntry};
use crate::txn::txn_id;

impl Delivery {
    pub(crate) async fn deliver_to_matrix(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        let event: InboundEvent = serde_json::from_str(&entry.payload)
            .map_err(|e| BridgeError::permanent(format!("stored inbound event does not decode: {e}")))?;
        let portal = &entry.portal;
        // A message whose id is already mapped was bridged before: an echo of
        // one we sent (a platform replaying its history) or a repeat.
        if matches!(event.body, EventBody::Message(_)) && !self.matrix_parts(portal, &event.event_id).await?.is_empty()
        {
            tracing::debug!(portal = %portal, "message already bridged; not sent again");
            return Ok(Vec::new());
        }
        let ghost = self.ensure_ghost(&portal.tenant, &portal.kind, &event.sender).await?;
        let direct = self
            .adapters
            .get(&portal.tenant, &portal.kind)
            .and_then(|adapter| adapter.direct_peer(&portal.room))
            .map(|peer| DirectRoom { ghost: ghost.clone(), peer });
        let new = NewRoom { name: event.room_name.as_deref(), direct, ..NewRoom::default() };
        let room = self.ensure_room(portal, new).await?;
        // Joining a ghost only to have it leave would be noise in the room.
        let leaving = matches!(event.body, EventBody::Membership { membership: Membership::Leave, .. });
        if !leaving {
            self.matrix.ensure_joined(&room, &ghost).await?;
        }
        if self.refused_to_matrix(portal, &room, &event).await? {
            return Ok(Vec::new());
        }
        let send = Sender { delivery: self, portal, room: &room, ghost: &ghost, key: &entry.dedupe_key };
        match event.body {
            EventBody::Message(message) => send.message(message, &event.event_id, &event.aliases).await,
            EventBody::Edit { target, text } => match send.first_part(&target).await? {
                Some(target) => send.one(0, EventBody::Edit { target, text }).await.map(|_| Vec::new()),
                // The original never reached Matrix: show the correction as a new message.
                None => {
                    let marked = Text { body: format!("* {}", text.body), html: text.html.map(|h| format!("* {h}")) };
                    send.message(Message::text(marked), &event.event_id, &[]).await
                }
            },
            EventBody::Redaction { target, reason } => {
                let parts = self.matrix_parts(portal, &target).await?;
                for (i, part) in parts.into_iter().enumerate() {
                    let body = EventBody::Redaction { target: part.matrix_event.clone(), reason: reason.clone() };
                    let Err(err) = send.one(i as u32, body.clone()).await else { continue };
                    if err.is_transient() {
                        return Err(err);
                    }
                    // The platform may not say who deleted (or the adapter lost
                    // track), or a platform moderator's ghost may lack the power:
                    // a ghost's message is removed by its author, a Matrix user's
                    // by the bot, as far as the room lets it.
                    let remover = match self.matrix.event_sender(&room, &part.matrix_event).await? {
                        Some(author) if author != ghost && self.namer.parse_ghost(&author).is_some() => author,
                        Some(author) if self.namer.parse_ghost(&author).is_none() => self.matrix.bot_user_id().clone(),
                        _ => return Err(err),
                    };
                    self.matrix.ensure_joined(&room, &remover).await?;
                    let by_remover =
                        Sender { delivery: self, portal, room: &room, ghost: &remover, key: &entry.dedupe_key };
                    by_remover.one(i as u32, body).await?;
                }
                Ok(Vec::new())
            }
            EventBody::Reaction { target, key, removed } => {
                let identity = reaction_identity(&target, event.sender.id.as_str(), &key)?;
                if removed {
                    if let Some(reaction) = send.first_part(&identity).await? {
                        send.one(0, EventBody::Redaction { target: reaction, reason: None }).await?;
                    }
                    return Ok(Vec::new());
                }
                let Some(target) = send.first_part(&target).await? else {
                    return Ok(Vec::new());
                };
                let id = send.one(0, EventBody::Reaction { target, key, removed: false }).await?;
                Ok(id
                    .map(|id| MessageMapping::new(portal.clone(), id, identity, 0, MappingKind::Reaction))
                    .into_iter()
                    .collect())
            }
            EventBody::ReadReceipt { up_to } => match send.first_part(&up_to).await? {
                Some(up_to) => send.one(0, EventBody::ReadReceipt { up_to }).await.map(|_| Vec::new()),
                None => Ok(Vec::new()),
            },
            other => {
                let body =
                    other.without_references().ok_or_else(|| BridgeError::permanent("unsupported event kind"))?;
                send.one(0, body).await.map(|_| Vec::new())
            }
        }
    }

    /// Delivers an ephemeral remote event (typing, presence, receipt) at once,
    /// without storing it; only to portals and ghosts that already exist.
    pub(crate) async fn deliver_ephemeral_to_matrix(
        &self,
        portal: &PortalKey,
        event: InboundEvent,
    ) -> Result<(), BridgeError> {
        let Some(room) = self.existing_room(portal).await? else {
            return Ok(());
        };
        let ghost = self.ensure_ghost(&portal.tenant, &portal.kind, &event.sender).await?;
        let key = format!("ephemeral:{}", event.event_id);
        let send = Sender { delivery: self, portal, room: &room, ghost: &ghost, key: &key };
        let body = match event.body {
            EventBody::ReadReceipt { up_to } => match send.first_part(&up_to).await? {
                Some(up_to) => EventBody::ReadReceipt { up_to },
                None => return Ok(()),
            },
            other if other.is_ephemeral() => {
                other.without_references().ok_or_else(|| BridgeError::permanent("unsupported event kind"))?
            }
            _ => return Err(BridgeError::permanent("not an ephemeral event")),
        };
        send.one(0, body).await.map(|_| ())
    }
}

/// Sends the parts of one inbound event as its ghost.
struct Sender<'a> {
    delivery: &'a Delivery,
    portal: &'a PortalKey,
    room: &'a MatrixRoomId,
    ghost: &'a MatrixUserId,
    key: &'a str,
}

impl Sender<'_> {
    async fn one(&self, part: u32, body: EventBody<MatrixEventId>) -> Result<Option<MatrixEventId>, BridgeError> {
        let p = self.portal;
        let txn = txn_id(&["in", p.tenant.as_str(), p.kind.as_str(), p.room.as_str(), self.key, &part.to_string()]);
        self.delivery.matrix.send(self.room, self.ghost, &txn, &body).await
    }

    async fn first_part(&self, remote: &RemoteMessageId) -> Result<Option<MatrixEventId>, BridgeError> {
        let parts = self.delivery.matrix_parts(self.portal, remote).await?;
        Ok(parts.into_iter().next().map(|m| m.matrix_event))
    }

    /// Sends a message as a text part plus one part per attachment.
    async fn message(
        &self,
        mut message: Message<RemoteMessageId>,
        remote_id: &RemoteMessageId,
        aliases: &[RemoteMessageId],
    ) -> Result<Vec<MessageMapping>, BridgeError> {
        let reply_to = match &message.reply_to {
            Some(r) => self.first_part(r).await?,
            None => None,
        };
        let thread_root = match &message.thread_root {
            Some(r) => self.first_part(r).await?,
            None => None,
        };
        self.delivery.filter_media(&self.portal.tenant, &mut message).await?;
        let mut parts = Vec::new();
        let mut text = message.text;
        let mut files = Vec::new();
        for attachment in message.attachments {
            match self.upload(&attachment).await? {
                Some(file) => files.push(Attachment { source: MediaSource::Matrix(file), ..attachment }),
                None => super::policy::name_left_out(&mut text, &attachment.name),
            }
        }
        let template = |text: Text, attachments: Vec<Attachment>| Message {
            text,
            attachments,
            reply_to: reply_to.clone(),
            thread_root: thread_root.clone(),
            emote: message.emote,
            notice: message.notice,
        };
        if !text.body.is_empty() || files.is_empty() {
            parts.push(template(text, Vec::new()));
        }
        for file in files {
            parts.push(template(Text::plain(file.name.clone()), vec![file]));
        }
        let mut mappings = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            if let Some(id) = self.one(i as u32, EventBody::Message(part)).await? {
                mappings.push(MessageMapping::new(
                    self.portal.clone(),
                    id,
                    remote_id.clone(),
                    i as u32,
                    MappingKind::Message,
                ));
            }
        }
        // Other ids of the message point at its first part.
        if let Some(first) = mappings.first().map(|m| m.matrix_event.clone()) {
            for alias in aliases {
                let mapping =
                    MessageMapping::new(self.portal.clone(), first.clone(), alias.clone(), 0, MappingKind::Alias);
                mappings.push(mapping);
            }
        }
        Ok(mappings)
    }

    /// Re-uploads a remote file to Matrix (encrypted in an encrypted room);
    /// `None` when it cannot be fetched or the tenant's media policy keeps it out.
    async fn upload(&self, attachment: &Attachment) -> Result<Option<MatrixFile>, BridgeError> {
        let locator = match &attachment.source {
            MediaSource::Matrix(file) => return Ok(Some(file.clone())),
            MediaSource::Remote { locator } => locator,
        };
        let Some(adapter) = self.delivery.adapters.get(&self.portal.tenant, &self.portal.kind) else {
            return Err(BridgeError::transient("adapter not running; cannot fetch media"));
        };
        let Some(media) = adapter.media() else {
            return Ok(None);
        };
        match media.fetch(locator).await {
            // The announced size may have been wrong: the policy holds for the bytes themselves.
            Ok(bytes)
                if !self.delivery.media_policy(&self.portal.tenant).await?.allows(Some(bytes.data.len() as u64)) =>
            {
                Ok(None)
            }
            Ok(bytes) => {
                let file = self.delivery.matrix.upload(self.ghost, Some(self.room), &attachment.name, bytes).await?;
                Ok(Some(file))
            }
            Err(err) if err.is_transient() => Err(err),
            Err(err) => {
                tracing::warn!(portal = %self.portal, error = %err, "remote file could not be fetched; sending its name");
                Ok(None)
            }
        }
    }
}
