-- A remote message may be known by several ids (XMPP: the room's stanza id
-- and the sender's own id); rows of kind 'alias' map the extra ids.
ALTER TABLE message_map DROP CONSTRAINT message_map_map_kind_check;
ALTER TABLE message_map ADD CONSTRAINT message_map_map_kind_check
    CHECK (map_kind IN ('message', 'reaction', 'alias'));
