//! The Microsoft identity platform's v2.0 endpoints: `POST /{tenant}/oauth2/v2.0/token`
//! (client credentials, device code, refresh token) and `POST /{tenant}/oauth2/v2.0/devicecode`.

use crate::error::IdentityError;
use crate::state::Shared;
use crate::world::{AccessToken, DeviceFlow, RefreshToken, TokenKind, World};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The scope client credentials must ask for.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

type FormData = Form<HashMap<String, String>>;

fn field<'a>(form: &'a HashMap<String, String>, name: &'static str) -> Result<&'a str, IdentityError> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        IdentityError::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    })
}

/// Whether the tenant path segment is one of the multi-tenant aliases.
fn is_alias(tenant: &str) -> bool {
    matches!(tenant, "common" | "organizations")
}

fn check_tenant(world: &World, tenant: &str) -> Result<(), IdentityError> {
    if is_alias(tenant) || world.tenants.contains_key(tenant) {
        Ok(())
    } else {
        Err(IdentityError::new(
            "invalid_request",
            90002,
            format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."),
        ))
    }
}

/// Checks the client id and, when given (or `required`), its secret or
/// certificate assertion (for the token endpoint `audience`).
fn check_client(
    world: &World,
    form: &HashMap<String, String>,
    required: bool,
    audience: &str,
) -> Result<String, IdentityError> {
    let client_id = field(form, "client_id")?;
    let Some(app) = world.apps.get(client_id) else {
        return Err(IdentityError::new(
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(_), Some(_)) => Err(IdentityError::new(
            "invalid_request",
            90015,
            "Only one of 'client_secret' and 'client_assertion' may be presented.",
        )),
        (None, Some(assertion)) => {
            crate::assertion::check(app, client_id, audience, form, assertion).map(|()| client_id.to_owned())
        }
        (Some(secret), None) if !app.secrets.contains(secret) => Err(IdentityError::invalid_client(
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        )),
        (None, None) if required => Err(IdentityError::invalid_client(
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )),
        _ => Ok(client_id.to_owned()),
    }
}

fn check_consent(world: &World, tenant: &str, client_id: &str, delegated: bool) -> Result<(), IdentityError> {
    let consented = world.tenants.get(tenant).is_some_and(|t| t.consented.iter().any(|c| c == client_id));
    match (consented, delegated) {
        (true, _) => Ok(()),
        (false, false) => Err(IdentityError::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        )),
        (false, true) => Err(IdentityError::new(
            "invalid_grant",
            65001,
            format!("The user or administrator has not consented to use the application with ID '{client_id}'."),
        )),
    }
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub async fn devicecode(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Form(form): FormData) -> Response {
    let interval = s.settings().device_code_interval;
    let audience = format!("{}/{tenant}/oauth2/v2.0/token", s.origin);
    let result = s.with(|w| {
        check_tenant(w, &tenant)?;
        let client_id = check_client(w, &form, false, &audience)?;
        field(&form, "scope")?;
        let device_code = crate::ids::secret();
        let user_code = crate::ids::user_code();
        let expires = crate::time::now() + chrono::Duration::seconds(900);
        let flow = DeviceFlow { tenant: tenant.clone(), client_id, user_code: user_code.clone(), expires, outcome: None };
        w.device_flows.insert(device_code.clone(), flow);
        Ok::<_, IdentityError>(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": interval,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        }))
    });
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Form(form): FormData) -> Response {
    let lifetime = s.settings().token_lifetime;
    let audience = format!("{}/{tenant}/oauth2/v2.0/token", s.origin);
    let result = s.with(|w| {
        check_tenant(w, &tenant)?;
        let grant = field(&form, "grant_type")?;
        if !matches!(grant, "client_credentials" | "urn:ietf:params:oauth:grant-type:device_code" | "refresh_token") {
            return Err(IdentityError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant}'."),
            ));
        }
        let client_id = check_client(w, &form, grant == "client_credentials", &audience)?;
        match grant {
            "client_credentials" => client_credentials(w, &tenant, &client_id, &form, lifetime),
            "urn:ietf:params:oauth:grant-type:device_code" => device_code(w, &client_id, &form, lifetime),
            "refresh_token" => refresh(w, &client_id, &form, lifetime),
            other => Err(IdentityError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
        }
    });
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn client_credentials(
    w: &mut World,
    tenant: &str,
    client_id: &str,
    form: &HashMap<String, String>,
    lifetime: std::time::Duration,
) -> Result<serde_json::Value, IdentityError> {
    if field(form, "scope")? != GRAPH_DEFAULT_SCOPE {
        return Err(IdentityError::new(
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        ));
    }
    if is_alias(tenant) {
        return Err(IdentityError::new(
            "invalid_request",
            90009,
            "Client credentials need a tenant-specific endpoint: use the tenant id instead of 'common' or 'organizations'.",
        ));
    }
    check_consent(w, tenant, client_id, false)?;
    let roles = w.apps[client_id].roles.clone();
    let access = w.issue_access(tenant, client_id, TokenKind::App, roles, lifetime);
    let secs = lifetime.as_secs();
    Ok(json!({ "token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": access }))
}

fn device_code(
    w: &mut World,
    client_id: &str,
    form: &HashMap<String, String>,
    lifetime: std::time::Duration,
) -> Result<serde_json::Value, IdentityError> {
    let code = field(form, "device_code")?;
    let Some(flow) = w.device_flows.get(code).filter(|f| f.client_id == client_id).cloned() else {
        return Err(IdentityError::new("bad_verification_code", 70019, "The device code was not recognised."));
    };
    let user = match flow.outcome {
        _ if flow.expires < crate::time::now() => {
            return Err(IdentityError::new("expired_token", 70020, "The provided device code has expired."));
        }
        None => {
            return Err(IdentityError::new(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ));
        }
        Some(Err(())) => {
            w.device_flows.remove(code);
            return Err(IdentityError::new("authorization_declined", 70000, "The user declined to sign in."));
        }
        Some(Ok(user)) => user,
    };
    w.device_flows.remove(code);
    if !is_alias(&flow.tenant) && !w.tenants.get(&flow.tenant).is_some_and(|t| t.users.contains_key(&user)) {
        return Err(IdentityError::new(
            "invalid_grant",
            50020,
            format!("User account from identity provider does not exist in tenant '{}'.", flow.tenant),
        ));
    }
    delegated_grant(w, client_id, &user, lifetime)
}

fn refresh(
    w: &mut World,
    client_id: &str,
    form: &HashMap<String, String>,
    lifetime: std::time::Duration,
) -> Result<serde_json::Value, IdentityError> {
    let value = field(form, "refresh_token")?;
    let Some(rt) = w.refresh_tokens.get(value).filter(|r| r.client_id == client_id).cloned() else {
        return Err(IdentityError::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."));
    };
    if rt.revoked {
        return Err(IdentityError::new(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        ));
    }
    delegated_grant(w, client_id, &rt.user, lifetime)
}

/// Issues an access and refresh token for `user` (consent checked) in the token endpoint's JSON.
fn delegated_grant(
    w: &mut World,
    client_id: &str,
    user: &str,
    lifetime: std::time::Duration,
) -> Result<serde_json::Value, IdentityError> {
    let tenant = w.tenants.iter().find(|(_, t)| t.users.contains_key(user)).map(|(id, _)| id.clone());
    let Some(tenant) = tenant else {
        return Err(IdentityError::new("invalid_grant", 50034, "The user account does not exist in the directory."));
    };
    check_consent(w, &tenant, client_id, true)?;
    let scopes = w.apps[client_id].scopes.clone();
    let kind = TokenKind::Delegated { user: user.to_owned() };
    let access = w.issue_access(&tenant, client_id, kind, scopes.clone(), lifetime);
    let refresh = crate::ids::secret();
    let record = RefreshToken { client_id: client_id.to_owned(), user: user.to_owned(), revoked: false };
    w.refresh_tokens.insert(refresh.clone(), record);
    let secs = lifetime.as_secs();
    Ok(json!({
        "token_type": "Bearer",
        "scope": scopes.join(" "),
        "expires_in": secs,
        "ext_expires_in": secs,
        "access_token": access,
        "refresh_token": refresh,
    }))
}

impl World {
    /// Issues an access token and returns its value.
    pub fn issue_access(
        &mut self,
        tenant: &str,
        client_id: &str,
        kind: TokenKind,
        permissions: Vec<String>,
        lifetime: std::time::Duration,
    ) -> String {
        let value = crate::ids::secret();
        let expires = crate::time::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
        let token =
            AccessToken { tenant: tenant.to_owned(), client_id: client_id.to_owned(), kind, permissions, expires };
        self.tokens.insert(value.clone(), token);
        value
    }
}
