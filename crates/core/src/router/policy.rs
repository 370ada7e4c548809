//! A tenant's federation policy: which Matrix servers its portals and
//! ghosts deal with.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::BridgeError;
use crate::event::{Attachment, EventBody, MatrixEvent, Membership, Message, Text};
use crate::ids::{MatrixRoomId, MatrixUserId, TenantId};
use crate::router::delivery::Delivery;
use crate::store::{MediaPolicy, Tenant};
use crate::txn::txn_id;

/// A tenant's policies are re-read from the store after this long.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// Tenants as last read (`None`: unknown), with when they were read.
pub(crate) type TenantCache = Mutex<HashMap<TenantId, (Instant, Option<Tenant>)>>;

impl Delivery {
    /// Sets the tenant's server ACL in each of its portal rooms (after its
    /// allowed servers changed); returns the rooms where that failed.
    pub(crate) async fn apply_server_acl(&self, tenant: &Tenant) -> Result<Vec<MatrixRoomId>, BridgeError> {
        let own = self.matrix.bot_user_id().server_name().to_owned();
        let content = crate::matrix::server_acl_content(&tenant.settings.allowed_servers, &own);
        let mut failed = Vec::new();
        for portal in self.store.portals(&tenant.id).await? {
            let Some(room) = portal.room_id else { continue };
            if let Err(err) = self.matrix.set_state(&room, "m.room.server_acl", "", &content).await {
                tracing::warn!(portal = %portal.key, error = %err, "setting the server ACL failed");
                failed.push(room);
            }
        }
        Ok(failed)
    }

    /// Refuses an invite of `ghost` when the tenant's policy does not allow
    /// the inviter's server or the room's encryption: the ghost rejects it,
    /// with the reason as the inviter's notice. Returns whether it did.
    pub(crate) async fn refused_invite(
        &self,
        tenant: &TenantId,
        event: &MatrixEvent,
        ghost: &MatrixUserId,
    ) -> Result<bool, BridgeError> {
        let Some(tenant) = self.store.tenant(tenant).await? else { return Ok(false) };
        let own = self.matrix.bot_user_id().server_name();
        let reason = match invite_refusal(&tenant, &event.sender, own) {
            Some(reason) => reason,
            None => match self.encryption_refusal(&tenant.id, &event.room_id).await? {
                Some(reason) => reason,
                None => return Ok(false),
            },
        };
        let txn = txn_id(&["refuse", tenant.id.as_str(), event.event_id.as_str()]);
        let leave = EventBody::Membership { membership: Membership::Leave, display_name: None, reason: Some(reason) };
        self.matrix.send(&event.room_id, ghost, &txn, &leave).await?;
        tracing::info!(tenant = %tenant.id, server = event.sender.server_name(), "invite refused by the tenant's policy");
        Ok(true)
    }

    /// The tenant with its policies, read from the store every few seconds at most.
    pub(crate) async fn tenant_policies(&self, tenant: &TenantId) -> Result<Option<Tenant>, BridgeError> {
        if let Some((read, known)) = self.tenants.lock().expect("tenant cache poisoned").get(tenant)
            && read.elapsed() < POLICY_TTL
        {
            return Ok(known.clone());
        }
        let known = self.store.tenant(tenant).await?;
        self.tenants.lock().expect("tenant cache poisoned").insert(tenant.clone(), (Instant::now(), known.clone()));
        Ok(known)
    }

    /// The tenant's media policy.
    pub(crate) async fn media_policy(&self, tenant: &TenantId) -> Result<MediaPolicy, BridgeError> {
        Ok(self.tenant_policies(tenant).await?.map(|t| t.settings.media).unwrap_or_default())
    }

    /// Drops the attachments the tenant's policy keeps from crossing; each
    /// is named in the text instead, so the other side knows a file was left out.
    pub(crate) async fn filter_media<R>(&self, tenant: &TenantId, message: &mut Message<R>) -> Result<(), BridgeError> {
        if message.attachments.is_empty() {
            return Ok(());
        }
        let policy = self.media_policy(tenant).await?;
        let (kept, refused): (Vec<Attachment>, Vec<Attachment>) =
            std::mem::take(&mut message.attachments).into_iter().partition(|a| policy.allows(a.size));
        message.attachments = kept;
        for file in refused {
            name_left_out(&mut message.text, &file.name);
        }
        Ok(())
    }
}

/// Names a file that did not cross in a message's text.
pub(crate) fn name_left_out(text: &mut Text, name: &str) {
    text.name_file_left_out(name);
}

/// Why an invite from `inviter` to one of the tenant's ghosts is refused,
/// or `None` when the tenant's policy allows the inviter's server (its own
/// homeserver always is).
pub(crate) fn invite_refusal(tenant: &Tenant, inviter: &MatrixUserId, own_server: &str) -> Option<String> {
    let allowed = &tenant.settings.allowed_servers;
    let server = inviter.server_name();
    if allowed.is_empty() || server == own_server || allowed.iter().any(|s| s == server) {
        return None;
    }
    Some(format!("{} does not federate with {server}: invites from there are refused", tenant.display_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    #[test]
    fn only_listed_servers_and_our_own_may_invite() {
        let mut tenant = Tenant::new(TenantId::new("fk").unwrap(), "FK");
        let user = |id: &str| MatrixUserId::new(id).unwrap();
        assert_eq!(invite_refusal(&tenant, &user("@eve:evil.example"), "hub.example"), None, "no list: any");
        tenant.settings.allowed_servers = vec!["agency.example".into()];
        assert_eq!(invite_refusal(&tenant, &user("@ann:agency.example"), "hub.example"), None);
        assert_eq!(invite_refusal(&tenant, &user("@alice:hub.example"), "hub.example"), None);
        let refused = invite_refusal(&tenant, &user("@eve:evil.example"), "hub.example").unwrap();
        assert!(refused.contains("FK") && refused.contains("evil.example"), "{refused}");
    }
}
