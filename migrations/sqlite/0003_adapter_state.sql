-- Small per-adapter state of a tenant that must survive restarts (e.g. XMPP
-- reaction sets, a group chat's catch-up point), as text values by key.
CREATE TABLE adapter_state (
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);
