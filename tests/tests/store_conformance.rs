//! Runs every case of `brygga_e2e::store_suite` against SQLite (a file in a
//! temp dir) and PostgreSQL (a fresh database on the harness's cluster).

use std::sync::Arc;

use brygga_core::Store;
use brygga_store::SqlStore;

/// A store on a new SQLite file; the dir must outlive the store.
async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("brygga.db").display());
    let store = SqlStore::connect(&url).await.expect("open SQLite store");
    assert_eq!(store.backend_name(), "sqlite");
    (Arc::new(store), dir)
}

/// A store on a new, empty PostgreSQL database.
async fn postgres_store() -> Arc<dyn Store> {
    let url =
        tokio::task::spawn_blocking(brygga_harness::postgres::fresh_database_url).await.expect("start PostgreSQL");
    let store = SqlStore::connect(&url).await.expect("open PostgreSQL store");
    assert_eq!(store.backend_name(), "postgres");
    Arc::new(store)
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = super::sqlite_store().await;
                    brygga_e2e::store_suite::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = super::postgres_store().await;
                    brygga_e2e::store_suite::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    tenant_crud,
    remove_tenant_deletes_every_row,
    adapter_configs_need_a_tenant_and_toggle,
    ghosts_by_remote_and_matrix_id,
    linked_accounts_link_relink_unlink,
    portals_by_key_and_room,
    adapter_state_by_tenant_and_kind,
    admin_tokens_by_hash_and_tenant,
    ghosts_are_listed_and_searched,
    counts_per_tenant_and_kind,
    message_map_both_ways_ordered_by_part,
    reactions_keep_their_kind,
    aliases_map_to_the_same_event,
    enqueue_dedupes_even_after_delivery,
    pending_is_ordered_and_honours_after_and_limit,
    pending_queues_lists_undelivered_queues,
    complete_marks_done_and_stores_mappings,
    record_failure_counts_attempts,
    dead_letter_leaves_pending,
    ingest_stores_new_and_skips_replayed,
    ingest_is_atomic,
    tenants_never_mix,
    concurrent_enqueues_are_stored_once_in_order,
    pending_never_skips_a_committed_entry,
    management_rooms_remember_forget_and_outlive_tenants,
);
