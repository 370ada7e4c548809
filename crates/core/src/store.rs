//! The persistence contract. The core never does I/O itself: it persists
//! through this trait, implemented by `brygga-store` for SQLite and PostgreSQL.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::ids::{
    AdapterKind, MatrixEventId, MatrixRoomId, MatrixUserId, PortalKey, RemoteMessageId, RemoteUserId, TenantId,
};

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Per-tenant settings that are not adapter-specific.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantSettings {
    /// Matrix users invited into every new portal room of the tenant.
    pub invite: Vec<MatrixUserId>,
    /// Matrix server names the tenant's portals may federate with (empty: any).
    pub allowed_servers: Vec<String>,
    /// Days to keep bridged content in the bridge's own store (none: forever).
    pub retention_days: Option<u32>,
    /// Which files may cross.
    pub media: MediaPolicy,
    /// Matrix users who administer the tenant through the bridge bot
    /// (e.g. its `status` command).
    pub matrix_admins: Vec<MatrixUserId>,
    /// Whether the tenant's portals may, must or must not be encrypted rooms.
    pub encryption: EncryptionPolicy,
}

/// A tenant's rule for end-to-bridge encrypted Matrix rooms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EncryptionPolicy {
    /// Follow the room: encrypted rooms are bridged encrypted, clear rooms in clear.
    #[default]
    Allow,
    /// Portals the bridge creates are encrypted; a room that is not
    /// encrypted (or turns encryption off) is not bridged.
    Require,
    /// Encrypted rooms are not bridged, and portals are created in clear.
    Deny,
}

impl EncryptionPolicy {
    /// The name used in config, API and notices.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Require => "require",
            Self::Deny => "deny",
        }
    }
}

/// Which files may cross for a tenant, either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MediaPolicy {
    /// Whether files cross at all.
    pub enabled: bool,
    /// The largest file that crosses, in bytes (none: only the adapters' own limits).
    pub max_bytes: Option<u64>,
}

impl Default for MediaPolicy {
    fn default() -> Self {
        Self { enabled: true, max_bytes: None }
    }
}

impl MediaPolicy {
    /// Whether a file of `size` bytes (when known) may cross.
    pub fn allows(&self, size: Option<u64>) -> bool {
        self.enabled && self.max_bytes.zip(size).is_none_or(|(max, size)| size <= max)
    }
}

/// An agency served by the bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tenant {
    /// The tenant id.
    pub id: TenantId,
    /// Human-readable name.
    pub display_name: String,
    /// Settings.
    pub settings: TenantSettings,
    /// Suspended tenants bridge nothing.
    pub suspended: bool,
}

impl Tenant {
    /// A new, active tenant with default settings.
    pub fn new(id: TenantId, display_name: impl Into<String>) -> Self {
        Self { id, display_name: display_name.into(), settings: TenantSettings::default(), suspended: false }
    }
}

/// One adapter's configuration for one tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdapterConfig {
    /// The tenant.
    pub tenant: TenantId,
    /// The adapter kind.
    pub kind: AdapterKind,
    /// Whether the adapter should run.
    pub enabled: bool,
    /// Adapter-specific settings (credentials included; never logged).
    pub config: serde_json::Value,
}

impl AdapterConfig {
    /// Builds an adapter config.
    pub fn new(tenant: TenantId, kind: AdapterKind, enabled: bool, config: serde_json::Value) -> Self {
        Self { tenant, kind, enabled, config }
    }
}

/// A tenant administrator's API token, kept only as a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdminToken {
    /// Public id of the token (to list and revoke it; not a secret).
    pub id: String,
    /// The tenant it administers.
    pub tenant: TenantId,
    /// Hex SHA-256 of the secret token.
    pub hash: String,
    /// What it is for, as its creator said.
    pub label: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
}

impl AdminToken {
    /// Builds a token record.
    pub fn new(id: impl Into<String>, tenant: TenantId, hash: impl Into<String>, created_at: i64) -> Self {
        Self { id: id.into(), tenant, hash: hash.into(), label: None, created_at }
    }
}

/// A remote user's virtual Matrix user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ghost {
    /// The tenant.
    pub tenant: TenantId,
    /// The adapter kind.
    pub kind: AdapterKind,
    /// The remote user.
    pub remote_user: RemoteUserId,
    /// The ghost's Matrix id.
    pub user_id: MatrixUserId,
    /// Display name last set on Matrix.
    pub display_name: Option<String>,
    /// Avatar (`mxc://`) last set on Matrix.
    pub avatar_mxc: Option<String>,
    /// The remote avatar locator the `avatar_mxc` was made from.
    pub avatar_source: Option<String>,
}

