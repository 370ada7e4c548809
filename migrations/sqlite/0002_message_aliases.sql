-- A remote message may be known by several ids (XMPP: the room's stanza id
-- and the sender's own id); rows of kind 'alias' map the extra ids.
-- SQLite cannot change a CHECK constraint in place: rebuild the table.
CREATE TABLE message_map_new (
    tenant       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    room         TEXT    NOT NULL,
    remote_id    TEXT    NOT NULL,
    part         INTEGER NOT NULL,
    matrix_event TEXT    NOT NULL,
    map_kind     TEXT    NOT NULL CHECK (map_kind IN ('message', 'reaction', 'alias')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, room, remote_id, part, matrix_event)
);
INSERT INTO message_map_new (tenant, kind, room, remote_id, part, matrix_event, map_kind, created_at)
    SELECT tenant, kind, room, remote_id, part, matrix_event, map_kind, created_at FROM message_map;
DROP TABLE message_map;
ALTER TABLE message_map_new RENAME TO message_map;
CREATE INDEX message_map_by_event ON message_map (tenant, matrix_event, part);
