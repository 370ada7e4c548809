//! A tenant's encryption policy (allow, require, deny) applied to its
//! portals, and the bridge info kept in step with the room's encryption.

use crate::error::BridgeError;
use crate::event::{EventBody, InboundEvent, MatrixEvent};
use crate::ids::{MatrixRoomId, PortalKey, TenantId};
use crate::matrix::{BRIDGE_STATE_TYPES, BridgeInfo, RoomEncryption};
use crate::router::delivery::Delivery;
use crate::store::{EncryptionPolicy, Tenant};
use crate::txn::txn_id;

impl Delivery {
    /// Why the tenant's encryption policy keeps `room` from being bridged, if it does.
    pub(crate) async fn encryption_refusal(
        &self,
        tenant: &TenantId,
        room: &MatrixRoomId,
    ) -> Result<Option<String>, BridgeError> {
        let Some(tenant) = self.tenant_policies(tenant).await? else { return Ok(None) };
        if tenant.settings.encryption == EncryptionPolicy::Allow {
            return Ok(None);
        }
        Ok(refusal(&tenant, self.matrix.room_encryption(room).await?))
    }

    /// Keeps a Matrix event of a refused room from crossing; a message's
    /// sender is told. Returns whether it was refused.
    pub(crate) async fn refused_from_matrix(
        &self,
        portal: &PortalKey,
        event: &MatrixEvent,
    ) -> Result<bool, BridgeError> {
        let Some(reason) = self.encryption_refusal(&portal.tenant, &event.room_id).await? else { return Ok(false) };
        tracing::info!(portal = %portal, event = event.body.kind_name(), "not bridged by the encryption policy");
        if matches!(event.body, EventBody::Message(_) | EventBody::Encrypted { .. } | EventBody::Edit { .. }) {
            let text = format!("A message from {} was not bridged: {reason}.", event.sender);
            let txn = txn_id(&["refused", portal.tenant.as_str(), event.event_id.as_str()]);
            self.matrix.notify(&event.room_id, &txn, &text).await?;
        }
        Ok(true)
    }

    /// Keeps a remote event's content out of a refused room; a message is
    /// named in a notice there. Returns whether it was refused.
    pub(crate) async fn refused_to_matrix(
        &self,
        portal: &PortalKey,
        room: &MatrixRoomId,
        event: &InboundEvent,
    ) -> Result<bool, BridgeError> {
        let content = matches!(
            event.body,
            EventBody::Message(_) | EventBody::Edit { .. } | EventBody::Redaction { .. } | EventBody::Reaction { .. }
        );
        if !content {
            return Ok(false);
        }
        let Some(reason) = self.encryption_refusal(&portal.tenant, room).await? else { return Ok(false) };
        tracing::info!(portal = %portal, event = event.body.kind_name(), "not bridged by the encryption policy");
        if let EventBody::Message(_) = event.body {
            let sender = event.sender.display_name.as_deref().unwrap_or(event.sender.id.as_str());
            let text = format!("A message from {sender} ({}) was not bridged: {reason}.", portal.kind);
            let txn = txn_id(&["refused-in", portal.tenant.as_str(), portal.room.as_str(), event.event_id.as_str()]);
            self.matrix.notify(room, &txn, &text).await?;
        }
        Ok(true)
    }

    /// The room's encryption changed: its bridge info says so, and when the
    /// tenant's policy now refuses the room, the room is told.
    pub(crate) async fn encryption_changed(&self, portal: &PortalKey, event: &MatrixEvent) -> Result<(), BridgeError> {
        let room = &event.room_id;
        let state = self.matrix.room_encryption(room).await?;
        let name = self.store.portal(portal).await?.and_then(|p| p.name);
        let info = BridgeInfo {
            kind: portal.kind.clone(),
            tenant: portal.tenant.clone(),
            room: portal.room.clone(),
            room_name: name,
            encrypted: state != RoomEncryption::Clear,
        };
        let content = info.content(self.matrix.bot_user_id());
        for kind in BRIDGE_STATE_TYPES {
            if let Err(err) = self.matrix.set_state(room, kind, &info.state_key(), &content).await {
                // A linked room may not give the bot that power; bridging goes on.
                tracing::warn!(portal = %portal, error = %err, "bridge info not updated");
                break;
            }
        }
        if let Some(reason) = self.encryption_refusal(&portal.tenant, room).await? {
            let text = format!("This room is no longer bridged: {reason}.");
            let txn = txn_id(&["refused-room", portal.tenant.as_str(), event.event_id.as_str()]);
            self.matrix.notify(room, &txn, &text).await?;
        }
        Ok(())
    }
}

/// Why a room in `state` is not bridged for `tenant`, or `None` when it is.
pub fn refusal(tenant: &Tenant, state: RoomEncryption) -> Option<String> {
    let name = &tenant.display_name;
    match (tenant.settings.encryption, state) {
        (EncryptionPolicy::Require, RoomEncryption::Clear) => {
            Some(format!("{name} bridges only encrypted rooms, and this room is not encrypted"))
        }
        (EncryptionPolicy::Require, RoomEncryption::TurnedOff) => {
            Some(format!("{name} bridges only encrypted rooms, and this room turned encryption off"))
        }
        (EncryptionPolicy::Deny, RoomEncryption::Encrypted | RoomEncryption::TurnedOff) => {
            Some(format!("{name} does not bridge encrypted rooms"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(policy: EncryptionPolicy) -> Tenant {
        let mut tenant = Tenant::new(TenantId::new("fk").unwrap(), "FK");
        tenant.settings.encryption = policy;
        tenant
    }

    #[test]
    fn allow_bridges_every_room() {
        for state in [RoomEncryption::Clear, RoomEncryption::Encrypted, RoomEncryption::TurnedOff] {
            assert_eq!(refusal(&tenant(EncryptionPolicy::Allow), state), None);
        }
    }

    #[test]
    fn require_bridges_only_rooms_still_encrypted() {
        let require = tenant(EncryptionPolicy::Require);
        assert_eq!(refusal(&require, RoomEncryption::Encrypted), None);
        assert!(refusal(&require, RoomEncryption::Clear).unwrap().contains("not encrypted"));
        assert!(refusal(&require, RoomEncryption::TurnedOff).unwrap().contains("turned encryption off"));
    }

    #[test]
    fn deny_bridges_only_clear_rooms() {
        let deny = tenant(EncryptionPolicy::Deny);
        assert_eq!(refusal(&deny, RoomEncryption::Clear), None);
        assert!(refusal(&deny, RoomEncryption::Encrypted).unwrap().contains("FK does not bridge encrypted rooms"));
        assert!(refusal(&deny, RoomEncryption::TurnedOff).is_some());
    }
}
