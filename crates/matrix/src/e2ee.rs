//! What the client and the server share for encrypted rooms: the devices
//! (`brygga-crypto`), which rooms are encrypted and who is in them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use brygga_core::RoomEncryption;
use brygga_crypto::{Crypto, Homeserver};

use crate::client::Http;

/// The room key algorithm the bridge speaks.
pub(crate) const MEGOLM: &str = "m.megolm.v1.aes-sha2";

/// Whether `m.room.encryption` content names the algorithm the bridge speaks.
pub(crate) fn names_megolm(content: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Content {
        algorithm: Option<String>,
    }
    serde_json::from_str::<Content>(content).ok().and_then(|c| c.algorithm).as_deref() == Some(MEGOLM)
}

/// Encryption state of the bridge's rooms.
pub struct E2ee {
    pub(crate) crypto: Crypto,
    /// Rooms' encryption as last learnt.
    encrypted: Mutex<HashMap<String, RoomEncryption>>,
    /// Members to share room keys with, until a membership event changes them.
    members: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for E2ee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2ee").finish_non_exhaustive()
    }
}

/// The parts of a pushed room event the encryption state is learnt from.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    room_id: Option<String>,
    state_key: Option<String>,
    #[serde(borrow)]
    content: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    unsigned: Option<Unsigned<'a>>,
}

#[derive(serde::Deserialize)]
struct Unsigned<'a> {
    /// The room's state shown to an invitee (it may not read the room yet).
    #[serde(borrow, default)]
    invite_room_state: Vec<StrippedState<'a>>,
}

#[derive(serde::Deserialize)]
struct StrippedState<'a> {
    #[serde(rename = "type")]
    kind: String,
    state_key: Option<String>,
    #[serde(borrow)]
    content: Option<&'a serde_json::value::RawValue>,
}

impl E2ee {
    pub(crate) fn new(crypto: Crypto) -> Self {
        Self { crypto, encrypted: Mutex::default(), members: Mutex::default() }
    }

    /// Takes a transaction's crypto sections (to-device events, device
    /// lists, key counts) and learns from its room events.
    pub(crate) async fn receive(
        &self,
        body: &[u8],
        events: &[&serde_json::value::RawValue],
    ) -> Result<(), brygga_crypto::CryptoError> {
        for raw in events {
            if let Ok(event) = serde_json::from_str::<Envelope<'_>>(raw.get()) {
                self.note_event(&event);
            }
        }
        let section: brygga_crypto::TransactionCrypto = serde_json::from_slice(body).unwrap_or_else(|_| {
            // The events still go on; only the malformed crypto sections are lost.
            tracing::warn!("a transaction's crypto sections are malformed; skipped");
            brygga_crypto::TransactionCrypto::default()
        });
        self.crypto.receive(&section).await
    }

    /// Learns from a room event the homeserver pushed: encryption turned
    /// on or off, members changed, or an invite showing the room's state.
    fn note_event(&self, event: &Envelope<'_>) {
        let Some(room) = event.room_id.as_deref() else { return };
        match event.kind.as_str() {
            "m.room.encryption" if event.state_key.as_deref() == Some("") => {
                self.note_encryption(room, event.content.is_some_and(|c| names_megolm(c.get())));
            }
            "m.room.member" => {
                self.members.lock().expect("poisoned").remove(room);
                let stripped = event.unsigned.iter().flat_map(|u| &u.invite_room_state);
                for state in stripped {
                    if state.kind == "m.room.encryption" && state.state_key.as_deref() == Some("") {
                        self.note_encryption(room, state.content.is_some_and(|c| names_megolm(c.get())));
                    }
                }
            }
            _ => {}
        }
    }

    /// An `m.room.encryption` event: on, or (when it was on) turned off.
    fn note_encryption(&self, room: &str, enabled: bool) {
        let mut map = self.encrypted.lock().expect("poisoned");
        let state = match (enabled, map.get(room)) {
            (true, _) => RoomEncryption::Encrypted,
            (false, Some(RoomEncryption::Encrypted | RoomEncryption::TurnedOff)) => RoomEncryption::TurnedOff,
            (false, _) => RoomEncryption::Clear,
        };
        map.insert(room.to_owned(), state);
    }

    pub(crate) fn known_encryption(&self, room: &str) -> Option<RoomEncryption> {
        self.encrypted.lock().expect("poisoned").get(room).copied()
    }

    /// What reading the room's state said, unless events said more already.
    pub(crate) fn set_encryption(&self, room: &str, state: RoomEncryption) {
        self.encrypted.lock().expect("poisoned").entry(room.to_owned()).or_insert(state);
    }

    pub(crate) fn known_members(&self, room: &str) -> Option<Vec<String>> {
        self.members.lock().expect("poisoned").get(room).cloned()
    }

    pub(crate) fn set_members(&self, room: &str, members: Vec<String>) {
        self.members.lock().expect("poisoned").insert(room.to_owned(), members);
    }
}

