//! Change notifications with resource data ("rich" notifications): the
//! resource encrypted with the subscriber's certificate, and the validation
//! tokens Graph signs with the identity platform's published keys.

use crate::certs::{TestCertificate, sha1_hex, x5t};
use crate::jwt::b64url;
use crate::state::Shared;
use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, OnceLock};

/// The app id of Microsoft Graph's change notification publisher (the `azp` of validation tokens).
pub const CHANGE_TRACKING_APP_ID: &str = "0bf30f3b-4a52-48df-9a82-234910c4a086";
/// How long a validation token is valid (Graph: about an hour).
const TOKEN_LIFETIME_SECS: i64 = 3600;

/// The certificate a subscription's resource data is encrypted with.
#[derive(Clone, Debug)]
pub struct Encryption {
    /// `encryptionCertificateId`, echoed in each notification.
    pub certificate_id: String,
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// Its public key.
    pub key: RsaPublicKey,
}

/// The identity platform's signing certificate (one per test process; made on first use).
pub fn issuer() -> &'static TestCertificate {
    static ISSUER: OnceLock<TestCertificate> = OnceLock::new();
    ISSUER.get_or_init(|| TestCertificate::generate("login.microsoftonline.com (Graph double)"))
}

/// `GET /common/discovery/v2.0/keys` (and `/{tenant}/…`): the published signing keys as a JWK set.
pub async fn keys(State(_): State<Arc<Shared>>) -> Json<Value> {
    let cert = issuer();
    let public = cert.key.to_public_key();
    Json(json!({ "keys": [{
        "kty": "RSA",
        "use": "sig",
        "kid": x5t(&cert.der),
        "x5t": x5t(&cert.der),
        "n": b64url(&public.n().to_bytes_be()),
        "e": b64url(&public.e().to_bytes_be()),
        "x5c": [cert.der_base64()],
        "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    }]}))
}

/// A validation token for the notifications of `client_id`'s subscriptions in `tenant`.
pub fn validation_token(tenant: &str, client_id: &str) -> String {
    let now = crate::time::now().timestamp();
    let cert = issuer();
    let header = json!({ "typ": "JWT", "kid": x5t(&cert.der), "x5t": x5t(&cert.der) });
    let claims = json!({
        "aud": client_id,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECS,
        "azp": CHANGE_TRACKING_APP_ID,
        "azpacr": "2",
        "tid": tenant,
        "ver": "1.0",
    });
    crate::jwt::sign(&cert.key, header, &claims)
}

/// `encryptedContent` of `resource` as Graph writes it: a fresh AES-256 key
/// (IV: its first 16 bytes) encrypts the JSON with CBC and PKCS#7, the key is
/// encrypted for the certificate with RSA-OAEP (SHA-1), and `dataSignature`
/// is HMAC-SHA256 of the encrypted bytes under the same key.
pub fn encrypt(resource: &Value, encryption: &Encryption) -> Value {
    let key: [u8; 32] = rand::random();
    let cipher = cbc::Encryptor::<aes::Aes256>::new(&key.into(), key[..16].into());
    let data = cipher.encrypt_padded_vec_mut::<Pkcs7>(resource.to_string().as_bytes());
    let data_key = encryption
        .key
        .encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<sha1::Sha1>(), &key)
        .expect("RSA-OAEP of 32 bytes fits any 2048-bit key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(&data);
    json!({
        "data": STANDARD.encode(&data),
        "dataSignature": STANDARD.encode(mac.finalize().into_bytes()),
        "dataKey": STANDARD.encode(data_key),
        "encryptionCertificateId": encryption.certificate_id,
        "encryptionCertificateThumbprint": sha1_hex(&encryption.der),
    })
}

/// Reads `encryptionCertificate` (base64 DER) of a subscription request.
pub fn encryption(certificate: &str, certificate_id: &str) -> Option<Encryption> {
    let der = STANDARD.decode(certificate.trim()).ok()?;
    let key = crate::certs::public_key(&der)?;
    Some(Encryption { certificate_id: certificate_id.to_owned(), der, key })
}
