//! A file in the Matrix content repository, in the clear or encrypted.
//!
//! In an encrypted room the homeserver holds only ciphertext; the key to it
//! travels inside the (encrypted) event, as the spec's `EncryptedFile`. The
//! bridge carries that key next to the `mxc://` URI, so whoever handles the
//! file can decrypt it. It is never logged (see `FileKey`'s `Debug`).

use serde::{Deserialize, Serialize};

/// A Matrix media file: where it is and, when encrypted, how to open it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MatrixFile {
    /// The content repository URI (`mxc://server/id`).
    pub mxc: String,
    /// The key of an encrypted file; `None` for a file in the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<FileKey>,
}

impl MatrixFile {
    /// A file stored in the clear.
    pub fn plain(mxc: impl Into<String>) -> Self {
        Self { mxc: mxc.into(), key: None }
    }

    /// A file stored encrypted with `key`.
    pub fn encrypted(mxc: impl Into<String>, key: FileKey) -> Self {
        Self { mxc: mxc.into(), key: Some(key) }
    }

    /// Whether the homeserver holds only its ciphertext.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }
}

/// The key of an encrypted Matrix file (the spec's `EncryptedFile` without
/// its URL): AES-256-CTR key and IV, and the SHA-256 of the ciphertext. The
/// parts are kept as the event spells them (unpadded base64).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileKey {
    /// The JWK key's `k` (URL-safe base64).
    pub k: String,
    /// The initialisation vector.
    pub iv: String,
    /// The ciphertext's SHA-256 (`hashes.sha256`).
    pub sha256: String,
    /// The attachment encryption version (`v`), `v2` today.
    #[serde(default = "current_version")]
    pub version: String,
}

fn current_version() -> String {
    "v2".to_owned()
}

impl FileKey {
    /// A key of the current version (`v2`).
    pub fn new(k: impl Into<String>, iv: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self { k: k.into(), iv: iv.into(), sha256: sha256.into(), version: current_version() }
    }

    /// The same key with another version, as an event gave it.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }
}

/// Key material stays out of logs.
impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKey").field("version", &self.version).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MediaSource;

    #[test]
    fn old_stored_matrix_sources_still_decode() {
        let source: MediaSource = serde_json::from_str(r#"{"type":"matrix","mxc":"mxc://hs/abc"}"#).unwrap();
        assert_eq!(source, MediaSource::Matrix(MatrixFile::plain("mxc://hs/abc")));
        assert_eq!(serde_json::to_string(&source).unwrap(), r#"{"type":"matrix","mxc":"mxc://hs/abc"}"#);
    }

    #[test]
    fn encrypted_sources_round_trip() {
        let source = MediaSource::Matrix(MatrixFile::encrypted("mxc://hs/abc", FileKey::new("K", "IV", "SHA")));
        let json = serde_json::to_string(&source).unwrap();
        assert_eq!(serde_json::from_str::<MediaSource>(&json).unwrap(), source);
        let without_version = r#"{"type":"matrix","mxc":"mxc://hs/x","key":{"k":"K","iv":"IV","sha256":"S"}}"#;
        let MediaSource::Matrix(file) = serde_json::from_str(without_version).unwrap() else { panic!("not matrix") };
        assert_eq!(file.key.unwrap().version, "v2");
    }

    #[test]
    fn debug_hides_the_key() {
        let file = MatrixFile::encrypted("mxc://hs/abc", FileKey::new("SECRETK", "SECRETIV", "HASH"));
        let shown = format!("{file:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("mxc://hs/abc"));
    }
}
