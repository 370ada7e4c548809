//! Microsoft Teams adapter: Teams channels and chats as portals, through Microsoft Graph v1.0.
