//! Throwaway X.509 certificates and RSA keys made at run time (tests commit
//! no keys), and reading the public key and thumbprints of a certificate.

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// A self-signed certificate with its RSA private key, as an app owner uploads to Entra.
#[derive(Clone)]
pub struct TestCertificate {
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// The private key.
    pub key: RsaPrivateKey,
}

impl std::fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificate").field("sha1", &sha1_hex(&self.der)).finish_non_exhaustive()
    }
}

impl TestCertificate {
    /// A new 2048-bit RSA key and a self-signed certificate for `common_name`, valid for a day.
    pub fn generate(common_name: &str) -> Self {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let public = key.to_public_key();
        let spki = SubjectPublicKeyInfoOwned::from_key(public).expect("an RSA public key encodes");
        let serial = SerialNumber::from(rand::random::<u32>() | 1);
        let validity = Validity::from_now(Duration::from_secs(24 * 3600)).expect("a valid validity");
        let subject = Name::from_str(&format!("CN={common_name}")).expect("a valid name");
        let signer = SigningKey::<Sha256>::new(key.clone());
        let builder =
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer).expect("a builder");
        let cert = builder.build::<rsa::pkcs1v15::Signature>().expect("self-signing");
        let der = cert.to_der().expect("DER");
        let cert_pem = cert.to_pem(LineEnding::LF).expect("PEM");
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8").to_string();
        Self { der, cert_pem, key_pem, key }
    }

    /// The certificate's DER, base64 (as `encryptionCertificate` and `x5c` carry it).
    pub fn der_base64(&self) -> String {
        der_base64(&self.der)
    }
}

/// DER bytes as base64.
pub fn der_base64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The RSA public key of a DER certificate.
pub fn public_key(der: &[u8]) -> Option<RsaPublicKey> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    RsaPublicKey::from_public_key_der(&spki).ok()
}

/// The SHA-1 thumbprint of DER bytes, upper-case hex (as Entra and Graph show it).
pub fn sha1_hex(der: &[u8]) -> String {
    sha1::Sha1::digest(der).iter().map(|b| format!("{b:02X}")).collect()
}

/// The SHA-1 thumbprint, base64url (the `x5t` header).
pub fn x5t(der: &[u8]) -> String {
    crate::jwt::b64url(&sha1::Sha1::digest(der))
}

/// The SHA-256 thumbprint, base64url (the `x5t#S256` header).
pub fn x5t_s256(der: &[u8]) -> String {
    crate::jwt::b64url(&Sha256::digest(der))
}
