//! Deterministic transaction ids.
//!
//! Synapse scopes client transaction ids to the appservice, not to the ghost
//! it acts as, so ids are derived from what is unique across the whole bridge
//! (tenant, portal, event, part) and never from a clock or a counter.

use sha2::{Digest, Sha256};

/// A transaction id from the parts that identify one send.
pub fn txn_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("brygga.{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_same_id_and_boundaries_matter() {
        assert_eq!(txn_id(&["t", "p", "m", "0"]), txn_id(&["t", "p", "m", "0"]));
        assert_ne!(txn_id(&["t", "p", "m", "0"]), txn_id(&["t", "p", "m", "1"]));
        assert_ne!(txn_id(&["ab", "c"]), txn_id(&["a", "bc"]));
        assert!(txn_id(&["x"]).starts_with("brygga."));
    }
}
