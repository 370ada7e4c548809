//! The Microsoft identity platform token endpoint of the agency's tenant:
//! client credentials for the app's own (app-only) token, the device code
//! flow to link a person's account, and refresh for their delegated tokens.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ClientAuth, Secret, TeamsConfig};

/// Delegated permissions asked for when a person links their account.
pub(crate) const DELEGATED_SCOPES: &str =
    "offline_access User.Read ChannelMessage.Send ChannelMessage.ReadWrite Chat.ReadWrite";
/// The app-only scope: every application permission the tenant's admin consented to.
const APP_SCOPE: &str = "https://graph.microsoft.com/.default";
/// A token is renewed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

/// Why the identity platform gave no token.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// The app's secret, consent or registration is wrong: an operator must act.
    #[error("the identity platform refused the app's credentials or consent: {0}")]
    BadCredentials(String),
    /// A person's grant is gone (revoked, expired, password changed): they must link again.
    #[error("the identity platform refused the grant: {0}")]
    InvalidGrant(String),
    /// Device code flow: the person has not finished signing in yet.
    #[error("authorization pending")]
    Pending,
    /// Device code flow: poll more slowly.
    #[error("slow down")]
    SlowDown,
    /// Device code flow: the person declined, or the code expired.
    #[error("sign-in declined or expired: {0}")]
    Declined(String),
    /// The endpoint could not be reached or failed.
    #[error("the identity platform is unavailable: {0}")]
    Unavailable(String),
}

/// An access token and when it stops being used.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: Secret,
    pub(crate) renew_at: Instant,
}

impl AccessToken {
    pub(crate) fn fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

/// What a delegated grant gives: an access token and (with `offline_access`) a refresh token.
#[derive(Clone)]
pub(crate) struct TokenSet {
    pub(crate) access: AccessToken,
    pub(crate) refresh: Option<Secret>,
}

/// A device code sign-in in progress.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct DeviceCode {
    /// Secret: polled with, never shown.
    pub(crate) device_code: String,
    /// What the person types at `verification_uri`.
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) expires_in: u64,
    #[serde(default = "default_interval")]
    pub(crate) interval: u64,
}

fn default_interval() -> u64 {
    5
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// One tenant's token endpoint, with the app token cached.
pub(crate) struct Identity {
    http: reqwest::Client,
    config: TeamsConfig,
    app: Mutex<Option<AccessToken>>,
}

impl Identity {
    pub(crate) fn new(http: reqwest::Client, config: TeamsConfig) -> Self {
        Self { http, config, app: Mutex::new(None) }
    }

    /// The app-only token (client credentials), cached until shortly before it expires.
    pub(crate) async fn app_token(&self) -> Result<Secret, TokenError> {
        let mut cached = self.app.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.fresh()) {
            return Ok(token.value.clone());
        }
        let set = self.grant(&[("grant_type", "client_credentials"), ("scope", APP_SCOPE)], true).await?;
        *cached = Some(set.access.clone());
        Ok(set.access.value)
    }

    /// Forgets the cached app token (Graph refused it).
    pub(crate) async fn forget_app_token(&self) {
        *self.app.lock().await = None;
    }

    /// Exchanges a refresh token for a new token set (the refresh token may rotate).
    pub(crate) async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, TokenError> {
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token.0.as_str()), ("scope", DELEGATED_SCOPES)];
        self.grant(&form, true).await
    }

    /// Starts the device code flow for a person.
    pub(crate) async fn start_device_code(&self) -> Result<DeviceCode, TokenError> {
        let form = [("client_id", self.config.client_id.as_str()), ("scope", DELEGATED_SCOPES)];
        let response = self
            .http
            .post(self.config.login("devicecode"))
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| TokenError::Unavailable(format!("bad device code answer: {e}")));
        }
        Err(classify(status, &text))
    }

    /// Polls a device code once.
    pub(crate) async fn poll_device_code(&self, code: &DeviceCode) -> Result<TokenSet, TokenError> {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code.device_code.as_str()),
        ];
        self.grant(&form, false).await
    }

    /// Runs the device code flow to its end: polls at the asked interval until
    /// the person signs in, declines, or the code expires.
    pub(crate) async fn finish_device_code(&self, code: &DeviceCode) -> Result<TokenSet, TokenError> {
        let deadline = Instant::now() + Duration::from_secs(code.expires_in);
        let mut interval = Duration::from_secs(code.interval.clamp(1, 60));
        loop {
            tokio::time::sleep(interval).await;
            match self.poll_device_code(code).await {
                Err(TokenError::Pending) => {}
                Err(TokenError::SlowDown) => interval += Duration::from_secs(5),
                other => return other,
            }
            if Instant::now() >= deadline {
                return Err(TokenError::Declined("the code expired".into()));
            }
        }
    }

    /// One call of the token endpoint; `confidential` adds the client
    /// secret, or a fresh client assertion signed with the app's certificate.
    async fn grant(&self, form: &[(&str, &str)], confidential: bool) -> Result<TokenSet, TokenError> {
        let endpoint = self.config.login("token");
        let assertion;
        let mut fields: Vec<(&str, &str)> = vec![("client_id", self.config.client_id.as_str())];
        match &self.config.client_auth {
            _ if !confidential => {}
            ClientAuth::Secret(secret) => fields.push(("client_secret", secret.0.as_str())),
            ClientAuth::Certificate(cert) => {
                assertion = cert.assertion(&self.config.client_id, endpoint.as_str());
                fields.push(("client_assertion_type", crate::cert::JWT_BEARER));
                fields.push(("client_assertion", assertion.as_str()));
            }
        }
        fields.extend_from_slice(form);
        let response = self
            .http
            .post(endpoint)
            .form(&fields)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(classify(status, &text));
        }
        let answer: TokenAnswer =
            serde_json::from_str(&text).map_err(|e| TokenError::Unavailable(format!("bad token answer: {e}")))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let renew_at = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN).max(Duration::from_secs(30));
        Ok(TokenSet {
            access: AccessToken { value: Secret(answer.access_token), renew_at },
            refresh: answer.refresh_token.map(Secret),
        })
    }
}

