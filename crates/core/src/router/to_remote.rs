//! Matrix to remote: one stored Matrix event becomes an adapter call, with
//! references mapped to remote ids and unsupported features degraded.

use crate::degrade::degrade;
use crate::error::BridgeError;
use crate::event::{EventBody, MatrixEvent, MatrixSender, Membership, Message, OutboundEvent, SendReceipt};
use crate::ids::{MatrixEventId, MatrixUserId, PortalKey, RemoteMessageId, RemoteUserId};
use crate::router::delivery::Delivery;
use crate::router::refs::{parse_reaction_identity, reaction_identity};
use crate::store::{MappingKind, MessageMapping, OutboxEntry, Portal};
use crate::txn::txn_id;

impl Delivery {
    pub(crate) async fn deliver_to_remote(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        let event: MatrixEvent = serde_json::from_str(&entry.payload)
            .map_err(|e| BridgeError::permanent(format!("stored Matrix event does not decode: {e}")))?;
        let portal = &entry.portal;
        let Some(adapter) = self.adapters.get(&portal.tenant, &portal.kind) else {
            // Disabled or not yet started: keep it queued until it runs.
            return Err(BridgeError::transient(format!("adapter {} of {} is not running", portal.kind, portal.tenant)));
        };
        if let EventBody::RoomEncryption { .. } = event.body {
            self.encryption_changed(portal, &event).await?;
            return Ok(Vec::new());
        }
        if self.invited_ghost(portal, &event).is_none() && self.refused_from_matrix(portal, &event).await? {
            return Ok(Vec::new());
        }
        let Some(event) = self.unseal(portal, event).await? else { return Ok(Vec::new()) };
        if let Some(ghost) = self.invited_ghost(portal, &event) {
            // Our ghost was invited (a direct chat, or into a portal): it
            // accepts, unless the tenant does not federate with the inviter.
            if !self.refused_invite(&portal.tenant, &event, &ghost).await? {
                self.matrix.ensure_joined(&event.room_id, &ghost).await?;
            }
            return Ok(Vec::new());
        }
        let caps = adapter.capabilities();
        let bodies = self.map_to_remote(portal, &event).await?;
        let sender = self.names.sender_of(self.matrix.as_ref(), &event).await;
        let target_aliases = self.target_aliases(portal, &event).await?;
        let mut mappings = Vec::new();
        for (part, (body, mapping)) in bodies.into_iter().enumerate() {
            let Some(body) = degrade(body, &caps) else { continue };
            let outbound = OutboundEvent {
                room: portal.room.clone(),
                txn_id: txn_id(&["out", portal.tenant.as_str(), event.event_id.as_str(), &part.to_string()]),
                sender: sender.clone(),
                target: target_of(&event),
                target_remote: self.target_remote(portal, &event),
                body,
                target_aliases: target_aliases.clone(),
            };
            let SendReceipt { remote_ids, aliases } = adapter.send(&outbound).await?;
            match mapping {
                Mapping::Message => {
                    let new = |remote, part, kind| {
                        MessageMapping::new(portal.clone(), event.event_id.clone(), remote, part, kind)
                    };
                    for (i, remote) in remote_ids.into_iter().enumerate() {
                        mappings.push(new(remote, i as u32, MappingKind::Message));
                    }
                    mappings.extend(aliases.into_iter().map(|alias| new(alias, 0, MappingKind::Alias)));
                }
                Mapping::Reaction(identity) => {
                    let kind = MappingKind::Reaction;
                    mappings.push(MessageMapping::new(portal.clone(), event.event_id.clone(), identity, 0, kind));
                }
                Mapping::None => {}
            }
        }
        Ok(mappings)
    }

