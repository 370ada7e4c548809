//! brygga-core: the domain of the bridge, without I/O.
//!
//! Typed ids, the canonical event model, the adapter, store and Matrix-side
//! contracts, ghost naming, degradation rules, per-portal ordered queues and
//! the router that moves events between the two sides.

pub mod account;
pub mod adapter;
pub mod backoff;
pub mod bridge_info;
pub mod commands;
pub mod degrade;
pub mod error;
pub mod event;
pub mod host;
pub mod ids;
pub mod matrix;
pub mod matrix_file;
pub mod naming;
pub mod observe;
pub mod queue;
pub mod router;
pub mod running;
pub mod shard;
pub mod status;
pub mod store;
pub mod txn;
pub mod webhook;

pub use account::{AccountCommand, CommandReplies};
pub use adapter::{
    Ack, Adapter, AdapterContext, AdapterFactory, AdapterState, Capabilities, InboundSink, MatrixMedia, MediaBytes,
    MediaLinks, MemoryState, NoPortals, PortalDirectory, RemoteMedia, push_until_stored,
};
pub use backoff::Backoff;
pub use error::{BridgeError, InvalidId, StoreError};
pub use event::{
    Attachment, EventBody, InboundEvent, MatrixEvent, MatrixSender, MediaSource, Membership, Message, OutboundEvent,
    Presence, RemoteSender, SendReceipt, Text,
};
pub use host::{AdapterHost, HostError};
pub use ids::{
    AdapterKind, MatrixEventId, MatrixRoomId, MatrixUserId, PortalKey, RemoteMessageId, RemoteRoomId, RemoteUserId,
    TenantId,
};
pub use matrix::{
    AppserviceHandler, BridgeInfo, DecryptFailure, DirectRoom, GhostProfile, MatrixSide, RoomEncryption, RoomSpec,
    bridge_state_key,
};
pub use matrix_file::{FileKey, MatrixFile};
pub use observe::DeliveryObserver;
pub use queue::{Queues, RetryPolicy};
pub use router::Router;
pub use running::RunningAdapters;
pub use shard::{Lease, LeaseStore, Node, Ownership, OwnsAll};
pub use status::{AdapterStatus, Health, StatusBoard, StatusReporter};
pub use store::{
    AdapterConfig, AdapterCounts, AdminToken, Direction, EncryptionPolicy, Ghost, LinkedAccount, MappingKind,
    MediaPolicy, MessageMapping, NewOutboxEntry, OutboxEntry, Portal, Store, StoreResult, Tenant, TenantSettings,
    TxnOutcome,
};
pub use webhook::{WebhookRequest, WebhookResponse};
