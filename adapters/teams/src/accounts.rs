//! Delegated identities: Matrix users' linked Teams accounts and the relay.
//!
//! Each keeps its refresh token sealed in the adapter state (never in the
//! clear, bound to the tenant and the Matrix user so it cannot be moved to
//! another slot) and its access token in memory. Refresh tokens rotate: the
//! new one is sealed and stored before the access token is used.

use std::collections::HashMap;
use std::sync::Arc;

use brygga_core::{AdapterState, BridgeError, MatrixUserId, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::{Secret, TeamsConfig};
use crate::token::{AccessToken, Identity, TokenError, TokenSet};

/// The state key listing linked Matrix users.
const INDEX_KEY: &str = "accounts";
/// The slot name of the relay identity.
pub(crate) const RELAY: &str = "relay";

/// A stored identity: its Entra object id and sealed refresh token.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    aad: String,
    sealed: String,
}

/// One delegated identity in memory.
struct Slot {
    aad: String,
    access: Option<AccessToken>,
}

/// The delegated identities of one tenant.
pub(crate) struct Accounts {
    tenant: TenantId,
    state: Arc<dyn AdapterState>,
    config: TeamsConfig,
    /// By slot (a Matrix user id, or [`RELAY`]); the lock serialises refreshes.
    slots: Mutex<HashMap<String, Slot>>,
    /// Entra id to Matrix user, for mentions and echo checks.
    by_aad: std::sync::RwLock<HashMap<String, MatrixUserId>>,
}

/// Matrix user id to Entra id, from the Entra-to-Matrix map.
fn invert(by_aad: &HashMap<String, MatrixUserId>, user: &str) -> Option<String> {
    by_aad.iter().find(|(_, m)| m.as_str() == user).map(|(aad, _)| aad.clone())
}

fn key(slot: &str) -> String {
    format!("account/{slot}")
}

impl Accounts {
    pub(crate) fn new(tenant: TenantId, state: Arc<dyn AdapterState>, config: TeamsConfig) -> Self {
        Self { tenant, state, config, slots: Mutex::default(), by_aad: Default::default() }
    }

    fn owner(&self, slot: &str) -> String {
        format!("{}/{slot}", self.tenant)
    }

    /// Loads the linked users (and seeds the relay from the config once).
    pub(crate) async fn load(&self) -> Result<(), BridgeError> {
        let index: Vec<String> = match self.state.get(INDEX_KEY).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut by_aad = HashMap::new();
        let mut slots = self.slots.lock().await;
        for user in index {
            let (Ok(matrix), Some(stored)) = (MatrixUserId::new(user.clone()), self.stored(&user).await?) else {
                continue;
            };
            by_aad.insert(stored.aad.clone(), matrix);
            slots.insert(user, Slot { aad: stored.aad, access: None });
        }
        if let Some(relay) = &self.config.relay_user_id {
            if self.stored(RELAY).await?.is_none()
                && let Some(seed) = &self.config.relay_refresh_token
            {
                self.store(RELAY, relay, seed).await?;
            }
            slots.insert(RELAY.into(), Slot { aad: relay.clone(), access: None });
        }
        *self.by_aad.write().expect("accounts poisoned") = by_aad;
        Ok(())
    }

    async fn stored(&self, slot: &str) -> Result<Option<Stored>, BridgeError> {
        Ok(self.state.get(&key(slot)).await?.and_then(|text| serde_json::from_str(&text).ok()))
    }

    async fn store(&self, slot: &str, aad: &str, refresh: &Secret) -> Result<(), BridgeError> {
        let sealed = self.config.token_key.seal(&refresh.0, &self.owner(slot));
        let text = serde_json::to_string(&Stored { aad: aad.to_owned(), sealed }).expect("serialisable");
        self.state.put(&key(slot), Some(&text)).await
    }

    /// Links a Matrix user to their Teams account with a fresh grant
    /// (from the device code flow).
    pub(crate) async fn link(&self, user: &MatrixUserId, aad: &str, tokens: TokenSet) -> Result<(), BridgeError> {
        let refresh = tokens.refresh.ok_or_else(|| BridgeError::permanent("the grant has no refresh token"))?;
        let slot = user.to_string();
        let mut slots = self.slots.lock().await;
        self.store(&slot, aad, &refresh).await?;
        slots.insert(slot.clone(), Slot { aad: aad.to_owned(), access: Some(tokens.access) });
        let mut index: Vec<String> = slots.keys().filter(|k| k.as_str() != RELAY).cloned().collect();
        index.sort();
        self.state.put(INDEX_KEY, Some(&serde_json::to_string(&index).expect("serialisable"))).await?;
        self.by_aad.write().expect("accounts poisoned").insert(aad.to_owned(), user.clone());
        Ok(())
    }

    /// Forgets a Matrix user's linked account (its sealed grant included).
    /// False when they had none.
    pub(crate) async fn unlink(&self, user: &MatrixUserId) -> Result<bool, BridgeError> {
        let slot = user.to_string();
        let mut slots = self.slots.lock().await;
        if slots.remove(&slot).is_none() {
            return Ok(false);
        }
        let mut index: Vec<String> = slots.keys().filter(|k| k.as_str() != RELAY).cloned().collect();
        index.sort();
        self.state.put(INDEX_KEY, Some(&serde_json::to_string(&index).expect("serialisable"))).await?;
        self.state.put(&key(&slot), None).await?;
        self.by_aad.write().expect("accounts poisoned").retain(|_, m| m != user);
        Ok(true)
    }

    /// The Entra id of a linked Matrix user.
    pub(crate) fn aad_of(&self, user: &str) -> Option<String> {
        invert(&self.by_aad.read().expect("accounts poisoned"), user)
    }

    /// The Matrix user who linked this Entra id.
    pub(crate) fn matrix_of(&self, aad: &str) -> Option<MatrixUserId> {
        self.by_aad.read().expect("accounts poisoned").get(aad).cloned()
    }

    /// The relay identity's Entra id.
    pub(crate) fn relay_aad(&self) -> Option<&str> {
        self.config.relay_user_id.as_deref()
    }

    /// A fresh access token of `slot` (refreshing and re-sealing as needed),
    /// with its Entra id; `None` when the slot has no identity.
    pub(crate) async fn token(&self, identity: &Identity, slot: &str) -> Result<Option<(Secret, String)>, TokenError> {
        let mut slots = self.slots.lock().await;
        let Some(entry) = slots.get_mut(slot) else { return Ok(None) };
        if let Some(access) = entry.access.as_ref().filter(|a| a.fresh()) {
            return Ok(Some((access.value.clone(), entry.aad.clone())));
        }
        let stored = self.stored(slot).await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let Some(stored) = stored else { return Ok(None) };
        let refresh = self
            .config
            .token_key
            .open(&stored.sealed, &self.owner(slot))
            .map_err(|e| TokenError::InvalidGrant(format!("stored token of {slot}: {e}")))?;
        let tokens = identity.refresh(&Secret(refresh)).await?;
        if let Some(rotated) = &tokens.refresh {
            self.store(slot, &stored.aad, rotated).await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
        }
        entry.access = Some(tokens.access.clone());
        Ok(Some((tokens.access.value, stored.aad)))
    }

    /// Forgets a slot's access token (Graph refused it).
    pub(crate) async fn forget_access(&self, slot: &str) {
        if let Some(entry) = self.slots.lock().await.get_mut(slot) {
            entry.access = None;
        }
    }
}
