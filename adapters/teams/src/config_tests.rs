use super::*;
use serde_json::json;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn base() -> serde_json::Value {
    json!({
        "client_id": "app-id",
        "client_secret": "very-secret",
        "tenant_id": "5f2b1a3c-0000-4000-8000-000000000001",
        "notification_url_base": "https://bridge.example.org/_brygga/webhook/agency/teams",
        "token_key": KEY,
    })
}

fn err(patch: serde_json::Value) -> String {
    let mut c = base();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    TeamsConfig::parse_with_env(&c, &|_| None).unwrap_err()
}

#[test]
fn a_minimal_config_gets_defaults_and_endpoints() {
    let config = TeamsConfig::parse(&base()).unwrap();
    assert_eq!(config.graph("chats/x/messages").as_str(), "https://graph.microsoft.com/v1.0/chats/x/messages");
    assert_eq!(
        config.login("token").as_str(),
        "https://login.microsoftonline.com/5f2b1a3c-0000-4000-8000-000000000001/oauth2/v2.0/token"
    );
    assert_eq!(config.notification_url_base.path(), "/_brygga/webhook/agency/teams/");
    assert_eq!(config.presence_interval, Some(Duration::from_secs(60)));
    assert_eq!(config.channel_requests_per_sec, 4);
    assert_eq!(config.subscription_lifetime, Duration::from_secs(3600));
    let printed = format!("{config:?}");
    assert!(!printed.contains("very-secret"), "{printed}");
    assert!(!printed.contains(KEY), "{printed}");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.yaml");
    let yaml: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let teams = &yaml["tenants"][0]["adapters"]["teams"]["config"];
    let config = TeamsConfig::parse_with_env(teams, &|_| None).unwrap();
    assert_eq!(config.notification_url_base.join("notify").unwrap().path(), "/_brygga/webhook/agency/teams/notify");
}

#[test]
fn the_token_key_can_come_from_the_environment() {
    let mut c = base();
    c.as_object_mut().unwrap().remove("token_key");
    c["token_key_env"] = json!("TEAMS_KEY");
    let env = |name: &str| (name == "TEAMS_KEY").then(|| KEY.to_owned());
    assert!(TeamsConfig::parse_with_env(&c, &env).is_ok());
    let missing = TeamsConfig::parse_with_env(&c, &|_| None).unwrap_err();
    assert!(missing.contains("TEAMS_KEY") && missing.contains("`token_key_env`"), "{missing}");
}

#[test]
fn local_test_endpoints_are_allowed() {
    let mut c = base();
    c["notification_url_base"] = json!("http://127.0.0.1:8008/_brygga/webhook/t/teams/");
    c["graph_url"] = json!("http://127.0.0.1:9000/v1.0");
    c["login_url"] = json!("http://127.0.0.1:9000/login");
    c["presence_interval_secs"] = json!(0);
    let config = TeamsConfig::parse(&c).unwrap();
    assert_eq!(config.graph("subscriptions").as_str(), "http://127.0.0.1:9000/v1.0/subscriptions");
    assert!(config.login("devicecode").as_str().starts_with("http://127.0.0.1:9000/login/5f2b"));
    assert_eq!(config.presence_interval, None);
}

#[test]
fn bad_values_name_their_key() {
    assert!(err(json!({"client_id": " "})).contains("`client_id`"));
    assert!(err(json!({"client_secret": null})).contains("`client_secret`"));
    assert!(err(json!({"client_certificate_env": "NOPE"})).contains("NOPE"));
    assert!(err(json!({"tenant_id": "a/b"})).contains("`tenant_id`"));
    assert!(err(json!({"notification_url_base": "http://bridge.example.org/"})).contains("https"));
    assert!(err(json!({"notification_url_base": "bridge"})).contains("`notification_url_base`"));
    assert!(err(json!({"graph_url": "ftp://x"})).contains("`graph_url`"));
    assert!(err(json!({"relay_refresh_token": "rt"})).contains("`relay_user_id`"));
    assert!(err(json!({"token_key": null})).contains("`token_key`"));
    assert!(err(json!({"token_key": "c2hvcnQ="})).contains("`token_key`"));
    assert!(err(json!({"token_key_env": "X"})).contains("exclude"));
    assert!(err(json!({"channel_requests_per_sec": 0})).contains("`channel_requests_per_sec`"));
    assert!(err(json!({"subscription_minutes": 61})).contains("`subscription_minutes`"));
    assert!(err(json!({"subscription_minutes": 0})).contains("`subscription_minutes`"));
    assert!(err(json!({"max_file_bytes": 0})).contains("`max_file_bytes`"));
    assert!(err(json!({"colour": "red"})).contains("colour"));
}

