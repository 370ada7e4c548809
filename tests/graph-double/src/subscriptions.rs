//! Change notification subscriptions: the stored record, resource parsing,
//! the validation handshake and the notification payloads.

use crate::error::GraphError;
use crate::model::Conversation;
use crate::time::iso;
use crate::world::{Change, World};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// A subscription as the double stores it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// Tenant it lives in.
    pub tenant: String,
    /// The app that created it.
    pub client_id: String,
    /// The user who created it with a delegated token.
    pub creator: Option<String>,
    /// The `resource` as the client sent it.
    pub resource: String,
    /// The conversation it watches.
    pub conversation: Conversation,
    /// `created`, `updated`, `deleted`.
    pub change_types: Vec<String>,
    /// Where change notifications go.
    pub notification_url: String,
    /// Where lifecycle notifications go.
    pub lifecycle_url: Option<String>,
    /// Echoed in every notification.
    pub client_state: Option<String>,
    /// Expiry; expired subscriptions deliver nothing.
    pub expires: DateTime<Utc>,
    /// Set by a `reauthorizationRequired` event until `reauthorize` or a renewal.
    pub needs_reauthorization: bool,
    /// With `includeResourceData`: the certificate the resource is encrypted with.
    pub encryption: Option<crate::rich::Encryption>,
}

impl Subscription {
    /// Whether it is live at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expires > now
    }

    /// The `subscription` JSON.
    pub fn json(&self, base: &str) -> Value {
        json!({
            "@odata.context": format!("{base}/$metadata#subscriptions/$entity"),
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.client_id,
            "changeType": self.change_types.join(","),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": null,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": iso(self.expires),
            "creatorId": self.creator.clone().unwrap_or_else(|| self.client_id.clone()),
            "includeResourceData": self.encryption.is_some(),
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": self.encryption.as_ref().map(|e| crate::certs::der_base64(&e.der)),
            "encryptionCertificateId": self.encryption.as_ref().map(|e| e.certificate_id.clone()),
            "notificationUrlAppId": null,
        })
    }

    /// The change notification payload for one change; with resource data,
    /// `resource` (the rendered chatMessage) is encrypted into it and the
    /// collection carries a validation token.
    pub fn notification(&self, change: &Change, resource: Option<&Value>) -> Value {
        let odata = change.conversation.odata_message(&change.id, change.reply_to.as_deref());
        let mut payload = json!({ "value": [{
            "id": crate::ids::guid(),
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": iso(self.expires),
            "changeType": change.change_type,
            "resource": odata,
            "resourceData": { "id": change.id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": odata },
            "clientState": self.client_state,
            "tenantId": self.tenant,
        }]});
        if let (Some(encryption), Some(resource)) = (&self.encryption, resource) {
            payload["value"][0]["encryptedContent"] = crate::rich::encrypt(resource, encryption);
            payload["validationTokens"] = json!([crate::rich::validation_token(&self.tenant, &self.client_id)]);
        }
        payload
    }

    /// The lifecycle notification payload for `event`.
    pub fn lifecycle(&self, event: &str) -> Value {
        json!({ "value": [{
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": iso(self.expires),
            "tenantId": self.tenant,
            "clientState": self.client_state,
            "lifecycleEvent": event,
        }]})
    }
}

/// The conversation a subscription `resource` names in the caller's tenant
/// (`/teams/{t}/channels/{c}/messages`, `/chats/{id}/messages`, with or without the leading slash or OData quoting).
pub fn resource(w: &World, tenant: &str, resource: &str) -> Result<Conversation, GraphError> {
    let unquote = |s: &str| {
        s.trim_start_matches("('").trim_end_matches("')").trim_start_matches('(').trim_end_matches(')').to_owned()
    };
    let normal = resource.trim_start_matches('/').replace("('", "/").replace("')", "");
    let parts: Vec<&str> = normal.split('/').collect();
    match parts[..] {
        ["teams", team, "channels", channel, "messages"] => w.channel(tenant, &unquote(team), &unquote(channel)),
        ["chats", chat, "messages"] => w.chat(tenant, &unquote(chat)),
        _ => Err(GraphError::bad_request(format!(
            "The resource '{resource}' is not supported by the double: use /teams/{{id}}/channels/{{id}}/messages or /chats/{{id}}/messages."
        ))),
    }
}

fn validation_failed(message: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ValidationError",
        format!("Subscription validation request failed. {message}"),
    )
}

/// Graph's validation handshake: POST `url?validationToken=...` and require the token echoed as `text/plain` with 200 in time.
pub async fn handshake(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        crate::ids::guid()
    );
    let mut target =
        reqwest::Url::parse(url).map_err(|_| GraphError::bad_request(format!("Invalid notification URL '{url}'.")))?;
    target.query_pairs_mut().append_pair("validationToken", &token);
    let sent = client.post(target).header("content-type", "text/plain; charset=utf-8").timeout(timeout).send().await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "Subscription validation request timed out.",
            ));
        }
        Err(_) => {
            return Err(validation_failed("Notification endpoint must respond with 200 OK to validation request."));
        }
    };
    if response.status() != reqwest::StatusCode::OK {
        return Err(validation_failed("Notification endpoint must respond with 200 OK to validation request."));
    }
    let plain = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/plain"));
    let body = response.text().await.unwrap_or_default();
    if !plain || body != token {
        return Err(validation_failed("Response must exactly match validationToken query parameter."));
    }
    Ok(())
}