/// Turns an error answer into a [`TokenError`]: the error code says who must act.
fn classify(status: reqwest::StatusCode, text: &str) -> TokenError {
    if status.is_server_error() {
        return TokenError::Unavailable(format!("token endpoint answered {status}"));
    }
    let Ok(answer) = serde_json::from_str::<ErrorAnswer>(text) else {
        return TokenError::Unavailable(format!("token endpoint answered {status} without an error body"));
    };
    let codes = answer.error_codes.iter().map(|c| format!("AADSTS{c}")).collect::<Vec<_>>().join(",");
    let what = format!("{} {codes}", answer.error).trim().to_owned();
    match answer.error.as_str() {
        "authorization_pending" => TokenError::Pending,
        "slow_down" => TokenError::SlowDown,
        "authorization_declined" | "expired_token" | "bad_verification_code" => TokenError::Declined(what),
        "invalid_grant" if answer.error_codes.contains(&65001) => TokenError::BadCredentials(what),
        "invalid_grant" | "interaction_required" => TokenError::InvalidGrant(what),
        "temporarily_unavailable" => TokenError::Unavailable(what),
        // invalid_client (bad or expired secret), unauthorized_client (app
        // disabled or not consented in this tenant), invalid_request, …
        _ => TokenError::BadCredentials(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn error_answers_say_who_must_act() {
        let bad = |body: &str| classify(StatusCode::BAD_REQUEST, body);
        assert_eq!(bad(r#"{"error":"authorization_pending","error_codes":[70016]}"#), TokenError::Pending);
        assert_eq!(bad(r#"{"error":"slow_down"}"#), TokenError::SlowDown);
        assert!(matches!(bad(r#"{"error":"expired_token"}"#), TokenError::Declined(_)));
        let secret =
            bad(r#"{"error":"invalid_client","error_description":"AADSTS7000222: expired","error_codes":[7000222]}"#);
        assert_eq!(secret, TokenError::BadCredentials("invalid_client AADSTS7000222".into()));
        assert!(matches!(bad(r#"{"error":"invalid_grant","error_codes":[65001]}"#), TokenError::BadCredentials(_)));
        assert!(matches!(bad(r#"{"error":"invalid_grant","error_codes":[700082]}"#), TokenError::InvalidGrant(_)));
        assert!(matches!(bad(r#"{"error":"unauthorized_client"}"#), TokenError::BadCredentials(_)));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, "<html>"), TokenError::Unavailable(_)));
        assert!(matches!(bad("<html>"), TokenError::Unavailable(_)));
    }
}
