//! Linking a Matrix user's Teams account (double puppeting) with the device
//! code flow: the bridge bot shows the code and address, the person signs in
//! at Microsoft, and the grant is kept sealed for them.

use std::sync::Arc;

use brygga_core::{BridgeError, MatrixUserId};
use reqwest::Method;
use serde_json::Value;

use crate::graph::{Body, Caller};
use crate::shared::Shared;

/// What to show the person who links their account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkPrompt {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// The Teams account a Matrix user linked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Linked {
    /// Its Entra object id.
    pub aad: String,
    /// Its display name.
    pub display_name: String,
}

/// How a link ended: the linked account, or why it failed.
pub type LinkOutcome = tokio::task::JoinHandle<Result<Linked, String>>;

/// Starts the device code flow for `user`; the handle ends when they signed
/// in (and the link is stored), declined, or the code expired.
pub(crate) async fn start(shared: &Arc<Shared>, user: MatrixUserId) -> Result<(LinkPrompt, LinkOutcome), BridgeError> {
    let code = shared
        .identity
        .start_device_code()
        .await
        .map_err(|e| BridgeError::transient(format!("starting the Teams sign-in: {e}")))?;
    let prompt = LinkPrompt {
        user_code: code.user_code.clone(),
        verification_uri: code.verification_uri.clone(),
        expires_in: code.expires_in,
    };
    let shared = shared.clone();
    let outcome = tokio::spawn(async move {
        let tokens = shared.identity.finish_device_code(&code).await.map_err(|e| e.to_string())?;
        let url = shared.config().graph("me").to_string();
        let me = shared
            .graph
            .call(Method::GET, &url, &tokens.access.value, Caller::Delegated, Body::None, "me")
            .await
            .map_err(|e| e.to_string())?;
        let aad = me.body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        if aad.is_empty() {
            return Err("Graph did not say who signed in".to_owned());
        }
        let display_name = me.body.get("displayName").and_then(Value::as_str).unwrap_or(&aad).to_owned();
        shared.accounts.link(&user, &aad, tokens).await.map_err(|e| e.to_string())?;
        tracing::info!(tenant = %shared.tenant, "a Matrix user linked their Teams account");
        Ok(Linked { aad, display_name })
    });
    Ok((prompt, outcome))
}

/// Links `user` to the Teams account `aad` with a refresh token obtained
/// elsewhere (an operator's tooling, tests): the token is checked by
/// redeeming it, then kept sealed like one from the device code flow.
pub(crate) async fn with_refresh_token(
    shared: &Shared,
    user: &MatrixUserId,
    aad: &str,
    refresh_token: &str,
) -> Result<(), BridgeError> {
    let tokens = shared
        .identity
        .refresh(&crate::config::Secret(refresh_token.to_owned()))
        .await
        .map_err(|e| BridgeError::permanent(format!("the refresh token was refused: {e}")))?;
    let tokens = match tokens.refresh {
        Some(_) => tokens,
        None => crate::token::TokenSet { refresh: Some(crate::config::Secret(refresh_token.to_owned())), ..tokens },
    };
    shared.accounts.link(user, aad, tokens).await
}
