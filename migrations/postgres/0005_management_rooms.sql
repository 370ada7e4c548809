-- Rooms where a Matrix user gives the bridge bot commands (a DM with the
-- bot). Bridge-wide: the bot serves every tenant.
CREATE TABLE management_rooms (
    room_id    TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
