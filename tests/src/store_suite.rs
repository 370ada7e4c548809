//! The store conformance suite: one set of behaviours every `Store`
//! implementation must show, run against SQLite and PostgreSQL by
//! `tests/store_conformance.rs`. Each case takes a fresh, empty store.

mod concurrency;
mod entities;
mod isolation;
mod management;
mod mapping;
mod outbox;

use brygga_core::{
    AdapterKind, Direction, MappingKind, MatrixEventId, MatrixRoomId, MatrixUserId, MessageMapping, NewOutboxEntry,
    PortalKey, RemoteMessageId, RemoteRoomId, RemoteUserId, Store, Tenant, TenantId,
};

pub use concurrency::{concurrent_enqueues_are_stored_once_in_order, pending_never_skips_a_committed_entry};
pub use entities::{
    adapter_configs_need_a_tenant_and_toggle, adapter_state_by_tenant_and_kind, admin_tokens_by_hash_and_tenant,
    counts_per_tenant_and_kind, ghosts_are_listed_and_searched, ghosts_by_remote_and_matrix_id,
    linked_accounts_link_relink_unlink, portals_by_key_and_room, tenant_crud,
};
pub use isolation::{remove_tenant_deletes_every_row, tenants_never_mix};
pub use management::management_rooms_remember_forget_and_outlive_tenants;
pub use mapping::{aliases_map_to_the_same_event, message_map_both_ways_ordered_by_part, reactions_keep_their_kind};
pub use outbox::{
    complete_marks_done_and_stores_mappings, dead_letter_leaves_pending, enqueue_dedupes_even_after_delivery,
    ingest_is_atomic, ingest_stores_new_and_skips_replayed, pending_is_ordered_and_honours_after_and_limit,
    pending_queues_lists_undelivered_queues, record_failure_counts_attempts,
};

/// A tenant id.
pub fn tid(id: &str) -> TenantId {
    TenantId::new(id).expect("valid tenant id")
}

/// An adapter kind.
pub fn kind(kind: &str) -> AdapterKind {
    AdapterKind::new(kind).expect("valid adapter kind")
}

/// A portal key.
pub fn portal(tenant: &str, adapter: &str, room: &str) -> PortalKey {
    PortalKey::new(tid(tenant), kind(adapter), RemoteRoomId::new(room).expect("valid room"))
}

/// A Matrix user id.
pub fn mxid(id: &str) -> MatrixUserId {
    MatrixUserId::new(id).expect("valid Matrix user id")
}

/// A Matrix room id.
pub fn room_id(id: &str) -> MatrixRoomId {
    MatrixRoomId::new(id).expect("valid Matrix room id")
}

/// A Matrix event id.
pub fn event(id: &str) -> MatrixEventId {
    MatrixEventId::new(id).expect("valid Matrix event id")
}

/// A remote user id.
pub fn remote_user(id: &str) -> RemoteUserId {
    RemoteUserId::new(id).expect("valid remote user id")
}

/// A remote message id.
pub fn remote_msg(id: &str) -> RemoteMessageId {
    RemoteMessageId::new(id).expect("valid remote message id")
}

/// An outbox entry whose payload names its key.
pub fn entry(direction: Direction, portal: &PortalKey, key: &str) -> NewOutboxEntry {
    NewOutboxEntry::new(direction, portal.clone(), key, format!("payload of {key}"))
}

/// A message mapping.
pub fn mapping(portal: &PortalKey, ev: &str, remote: &str, part: u32, kind: MappingKind) -> MessageMapping {
    MessageMapping::new(portal.clone(), event(ev), remote_msg(remote), part, kind)
}

/// Creates a tenant with default settings.
pub async fn add_tenant(store: &dyn Store, id: &str) {
    store.upsert_tenant(&Tenant::new(tid(id), format!("Agency {id}"))).await.expect("upsert tenant");
}

/// Enqueues an entry that must be new and returns its seq.
pub async fn enqueue_new(store: &dyn Store, entry: NewOutboxEntry) -> i64 {
    store.enqueue(entry).await.expect("enqueue").expect("entry is new, so it gets a seq")
}
