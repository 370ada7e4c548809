-- Small per-adapter state of a tenant that must survive restarts (e.g. XMPP
-- reaction sets, a group chat's catch-up point), as text values by key.
CREATE TABLE adapter_state (
    tenant     TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);
