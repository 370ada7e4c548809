-- Several bridge processes (nodes) sharing one database: which nodes are
-- alive and where they are reached, and which node owns each tenant.
-- Times are milliseconds since the Unix epoch, from the database's clock.
CREATE TABLE nodes (
    node           TEXT   NOT NULL PRIMARY KEY,
    admin_url      TEXT   NOT NULL,
    appservice_url TEXT   NOT NULL,
    seen_at        BIGINT NOT NULL
);
CREATE TABLE tenant_leases (
    tenant     TEXT   NOT NULL PRIMARY KEY,
    node       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    epoch      BIGINT NOT NULL
);
