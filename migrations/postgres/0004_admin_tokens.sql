-- API tokens of tenant administrators, kept only as SHA-256 hashes.
CREATE TABLE admin_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    label      TEXT,
    created_at BIGINT  NOT NULL
);
CREATE INDEX admin_tokens_tenant ON admin_tokens (tenant);
