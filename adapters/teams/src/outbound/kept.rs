//! What the adapter keeps about its posts: durably, each post's *intent*
//! (noted before the POST, in a bounded ring of state slots by transaction
//! id), and in memory, what became of this process's recent sends.
//!
//! Graph has no client-chosen message ids or idempotency keys. A retried
//! send in the same process is answered from memory; after a crash, the
//! intent lets a retry find the message the lost attempt created (see
//! `adopt.rs`) instead of posting it again. The normal path costs one state
//! read and one write per post, as keeping a receipt after the POST did.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use brygga_core::SendReceipt;
use serde::{Deserialize, Serialize};

/// Slots of kept intents: the state stays bounded, and a retry (which comes
/// soon after its send) still finds its intent unless 4096 sends came between.
const SLOTS: u64 = 4096;
/// Sends whose outcome is remembered in memory.
const REMEMBERED: usize = 4096;

/// A slot's record, with the transaction it belongs to (slots are shared).
#[derive(Serialize, Deserialize)]
pub(super) struct Kept {
    pub(super) txn: String,
    /// A receipt kept after the POST (rows written before intents existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) receipt: Option<SendReceipt>,
    /// What the send was about to post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) intent: Option<Intent>,
}

/// What a send was about to post, noted durably before the POST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Intent {
    /// The Entra id of the identity posting.
    pub(super) who: String,
    /// The [`fingerprint`] of the body.
    pub(super) fingerprint: String,
    /// When the POST was about to go out (RFC 3339, the bridge's clock).
    pub(super) at: String,
    /// The thread root, for a reply in a channel thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) root: Option<String>,
    /// When (Graph's clock) the last message the bridge posted in the
    /// conversation was created: the one this attempt makes is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) after: Option<String>,
}

/// FNV-1a: stable across runs and Rust versions, unlike the std hasher.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The state key of a transaction's slot.
pub(super) fn sent_key(txn: &str) -> String {
    format!("sent/{}", fnv1a(txn.bytes()) % SLOTS)
}

/// A fingerprint of a message body that survives Teams rewriting its HTML:
/// only the letters and digits of its text count (markup, whitespace,
/// punctuation, emoji and link targets do not).
pub(crate) fn fingerprint(content: &str, html: bool) -> String {
    let text = if html { crate::html::plain_text(content) } else { content.to_owned() };
    let kept: String = text.chars().filter(|c| c.is_alphanumeric()).collect();
    format!("{:016x}", fnv1a(kept.bytes()))
}

/// What became of a send in this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Posted (or adopted): the receipt.
    Posted(SendReceipt),
    /// Graph surely created nothing (it refused or throttled the POST, or
    /// there was no identity to post as): a retry needs no reconciliation.
    NotPosted,
}

/// This process's recent send outcomes, by transaction (bounded).
#[derive(Default)]
pub(crate) struct Posts {
    inner: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    outcomes: HashMap<String, Outcome>,
    /// Ids of messages posted by remembered sends.
    ids: HashSet<String>,
    order: VecDeque<String>,
    /// By conversation, when its latest post was created (Graph's clock).
    latest: HashMap<String, String>,
}

impl Posts {
    /// What became of `txn`, if this process knows.
    pub(super) fn get(&self, txn: &str) -> Option<Outcome> {
        self.inner.lock().expect("posts poisoned").outcomes.get(txn).cloned()
    }

    /// Whether `id` is a message a remembered send posted.
    pub(super) fn posted(&self, id: &str) -> bool {
        self.inner.lock().expect("posts poisoned").ids.contains(id)
    }

    /// When the latest post the bridge made in `room` was created (Graph's clock).
    pub(super) fn latest(&self, room: &str) -> Option<String> {
        self.inner.lock().expect("posts poisoned").latest.get(room).cloned()
    }

    /// Notes that a post in `room` was created at `created` (Graph's clock).
    pub(super) fn created(&self, room: &str, created: &str) {
        let mut inner = self.inner.lock().expect("posts poisoned");
        // Graph writes its stamps in one format, so they order as text.
        let newer = inner.latest.get(room).is_none_or(|known| known.as_str() < created);
        if newer {
            inner.latest.insert(room.to_owned(), created.to_owned());
        }
    }

