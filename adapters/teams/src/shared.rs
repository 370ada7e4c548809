//! State shared by the adapter's tasks, and Graph calls with the right token.

use std::sync::Arc;

use brygga_core::{AdapterState, InboundSink, MediaLinks, PortalDirectory, TenantId};
use reqwest::Method;
use serde_json::Value;

use crate::accounts::Accounts;
use crate::config::TeamsConfig;
use crate::echo::Echoes;
use crate::graph::{Answer, Body, Caller, Graph, GraphError};
use crate::presence::Watched;
use crate::status::{Health, Status};
use crate::subs::Subscriptions;
use crate::token::{Identity, TokenError};
use crate::workers::Workers;

/// Everything one tenant's adapter tasks share.
pub(crate) struct Shared {
    pub(crate) tenant: TenantId,
    pub(crate) graph: Graph,
    pub(crate) identity: Identity,
    pub(crate) accounts: Accounts,
    pub(crate) subs: Subscriptions,
    pub(crate) workers: Workers,
    pub(crate) echoes: Echoes,
    pub(crate) status: Status,
    pub(crate) sink: Arc<dyn InboundSink>,
    pub(crate) portals: Arc<dyn PortalDirectory>,
    pub(crate) state: Arc<dyn AdapterState>,
    pub(crate) media_links: Option<Arc<dyn MediaLinks>>,
    /// People seen in conversations, for presence.
    pub(crate) watched: Watched,
    /// The identity platform's keys, for validation tokens of resource data.
    pub(crate) signing_keys: crate::resource_data::SigningKeys,
    /// What became of recent posts, so a retry does not post twice.
    pub(crate) posts: crate::outbound::Posts,
}

/// A Graph error for a token the identity platform would not give.
pub(crate) fn token_failure(err: TokenError) -> GraphError {
    match err {
        TokenError::Unavailable(why) => GraphError::Unavailable(why),
        other => GraphError::BadCredentials { status: 0, code: other.to_string() },
    }
}

impl Shared {
    pub(crate) fn config(&self) -> &TeamsConfig {
        self.graph.config()
    }

    /// A Graph URL for a relative path, or an absolute link Graph gave
    /// (`@odata.nextLink`): only links under the configured Graph root are
    /// followed, so a token is never sent anywhere else.
    pub(crate) fn url(&self, path_or_link: &str) -> Option<String> {
        let root = self.config().graph_url.as_str();
        if path_or_link.starts_with("http://") || path_or_link.starts_with("https://") {
            return path_or_link.starts_with(root).then(|| path_or_link.to_owned());
        }
        Some(self.config().graph(path_or_link).to_string())
    }

    /// A call with the app's own token; a refused token is renewed once.
    pub(crate) async fn app_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        pace: &str,
    ) -> Result<Answer, GraphError> {
        let url = self.url(path).ok_or_else(|| GraphError::Unavailable("a link outside Graph".into()))?;
        for attempt in 0..2 {
            let token = match self.identity.app_token().await {
                Ok(token) => token,
                Err(err) => return Err(self.note(token_failure(err))),
            };
            let body = body.map_or(Body::None, Body::Json);
            match self.graph.call(method.clone(), &url, &token, Caller::App, body, pace).await {
                Err(GraphError::BadCredentials { status: 401, .. }) if attempt == 0 => {
                    self.identity.forget_app_token().await;
                }
                other => return other.map_err(|e| self.note(e)),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A call as a delegated identity (`slot`: a Matrix user id or the relay).
    /// `Ok(None)` when the slot has no usable identity.
    pub(crate) async fn user_call(
        &self,
        slot: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        pace: &str,
    ) -> Result<Option<(Answer, String)>, GraphError> {
        let url = self.url(path).ok_or_else(|| GraphError::Unavailable("a link outside Graph".into()))?;
        for attempt in 0..2 {
            let (token, aad) = match self.accounts.token(&self.identity, slot).await {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(None),
                Err(TokenError::InvalidGrant(why)) => {
                    tracing::warn!(tenant = %self.tenant, slot, error = %why, "a linked Teams account's grant is gone; it must be linked again");
                    return Ok(None);
                }
                Err(err) => return Err(self.note(token_failure(err))),
            };
            let body = body.map_or(Body::None, Body::Json);
            match self.graph.call(method.clone(), &url, &token, Caller::Delegated, body, pace).await {
                Err(GraphError::BadCredentials { status: 401, .. }) if attempt == 0 => {
                    self.accounts.forget_access(slot).await;
                }
                Err(err) => return Err(err),
                Ok(answer) => return Ok(Some((answer, aad))),
            }
        }
        Ok(None)
    }

    /// Reports credential failures and outages as the tenant's state.
    pub(crate) fn note(&self, err: GraphError) -> GraphError {
        match &err {
            GraphError::BadCredentials { .. } => self.status.set(Health::BadCredentials(err.to_string())),
            GraphError::Unavailable(why) => self.status.set(Health::TransientError(why.clone())),
            _ => {}
        }
        err
    }
}
