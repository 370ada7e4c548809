//! What the workspace publishes on the realtime streams.

use serde_json::Value;

/// One event for the DDP streams, routed to sessions by their subscriptions.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// `stream-room-messages`: a new or changed message (DDP-rendered) of room `rid`.
    RoomMessage { rid: String, message: Value },
    /// `stream-notify-room` `<rid>/<event>`.
    NotifyRoom { rid: String, event: String, args: Vec<Value> },
    /// `stream-notify-logged` `<event>`.
    NotifyLogged { event: String, args: Vec<Value> },
    /// `stream-notify-user` `<uid>/<event>`.
    NotifyUser { uid: String, event: String, args: Vec<Value> },
}
