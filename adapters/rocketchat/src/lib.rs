//! Rocket.Chat adapter: a workspace's channels, groups and DMs as portals.
