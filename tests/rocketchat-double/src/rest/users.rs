//! `users.*` endpoints.

use super::auth::require;
use super::{ApiResult, json_body, pagination, query_object, success, text};
use crate::error::ApiError;
use crate::server::Shared;
use crate::time::Format;
use crate::workspace::NewUser;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type Pairs = Query<Vec<(String, String)>>;

/// The user a query names by `userId` or `username`.
fn lookup(s: &Shared, query: &Value) -> Result<Value, ApiError> {
    s.with(|ws| {
        let user = match (text(query, "userId"), text(query, "username")) {
            (Some(id), _) => ws.user(id),
            (None, Some(name)) => ws.user_by_username(name),
            _ => None,
        };
        user.map(|u| u.render(Format::Rest))
    })
    .ok_or_else(|| ApiError::failure("User not found."))
}

/// `GET users.info?userId=|username=`.
pub async fn info(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET users.info", "isUsersInfoParamsGetProps", &query).await?;
    Ok(success(json!({ "user": lookup(&s, &query)? })))
}

/// `GET users.getPresence?userId=`.
pub async fn presence(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET users.getPresence", "isUsersGetPresenceParamsGET", &query).await?;
    let user = if text(&query, "userId").is_some() || text(&query, "username").is_some() {
        lookup(&s, &query)?
    } else {
        me.render(Format::Rest)
    };
    Ok(success(json!({ "presence": user["status"], "connectionStatus": user["status"] })))
}

/// `POST users.setStatus` (another user's status needs `edit-other-user-info`).
pub async fn set_status(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    // rest-typings publishes the 8.x type but no validator; check it by hand.
    let allowed = ["message", "status", "expiresAt", "userId", "username", "user"];
    let object = body.as_object().ok_or_else(|| ApiError::invalid_params("must be object"))?;
    if object.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    if object.values().any(|v| !v.is_string()) {
        return Err(ApiError::invalid_params("must be string"));
    }
    let presence = match text(&body, "status") {
        Some(status) => Some(
            crate::model::Presence::parse(status)
                .ok_or_else(|| ApiError::invalid_params("must be equal to one of the allowed values"))?,
        ),
        None => None,
    };
    let target = match (text(&body, "userId"), text(&body, "username").or(text(&body, "user"))) {
        (Some(id), _) => id.to_owned(),
        (None, Some(name)) => s
            .with(|ws| ws.user_by_username(name).map(|u| u.id.clone()))
            .ok_or_else(|| ApiError::failure("User not found."))?,
        (None, None) => me.id.clone(),
    };
    if target != me.id {
        require(&me, "edit-other-user-info")?;
    }
    s.with(|ws| ws.set_status(&target, presence, text(&body, "message")))?;
    Ok(success(json!({})))
}

/// `GET users.list`.
pub async fn list(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    let me = s.authenticate(&headers)?;
    require(&me, "view-d-room")?;
    let query = query_object(pairs);
    s.validate("GET users.list", "isUsersListParamsGET", &query).await?;
    let (offset, count) = pagination(&query);
    let all: Vec<Value> = s.with(|ws| ws.users().map(|u| u.render(Format::Rest)).collect());
    let page: Vec<&Value> = all.iter().skip(offset).take(count).collect();
    Ok(success(json!({ "users": page, "count": page.len(), "offset": offset, "total": all.len() })))
}

/// `POST users.create` (needs `create-user`).
pub async fn create(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST users.create", "isUserCreateParamsPOST", &body).await?;
    require(&me, "create-user")?;
    let field = |k: &str| text(&body, k).unwrap_or_default().to_owned();
    let roles = body
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    let new = NewUser {
        username: field("username"),
        name: field("name"),
        email: field("email"),
        password: field("password"),
        roles: roles.unwrap_or_else(|| vec!["user".into()]),
    };
    let user = s.with(|ws| ws.add_user(new))?;
    Ok(success(json!({ "user": user.render(Format::Rest) })))
}

/// `POST users.createToken` with `{userId, secret}` (8.x: the secret must equal
/// `CREATE_TOKENS_FOR_USERS_SECRET`; another user's token needs `user-generate-access-token`).
pub async fn create_token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    // rest-typings publishes no validator for this route; check the 8.x body by hand.
    let extra: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().filter(|k| !matches!(k.as_str(), "userId" | "secret")).collect())
        .unwrap_or_default();
    let (Some(user_id), Some(secret)) = (text(&body, "userId"), text(&body, "secret")) else {
        return Err(ApiError::invalid_params("must have required property 'userId' and 'secret'"));
    };
    if !extra.is_empty() {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    if user_id != me.id {
        require(&me, "user-generate-access-token")?;
    }
    if secret != s.create_tokens_secret {
        return Err(ApiError::meteor("error-not-authorized", "Not authorized"));
    }
    let token =
        s.with(|ws| ws.issue_token(user_id)).ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?;
    Ok(success(json!({ "data": { "userId": user_id, "authToken": token } })))
}