impl Ghost {
    /// A ghost without profile.
    pub fn new(tenant: TenantId, kind: AdapterKind, remote_user: RemoteUserId, user_id: MatrixUserId) -> Self {
        Self { tenant, kind, remote_user, user_id, display_name: None, avatar_mxc: None, avatar_source: None }
    }
}

/// A Matrix user's own remote account (double puppeting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkedAccount {
    /// The tenant.
    pub tenant: TenantId,
    /// The adapter kind.
    pub kind: AdapterKind,
    /// The Matrix user.
    pub matrix_user: MatrixUserId,
    /// Their remote account.
    pub remote_user: RemoteUserId,
    /// Adapter-owned credentials, already encrypted by the adapter.
    pub credentials: Option<String>,
}

impl LinkedAccount {
    /// Builds a linked account.
    pub fn new(tenant: TenantId, kind: AdapterKind, matrix_user: MatrixUserId, remote_user: RemoteUserId) -> Self {
        Self { tenant, kind, matrix_user, remote_user, credentials: None }
    }
}

/// A bridged conversation: a remote room and its Matrix room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Portal {
    /// Which remote room.
    pub key: PortalKey,
    /// Its Matrix room, once created or linked.
    pub room_id: Option<MatrixRoomId>,
    /// Room name.
    pub name: Option<String>,
}

impl Portal {
    /// A portal without a Matrix room yet.
    pub fn new(key: PortalKey) -> Self {
        Self { key, room_id: None, name: None }
    }
}

/// What a message-map row maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingKind {
    /// A message (or one part of it).
    Message,
    /// A reaction; its remote id is a reaction identity made by the router.
    Reaction,
    /// Another id the remote side knows a message (its first part) by.
    Alias,
}

impl MappingKind {
    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Reaction => "reaction",
            Self::Alias => "alias",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "message" => Some(Self::Message),
            "reaction" => Some(Self::Reaction),
            "alias" => Some(Self::Alias),
            _ => None,
        }
    }
}

/// One row of the message map: a Matrix event and a remote message (part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageMapping {
    /// The portal the message is in.
    pub portal: PortalKey,
    /// The Matrix event.
    pub matrix_event: MatrixEventId,
    /// The remote message.
    pub remote_id: RemoteMessageId,
    /// Part index when one side split a message into several.
    pub part: u32,
    /// Message or reaction.
    pub kind: MappingKind,
}

impl MessageMapping {
    /// Builds a mapping row.
    pub fn new(
        portal: PortalKey,
        matrix_event: MatrixEventId,
        remote_id: RemoteMessageId,
        part: u32,
        kind: MappingKind,
    ) -> Self {
        Self { portal, matrix_event, remote_id, part, kind }
    }
}

/// Which way an outbox entry travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Remote platform to Matrix.
    ToMatrix,
    /// Matrix to remote platform.
    ToRemote,
}

impl Direction {
    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToMatrix => "to_matrix",
            Self::ToRemote => "to_remote",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "to_matrix" => Some(Self::ToMatrix),
            "to_remote" => Some(Self::ToRemote),
            _ => None,
        }
    }
}

/// An event to be stored in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewOutboxEntry {
    /// Which way it travels.
    pub direction: Direction,
    /// The portal it belongs to (delivery is ordered per portal and direction).
    pub portal: PortalKey,
    /// Unique per tenant and direction; a second entry with the same key is
    /// ignored, even after the first was delivered.
    pub dedupe_key: String,
    /// The serialized event.
    pub payload: String,
}

impl NewOutboxEntry {
    /// Builds an entry.
    pub fn new(direction: Direction, portal: PortalKey, dedupe_key: impl Into<String>, payload: String) -> Self {
        Self { direction, portal, dedupe_key: dedupe_key.into(), payload }
    }
}

/// A stored, undelivered outbox entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Store-assigned sequence, increasing in commit order.
    pub seq: i64,
    /// Which way it travels.
    pub direction: Direction,
    /// The portal.
    pub portal: PortalKey,
    /// The deduplication key.
    pub dedupe_key: String,
    /// The serialized event.
    pub payload: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When it was stored, ms since the Unix epoch (0: unknown).
    pub stored_at: i64,
}

