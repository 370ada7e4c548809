//! Puppets: in `users` mode each Matrix user who speaks gets a real
//! Rocket.Chat user (`users.create`), and the bridge mints it a token
//! (`users.createToken`, admin only). Both are kept in the adapter state, so
//! a restarted bridge reuses them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use brygga_core::{AdapterState, BridgeError, MatrixUserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api;
use crate::ids;
use crate::rest::{Creds, Rest, RestError};

/// A Matrix user's Rocket.Chat user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Puppet {
    pub(crate) username: String,
    pub(crate) user_id: String,
    token: String,
}

impl Puppet {
    pub(crate) fn creds(&self) -> Creds {
        Creds { user_id: self.user_id.clone(), token: self.token.clone() }
    }
}

/// The puppets known to this adapter.
#[derive(Default)]
pub(crate) struct Puppets {
    by_user: Mutex<HashMap<MatrixUserId, Puppet>>,
    /// Rooms each puppet (by user id) is known to be in.
    joined: Mutex<HashSet<(String, String)>>,
    /// Serialises creation, so two events of one user create one puppet.
    creating: tokio::sync::Mutex<()>,
}

fn state_key(user: &MatrixUserId) -> String {
    format!("puppet:{user}")
}

/// The state key listing every puppet's Matrix user (a JSON array).
const INDEX_KEY: &str = "puppets";

impl Puppets {
    /// The Matrix user behind a puppet username, if it is one we know.
    pub(crate) fn owner_of(&self, username: &str) -> Option<MatrixUserId> {
        let by_user = self.by_user.lock().expect("puppets poisoned");
        by_user.iter().find(|(_, p)| p.username == username).map(|(u, _)| u.clone())
    }

    /// The puppet of a Matrix user if it exists already (never creates one).
    pub(crate) async fn existing(&self, state: &dyn AdapterState, user: &MatrixUserId) -> Option<Puppet> {
        if let Some(puppet) = self.by_user.lock().expect("puppets poisoned").get(user) {
            return Some(puppet.clone());
        }
        let stored = state.get(&state_key(user)).await.ok()??;
        let puppet: Puppet = serde_json::from_str(&stored).ok()?;
        self.by_user.lock().expect("puppets poisoned").insert(user.clone(), puppet.clone());
        Some(puppet)
    }

    /// The puppet of a Matrix user, creating it (and its token) on first use.
    pub(crate) async fn ensure(
        &self,
        rest: &Rest,
        state: &dyn AdapterState,
        bot: &Creds,
        user: &MatrixUserId,
        display_name: Option<&str>,
    ) -> Result<Puppet, BridgeError> {
        if let Some(puppet) = self.by_user.lock().expect("puppets poisoned").get(user) {
            return Ok(puppet.clone());
        }
        let _creating = self.creating.lock().await;
        if let Some(puppet) = self.by_user.lock().expect("puppets poisoned").get(user) {
            return Ok(puppet.clone());
        }
        let stored = state.get(&state_key(user)).await?.and_then(|s| serde_json::from_str::<Puppet>(&s).ok());
        let puppet = match stored {
            Some(puppet) => puppet,
            None => self.create(rest, state, bot, user, display_name).await?,
        };
        self.by_user.lock().expect("puppets poisoned").insert(user.clone(), puppet.clone());
        Ok(puppet)
    }

    async fn create(
        &self,
        rest: &Rest,
        state: &dyn AdapterState,
        bot: &Creds,
        user: &MatrixUserId,
        display_name: Option<&str>,
    ) -> Result<Puppet, BridgeError> {
        let config = rest.config();
        let username = ids::puppet_username(&config.puppet_prefix, user);
        let user_id = match api::user_id(rest, bot, &username).await? {
            Some(id) => id,
            None => {
                let body = json!({
                    "username": username,
                    "name": display_name.unwrap_or(user.as_str()),
                    "email": format!("{username}@{}", config.puppet_email_domain),
                    // Nobody logs in with it: the bridge uses minted tokens.
                    "password": random_secret(),
                    "verified": true,
                    "joinDefaultChannels": false,
                    "requirePasswordChange": false,
                    "sendWelcomeEmail": false,
                });
                api::create_user(rest, bot, body).await?
            }
        };
        let creds = api::create_token(rest, bot, &user_id).await.map_err(|err| match err {
            RestError::Refused { .. } => BridgeError::permanent(format!(
                "minting a token for puppet {username} was refused ({err}); the bot needs the \
                 user-generate-access-token permission and, since 7.x, the server's CREATE_TOKENS_FOR_USERS_SECRET \
                 as create_tokens_secret; or use puppet_mode: impersonate"
            )),
            other => other.into(),
        })?;
        let puppet = Puppet { username, user_id, token: creds.token };
        let stored = serde_json::to_string(&puppet).map_err(|e| BridgeError::permanent(e.to_string()))?;
        state.put(&state_key(user), Some(&stored)).await?;
        let mut index = Self::index(state).await?;
        if !index.contains(user) {
            index.push(user.clone());
            let list = serde_json::to_string(&index).map_err(|e| BridgeError::permanent(e.to_string()))?;
            state.put(INDEX_KEY, Some(&list)).await?;
        }
        tracing::info!(puppet = %puppet.username, "Rocket.Chat puppet user ready");
        Ok(puppet)
    }

    /// Every Matrix user that has a puppet.
    pub(crate) async fn index(state: &dyn AdapterState) -> Result<Vec<MatrixUserId>, BridgeError> {
        let list = state.get(INDEX_KEY).await?.unwrap_or_default();
        Ok(serde_json::from_str(&list).unwrap_or_default())
    }

    /// Forgets a puppet whose token was refused, so the next use mints a new one.
    pub(crate) async fn forget(&self, state: &dyn AdapterState, user: &MatrixUserId) {
        self.by_user.lock().expect("puppets poisoned").remove(user);
        if let Err(err) = state.put(&state_key(user), None).await {
            tracing::warn!(error = %err, "forgetting a puppet token failed");
        }
    }

    /// Whether the puppet is known to be in `rid`.
    pub(crate) fn is_in(&self, user_id: &str, rid: &str) -> bool {
        self.joined.lock().expect("puppets poisoned").contains(&(user_id.to_owned(), rid.to_owned()))
    }

    /// Records that the puppet is in `rid`.
    pub(crate) fn joined(&self, user_id: &str, rid: &str) {
        self.joined.lock().expect("puppets poisoned").insert((user_id.to_owned(), rid.to_owned()));
    }
}

/// A password nobody needs to know.
fn random_secret() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[rng.random_range(0..57)]))
        .collect()
}
