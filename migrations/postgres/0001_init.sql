-- brygga store, PostgreSQL. Every table is keyed by tenant; timestamps are
-- Unix milliseconds. Key columns use the "C" collation so that ORDER BY
-- sorts bytewise, exactly like SQLite, whatever the cluster's locale.

CREATE TABLE tenants (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    display_name TEXT    NOT NULL,
    settings     TEXT    NOT NULL,
    suspended    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE adapter_configs (
    tenant     TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT COLLATE "C" NOT NULL,
    enabled    BOOLEAN NOT NULL,
    config     TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant, kind)
);

CREATE TABLE ghosts (
    tenant        TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    remote_user   TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name  TEXT,
    avatar_mxc    TEXT,
    avatar_source TEXT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, remote_user)
);

CREATE TABLE linked_accounts (
    tenant      TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    matrix_user TEXT COLLATE "C" NOT NULL,
    remote_user TEXT   NOT NULL,
    credentials TEXT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, matrix_user)
);
CREATE INDEX linked_accounts_by_user ON linked_accounts (tenant, matrix_user);

CREATE TABLE portals (
    tenant     TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT COLLATE "C" NOT NULL,
    room       TEXT COLLATE "C" NOT NULL,
    room_id    TEXT COLLATE "C" UNIQUE,
    name       TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, room)
);

CREATE TABLE message_map (
    tenant       TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    room         TEXT COLLATE "C" NOT NULL,
    remote_id    TEXT COLLATE "C" NOT NULL,
    part         BIGINT NOT NULL,
    matrix_event TEXT COLLATE "C" NOT NULL,
    map_kind     TEXT   NOT NULL CHECK (map_kind IN ('message', 'reaction')),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, room, remote_id, part, matrix_event)
);
CREATE INDEX message_map_by_event ON message_map (tenant, matrix_event, part);

CREATE TABLE incoming_transactions (
    tenant      TEXT COLLATE "C" NOT NULL,
    txn_id      TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, txn_id)
);
CREATE INDEX incoming_transactions_by_txn ON incoming_transactions (txn_id);

CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    room       TEXT COLLATE "C" NOT NULL,
    direction  TEXT COLLATE "C" NOT NULL CHECK (direction IN ('to_matrix', 'to_remote')),
    dedupe_key TEXT COLLATE "C" NOT NULL,
    payload    TEXT,
    status     TEXT   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts   BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant, direction, dedupe_key)
);
CREATE INDEX outbox_pending ON outbox (tenant, kind, room, direction, seq) WHERE status = 'pending';
