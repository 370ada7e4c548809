//! Message-map rows of deliveries whose `complete` has not committed yet.
//!
//! A queue delivers its next entry while the previous entry's mappings are
//! still being written. An edit, reply, reaction or redaction right after its
//! target must nevertheless find the target, so lookups consult these rows
//! before the store. Rows are dropped once their entry's commit is durable,
//! after which the store answers.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::{MatrixEventId, PortalKey, RemoteMessageId, TenantId};
use crate::store::MessageMapping;

/// Uncommitted mappings, keyed by the outbox seq that produced them.
#[derive(Default)]
pub(crate) struct RecentMappings {
    by_seq: Mutex<HashMap<i64, Vec<MessageMapping>>>,
}

impl RecentMappings {
    /// Remembers the mappings of a delivered entry until [`Self::settle`].
    pub(crate) fn record(&self, seq: i64, mappings: &[MessageMapping]) {
        if mappings.is_empty() {
            return;
        }
        self.lock().insert(seq, mappings.to_vec());
    }

    /// Forgets an entry's mappings: they are in the store now.
    pub(crate) fn settle(&self, seq: i64) {
        self.lock().remove(&seq);
    }

    /// The rows of a remote message, ordered like the store orders them;
    /// `None` when no uncommitted delivery produced any.
    pub(crate) fn by_remote(&self, portal: &PortalKey, remote: &RemoteMessageId) -> Option<Vec<MessageMapping>> {
        self.find(|m| &m.portal == portal && &m.remote_id == remote, |m| (m.part, m.matrix_event.to_string()))
    }

    /// The rows of a Matrix event in a tenant, ordered like the store does.
    pub(crate) fn by_matrix(&self, tenant: &TenantId, event: &MatrixEventId) -> Option<Vec<MessageMapping>> {
        self.find(|m| &m.portal.tenant == tenant && &m.matrix_event == event, |m| (m.part, m.remote_id.to_string()))
    }

    fn find(
        &self,
        wanted: impl Fn(&MessageMapping) -> bool,
        order: impl Fn(&MessageMapping) -> (u32, String),
    ) -> Option<Vec<MessageMapping>> {
        let by_seq = self.lock();
        if by_seq.is_empty() {
            return None;
        }
        let mut found: Vec<MessageMapping> = by_seq.values().flatten().filter(|m| wanted(m)).cloned().collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by_key(|m| order(m));
        found.dedup();
        Some(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<MessageMapping>>> {
        self.by_seq.lock().expect("recent mappings poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AdapterKind, RemoteRoomId};
    use crate::store::MappingKind;

    fn mapping(event: &str, remote: &str, part: u32) -> MessageMapping {
        let portal = PortalKey::new(
            TenantId::new("t").unwrap(),
            AdapterKind::new("k").unwrap(),
            RemoteRoomId::new("r").unwrap(),
        );
        let (event, remote) = (MatrixEventId::new(event).unwrap(), RemoteMessageId::new(remote).unwrap());
        MessageMapping::new(portal, event, remote, part, MappingKind::Message)
    }

    #[test]
    fn uncommitted_rows_are_found_until_settled() {
        let recent = RecentMappings::default();
        let (a1, a0) = (mapping("$b", "m1", 1), mapping("$a", "m1", 0));
        recent.record(7, &[a1.clone(), a0.clone()]);
        recent.record(8, &[]);
        let portal = a0.portal.clone();
        let remote = a0.remote_id.clone();
        assert_eq!(recent.by_remote(&portal, &remote), Some(vec![a0.clone(), a1.clone()]));
        assert_eq!(recent.by_matrix(&portal.tenant, &a1.matrix_event), Some(vec![a1.clone()]));
        assert_eq!(recent.by_remote(&portal, &RemoteMessageId::new("other").unwrap()), None);
        recent.settle(7);
        assert_eq!(recent.by_remote(&portal, &remote), None);
        assert_eq!(recent.by_matrix(&portal.tenant, &a1.matrix_event), None);
    }
}