fn with_certificate(extra: serde_json::Value, env: &dyn Fn(&str) -> Option<String>) -> Result<TeamsConfig, String> {
    let mut c = base();
    c.as_object_mut().unwrap().remove("client_secret");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    TeamsConfig::parse_with_env(&c, env)
}

#[test]
fn a_certificate_can_replace_the_secret_from_a_file_or_the_environment() {
    let (a, b) = crate::cert::tests::pair();
    let dir = std::env::temp_dir().join(format!("brygga-teams-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &a.cert_pem).unwrap();
    std::fs::write(&key_path, &a.key_pem).unwrap();
    let files = json!({"client_certificate_file": cert_path, "client_key_file": key_path});
    let config = with_certificate(files, &|_| None).unwrap();
    assert!(matches!(&config.client_auth, ClientAuth::Certificate(c) if c.der == a.der));
    assert!(!format!("{config:?}").contains("PRIVATE"), "keys never show");
    let both = format!("{}{}", a.cert_pem, a.key_pem);
    let env = |name: &str| (name == "TEAMS_PEM").then(|| both.clone());
    let config = with_certificate(json!({"client_certificate_env": "TEAMS_PEM"}), &env).unwrap();
    assert!(matches!(config.client_auth, ClientAuth::Certificate(_)));
    assert!(config.resource_data.is_none());

    let wrong_key = |name: &str| (name == "KEY").then(|| b.key_pem.clone());
    let mismatch = json!({"client_certificate_file": cert_path, "client_key_env": "KEY"});
    assert!(with_certificate(mismatch, &wrong_key).unwrap_err().contains("does not belong"));
    let missing = with_certificate(json!({"client_certificate_file": dir.join("nope.pem")}), &|_| None).unwrap_err();
    assert!(missing.contains("`client_certificate_file`") && missing.contains("nope.pem"), "{missing}");
    let twice = json!({"client_certificate_file": cert_path, "client_certificate_env": "X"});
    assert!(with_certificate(twice, &|_| None).unwrap_err().contains("exclude"));
    let key_only = with_certificate(json!({"client_key_file": key_path}), &|_| None).unwrap_err();
    assert!(key_only.contains("needs `client_certificate_file`"), "{key_only}");
    let secret_too = json!({"client_certificate_file": cert_path, "client_key_file": key_path, "client_secret": "s"});
    assert!(with_certificate(secret_too, &|_| None).unwrap_err().contains("exclude"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resource_data_needs_a_certificate_and_names_it() {
    let (a, b) = crate::cert::tests::pair();
    let pem = |t: &brygga_graph_double::certs::TestCertificate| format!("{}{}", t.cert_pem, t.key_pem);
    let (pa, pb) = (pem(a), pem(b));
    let env = |name: &str| match name {
        "A" => Some(pa.clone()),
        "B" => Some(pb.clone()),
        _ => None,
    };
    let no_cert = err(json!({"include_resource_data": true}));
    assert!(no_cert.contains("`include_resource_data` needs a certificate"), "{no_cert}");
    let own = with_certificate(json!({"client_certificate_env": "A", "include_resource_data": true}), &env).unwrap();
    let data = own.resource_data.unwrap();
    assert_eq!(
        (data.certificate.der.clone(), data.certificate_id.clone()),
        (a.der.clone(), data.certificate.sha1_hex())
    );
    let mut c = base();
    c["include_resource_data"] = json!(true);
    c["encryption_certificate_env"] = json!("B");
    c["encryption_certificate_id"] = json!("bridge-2026");
    let config = TeamsConfig::parse_with_env(&c, &env).unwrap();
    assert!(matches!(config.client_auth, ClientAuth::Secret(_)));
    let data = config.resource_data.clone().unwrap();
    assert_eq!((data.certificate.der.clone(), data.certificate_id.as_str()), (b.der.clone(), "bridge-2026"));
    assert_eq!(config.signing_keys_url().as_str(), "https://login.microsoftonline.com/common/discovery/v2.0/keys");
}
