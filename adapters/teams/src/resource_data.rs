//! Change notifications with resource data: the notification collection's
//! `validationTokens` prove it comes from Graph (checked against the
//! identity platform's published keys), and each `encryptedContent` holds
//! the changed chatMessage, opened with the bridge's certificate.

use std::collections::HashMap;
use std::time::Duration;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rsa::RsaPublicKey;
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cert::Certificate;
use crate::jwt::{JwkSet, Unverified};

/// The app id of Microsoft Graph's change notification publisher: the `azp` of every validation token.
pub(crate) const CHANGE_TRACKING_APP_ID: &str = "0bf30f3b-4a52-48df-9a82-234910c4a086";
/// Clock skew allowed on `nbf` and `exp`.
const SKEW_SECS: i64 = 300;
/// The published keys are fetched again for an unknown `kid` at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// `encryptedContent` of a notification.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptedContent {
    data: String,
    data_signature: String,
    data_key: String,
    #[serde(default)]
    encryption_certificate_thumbprint: Option<String>,
}

/// Opens `encryptedContent`: the symmetric key is RSA-OAEP (SHA-1) encrypted
/// for the certificate; `dataSignature` (HMAC-SHA256 of the encrypted bytes
/// under that key) is checked in constant time before anything is
/// decrypted; the data is AES-256-CBC with PKCS#7, IV = the key's first 16 bytes.
pub(crate) fn decrypt(content: &EncryptedContent, cert: &Certificate) -> Result<Vec<u8>, &'static str> {
    if let Some(thumbprint) = &content.encryption_certificate_thumbprint
        && !thumbprint.eq_ignore_ascii_case(&cert.sha1_hex())
    {
        return Err("encrypted for another certificate");
    }
    let b64 = |v: &str| STANDARD.decode(v.trim()).map_err(|_| "not base64");
    let key = cert.decrypt_key(&b64(&content.data_key)?).ok_or("the data key does not decrypt")?;
    if key.len() != 32 {
        return Err("the data key is not an AES-256 key");
    }
    let data = b64(&content.data)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "bad key")?;
    mac.update(&data);
    mac.verify_slice(&b64(&content.data_signature)?).map_err(|_| "the data signature does not match")?;
    let cipher = cbc::Decryptor::<aes::Aes256>::new(key[..].into(), key[..16].into());
    cipher.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(|_| "bad padding")
}

/// What a validation token must say.
pub(crate) struct Expected<'a> {
    /// The app's client id (`aud`).
    pub(crate) client_id: &'a str,
    /// The Entra tenant id (in `iss`).
    pub(crate) tenant: &'a str,
}

/// Checks one validation token: RS256 signature by `key`, `aud`, `azp`, the tenant's issuer, lifetime.
pub(crate) fn check_token(
    token: &Unverified,
    key: &RsaPublicKey,
    expected: &Expected,
    now: i64,
) -> Result<(), &'static str> {
    if !token.verifies(key) {
        return Err("bad signature");
    }
    if token.claim("aud") != Some(expected.client_id) {
        return Err("issued for another app");
    }
    if token.claim("azp") != Some(CHANGE_TRACKING_APP_ID) {
        return Err("not issued to Graph's change notification publisher");
    }
    let issuer = format!("https://sts.windows.net/{}/", expected.tenant);
    if !token.claim("iss").is_some_and(|iss| iss.eq_ignore_ascii_case(&issuer)) {
        return Err("issued for another tenant");
    }
    match (token.time("exp"), token.time("nbf")) {
        (Some(exp), _) if exp + SKEW_SECS < now => Err("expired"),
        (_, Some(nbf)) if nbf - SKEW_SECS > now => Err("not valid yet"),
        (Some(_), _) => Ok(()),
        (None, _) => Err("no expiry"),
    }
}

/// The identity platform's published signing keys, fetched from its JWK set and cached by `kid`.
pub(crate) struct SigningKeys {
    http: reqwest::Client,
    url: url::Url,
    cache: Mutex<(HashMap<String, RsaPublicKey>, Option<Instant>)>,
}

impl SigningKeys {
    pub(crate) fn new(http: reqwest::Client, url: url::Url) -> Self {
        Self { http, url, cache: Mutex::new((HashMap::new(), None)) }
    }

    /// The key `kid`, fetching the set when it is unknown (keys roll over).
    async fn key(&self, kid: &str) -> Result<Option<RsaPublicKey>, String> {
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.0.get(kid) {
            return Ok(Some(key.clone()));
        }
        if cache.1.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
            return Ok(None);
        }
        cache.1 = Some(Instant::now());
        let response = self.http.get(self.url.clone()).send().await.map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("the signing keys answered {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| format!("bad signing keys: {}", e.without_url()))?;
        cache.0 = set.keys.iter().filter_map(|k| Some((k.kid.clone(), k.rsa()?))).collect();
        Ok(cache.0.get(kid).cloned())
    }

    /// Whether `tokens` are there and every one is valid.
    pub(crate) async fn all_valid(&self, tokens: &[String], expected: &Expected<'_>) -> Result<(), String> {
        if tokens.is_empty() {
            return Err("no validation tokens".into());
        }
        let now = chrono::Utc::now().timestamp();
        for text in tokens {
            let token = crate::jwt::decode(text).ok_or("a validation token is not a JWT")?;
            let kid = token.kid().ok_or("a validation token names no key")?;
            let key = self.key(kid).await?.ok_or("a validation token is signed by an unknown key")?;
            check_token(&token, &key, expected, now)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "resource_data_tests.rs"]
mod tests;
