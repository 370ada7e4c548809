//! XEP-0444 sends a user's whole set of reactions to a message each time;
//! Matrix has one event per reaction. Each user's set per message is kept
//! in the adapter's state, so sets turn into single additions and removals
//! and back, across restarts.

use std::sync::Arc;

use brygga_core::{AdapterState, BridgeError};

/// Which side's reactions a set belongs to.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    /// An XMPP user's reactions.
    Xmpp,
    /// A Matrix user's reactions, as last sent to XMPP.
    Matrix,
}

/// Reaction sets by room, message and user.
pub(crate) struct Reactions {
    state: Arc<dyn AdapterState>,
}

/// What changed between two sets.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl Reactions {
    pub(crate) fn new(state: Arc<dyn AdapterState>) -> Self {
        Self { state }
    }

    fn key(side: Side, room: &str, target: &str, user: &str) -> String {
        let side = match side {
            Side::Xmpp => "x",
            Side::Matrix => "m",
        };
        // Length prefixes keep the parts apart whatever they contain.
        format!("reactions:{side}:{}:{room}{}:{target}{}:{user}", room.len(), target.len(), user.len())
    }

    /// The user's current set.
    pub(crate) async fn get(
        &self,
        side: Side,
        room: &str,
        target: &str,
        user: &str,
    ) -> Result<Vec<String>, BridgeError> {
        let value = self.state.get(&Self::key(side, room, target, user)).await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }

    /// Stores the user's set.
    pub(crate) async fn put(
        &self,
        side: Side,
        room: &str,
        target: &str,
        user: &str,
        set: &[String],
    ) -> Result<(), BridgeError> {
        let key = Self::key(side, room, target, user);
        if set.is_empty() {
            return self.state.put(&key, None).await;
        }
        let value = serde_json::to_string(set).map_err(|e| BridgeError::permanent(e.to_string()))?;
        self.state.put(&key, Some(&value)).await
    }

    /// Replaces an XMPP user's set; returns what changed.
    pub(crate) async fn replace(
        &self,
        room: &str,
        target: &str,
        user: &str,
        set: Vec<String>,
    ) -> Result<Change, BridgeError> {
        let before = self.get(Side::Xmpp, room, target, user).await?;
        let change = Change {
            added: set.iter().filter(|k| !before.contains(k)).cloned().collect(),
            removed: before.iter().filter(|k| !set.contains(k)).cloned().collect(),
        };
        self.put(Side::Xmpp, room, target, user, &set).await?;
        Ok(change)
    }

    /// A Matrix user's set after adding or removing `key` (not stored until sent).
    pub(crate) async fn apply(
        &self,
        room: &str,
        target: &str,
        user: &str,
        key: &str,
        removed: bool,
    ) -> Result<Vec<String>, BridgeError> {
        let mut set = self.get(Side::Matrix, room, target, user).await?;
        set.retain(|k| k != key);
        if !removed {
            set.push(key.to_owned());
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brygga_core::MemoryState;

    fn reactions() -> Reactions {
        Reactions::new(Arc::new(MemoryState::default()))
    }

    #[tokio::test]
    async fn whole_sets_become_changes() {
        let r = reactions();
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(r.replace("room", "m1", "bob", set(&["👍", "🎉"])).await.unwrap().added, set(&["👍", "🎉"]));
        let change = r.replace("room", "m1", "bob", set(&["🎉", "❤"])).await.unwrap();
        assert_eq!(change, Change { added: set(&["❤"]), removed: set(&["👍"]) });
        assert_eq!(r.replace("room", "m1", "bob", Vec::new()).await.unwrap().removed, set(&["🎉", "❤"]));
        assert!(r.get(Side::Xmpp, "room", "m1", "bob").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn single_changes_become_whole_sets_per_user() {
        let r = reactions();
        let set = r.apply("room", "m1", "@a:hs", "👍", false).await.unwrap();
        r.put(Side::Matrix, "room", "m1", "@a:hs", &set).await.unwrap();
        let set = r.apply("room", "m1", "@a:hs", "🎉", false).await.unwrap();
        assert_eq!(set, ["👍", "🎉"]);
        r.put(Side::Matrix, "room", "m1", "@a:hs", &set).await.unwrap();
        assert_eq!(r.apply("room", "m1", "@a:hs", "👍", true).await.unwrap(), ["🎉"]);
        assert!(r.apply("room", "m1", "@b:hs", "👍", true).await.unwrap().is_empty(), "sets are per user");
    }
}
