//! Management rooms: where a Matrix user gives the bridge bot commands.

use std::sync::Arc;

use brygga_core::Store;

use super::{add_tenant, mxid, room_id, tid};

/// A management room is remembered, re-owned by a later invite, survives
/// the removal of any tenant (it is bridge-wide) and can be forgotten.
pub async fn management_rooms_remember_forget_and_outlive_tenants(store: Arc<dyn Store>) {
    let (dm, other) = (room_id("!dm:hub"), room_id("!other:hub"));
    assert_eq!(store.management_room(&dm).await.unwrap(), None);
    store.put_management_room(&dm, &mxid("@ann:hub")).await.unwrap();
    store.put_management_room(&other, &mxid("@bo:agency.example")).await.unwrap();
    assert_eq!(store.management_room(&dm).await.unwrap(), Some(mxid("@ann:hub")));
    assert_eq!(store.management_room(&other).await.unwrap(), Some(mxid("@bo:agency.example")));

    store.put_management_room(&dm, &mxid("@cy:hub")).await.unwrap();
    assert_eq!(store.management_room(&dm).await.unwrap(), Some(mxid("@cy:hub")), "a new invite re-owns the room");

    add_tenant(store.as_ref(), "fk").await;
    assert!(store.remove_tenant(&tid("fk")).await.unwrap());
    assert_eq!(store.management_room(&dm).await.unwrap(), Some(mxid("@cy:hub")), "not a tenant's row");

    assert!(store.remove_management_room(&dm).await.unwrap());
    assert!(!store.remove_management_room(&dm).await.unwrap(), "already forgotten");
    assert_eq!(store.management_room(&dm).await.unwrap(), None);
    assert_eq!(store.management_room(&other).await.unwrap(), Some(mxid("@bo:agency.example")));
}
