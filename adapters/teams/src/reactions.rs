//! The reactions each message had when it was last read, kept across
//! restarts, so a reaction removed on Teams (live, or while the bridge was
//! down) becomes a removal on Matrix.
//!
//! Graph shows only a message's current reactions: a removal is visible only
//! as a difference to what was seen before. An added reaction needs no
//! memory (its event id names the reaction and its time, so the store's
//! dedupe turns a re-push into a no-op); what a removal needs is the set seen
//! last. That set is kept in the adapter state under
//! `reactions/{room}/{message}`, written only when it changes and removed
//! when it empties (or the message is deleted), so messages without
//! reactions never cost a write. It is read back only for a message Graph
//! shows as modified after it was created (reacting modifies a message), so
//! bridging a new message costs no store access either. A bounded cache per
//! conversation saves re-reads of busy messages.

use std::collections::{BTreeSet, HashMap, VecDeque};

use brygga_core::{AdapterState, BridgeError};
use chrono::DateTime;

use crate::ids::MessageRef;
use crate::map::SeenReaction;
use crate::model::ChatMessage;

/// Messages whose reactions a conversation's worker keeps in memory.
const CACHED: usize = 2000;

/// The state key of a message's reactions.
pub(crate) fn state_key(room: &str, message: &MessageRef) -> String {
    format!("reactions/{room}/{}", message.id())
}

/// One conversation's view of its messages' reactions: a bounded cache in
/// front of the adapter state.
#[derive(Default)]
pub(crate) struct ReactionMemory {
    cache: HashMap<String, BTreeSet<SeenReaction>>,
    /// Cached keys, oldest first (evicted in this order).
    order: VecDeque<String>,
}

impl ReactionMemory {
    /// The reactions `message` had when last read (empty if none were kept).
    pub(crate) async fn before(
        &mut self,
        state: &dyn AdapterState,
        key: &str,
        message: &ChatMessage,
    ) -> Result<BTreeSet<SeenReaction>, BridgeError> {
        if let Some(seen) = self.cache.get(key) {
            return Ok(seen.clone());
        }
        if !modified_after_creation(message) {
            return Ok(BTreeSet::new());
        }
        let Some(stored) = state.get(key).await? else { return Ok(BTreeSet::new()) };
        Ok(serde_json::from_str(&stored).unwrap_or_else(|err| {
            // Losing one message's removals beats blocking the conversation on it.
            tracing::warn!(error = %err, "Teams: kept reactions do not parse; forgetting them");
            BTreeSet::new()
        }))
    }

    /// Keeps `seen` as what `key` has now (`before`: what [`Self::before`] gave).
    /// Called after the events of the difference are stored, so a failure
    /// here only makes the next read push them again (deduplicated).
    pub(crate) async fn keep(
        &mut self,
        state: &dyn AdapterState,
        key: &str,
        before: &BTreeSet<SeenReaction>,
        seen: BTreeSet<SeenReaction>,
    ) -> Result<(), BridgeError> {
        if seen != *before {
            let text = match seen.is_empty() {
                true => None,
                false => Some(serde_json::to_string(&seen).map_err(|e| BridgeError::permanent(e.to_string()))?),
            };
            state.put(key, text.as_deref()).await?;
        }
        self.remember(key, seen);
        Ok(())
    }

    fn remember(&mut self, key: &str, seen: BTreeSet<SeenReaction>) {
        if self.cache.insert(key.to_owned(), seen).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.cache.len() > CACHED {
            let Some(old) = self.order.pop_front() else { break };
            self.cache.remove(&old);
        }
    }
}

/// Whether Graph shows the message changed after it was created (unknown
/// stamps count as changed: reading back costs less than missing a removal).
fn modified_after_creation(message: &ChatMessage) -> bool {
    let stamp = |s: Option<&str>| s.and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    match (stamp(message.created_date_time.as_deref()), stamp(message.last_modified_date_time.as_deref())) {
        (Some(created), Some(modified)) => modified > created,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brygga_core::MemoryState;

    fn reaction(user: &str) -> SeenReaction {
        (user.into(), "like".into(), "2026-01-01T10:00:00Z".into())
    }

    fn message(created: &str, modified: &str) -> ChatMessage {
        ChatMessage {
            created_date_time: Some(created.into()),
            last_modified_date_time: Some(modified.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn kept_sets_survive_a_new_memory_and_empty_sets_leave_no_trace() {
        let state = MemoryState::default();
        let key = state_key("19:x@thread.v2", &MessageRef::root("17"));
        assert_eq!(key, "reactions/19:x@thread.v2/17");
        let reacted = message("2026-01-01T10:00:00Z", "2026-01-01T10:00:05Z");
        let mut memory = ReactionMemory::default();
        let before = memory.before(&state, &key, &reacted).await.unwrap();
        assert!(before.is_empty());
        let seen: BTreeSet<_> = [reaction("anna"), reaction("bo")].into();
        memory.keep(&state, &key, &before, seen.clone()).await.unwrap();

        // A restart: a new memory reads the set back from the state.
        let mut restarted = ReactionMemory::default();
        assert_eq!(restarted.before(&state, &key, &reacted).await.unwrap(), seen);
        // A message never modified after creation cannot have had reactions: no read.
        let fresh = message("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z");
        assert!(ReactionMemory::default().before(&state, &key, &fresh).await.unwrap().is_empty());

        restarted.keep(&state, &key, &seen, BTreeSet::new()).await.unwrap();
        assert_eq!(state.get(&key).await.unwrap(), None, "an emptied set is forgotten");
        assert!(restarted.before(&state, &key, &reacted).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_unparsable_state_is_forgotten() {
        let state = MemoryState::default();
        let mut memory = ReactionMemory::default();
        for n in 0..CACHED + 5 {
            let key = format!("reactions/r/{n}");
            memory.keep(&state, &key, &BTreeSet::new(), [reaction("anna")].into()).await.unwrap();
        }
        assert_eq!(memory.cache.len(), CACHED);
        assert_eq!(memory.order.len(), CACHED);
        assert!(!memory.cache.contains_key("reactions/r/0"), "the oldest is evicted first");
        // Evicted entries are still read back from the state.
        let reacted = message("2026-01-01T10:00:00Z", "2026-01-01T10:00:05Z");
        assert_eq!(memory.before(&state, "reactions/r/0", &reacted).await.unwrap(), [reaction("anna")].into());
        state.put("reactions/r/bad", Some("not json")).await.unwrap();
        assert!(memory.before(&state, "reactions/r/bad", &reacted).await.unwrap().is_empty());
    }
}
