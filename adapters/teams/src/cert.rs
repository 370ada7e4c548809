//! The app's certificate: a client credential instead of a secret (a
//! signed client assertion, `private_key_jwt`), and the key that opens
//! encrypted resource data of change notifications.

use std::fmt;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

/// The `client_assertion_type` of a JWT client assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (Microsoft: 5 to 10 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// A certificate and its RSA private key.
#[derive(Clone)]
pub(crate) struct Certificate {
    /// The certificate's DER.
    pub(crate) der: Vec<u8>,
    key: RsaPrivateKey,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate(sha1 {}, key <redacted>)", self.sha1_hex())
    }
}

/// The first PEM block labelled with one of `labels`, whole.
fn pem_block<'a>(text: &'a str, labels: &[&str]) -> Option<&'a str> {
    labels.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text.find(&begin)?;
        let stop = start + text[start..].find(&end)? + end.len();
        Some(&text[start..stop])
    })
}

/// Where one certificate (and its key) is read from: a PEM file or an
/// environment variable holding the PEM, each given by a config key.
#[derive(Default)]
pub(crate) struct Sources {
    pub(crate) cert_file: Option<String>,
    pub(crate) cert_env: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) key_env: Option<String>,
}

/// Reads the PEM one of `{name}_file` / `{name}_env` names.
fn read(
    name: &str,
    file: Option<String>,
    var: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match (file, var) {
        (None, None) => Ok(None),
        (Some(path), None) => {
            std::fs::read_to_string(&path).map(Some).map_err(|e| format!("key `{name}_file`: cannot read {path}: {e}"))
        }
        (None, Some(var)) => {
            env(&var).map(Some).ok_or_else(|| format!("key `{name}_env`: environment variable {var} is not set"))
        }
        (Some(_), Some(_)) => Err(format!("keys `{name}_file` and `{name}_env` exclude each other")),
    }
}

