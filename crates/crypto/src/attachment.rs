//! Encrypted attachments: files in encrypted rooms are stored on the
//! homeserver as AES-256-CTR ciphertext, their key carried in the event.
//!
//! The key travels as the spec's `EncryptedFile` JSON (`v`, `key`, `iv`,
//! `hashes`; a `url` next to them is ignored), like the rest of this crate.

use std::io::{Cursor, Read};

use matrix_sdk_crypto::{AttachmentDecryptor, AttachmentEncryptor, MediaEncryptionInfo};

/// A file encrypted for upload.
#[non_exhaustive]
pub struct SealedFile {
    /// What the homeserver gets.
    pub ciphertext: Vec<u8>,
    /// The `EncryptedFile` key JSON (without `url`) that opens it.
    pub key: serde_json::Value,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile").field("bytes", &self.ciphertext.len()).finish_non_exhaustive()
    }
}

/// Why an encrypted file could not be opened (never carries key material).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The key JSON is missing parts, garbled, or of an unknown version.
    #[error("the file's key is invalid: {0}")]
    BadKey(String),
    /// The ciphertext is not what the key was made for (altered or another file).
    #[error("the file does not match its hash")]
    HashMismatch,
}

/// Encrypts `plaintext` with a fresh key.
pub fn encrypt_file(plaintext: &[u8]) -> SealedFile {
    let mut reader = Cursor::new(plaintext);
    let mut encryptor = AttachmentEncryptor::new(&mut reader);
    let mut ciphertext = Vec::with_capacity(plaintext.len());
    // Reading from memory cannot fail.
    let _ = encryptor.read_to_end(&mut ciphertext);
    let info = encryptor.finish();
    let key = serde_json::to_value(&info).unwrap_or_default();
    SealedFile { ciphertext, key }
}

/// Decrypts `ciphertext` with `key` (`EncryptedFile` JSON), checking its
/// SHA-256 first-hand: nothing is returned for a file that does not match.
pub fn decrypt_file(ciphertext: &[u8], key: &serde_json::Value) -> Result<Vec<u8>, FileError> {
    let info: MediaEncryptionInfo =
        serde_json::from_value(key.clone()).map_err(|e| FileError::BadKey(without_values(&e)))?;
    let mut reader = Cursor::new(ciphertext);
    let mut decryptor = AttachmentDecryptor::new(&mut reader, info).map_err(|e| FileError::BadKey(e.to_string()))?;
    let mut plaintext = Vec::with_capacity(ciphertext.len());
    // The only error reading from memory can give is the hash check at the end.
    decryptor.read_to_end(&mut plaintext).map_err(|_| FileError::HashMismatch)?;
    Ok(plaintext)
}

/// serde's message without the offending value (it could be key material).
fn without_values(err: &serde_json::Error) -> String {
    match err.classify() {
        serde_json::error::Category::Data => "a part is missing or malformed".to_owned(),
        _ => "not an encrypted-file key".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..10_000u32).map(|i| (i * 31 % 256) as u8).collect()
    }

    #[test]
    fn files_round_trip_and_the_ciphertext_is_not_the_plaintext() {
        let plain = sample();
        let sealed = encrypt_file(&plain);
        assert_ne!(sealed.ciphertext, plain);
        assert_eq!(sealed.ciphertext.len(), plain.len());
        assert_eq!(sealed.key["v"], "v2");
        assert!(sealed.key["key"]["k"].is_string() && sealed.key["iv"].is_string());
        assert!(sealed.key["hashes"]["sha256"].is_string());
        assert_eq!(decrypt_file(&sealed.ciphertext, &sealed.key).unwrap(), plain);
        // A `url` next to the key, as in an event's `file`, is fine.
        let mut with_url = sealed.key.clone();
        with_url["url"] = "mxc://hs/abc".into();
        assert_eq!(decrypt_file(&sealed.ciphertext, &with_url).unwrap(), plain);
        // Each file gets its own key.
        assert_ne!(encrypt_file(&plain).key["key"]["k"], sealed.key["key"]["k"]);
    }

    #[test]
    fn altered_ciphertext_fails_the_hash_check() {
        let sealed = encrypt_file(&sample());
        let mut altered = sealed.ciphertext.clone();
        altered[17] ^= 1;
        assert!(matches!(decrypt_file(&altered, &sealed.key), Err(FileError::HashMismatch)));
        let other = encrypt_file(b"another file");
        assert!(matches!(decrypt_file(&sealed.ciphertext, &other.key), Err(FileError::HashMismatch)));
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        let sealed = encrypt_file(&sample());
        let mut no_hash = sealed.key.clone();
        no_hash["hashes"] = serde_json::json!({});
        assert!(matches!(decrypt_file(&sealed.ciphertext, &no_hash), Err(FileError::BadKey(_))));
        let mut short_key = sealed.key.clone();
        short_key["key"]["k"] = "c2hvcnQ".into();
        let err = decrypt_file(&sealed.ciphertext, &short_key).unwrap_err();
        assert!(matches!(err, FileError::BadKey(_)), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        let mut old = sealed.key.clone();
        old["v"] = "v1".into();
        assert!(matches!(decrypt_file(&sealed.ciphertext, &old), Err(FileError::BadKey(_))));
        assert!(matches!(decrypt_file(&sealed.ciphertext, &serde_json::json!("x")), Err(FileError::BadKey(_))));
        assert!(matches!(decrypt_file(&sealed.ciphertext, &serde_json::json!({})), Err(FileError::BadKey(_))));
    }
}