/// The crypto machines' way to the homeserver: the bridge's HTTP client.
pub(crate) struct Transport {
    pub(crate) http: Http,
}

#[async_trait]
impl Homeserver for Transport {
    fn base_url(&self) -> &str {
        self.http.base()
    }

    fn token(&self) -> &str {
        self.http.token()
    }

    async fn send(&self, what: &str, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, String> {
        self.http.send_prepared(what, request).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    struct Offline;

    #[async_trait]
    impl Homeserver for Offline {
        fn base_url(&self) -> &str {
            "http://127.0.0.1:9"
        }

        fn token(&self) -> &str {
            "unused"
        }

        async fn send(&self, _: &str, _: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, String> {
            Err("offline".into())
        }
    }

    fn e2ee() -> E2ee {
        let config = brygga_crypto::CryptoConfig::new(std::env::temp_dir(), [7; 32], "@bot:hs");
        E2ee::new(Crypto::new(config, Arc::new(Offline)))
    }

    fn note(e2ee: &E2ee, event: serde_json::Value) {
        let raw = serde_json::value::to_raw_value(&event).unwrap();
        e2ee.note_event(&serde_json::from_str(raw.get()).unwrap());
    }

    fn encryption(room: &str, content: serde_json::Value) -> serde_json::Value {
        json!({"type": "m.room.encryption", "room_id": room, "state_key": "", "content": content})
    }

    #[test]
    fn encryption_is_learnt_from_events_and_turning_it_off_is_remembered() {
        let e2ee = e2ee();
        assert_eq!(e2ee.known_encryption("!a:hs"), None);
        note(&e2ee, encryption("!a:hs", json!({"algorithm": MEGOLM})));
        assert_eq!(e2ee.known_encryption("!a:hs"), Some(RoomEncryption::Encrypted));
        note(&e2ee, encryption("!a:hs", json!({})));
        assert_eq!(e2ee.known_encryption("!a:hs"), Some(RoomEncryption::TurnedOff));
        // A read of the room's state does not undo what events said.
        e2ee.set_encryption("!a:hs", RoomEncryption::Clear);
        assert_eq!(e2ee.known_encryption("!a:hs"), Some(RoomEncryption::TurnedOff));
        note(&e2ee, encryption("!b:hs", json!({"algorithm": "m.rot13"})));
        assert_eq!(e2ee.known_encryption("!b:hs"), Some(RoomEncryption::Clear));
    }

    #[test]
    fn an_invite_shows_the_room_encrypted_before_anyone_can_read_it() {
        let e2ee = e2ee();
        note(
            &e2ee,
            json!({"type": "m.room.member", "room_id": "!dm:hs", "state_key": "@ghost:hs",
            "content": {"membership": "invite", "is_direct": true},
            "unsigned": {"invite_room_state": [
                {"type": "m.room.create", "state_key": "", "content": {}},
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
            ]}}),
        );
        assert_eq!(e2ee.known_encryption("!dm:hs"), Some(RoomEncryption::Encrypted));
    }
}
