//! Graph v1.0 routes under `/v1.0`.

mod delta;
mod directory;
mod listing;
mod messages;
mod subscriptions;
mod teams;

use crate::auth::Caller;
use crate::error::GraphError;
use crate::model::Conversation;
use crate::state::Shared;
use crate::world::World;
use axum::Router;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::sync::Arc;

/// Path parameters of a message route.
pub type Params = HashMap<String, String>;

/// Application permissions that read channel messages.
pub const CHANNEL_READ_ROLES: &[&str] = &["ChannelMessage.Read.All", "ChannelMessage.Read.Group"];
/// Delegated permissions that read channel messages.
pub const CHANNEL_READ_SCOPES: &[&str] = &["ChannelMessage.Read.All", "ChannelMessage.ReadWrite"];
/// Application permissions that read chat messages.
pub const CHAT_READ_ROLES: &[&str] = &["Chat.Read.All", "Chat.ReadWrite.All", "ChatMessage.Read.All"];
/// Delegated permissions that read chat messages.
pub const CHAT_READ_SCOPES: &[&str] = &["Chat.Read", "Chat.ReadWrite"];

/// The conversation the path names, as the caller may see it (tenant-scoped; delegated callers must be members).
pub fn conversation(w: &World, caller: &Caller, p: &Params) -> Result<Conversation, GraphError> {
    let conversation = match (p.get("team"), p.get("channel"), p.get("chat")) {
        (Some(team), Some(channel), _) => w.channel(caller.tenant(), team, channel)?,
        (_, _, Some(chat)) => w.chat(caller.tenant(), chat)?,
        _ => return Err(GraphError::bad_request("Unsupported resource path.")),
    };
    if let Some(user) = caller.user()
        && !w.is_member(&conversation, user)
    {
        return Err(GraphError::forbidden("The user is not a member of this conversation."));
    }
    Ok(conversation)
}

/// Requires the read permission of the conversation's kind.
pub fn require_read(caller: &Caller, conversation: &Conversation) -> Result<(), GraphError> {
    match conversation {
        Conversation::Channel { .. } => caller.require(CHANNEL_READ_ROLES, CHANNEL_READ_SCOPES),
        Conversation::Chat { .. } => caller.require(CHAT_READ_ROLES, CHAT_READ_SCOPES),
    }
}

/// The message id a route addresses: the reply's id on reply routes, else the message's.
pub fn message_id(p: &Params) -> Result<&str, GraphError> {
    p.get("reply").or_else(|| p.get("id")).map(String::as_str).ok_or_else(|| GraphError::bad_request("No message id."))
}

/// All Graph routes.
pub fn router() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for base in [
        "/v1.0/teams/{team}/channels/{channel}/messages/{id}",
        "/v1.0/teams/{team}/channels/{channel}/messages/{id}/replies/{reply}",
        "/v1.0/chats/{chat}/messages/{id}",
    ] {
        r = r
            .route(base, get(messages::get_one).patch(messages::patch))
            .route(&format!("{base}/softDelete"), post(messages::soft_delete))
            .route(&format!("{base}/undoSoftDelete"), post(messages::undo_soft_delete))
            .route(&format!("{base}/setReaction"), post(messages::set_reaction))
            .route(&format!("{base}/unsetReaction"), post(messages::unset_reaction))
            .route(&format!("{base}/hostedContents"), get(messages::hosted_list))
            .route(&format!("{base}/hostedContents/{{hosted}}"), get(messages::hosted_one))
            .route(&format!("{base}/hostedContents/{{hosted}}/$value"), get(messages::hosted_value));
    }
    r.route("/v1.0/teams/{team}/channels/{channel}/messages", get(listing::channel).post(messages::post))
        .route("/v1.0/teams/{team}/channels/{channel}/messages/delta", get(delta::channel))
        .route(
            "/v1.0/teams/{team}/channels/{channel}/messages/{id}/replies",
            get(listing::replies).post(messages::post),
        )
        .route("/v1.0/teams/{team}", get(teams::team))
        .route("/v1.0/teams/{team}/channels/{channel}", get(teams::channel))
        .route("/v1.0/chats/{chat}", get(teams::chat))
        .route("/v1.0/chats/{chat}/messages", get(listing::chat).post(messages::post))
        .route("/v1.0/teams/{team}/channels/{channel}/members", get(directory::members))
        .route("/v1.0/chats/{chat}/members", get(directory::members))
        .route("/v1.0/users/{user}", get(directory::user))
        .route("/v1.0/me", get(directory::me))
        .route("/v1.0/communications/getPresencesByUserId", post(directory::presences))
        .route("/v1.0/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/v1.0/subscriptions/{id}",
            get(subscriptions::get_one).patch(subscriptions::update).delete(subscriptions::delete),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(subscriptions::reauthorize))
}
