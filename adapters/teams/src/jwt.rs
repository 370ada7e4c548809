//! Compact JWS with RS256: signing client assertions and checking Graph's
//! validation tokens against the identity platform's published keys (JWK).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// Base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with RS256 under `header` (its `alg` is set here).
pub(crate) fn sign(key: &RsaPrivateKey, mut header: Value, claims: &Value) -> String {
    header["alg"] = "RS256".into();
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

/// A decoded token whose signature is not checked yet.
pub(crate) struct Unverified {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    signed: String,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; `None` when it is not one.
pub(crate) fn decode(token: &str) -> Option<Unverified> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    Some(Unverified {
        header: serde_json::from_slice(&bytes(h)?).ok()?,
        claims: serde_json::from_slice(&bytes(c)?).ok()?,
        signed: format!("{h}.{c}"),
        signature: bytes(s)?,
    })
}

impl Unverified {
    /// The `kid` header.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Whether the header says RS256 and the signature verifies with `key`.
    pub(crate) fn verifies(&self, key: &RsaPublicKey) -> bool {
        let Ok(signature) = Signature::try_from(self.signature.as_slice()) else { return false };
        self.header.get("alg").and_then(Value::as_str) == Some("RS256")
            && VerifyingKey::<Sha256>::new(key.clone()).verify(self.signed.as_bytes(), &signature).is_ok()
    }

    /// A string claim.
    pub(crate) fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim.
    pub(crate) fn time(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }
}

/// One key of a JWK set, as far as RS256 needs it.
#[derive(Deserialize)]
pub(crate) struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    pub(crate) kid: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

/// A JWK set (`{"keys": [...]}`).
#[derive(Deserialize)]
pub(crate) struct JwkSet {
    pub(crate) keys: Vec<Jwk>,
}

impl Jwk {
    /// The RSA public key; `None` for other key types or bad values.
    pub(crate) fn rsa(&self) -> Option<RsaPublicKey> {
        if self.kty != "RSA" || self.kid.is_empty() {
            return None;
        }
        let int = |v: &str| URL_SAFE_NO_PAD.decode(v).ok().map(|b| BigUint::from_bytes_be(&b));
        RsaPublicKey::new(int(&self.n)?, int(&self.e)?).ok()
    }
}
