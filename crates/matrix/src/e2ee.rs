//! What the client and the server share for encrypted rooms: the devices
//! (`brygga-crypto`), which rooms are encrypted and who is in them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use brygga_crypto::{Crypto, Homeserver};

use crate::client::Http;

/// Encryption state of the bridge's rooms.
pub struct E2ee {
    pub(crate) crypto: Crypto,
    /// Rooms known to be encrypted (true) or not (false, until an
    /// `m.room.encryption` event says otherwise: it cannot be turned off).
    encrypted: Mutex<HashMap<String, bool>>,
    /// Members to share room keys with, until a membership event changes them.
    members: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for E2ee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2ee").finish_non_exhaustive()
    }
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
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            kind: String,
            room_id: Option<String>,
        }
        for raw in events {
            if let Ok(Envelope { kind, room_id: Some(room) }) = serde_json::from_str(raw.get()) {
                self.note_event(&kind, &room);
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
    /// on, or members changed.
    fn note_event(&self, event_type: &str, room: &str) {
        match event_type {
            "m.room.encryption" => {
                self.encrypted.lock().expect("poisoned").insert(room.to_owned(), true);
            }
            "m.room.member" => {
                self.members.lock().expect("poisoned").remove(room);
            }
            _ => {}
        }
    }

    pub(crate) fn known_encrypted(&self, room: &str) -> Option<bool> {
        self.encrypted.lock().expect("poisoned").get(room).copied()
    }

    pub(crate) fn set_encrypted(&self, room: &str, encrypted: bool) {
        let mut map = self.encrypted.lock().expect("poisoned");
        // Never from true back to false: encryption cannot be turned off.
        let entry = map.entry(room.to_owned()).or_insert(encrypted);
        *entry |= encrypted;
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
