//! Certificates: client assertions at the token endpoint, and change
//! notifications with encrypted resource data and validation tokens.

mod support;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brygga_graph_double::certs::{TestCertificate, sha1_hex, x5t_s256};
use brygga_graph_double::{CHANGE_TRACKING_APP_ID, Draft, GraphDouble, jwt};
use hmac::{Hmac, Mac};
use rsa::{BigUint, Oaep, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::OnceLock;
use support::{Client, Webhook, app_token, world};

/// Two throwaway certificates, made once per test binary (key generation is slow).
fn certs() -> &'static (TestCertificate, TestCertificate) {
    static CERTS: OnceLock<(TestCertificate, TestCertificate)> = OnceLock::new();
    CERTS.get_or_init(|| (TestCertificate::generate("bridge"), TestCertificate::generate("stranger")))
}

fn assertion(signer: &TestCertificate, thumbprint_of: &TestCertificate, client: &str, aud: &str, exp: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let header = json!({ "typ": "JWT", "x5t#S256": x5t_s256(&thumbprint_of.der) });
    let claims =
        json!({ "aud": aud, "iss": client, "sub": client, "jti": "j-1", "nbf": now, "iat": now, "exp": now + exp });
    jwt::sign(&signer.key, header, &claims)
}

async fn token_with(graph: &GraphDouble, tenant: &str, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", graph.client_id()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = reqwest::Client::new().post(graph.login_url(tenant)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_registered_certificate_signs_client_assertions_and_wrong_ones_are_invalid_client() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let (ours, stranger) = certs();
    graph.add_client_certificate(&ours.der);
    graph.remove_client_secrets();
    let aud = graph.login_url(&w.tenant);
    let client = graph.client_id();

    let (status, body) = token_with(&graph, &w.tenant, &assertion(ours, ours, client, &aud, 600)).await;
    assert_eq!(status, 200, "{body}");
    let app = Client::new(&graph, body["access_token"].as_str().unwrap().to_owned());
    assert_eq!(app.get(&w.chat.resource()).await.0, 200);

    let refused = |code: u64| {
        move |(status, body): (u16, Value)| {
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
            assert_eq!(body["error_codes"], json!([code]), "{body}");
            assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}:")));
        }
    };
    refused(700027)(token_with(&graph, &w.tenant, &assertion(stranger, stranger, client, &aud, 600)).await);
    refused(700027)(token_with(&graph, &w.tenant, &assertion(stranger, ours, client, &aud, 600)).await);
    refused(700023)(token_with(&graph, &w.tenant, &assertion(ours, ours, client, "https://elsewhere/", 600)).await);
    refused(700021)(token_with(&graph, &w.tenant, &assertion(ours, ours, "someone-else", &aud, 600)).await);
    refused(700024)(token_with(&graph, &w.tenant, &assertion(ours, ours, client, &aud, -3600)).await);
    refused(50027)(token_with(&graph, &w.tenant, "not.a.jwt").await);
    // The secret was removed: only the certificate works now.
    let form = [("grant_type", "client_credentials"), ("client_id", client), ("client_secret", graph.client_secret())];
    let r = reqwest::Client::new().post(&aud).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

fn decrypt(content: &Value, cert: &TestCertificate) -> Value {
    let b64 = |k: &str| STANDARD.decode(content[k].as_str().unwrap()).unwrap();
    let key = cert.key.decrypt(Oaep::new::<sha1::Sha1>(), &b64("dataKey")).unwrap();
    let data = b64("data");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&data);
    mac.verify_slice(&b64("dataSignature")).expect("dataSignature is HMAC-SHA256 of data");
    let cipher = cbc::Decryptor::<aes::Aes256>::new(key[..].into(), key[..16].into());
    serde_json::from_slice(&cipher.decrypt_padded_vec_mut::<Pkcs7>(&data).unwrap()).unwrap()
}

#[tokio::test]
async fn rich_subscriptions_need_a_certificate_and_carry_encrypted_messages_and_validation_tokens() {
    let graph = GraphDouble::start().await;
    let w = world(&graph);
    let hook = Webhook::start().await;
    let app = Client::new(&graph, app_token(&graph, &w.tenant).await);
    let (ours, _) = certs();
    let mut body = json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": hook.url,
        "resource": w.channel.resource(),
        "expirationDateTime": (chrono::Utc::now() + chrono::Duration::minutes(50)).to_rfc3339(),
        "clientState": "state",
        "includeResourceData": true,
    });
    let (status, answer) = app.post("/subscriptions", body.clone()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("BadRequest")), "{answer}");
    body["encryptionCertificate"] = json!("bm90IGEgY2VydGlmaWNhdGU=");
    body["encryptionCertificateId"] = json!("bridge-cert-1");
    assert_eq!(app.post("/subscriptions", body.clone()).await.0, 400);
    body["encryptionCertificate"] = json!(ours.der_base64());
    let (status, sub) = app.post("/subscriptions", body).await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(
        (sub["includeResourceData"].as_bool(), sub["encryptionCertificateId"].as_str()),
        (Some(true), Some("bridge-cert-1"))
    );

    let id = graph.send(&w.alice, &w.channel, Draft::html("<p>secret words</p>")).unwrap();
    let items = hook.wait_for("the rich notification", |items| !items.is_empty()).await;
    let content = &items[0]["encryptedContent"];
    assert_eq!(content["encryptionCertificateId"], "bridge-cert-1");
    assert_eq!(content["encryptionCertificateThumbprint"].as_str(), Some(sha1_hex(&ours.der).as_str()));
    assert!(!items[0].to_string().contains("secret words"), "resource data travels encrypted");
    let message = decrypt(content, ours);
    assert_eq!(
        (message["id"].as_str(), message["body"]["content"].as_str()),
        (Some(id.as_str()), Some("<p>secret words</p>"))
    );

    // The validation token verifies with the published keys and names the app and tenant.
    let tokens = hook.bodies()[0]["validationTokens"].as_array().cloned().unwrap();
    assert_eq!(tokens.len(), 1);
    let keys: Value =
        reqwest::get(format!("{}/common/discovery/v2.0/keys", graph.login_base())).await.unwrap().json().await.unwrap();
    let token = jwt::parse(tokens[0].as_str().unwrap()).unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == token.header["kid"])
        .expect("the key is published");
    let n = |k: &str| {
        BigUint::from_bytes_be(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap(),
        )
    };
    assert!(token.verifies(&RsaPublicKey::new(n("n"), n("e")).unwrap()));
    assert!(!token.verifies(&ours.key.to_public_key()));
    assert_eq!(token.claim("aud"), Some(graph.client_id()));
    assert_eq!(token.claim("iss"), Some(format!("https://sts.windows.net/{}/", w.tenant).as_str()));
    assert_eq!(token.claim("azp"), Some(CHANGE_TRACKING_APP_ID));
    assert!(token.time("exp").unwrap() > chrono::Utc::now().timestamp());
}