/// Loads the certificate the `{prefix}_certificate_*` / `{prefix}_key_*`
/// keys name; without key sources the key is looked for in the certificate's PEM.
pub(crate) fn load(
    prefix: &str,
    sources: Sources,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Certificate>, String> {
    let cert = read(&format!("{prefix}_certificate"), sources.cert_file, sources.cert_env, env)?;
    let key = read(&format!("{prefix}_key"), sources.key_file, sources.key_env, env)?;
    match (cert, key) {
        (None, None) => Ok(None),
        (None, Some(_)) => {
            Err(format!("key `{prefix}_key_file` (or `_env`) needs `{prefix}_certificate_file` (or `_env`)"))
        }
        (Some(cert), key) => Certificate::from_pem(&cert, key.as_deref().unwrap_or(&cert))
            .map(Some)
            .map_err(|e| format!("key `{prefix}_certificate_file` (or `_env`): {e}")),
    }
}

impl Certificate {
    /// Reads a PEM certificate and a PEM private key (PKCS#8 or PKCS#1; both
    /// may be in one text) and checks that the key belongs to the certificate.
    pub(crate) fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let block = pem_block(cert_pem, &["CERTIFICATE"]).ok_or("no PEM `CERTIFICATE` block")?;
        let (_, der) = x509_cert::der::pem::decode_vec(block.as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
        let cert = x509_cert::Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| e.to_string())?;
        let public = RsaPublicKey::from_public_key_der(&spki).map_err(|_| "the certificate's key is not RSA")?;
        let key = if let Some(block) = pem_block(key_pem, &["PRIVATE KEY"]) {
            RsaPrivateKey::from_pkcs8_pem(block).map_err(|_| "the PKCS#8 private key is not an RSA key")?
        } else if let Some(block) = pem_block(key_pem, &["RSA PRIVATE KEY"]) {
            RsaPrivateKey::from_pkcs1_pem(block).map_err(|_| "the PKCS#1 private key does not parse")?
        } else {
            return Err("no PEM `PRIVATE KEY` or `RSA PRIVATE KEY` block (encrypted keys are not supported)".into());
        };
        if key.to_public_key() != public {
            return Err("the private key does not belong to the certificate".into());
        }
        Ok(Self { der, key })
    }

    /// The SHA-1 thumbprint in upper-case hex, as Entra and Graph show it.
    pub(crate) fn sha1_hex(&self) -> String {
        sha1::Sha1::digest(&self.der).iter().map(|b| format!("{b:02X}")).collect()
    }

    /// A client assertion for `client_id` at the token endpoint `audience`:
    /// an RS256 JWT naming the certificate by its SHA-256 (`x5t#S256`) and
    /// SHA-1 (`x5t`) thumbprints, valid for ten minutes, with a random `jti`.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let header = json!({
            "typ": "JWT",
            "x5t#S256": crate::jwt::b64url(&Sha256::digest(&self.der)),
            "x5t": crate::jwt::b64url(&sha1::Sha1::digest(&self.der)),
        });
        let jti: [u8; 16] = rand::random();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": crate::jwt::b64url(&jti),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        crate::jwt::sign(&self.key, header, &claims)
    }

    /// Decrypts an RSA-OAEP (SHA-1) encrypted symmetric key.
    pub(crate) fn decrypt_key(&self, encrypted: &[u8]) -> Option<Vec<u8>> {
        self.key.decrypt(Oaep::new::<sha1::Sha1>(), encrypted).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use brygga_graph_double::certs::{TestCertificate, x5t, x5t_s256};
    use std::sync::OnceLock;

    pub(crate) fn pair() -> &'static (TestCertificate, TestCertificate) {
        static CERTS: OnceLock<(TestCertificate, TestCertificate)> = OnceLock::new();
        CERTS.get_or_init(|| (TestCertificate::generate("bridge"), TestCertificate::generate("other")))
    }

    #[test]
    fn certificates_and_keys_are_read_from_pem_and_must_match() {
        let (a, b) = pair();
        let cert = Certificate::from_pem(&a.cert_pem, &a.key_pem).unwrap();
        assert_eq!(cert.der, a.der);
        let both = format!("{}\n{}", a.key_pem, a.cert_pem);
        assert!(Certificate::from_pem(&both, &both).is_ok(), "one PEM may hold both");
        assert!(Certificate::from_pem(&a.cert_pem, &b.key_pem).unwrap_err().contains("does not belong"));
        assert!(Certificate::from_pem(&a.key_pem, &a.key_pem).unwrap_err().contains("CERTIFICATE"));
        assert!(Certificate::from_pem(&a.cert_pem, &a.cert_pem).unwrap_err().contains("PRIVATE KEY"));
        let printed = format!("{cert:?}");
        assert!(printed.contains(&cert.sha1_hex()) && !printed.contains("BEGIN"), "{printed}");
    }

    #[test]
    fn the_assertion_is_a_signed_jwt_with_the_documented_header_and_claims() {
        let (a, b) = pair();
        let cert = Certificate::from_pem(&a.cert_pem, &a.key_pem).unwrap();
        let aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        let token = cert.assertion("app-id", aud);
        let parsed = brygga_graph_double::jwt::parse(&token).unwrap();
        assert!(parsed.verifies(&a.key.to_public_key()));
        assert!(!parsed.verifies(&b.key.to_public_key()));
        assert_eq!(parsed.header["alg"], "RS256");
        assert_eq!(parsed.header["x5t#S256"].as_str(), Some(x5t_s256(&a.der).as_str()));
        assert_eq!(parsed.header["x5t"].as_str(), Some(x5t(&a.der).as_str()));
        assert_eq!(
            (parsed.claim("aud"), parsed.claim("iss"), parsed.claim("sub")),
            (Some(aud), Some("app-id"), Some("app-id"))
        );
        let (nbf, exp) = (parsed.time("nbf").unwrap(), parsed.time("exp").unwrap());
        assert_eq!(exp - nbf, 600);
        assert!((nbf - chrono::Utc::now().timestamp()).abs() < 5);
        assert_ne!(
            parsed.claim("jti"),
            brygga_graph_double::jwt::parse(&cert.assertion("app-id", aud)).unwrap().claim("jti")
        );
    }
}
