use super::*;
use crate::cert::tests::pair;
use brygga_graph_double::certs::TestCertificate;
use serde_json::{Value, json};

fn cert(t: &TestCertificate) -> Certificate {
    Certificate::from_pem(&t.cert_pem, &t.key_pem).unwrap()
}

fn encrypted(resource: &Value, t: &TestCertificate) -> (Value, EncryptedContent) {
    let enc = brygga_graph_double::rich::encryption(&t.der_base64(), "c1").unwrap();
    let raw = brygga_graph_double::rich::encrypt(resource, &enc);
    (raw.clone(), serde_json::from_value(raw).unwrap())
}

fn tweak(raw: &Value, field: &str) -> EncryptedContent {
    let mut bytes = STANDARD.decode(raw[field].as_str().unwrap()).unwrap();
    bytes[3] ^= 0x40;
    let mut raw = raw.clone();
    raw[field] = json!(STANDARD.encode(bytes));
    serde_json::from_value(raw).unwrap()
}

#[test]
fn graphs_encrypted_content_opens_with_the_certificate() {
    let (a, _) = pair();
    let message = json!({"id": "1700000000000", "body": {"contentType": "html", "content": "<p>hi</p>"}});
    let (_, content) = encrypted(&message, a);
    let plain = decrypt(&content, &cert(a)).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&plain).unwrap(), message);
}

#[test]
fn tampered_data_signature_or_key_and_other_certificates_are_refused() {
    let (a, b) = pair();
    let (raw, content) = encrypted(&json!({"id": "1"}), a);
    assert_eq!(decrypt(&tweak(&raw, "data"), &cert(a)), Err("the data signature does not match"));
    assert_eq!(decrypt(&tweak(&raw, "dataSignature"), &cert(a)), Err("the data signature does not match"));
    assert_eq!(decrypt(&tweak(&raw, "dataKey"), &cert(a)), Err("the data key does not decrypt"));
    assert_eq!(decrypt(&content, &cert(b)), Err("encrypted for another certificate"));
    let mut unnamed = content.clone();
    unnamed.encryption_certificate_thumbprint = None;
    assert_eq!(decrypt(&unnamed, &cert(b)), Err("the data key does not decrypt"));
}

fn token(key: &rsa::RsaPrivateKey, patch: Value) -> Unverified {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"aud": "app", "azp": CHANGE_TRACKING_APP_ID, "iss": "https://sts.windows.net/t1/",
        "nbf": now, "iat": now, "exp": now + 3600});
    for (k, v) in patch.as_object().unwrap() {
        claims[k] = v.clone();
    }
    crate::jwt::decode(&crate::jwt::sign(key, json!({"typ": "JWT", "kid": "k1"}), &claims)).unwrap()
}

#[test]
fn validation_tokens_need_the_signature_audience_issuer_publisher_and_lifetime() {
    let (a, b) = pair();
    let key = a.key.to_public_key();
    let expected = Expected { client_id: "app", tenant: "t1" };
    let now = chrono::Utc::now().timestamp();
    let check = |patch: Value| check_token(&token(&a.key, patch), &key, &expected, now);
    assert_eq!(check(json!({})), Ok(()));
    assert_eq!(check_token(&token(&b.key, json!({})), &key, &expected, now), Err("bad signature"));
    assert_eq!(check(json!({"aud": "other-app"})), Err("issued for another app"));
    assert_eq!(check(json!({"iss": "https://sts.windows.net/t2/"})), Err("issued for another tenant"));
    assert_eq!(check(json!({"azp": "someone"})), Err("not issued to Graph's change notification publisher"));
    assert_eq!(check(json!({"exp": now - 3600})), Err("expired"));
    assert_eq!(check(json!({"nbf": now + 3600})), Err("not valid yet"));
    assert_eq!(check(json!({"exp": null})), Err("no expiry"));
}

#[tokio::test]
async fn tokens_are_checked_against_the_published_keys() {
    let graph = brygga_graph_double::GraphDouble::start().await;
    let url = url::Url::parse(&format!("{}/common/discovery/v2.0/keys", graph.login_base())).unwrap();
    let keys = SigningKeys::new(reqwest::Client::new(), url);
    let tenant = graph.add_tenant();
    let expected = Expected { client_id: graph.client_id(), tenant: &tenant };
    let good = brygga_graph_double::validation_token(&tenant, graph.client_id());
    assert_eq!(keys.all_valid(std::slice::from_ref(&good), &expected).await, Ok(()));
    assert!(keys.all_valid(&[], &expected).await.is_err());
    let other = Expected { client_id: graph.client_id(), tenant: "another-tenant" };
    assert!(keys.all_valid(std::slice::from_ref(&good), &other).await.is_err());
    // A token forged with another key under the published kid fails.
    let (a, _) = pair();
    let parsed = crate::jwt::decode(&good).unwrap();
    let forged = crate::jwt::sign(&a.key, parsed.header.clone(), &parsed.claims);
    assert_eq!(keys.all_valid(&[good, forged], &expected).await, Err("bad signature".into()));
}
