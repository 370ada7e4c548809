-- brygga store, SQLite. Every table is keyed by tenant; timestamps are Unix
-- milliseconds; flags are INTEGER 0/1 (the sqlx Any driver cannot read
-- SQLite BOOLEAN columns).

CREATE TABLE tenants (
    id           TEXT    NOT NULL PRIMARY KEY,
    display_name TEXT    NOT NULL,
    settings     TEXT    NOT NULL,
    suspended    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE adapter_configs (
    tenant     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    enabled    INTEGER NOT NULL,
    config     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind)
);

CREATE TABLE ghosts (
    tenant        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    remote_user   TEXT    NOT NULL,
    user_id       TEXT    NOT NULL UNIQUE,
    display_name  TEXT,
    avatar_mxc    TEXT,
    avatar_source TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, remote_user)
);

CREATE TABLE linked_accounts (
    tenant      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    matrix_user TEXT    NOT NULL,
    remote_user TEXT    NOT NULL,
    credentials TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, matrix_user)
);
CREATE INDEX linked_accounts_by_user ON linked_accounts (tenant, matrix_user);

CREATE TABLE portals (
    tenant     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    room       TEXT    NOT NULL,
    room_id    TEXT    UNIQUE,
    name       TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, room)
);

CREATE TABLE message_map (
    tenant       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    room         TEXT    NOT NULL,
    remote_id    TEXT    NOT NULL,
    part         INTEGER NOT NULL,
    matrix_event TEXT    NOT NULL,
    map_kind     TEXT    NOT NULL CHECK (map_kind IN ('message', 'reaction')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, room, remote_id, part, matrix_event)
);
CREATE INDEX message_map_by_event ON message_map (tenant, matrix_event, part);

CREATE TABLE incoming_transactions (
    tenant      TEXT    NOT NULL,
    txn_id      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, txn_id)
);
CREATE INDEX incoming_transactions_by_txn ON incoming_transactions (txn_id);

-- AUTOINCREMENT: a seq is never reused, even after its row was deleted.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    room       TEXT    NOT NULL,
    direction  TEXT    NOT NULL CHECK (direction IN ('to_matrix', 'to_remote')),
    dedupe_key TEXT    NOT NULL,
    payload    TEXT,
    status     TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant, direction, dedupe_key)
);
CREATE INDEX outbox_pending ON outbox (tenant, kind, room, direction, seq) WHERE status = 'pending';