    /// A lobby entry: a bot command handed over by another process, or an
    /// invitation of a ghost into a room that is no portal.
    pub(crate) async fn deliver_lobby(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError> {
        let event: MatrixEvent = serde_json::from_str(&entry.payload)
            .map_err(|e| BridgeError::permanent(format!("stored Matrix event does not decode: {e}")))?;
        if let EventBody::Message(_) = &event.body {
            // Answered once; a failure is answered in the room, not retried.
            self.commands.answer_in_lobby(&entry.portal, &event).await;
            return Ok(Vec::new());
        }
        self.open_direct_chat(&entry.portal, &event).await?;
        Ok(Vec::new())
    }

    /// When the invited ghost's platform has a direct chat with the inviter,
    /// the room becomes its portal (a new one replaces an older room) and
    /// the ghost joins; otherwise the invitation is left alone.
    async fn open_direct_chat(&self, lobby: &PortalKey, event: &MatrixEvent) -> Result<(), BridgeError> {
        let Some(ghost) = self.invited_ghost(lobby, event) else { return Ok(()) };
        let Some((_, _, remote)) = self.namer.parse_ghost(&ghost) else { return Ok(()) };
        if self.refused_invite(&lobby.tenant, event, &ghost).await? {
            return Ok(());
        }
        let Some(adapter) = self.adapters.get(&lobby.tenant, &lobby.kind) else {
            return Err(BridgeError::transient(format!("adapter {} of {} is not running", lobby.kind, lobby.tenant)));
        };
        let Some(remote_room) = adapter.direct_room(&remote, &event.sender) else {
            tracing::debug!(room = %event.room_id, "invited ghost has no direct chat with the inviter");
            return Ok(());
        };
        let key = PortalKey::new(lobby.tenant.clone(), lobby.kind.clone(), remote_room);
        let mut portal = self.store.portal(&key).await?.unwrap_or_else(|| Portal::new(key.clone()));
        if portal.room_id.as_ref() != Some(&event.room_id) {
            portal.room_id = Some(event.room_id.clone());
            self.store.upsert_portal(&portal).await?;
            tracing::info!(portal = %key, room = %event.room_id, "direct chat opened from Matrix");
        }
        self.remember_room(&key, &event.room_id);
        self.matrix.ensure_joined(&event.room_id, &ghost).await
    }

    /// Delivers an ephemeral Matrix event (typing, receipt, presence) at once.
    pub(crate) async fn deliver_ephemeral_to_remote(
        &self,
        portal: &PortalKey,
        event: &MatrixEvent,
    ) -> Result<(), BridgeError> {
        let Some(adapter) = self.adapters.get(&portal.tenant, &portal.kind) else {
            return Ok(());
        };
        if self.encryption_refusal(&portal.tenant, &event.room_id).await?.is_some() {
            return Ok(());
        }
        let sender = self.names.sender_of(self.matrix.as_ref(), event).await;
        for (body, _) in self.map_to_remote(portal, event).await? {
            let Some(body) = degrade(body, &adapter.capabilities()) else {
                continue;
            };
            let outbound = OutboundEvent {
                room: portal.room.clone(),
                txn_id: txn_id(&["out", portal.tenant.as_str(), event.event_id.as_str()]),
                sender: sender.clone(),
                target: None,
                target_remote: None,
                body,
                target_aliases: self.target_aliases(portal, event).await?,
            };
            adapter.send(&outbound).await?;
        }
        Ok(())
    }

    /// Maps a Matrix event to the remote events it becomes (usually one).
    async fn map_to_remote(
        &self,
        portal: &PortalKey,
        event: &MatrixEvent,
    ) -> Result<Vec<(EventBody<RemoteMessageId>, Mapping)>, BridgeError> {
        let one = |body, mapping| Ok(vec![(body, mapping)]);
        match &event.body {
            EventBody::Message(m) => {
                let mut message = Message {
                    text: m.text.clone(),
                    attachments: m.attachments.clone(),
                    reply_to: self.first_remote(portal, m.reply_to.as_ref()).await?,
                    thread_root: self.first_remote(portal, m.thread_root.as_ref()).await?,
                    emote: m.emote,
                    notice: m.notice,
                };
                self.filter_media(&portal.tenant, &mut message).await?;
                one(EventBody::Message(message), Mapping::Message)
            }
            EventBody::Edit { target, text } => match self.first_remote(portal, Some(target)).await? {
                Some(target) => one(EventBody::Edit { target, text: text.clone() }, Mapping::None),
                // The original never reached the remote side: the edit's text is all there is.
                None => one(
                    EventBody::Message(Message::text(crate::event::Text {
                        body: format!("* {}", text.body),
                        html: text.html.as_ref().map(|h| format!("* {h}")),
                    })),
                    Mapping::Message,
                ),
            },
            EventBody::Redaction { target, reason } => {
                let parts = self.remote_parts(&portal.tenant, target).await?;
                Ok(parts
                    .into_iter()
                    .filter(|part| part.kind != MappingKind::Alias)
                    .map(|part| match part.kind {
                        MappingKind::Reaction => match parse_reaction_identity(&part.remote_id) {
                            Some((target, _, key)) => {
                                (EventBody::Reaction { target, key, removed: true }, Mapping::None)
                            }
                            None => {
                                (EventBody::Redaction { target: part.remote_id, reason: reason.clone() }, Mapping::None)
                            }
                        },
                        MappingKind::Message | MappingKind::Alias => {
                            (EventBody::Redaction { target: part.remote_id, reason: reason.clone() }, Mapping::None)
                        }
                    })
                    .collect())
            }
            EventBody::Reaction { target, key, removed } => match self.first_remote(portal, Some(target)).await? {
                Some(remote) => {
                    let identity = reaction_identity(&remote, event.sender.as_str(), key)?;
                    let body = EventBody::Reaction { target: remote, key: key.clone(), removed: *removed };
                    one(body, Mapping::Reaction(identity))
                }
                None => Ok(Vec::new()),
            },
            EventBody::ReadReceipt { up_to } => match self.first_remote(portal, Some(up_to)).await? {
                Some(up_to) => one(EventBody::ReadReceipt { up_to }, Mapping::None),
                None => Ok(Vec::new()),
            },
            other => {
                let body = other.clone().without_references();
                one(body.ok_or_else(|| BridgeError::permanent("unsupported event kind"))?, Mapping::None)
            }
        }
    }

    /// The other ids of the message an event targets, for the adapter to pick from.
    async fn target_aliases(
        &self,
        portal: &PortalKey,
        event: &MatrixEvent,
    ) -> Result<Vec<RemoteMessageId>, BridgeError> {
        let target = match &event.body {
            EventBody::Edit { target, .. }
            | EventBody::Redaction { target, .. }
            | EventBody::Reaction { target, .. } => target,
            EventBody::ReadReceipt { up_to } => up_to,
            _ => return Ok(Vec::new()),
        };
        let parts = self.remote_parts(&portal.tenant, target).await?;
        Ok(parts.into_iter().filter(|m| m.kind == MappingKind::Alias).map(|m| m.remote_id).collect())
    }

    /// The remote user behind the ghost a membership event is about, if it is one of this portal's.
    fn target_remote(&self, portal: &PortalKey, event: &MatrixEvent) -> Option<RemoteUserId> {
        let target = target_of(event)?;
        let (kind, tenant, remote) = self.namer.parse_ghost(&target.user_id)?;
        (kind == portal.kind && tenant == portal.tenant).then_some(remote)
    }

    /// The ghost of this portal's adapter that `event` invites, if any.
    fn invited_ghost(&self, portal: &PortalKey, event: &MatrixEvent) -> Option<MatrixUserId> {
        let EventBody::Membership { membership: Membership::Invite, .. } = &event.body else { return None };
        let target = MatrixUserId::new(event.state_key.as_deref()?).ok()?;
        let (kind, tenant, _) = self.namer.parse_ghost(&target)?;
        (kind == portal.kind && tenant == portal.tenant).then_some(target)
    }

    async fn first_remote(
        &self,
        portal: &PortalKey,
        event: Option<&MatrixEventId>,
    ) -> Result<Option<RemoteMessageId>, BridgeError> {
        let Some(event) = event else { return Ok(None) };
        let parts = self.remote_parts(&portal.tenant, event).await?;
        Ok(parts.into_iter().find(|m| m.kind == MappingKind::Message).map(|m| m.remote_id))
    }
}

/// What to record in the message map after a send.
enum Mapping {
    None,
    Message,
    Reaction(RemoteMessageId),
}

/// For membership events about someone else (kicks, invites): who.
fn target_of(event: &MatrixEvent) -> Option<MatrixSender> {
    let state_key = event.state_key.as_deref()?;
    if state_key == event.sender.as_str() {
        return None;
    }
    let user_id = MatrixUserId::new(state_key).ok()?;
    Some(MatrixSender { user_id, display_name: None })
}
