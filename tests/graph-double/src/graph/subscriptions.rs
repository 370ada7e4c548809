//! `/subscriptions` CRUD and `reauthorize`.

use super::{CHANNEL_READ_ROLES, CHANNEL_READ_SCOPES, CHAT_READ_ROLES, CHAT_READ_SCOPES};
use crate::auth::Caller;
use crate::error::GraphError;
use crate::model::Conversation;
use crate::state::Shared;
use crate::subscriptions::{Subscription, handshake, resource};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;

const CHANGE_TYPES: [&str; 3] = ["created", "updated", "deleted"];

fn string<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GraphError::bad_request(format!("'{name}' must be a string."))),
    }
}

fn required<'a>(body: &'a Value, name: &str) -> Result<&'a str, GraphError> {
    string(body, name)?.ok_or_else(|| GraphError::bad_request(format!("Missing required property '{name}'.")))
}

/// Checks the requested expiry against now and the chatMessage maximum.
fn expiry(s: &Shared, value: &str) -> Result<DateTime<Utc>, GraphError> {
    let at = crate::time::parse(value)
        .ok_or_else(|| GraphError::bad_request(format!("Invalid expirationDateTime '{value}'.")))?;
    let now = crate::time::now();
    let max = s.settings().max_subscription_lifetime;
    if at <= now {
        return Err(GraphError::bad_request("Subscription expiration must be in the future."));
    }
    if at > now + chrono::Duration::from_std(max).unwrap_or(chrono::Duration::hours(1)) {
        return Err(GraphError::bad_request(format!(
            "Subscription expiration can only be {} minutes in the future.",
            max.as_secs() / 60
        )));
    }
    Ok(at)
}

fn mine<'a>(caller: &Caller, sub: Option<&'a Subscription>) -> Result<&'a Subscription, GraphError> {
    sub.filter(|s| s.tenant == caller.tenant() && s.client_id == caller.token.client_id && s.active(crate::time::now()))
        .ok_or_else(|| GraphError::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found."))
}

/// `POST /subscriptions`: validates the request, performs the handshake(s), stores it; 201.
pub async fn create(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    let caller = s.caller(&headers)?;
    let change_types: Vec<String> = required(&body, "changeType")?.split(',').map(|t| t.trim().to_owned()).collect();
    if let Some(bad) = change_types.iter().find(|t| !CHANGE_TYPES.contains(&t.as_str())) {
        return Err(GraphError::bad_request(format!("Invalid changeType '{bad}'.")));
    }
    let notification_url = required(&body, "notificationUrl")?.to_owned();
    let lifecycle_url = string(&body, "lifecycleNotificationUrl")?.map(str::to_owned);
    let resource_text = required(&body, "resource")?.to_owned();
    let expires = expiry(&s, required(&body, "expirationDateTime")?)?;
    let client_state = string(&body, "clientState")?.map(str::to_owned);
    if client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return Err(GraphError::bad_request("clientState must not exceed 128 characters."));
    }
    let encryption = if body.get("includeResourceData").and_then(Value::as_bool) == Some(true) {
        let (Some(cert), Some(id)) =
            (string(&body, "encryptionCertificate")?, string(&body, "encryptionCertificateId")?)
        else {
            return Err(GraphError::bad_request(
                "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
            ));
        };
        let found = crate::rich::encryption(cert, id);
        Some(found.ok_or_else(|| {
            GraphError::bad_request(
                "The encryptionCertificate is not a valid base64-encoded X.509 certificate with an RSA key.",
            )
        })?)
    } else {
        None
    };
    let conversation = s.with(|w| {
        let c = resource(w, caller.tenant(), &resource_text)?;
        match c {
            Conversation::Channel { .. } => caller.require(CHANNEL_READ_ROLES, CHANNEL_READ_SCOPES)?,
            Conversation::Chat { .. } => caller.require(CHAT_READ_ROLES, CHAT_READ_SCOPES)?,
        }
        if let Some(user) = caller.user()
            && !w.is_member(&c, user)
        {
            return Err(GraphError::forbidden("The user is not a member of this conversation."));
        }
        Ok(c)
    })?;
    let timeout = s.settings().validation_timeout;
    handshake(&s.notifier.client, &notification_url, timeout).await?;
    if let Some(url) = &lifecycle_url {
        handshake(&s.notifier.client, url, timeout).await?;
    }
    let sub = Subscription {
        id: crate::ids::guid(),
        tenant: caller.tenant().to_owned(),
        client_id: caller.token.client_id.clone(),
        creator: caller.user().map(str::to_owned),
        resource: resource_text,
        conversation,
        change_types,
        notification_url,
        lifecycle_url,
        client_state,
        expires,
        needs_reauthorization: false,
        encryption,
    };
    let json = sub.json(&s.graph_base());
    s.with(|w| w.subscriptions.insert(sub.id.clone(), sub));
    Ok((StatusCode::CREATED, Json(json)))
}

/// `GET /subscriptions`: the caller's app's live subscriptions in its tenant.
pub async fn list(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let mut value: Vec<Value> = s.with(|w| {
        w.subscriptions.values().filter(|sub| mine(&caller, Some(sub)).is_ok()).map(|sub| sub.json(&base)).collect()
    });
    for v in &mut value {
        v.as_object_mut().map(|o| o.remove("@odata.context"));
    }
    Ok(Json(json!({ "@odata.context": format!("{base}/$metadata#subscriptions"), "value": value })))
}

/// `GET /subscriptions/{id}`.
pub async fn get_one(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    s.with(|w| mine(&caller, w.subscriptions.get(&id)).map(|sub| Json(sub.json(&base))))
}

/// `PATCH /subscriptions/{id}`: renews (`expirationDateTime`) or moves (`notificationUrl`, handshake again).
pub async fn update(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let current = s.with(|w| mine(&caller, w.subscriptions.get(&id)).cloned())?;
    let expires = string(&body, "expirationDateTime")?.map(|e| expiry(&s, e)).transpose()?;
    let url = string(&body, "notificationUrl")?.filter(|u| *u != current.notification_url).map(str::to_owned);
    if let Some(url) = &url {
        handshake(&s.notifier.client, url, s.settings().validation_timeout).await?;
    }
    let base = s.graph_base();
    s.with(|w| {
        let sub = w
            .subscriptions
            .get_mut(&id)
            .ok_or_else(|| GraphError::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found."))?;
        if let Some(at) = expires {
            sub.expires = at;
            sub.needs_reauthorization = false;
        }
        if let Some(url) = url {
            sub.notification_url = url;
        }
        Ok(Json(sub.json(&base)))
    })
}

/// `DELETE /subscriptions/{id}`: 204.
pub async fn delete(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        mine(&caller, w.subscriptions.get(&id))?;
        w.subscriptions.remove(&id);
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST /subscriptions/{id}/reauthorize`: clears a pending `reauthorizationRequired`; 204.
pub async fn reauthorize(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        mine(&caller, w.subscriptions.get(&id))?;
        if let Some(sub) = w.subscriptions.get_mut(&id) {
            sub.needs_reauthorization = false;
        }
        Ok(StatusCode::NO_CONTENT)
    })
}