impl OutboxEntry {
    /// Builds an entry as read back from a store (stores live in other
    /// crates and cannot use a struct literal on a non-exhaustive type).
    pub fn new(
        seq: i64,
        direction: Direction,
        portal: PortalKey,
        dedupe_key: impl Into<String>,
        payload: String,
        attempts: u32,
    ) -> Self {
        Self { seq, direction, portal, dedupe_key: dedupe_key.into(), payload, attempts, stored_at: 0 }
    }

    /// Notes when the entry was stored (ms since the Unix epoch).
    pub fn stored(mut self, at: i64) -> Self {
        self.stored_at = at;
        self
    }
}

/// How much one adapter of one tenant holds, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterCounts {
    /// Portals.
    pub portals: u64,
    /// Ghosts.
    pub ghosts: u64,
    /// Entries waiting for delivery to Matrix.
    pub pending_to_matrix: u64,
    /// Entries waiting for delivery to the remote platform.
    pub pending_to_remote: u64,
}

/// Whether an appservice transaction was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// First time seen: its entries were stored.
    New,
    /// Seen before: nothing was stored.
    Replayed,
}

/// Receives the outbox entries a store commits, right after each commit.
///
/// This is a fast path only: the store stays the truth. A listener that
/// misses or drops entries must fall back to reading them back.
pub trait CommitListener: Send + Sync {
    /// The entries one commit inserted, in seq order, delivered before any
    /// of their writers is answered and in commit order across calls.
    /// `gap` is true when entries may have been stored since the previous
    /// call without passing through it (another process or store on the
    /// same database, or a commit whose outcome is unknown); whoever relies
    /// on the calls must then read the store.
    fn committed(&self, entries: &[OutboxEntry], gap: bool);
}