    /// Remembers what became of `txn`.
    pub(super) fn record(&self, txn: &str, outcome: Outcome) {
        let mut inner = self.inner.lock().expect("posts poisoned");
        let Remembered { outcomes, ids, order, .. } = &mut *inner;
        let posted: Vec<String> = match &outcome {
            Outcome::Posted(receipt) => receipt.remote_ids.iter().map(ToString::to_string).collect(),
            Outcome::NotPosted => Vec::new(),
        };
        match outcomes.insert(txn.to_owned(), outcome) {
            None => order.push_back(txn.to_owned()),
            Some(Outcome::Posted(old)) => old.remote_ids.iter().for_each(|id| _ = ids.remove(id.as_str())),
            Some(Outcome::NotPosted) => {}
        }
        ids.extend(posted);
        while outcomes.len() > REMEMBERED {
            let Some(old) = order.pop_front() else { break };
            if let Some(Outcome::Posted(receipt)) = outcomes.remove(&old) {
                receipt.remote_ids.iter().for_each(|id| _ = ids.remove(id.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use brygga_core::RemoteMessageId;

    use super::*;

    #[test]
    fn slots_are_stable_and_bounded() {
        assert_eq!(sent_key("txn-1"), sent_key("txn-1"));
        assert_ne!(sent_key("txn-1"), sent_key("txn-2"));
        let slot: u64 = sent_key("anything").trim_start_matches("sent/").parse().unwrap();
        assert!(slot < SLOTS);
        // FNV-1a of "a", as published.
        assert_eq!(sent_key("a"), format!("sent/{}", 0xaf63_dc4c_8601_ec8c_u64 % SLOTS));
    }

    #[test]
    fn fingerprints_survive_rewritten_html_but_not_other_words() {
        let sent = "<p><b>Bob</b></p><p>Lunch at 12:30? <at id=\"0\">Anna</at> &amp; me 🍕</p>\
                    <p><a href=\"https://bridge/media/x?sig=1\">menu.pdf</a></p>";
        let rewritten = "<div><div><strong>Bob</strong></div>\n<div>Lunch at 12:30?&nbsp;<at id=\"0\">Anna</at> \
                         &amp; me <emoji alt=\"🍕\"></emoji></div><div><a href=\"https://other/link\" \
                         title=\"menu.pdf\">menu.pdf</a></div></div>";
        assert_eq!(fingerprint(sent, true), fingerprint(rewritten, true));
        assert_ne!(fingerprint(sent, true), fingerprint(&sent.replace("12:30", "12:45"), true));
        assert_ne!(fingerprint(sent, true), fingerprint(&sent.replace("<b>Bob</b>", "<b>Eve</b>"), true));
        assert_eq!(fingerprint("Bob\nLunch at 12:30", false), fingerprint("<p>Bob</p><p>Lunch at 12:30</p>", true));
    }

    #[test]
    fn outcomes_are_remembered_within_bounds() {
        let posts = Posts::default();
        let receipt = |id: &str| SendReceipt::one(RemoteMessageId::new(id).unwrap());
        posts.record("t0", Outcome::NotPosted);
        posts.record("t0", Outcome::Posted(receipt("m0")));
        assert_eq!(posts.get("t0"), Some(Outcome::Posted(receipt("m0"))));
        assert!(posts.posted("m0") && !posts.posted("m1"));
        for n in 1..=REMEMBERED {
            posts.record(&format!("t{n}"), Outcome::Posted(receipt(&format!("m{n}"))));
        }
        assert_eq!(posts.get("t0"), None, "the oldest is forgotten first");
        assert!(!posts.posted("m0"));
        assert!(posts.posted(&format!("m{REMEMBERED}")));
        let inner = posts.inner.lock().unwrap();
        assert_eq!((inner.outcomes.len(), inner.order.len(), inner.ids.len()), (REMEMBERED, REMEMBERED, REMEMBERED));
    }
}
