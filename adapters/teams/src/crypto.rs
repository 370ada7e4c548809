//! Refresh tokens at rest: sealed with ChaCha20-Poly1305 under the tenant's
//! token key. Each sealed value is bound to what it belongs to (the
//! associated data, e.g. the tenant and Matrix user), so a value copied to
//! another user's slot fails to open instead of granting their access.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The prefix of sealed values, naming the scheme so it can change later.
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// A 256-bit key for sealing stored tokens.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a value this scheme wrote.
    #[error("not a sealed token")]
    Malformed,
    /// Wrong key, tampered with, or sealed for something else.
    #[error("the sealed token does not open with this key for this owner")]
    Rejected,
}

impl TokenKey {
    /// Reads a key written as base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`).
    pub(crate) fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| "must be base64 (e.g. `openssl rand -base64 32`)")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must be 32 bytes, base64-encoded")?;
        Ok(Self(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Seals `secret` for `owner`, with a fresh random nonce.
    pub(crate) fn seal(&self, secret: &str, owner: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher()
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: owner.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value sealed for `owner`.
    pub(crate) fn open(&self, sealed: &str, owner: &str) -> Result<String, OpenError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
        let bytes = STANDARD.decode(body).map_err(|_| OpenError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| OpenError::Rejected)?;
        String::from_utf8(plain).map_err(|_| OpenError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey([byte; 32])
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_owner() {
        let sealed = key(1).seal("refresh-token-123", "t1/@alice:hs");
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("refresh-token-123"));
        assert_eq!(key(1).open(&sealed, "t1/@alice:hs").unwrap(), "refresh-token-123");
        assert_eq!(key(2).open(&sealed, "t1/@alice:hs"), Err(OpenError::Rejected));
        assert_eq!(key(1).open(&sealed, "t1/@mallory:hs"), Err(OpenError::Rejected));
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        assert_ne!(key(1).seal("x", "o"), key(1).seal("x", "o"));
    }

    #[test]
    fn tampered_or_foreign_values_are_refused() {
        let sealed = key(1).seal("token", "o");
        let mut bytes = STANDARD.decode(&sealed[PREFIX.len()..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{PREFIX}{}", STANDARD.encode(bytes));
        assert_eq!(key(1).open(&tampered, "o"), Err(OpenError::Rejected));
        assert_eq!(key(1).open("token", "o"), Err(OpenError::Malformed));
        assert_eq!(key(1).open("v1:!!!", "o"), Err(OpenError::Malformed));
        assert_eq!(key(1).open("v1:AAAA", "o"), Err(OpenError::Malformed));
    }

    #[test]
    fn keys_are_read_from_base64_of_32_bytes() {
        assert!(TokenKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_ok());
        assert!(TokenKey::from_base64("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(TokenKey::from_base64("not base64!").unwrap_err().contains("base64"));
        assert!(!format!("{:?}", key(7)).contains('7'));
    }
}