/// Persistence for the whole bridge. Every row is keyed by tenant.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates or updates a tenant.
    async fn upsert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// One tenant.
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    /// All tenants, ordered by id.
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Removes a tenant and every row of it. Returns false if it did not exist.
    async fn remove_tenant(&self, id: &TenantId) -> StoreResult<bool>;

    /// Creates or replaces an adapter config. The tenant must exist.
    async fn put_adapter_config(&self, config: &AdapterConfig) -> StoreResult<()>;
    /// One adapter config.
    async fn adapter_config(&self, tenant: &TenantId, kind: &AdapterKind) -> StoreResult<Option<AdapterConfig>>;
    /// All adapter configs, of one tenant or of all, ordered by tenant and kind.
    async fn adapter_configs(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<AdapterConfig>>;
    /// Turns an adapter on or off. Returns false if it has no config.
    async fn set_adapter_enabled(&self, tenant: &TenantId, kind: &AdapterKind, enabled: bool) -> StoreResult<bool>;

    /// Stores a tenant-admin token. The tenant must exist.
    async fn put_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    /// The token with this hash.
    async fn admin_token_by_hash(&self, hash: &str) -> StoreResult<Option<AdminToken>>;
    /// A tenant's tokens, oldest first.
    async fn admin_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<AdminToken>>;
    /// Revokes a token of a tenant. Returns false if it did not exist.
    async fn remove_admin_token(&self, tenant: &TenantId, id: &str) -> StoreResult<bool>;

    /// Portals, ghosts and waiting entries per tenant and adapter kind.
    async fn counts(&self) -> StoreResult<Vec<((TenantId, AdapterKind), AdapterCounts)>>;

    /// Creates or updates a ghost.
    async fn upsert_ghost(&self, ghost: &Ghost) -> StoreResult<()>;
    /// A tenant's ghosts whose remote id, Matrix id or display name contains
    /// `search` (case-insensitively; all without it), at most `limit`, ordered
    /// by Matrix id.
    async fn ghosts(&self, tenant: &TenantId, search: Option<&str>, limit: u32) -> StoreResult<Vec<Ghost>>;
    /// The ghost of a remote user.
    async fn ghost(&self, tenant: &TenantId, kind: &AdapterKind, remote: &RemoteUserId) -> StoreResult<Option<Ghost>>;
    /// The ghost with a Matrix id.
    async fn ghost_by_user_id(&self, user_id: &MatrixUserId) -> StoreResult<Option<Ghost>>;

    /// Links (or re-links) a Matrix user's remote account.
    async fn link_account(&self, account: &LinkedAccount) -> StoreResult<()>;
    /// The accounts a Matrix user linked in a tenant.
    async fn linked_accounts(&self, tenant: &TenantId, user: &MatrixUserId) -> StoreResult<Vec<LinkedAccount>>;
    /// Removes a link. Returns false if there was none.
    async fn unlink_account(&self, tenant: &TenantId, kind: &AdapterKind, user: &MatrixUserId) -> StoreResult<bool>;

    /// Remembers `room` as a management room (a room with the bridge bot
    /// where `user` gives commands). Bridge-wide, not per tenant: the bot
    /// serves every tenant. Replaces the room's previous user.
    async fn put_management_room(&self, room: &MatrixRoomId, user: &MatrixUserId) -> StoreResult<()>;
    /// The user a management room belongs to.
    async fn management_room(&self, room: &MatrixRoomId) -> StoreResult<Option<MatrixUserId>>;
    /// Forgets a management room. Returns false if it was none.
    async fn remove_management_room(&self, room: &MatrixRoomId) -> StoreResult<bool>;

    /// Creates or updates a portal. The tenant must exist.
    async fn upsert_portal(&self, portal: &Portal) -> StoreResult<()>;
    /// Removes a portal (its message map stays). Returns false if it did not exist.
    async fn remove_portal(&self, key: &PortalKey) -> StoreResult<bool>;
    /// One portal.
    async fn portal(&self, key: &PortalKey) -> StoreResult<Option<Portal>>;

    /// A value an adapter of a tenant kept under `key`.
    async fn adapter_state(&self, tenant: &TenantId, kind: &AdapterKind, key: &str) -> StoreResult<Option<String>>;
    /// Keeps (or with `None` forgets) a value for an adapter of a tenant.
    async fn put_adapter_state(
        &self,
        tenant: &TenantId,
        kind: &AdapterKind,
        key: &str,
        value: Option<&str>,
    ) -> StoreResult<()>;
    /// The portal of a Matrix room.
    async fn portal_by_room(&self, room: &MatrixRoomId) -> StoreResult<Option<Portal>>;
    /// All portals of a tenant.
    async fn portals(&self, tenant: &TenantId) -> StoreResult<Vec<Portal>>;

    /// The Matrix events of a remote message, ordered by part.
    async fn messages_by_remote(
        &self,
        portal: &PortalKey,
        remote: &RemoteMessageId,
    ) -> StoreResult<Vec<MessageMapping>>;
    /// The remote messages of a Matrix event, ordered by part.
    async fn messages_by_matrix(&self, tenant: &TenantId, event: &MatrixEventId) -> StoreResult<Vec<MessageMapping>>;

    /// Stores an outbox entry. Returns its sequence, or `None` when an entry
    /// with the same tenant, direction and dedupe key exists (or existed).
    async fn enqueue(&self, entry: NewOutboxEntry) -> StoreResult<Option<i64>>;
    /// Stores all entries of a homeserver transaction atomically, keyed by
    /// transaction id per tenant; a replayed transaction stores nothing.
    async fn ingest_transaction(&self, txn_id: &str, entries: Vec<NewOutboxEntry>) -> StoreResult<TxnOutcome>;
    /// Portals and directions that have undelivered entries.
    async fn pending_queues(&self) -> StoreResult<Vec<(PortalKey, Direction)>>;
    /// Undelivered entries of one queue with `seq > after`, in order.
    async fn pending(
        &self,
        portal: &PortalKey,
        direction: Direction,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>>;
    /// Marks an entry delivered (dropping its payload) and records its
    /// mappings, atomically.
    async fn complete(&self, seq: i64, mappings: Vec<MessageMapping>) -> StoreResult<()>;
    /// Records a failed attempt.
    async fn record_failure(&self, seq: i64, error: &str) -> StoreResult<()>;
    /// Gives up on an entry; it stays stored for an operator to inspect.
    async fn dead_letter(&self, seq: i64, error: &str) -> StoreResult<()>;

    /// Hands every outbox entry this store commits from now on to
    /// `listener` (until it is dropped). False if the store cannot; then
    /// readers learn of new entries from the store alone.
    fn watch_commits(&self, _listener: std::sync::Weak<dyn CommitListener>) -> bool {
        false
    }
}
