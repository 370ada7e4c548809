//! Compact JWS with RS256, as the identity platform signs its tokens and
//! checks client assertions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;

/// Base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with RS256 under `header` (whose `alg` is set to RS256).
pub fn sign(key: &RsaPrivateKey, mut header: Value, claims: &Value) -> String {
    header["alg"] = "RS256".into();
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

/// A token split into its decoded header and claims, and what the signature covers.
pub struct Parsed {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
    signed: String,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; `None` when it is not one.
pub fn parse(token: &str) -> Option<Parsed> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header = serde_json::from_slice(&decode(h)?).ok()?;
    let claims = serde_json::from_slice(&decode(c)?).ok()?;
    Some(Parsed { header, claims, signed: format!("{h}.{c}"), signature: decode(s)? })
}

impl Parsed {
    /// Whether the header says RS256 and the signature verifies with `key`.
    pub fn verifies(&self, key: &RsaPublicKey) -> bool {
        let Ok(signature) = Signature::try_from(self.signature.as_slice()) else { return false };
        self.header["alg"] == "RS256"
            && VerifyingKey::<Sha256>::new(key.clone()).verify(self.signed.as_bytes(), &signature).is_ok()
    }

    /// A string claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim.
    pub fn time(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }
}
