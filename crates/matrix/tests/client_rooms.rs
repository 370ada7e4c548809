//! Ghosts, portal rooms, joins, media and ping against the fake homeserver.

mod common;

use axum::http::Method;
use brygga_core::{
    AdapterKind, BridgeInfo, FileKey, GhostProfile, MatrixFile, MatrixMedia, MatrixRoomId, MatrixSide, MatrixUserId,
    MediaBytes, RemoteRoomId, RoomSpec, TenantId,
};
use common::{AS_TOKEN, SERVER};
use serde_json::json;

fn ghost() -> MatrixUserId {
    MatrixUserId::new(format!("@xmpp_fk_anna:{SERVER}")).unwrap()
}

fn spec() -> RoomSpec {
    RoomSpec {
        public: false,
        direct: None,
        alias_is_free: false,
        alias_localpart: "xmpp_fk_lobby".into(),
        name: Some("Lobby".into()),
        invite: vec![MatrixUserId::new("@alice:hs").unwrap()],
        bridge: BridgeInfo {
            kind: AdapterKind::new("xmpp").unwrap(),
            tenant: TenantId::new("fk").unwrap(),
            room: RemoteRoomId::new("lobby@conference.example/x").unwrap(),
            room_name: Some("Lobby".into()),
            encrypted: false,
        },
        allowed_servers: Vec::new(),
        encrypted: false,
    }
}

#[tokio::test]
async fn ensure_ghost_registers_and_sets_profile_once() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let profile = GhostProfile { display_name: Some("Anna (XMPP)".into()), avatar_mxc: Some("mxc://hs/avatar".into()) };
    client.ensure_ghost(&ghost(), &profile).await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    let register = &requests[0];
    assert_eq!((register.method.clone(), register.path.as_str()), (Method::POST, "/_matrix/client/v3/register"));
    assert_eq!(register.auth.as_deref(), Some(format!("Bearer {AS_TOKEN}").as_str()));
    let body = register.json();
    assert_eq!(body["type"], "m.login.application_service");
    assert_eq!(body["username"], "xmpp_fk_anna");
    assert_eq!(body["inhibit_login"], true);
    assert_eq!(register.query("user_id"), None);

    let name = &requests[1];
    assert_eq!(name.path, "/_matrix/client/v3/profile/@xmpp_fk_anna:hs/displayname");
    assert_eq!(name.query("user_id"), Some("@xmpp_fk_anna:hs"));
    assert_eq!(name.json(), json!({"displayname": "Anna (XMPP)"}));
    let avatar = &requests[2];
    assert_eq!(avatar.path, "/_matrix/client/v3/profile/@xmpp_fk_anna:hs/avatar_url");
    assert_eq!(avatar.json(), json!({"avatar_url": "mxc://hs/avatar"}));

    // A second call: the user exists and the profile is unchanged.
    fake.clear();
    fake.script(Method::POST, "/register", 400, json!({"errcode": "M_USER_IN_USE", "error": "taken"}));
    client.ensure_ghost(&ghost(), &profile).await.unwrap();
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_encrypted_portal_is_encrypted_from_its_first_state() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let mut spec = spec();
    spec.encrypted = true;
    spec.bridge.encrypted = true;
    client.ensure_room(&spec).await.unwrap();
    let body = fake.requests()[1].json();
    let state = body["initial_state"].as_array().unwrap();
    let encryption = state.iter().find(|e| e["type"] == "m.room.encryption").expect("encryption state");
    assert_eq!(encryption["state_key"], "");
    assert_eq!(encryption["content"]["algorithm"], "m.megolm.v1.aes-sha2");
    assert!(
        state
            .iter()
            .filter(|e| e["type"] == "m.bridge")
            .all(|e| e["content"]["io.brygga.encryption"] == "end-to-bridge")
    );
}

#[tokio::test]
async fn ensure_room_creates_once_then_resolves_the_alias() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let room = client.ensure_room(&spec()).await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/_matrix/client/v3/directory/room/#xmpp_fk_lobby:hs");
    let create = &requests[1];
    assert_eq!(create.path, "/_matrix/client/v3/createRoom");
    assert_eq!(create.query("user_id"), None);
    let body = create.json();
    assert_eq!(body["room_alias_name"], "xmpp_fk_lobby");
    assert_eq!(body["name"], "Lobby");
    assert_eq!(body["preset"], "private_chat");
    assert_eq!(body["invite"], json!(["@alice:hs"]));
    assert_ne!(body["is_direct"], true);
    let state = body["initial_state"].as_array().unwrap();
    let types: Vec<&str> = state.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["m.bridge", "uk.half-shot.bridge"]);
    for event in state {
        assert_eq!(event["state_key"], "xmpp/fk/lobby@conference.example%2Fx");
        let content = &event["content"];
        assert_eq!(content["bridgebot"], "@bot:hs");
        assert_eq!(content["protocol"]["id"], "xmpp");
        assert_eq!(content["network"]["id"], "fk");
        assert_eq!(content["channel"]["id"], "lobby@conference.example/x");
        assert_eq!(content["channel"]["displayname"], "Lobby");
        assert_eq!(content["io.brygga.encryption"], "none");
    }

    fake.clear();
    let again = client.ensure_room(&spec()).await.unwrap();
    assert_eq!(again, room);
    assert!(fake.matching("createRoom").is_empty(), "alias made creation idempotent");

    // A tenant that limits federation gets a server ACL with the bridge's own server.
    fake.clear();
    let mut limited = spec();
    limited.alias_localpart = "xmpp_fk_closed".into();
    limited.allowed_servers = vec!["agency.example".into(), "hs".into()];
    client.ensure_room(&limited).await.unwrap();
    let body = fake.requests().last().unwrap().json();
    let acl = body["initial_state"].as_array().unwrap().iter().find(|e| e["type"] == "m.room.server_acl").cloned();
    let acl = acl.expect("a server ACL");
    assert_eq!(acl["content"], json!({"allow": ["agency.example", "hs"], "deny": [], "allow_ip_literals": false}));
}

#[tokio::test]
async fn ensure_room_resolves_again_when_the_alias_is_taken() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    // Another process created the room between our lookup and our create.
    fake.aliases.lock().unwrap().insert("#xmpp_fk_lobby:hs".into(), "!existing:hs".into());
    fake.script(Method::GET, "/directory/room/", 404, json!({"errcode": "M_NOT_FOUND", "error": ""}));
    let room = client.ensure_room(&spec()).await.unwrap();
    assert_eq!(room.as_str(), "!existing:hs");
    assert_eq!(fake.matching("createRoom").len(), 1);
    assert_eq!(fake.matching("/directory/room/").len(), 2);
}

#[tokio::test]
async fn ensure_joined_invites_on_forbidden_and_caches() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let room = MatrixRoomId::new("!r:hs").unwrap();
    fake.script(Method::POST, "/join", 403, json!({"errcode": "M_FORBIDDEN", "error": "not invited"}));
    client.ensure_joined(&room, &ghost()).await.unwrap();

    let requests = fake.requests();
    let summary: Vec<(String, Option<&str>)> =
        requests.iter().map(|r| (r.path.rsplit('/').next().unwrap().to_owned(), r.query("user_id"))).collect();
    assert_eq!(
        summary,
        [
            ("join".to_owned(), Some("@xmpp_fk_anna:hs")),
            ("invite".to_owned(), None),
            ("join".to_owned(), Some("@xmpp_fk_anna:hs")),
        ]
    );
    assert_eq!(requests[1].json()["user_id"], "@xmpp_fk_anna:hs");

    fake.clear();
    client.ensure_joined(&room, &ghost()).await.unwrap();
    assert!(fake.requests().is_empty(), "joined pairs are cached");
}

#[tokio::test]
async fn upload_and_download_with_legacy_fallback() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let media = MediaBytes { data: b"hello".to_vec(), mime: "text/plain".into() };
    let file = client.upload(&ghost(), None, "note.txt", media).await.unwrap();
    assert!(file.mxc.starts_with("mxc://hs/") && !file.is_encrypted());
    let upload = &fake.matching("/upload")[0];
    assert_eq!(upload.path, "/_matrix/media/v3/upload");
    assert_eq!(upload.query("filename"), Some("note.txt"));
    assert_eq!(upload.query("user_id"), Some("@xmpp_fk_anna:hs"));
    assert_eq!(upload.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&upload.body[..], b"hello");

    let got = client.download(&MatrixFile::plain("mxc://hs/abc")).await.unwrap();
    assert_eq!((got.data.as_slice(), got.mime.as_str()), (b"v1:abc".as_slice(), "text/plain"));
    let v1 = &fake.matching("/download/")[0];
    assert_eq!(v1.path, "/_matrix/client/v1/media/download/hs/abc");
    assert_eq!(v1.auth.as_deref(), Some(format!("Bearer {AS_TOKEN}").as_str()));

    fake.clear();
    fake.script(Method::GET, "/client/v1/media/download/", 404, json!({"errcode": "M_UNRECOGNIZED", "error": ""}));
    let got = client.download(&MatrixFile::plain("mxc://hs/abc")).await.unwrap();
    assert_eq!(got.data, b"v3:abc");
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/_matrix/client/v1/media/download/hs/abc", "/_matrix/media/v3/download/hs/abc"]);

    // Missing media is not an unknown endpoint: no fallback.
    fake.clear();
    fake.script(Method::GET, "/client/v1/media/download/", 404, json!({"errcode": "M_NOT_FOUND", "error": ""}));
    let err = client.download(&MatrixFile::plain("mxc://hs/gone")).await.unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(fake.requests().len(), 1);
    assert!(client.download(&MatrixFile::plain("https://not-mxc")).await.is_err());
}

#[tokio::test]
async fn encrypted_files_are_decrypted_and_checked_when_downloaded() {
    let (_fake, base) = common::start().await;
    let client = common::client(&base);
    let plain: Vec<u8> = (0..3_000u32).map(|i| (i % 253) as u8).collect();
    let sealed = brygga_crypto::encrypt_file(&plain);
    let stored = MediaBytes { data: sealed.ciphertext.clone(), mime: "application/octet-stream".into() };
    let mxc = client.upload(&ghost(), None, "x", stored).await.unwrap().mxc;
    let part = |pointer: &str| sealed.key.pointer(pointer).and_then(|v| v.as_str()).unwrap().to_owned();
    let key = FileKey::new(part("/key/k"), part("/iv"), part("/hashes/sha256"));

    let got = client.download(&MatrixFile::encrypted(mxc.clone(), key.clone())).await.unwrap();
    assert_eq!(got.data, plain);

    // Another file's hash: the bytes are not the ones the key was made for.
    let other = brygga_crypto::encrypt_file(b"other");
    let wrong_hash = FileKey::new(part("/key/k"), part("/iv"), other.key["hashes"]["sha256"].as_str().unwrap());
    let err = client.download(&MatrixFile::encrypted(mxc.clone(), wrong_hash)).await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("does not match its hash"), "{err}");
    let garbled = FileKey::new("c2hvcnQ", part("/iv"), part("/hashes/sha256"));
    let err = client.download(&MatrixFile::encrypted(mxc.clone(), garbled)).await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("key is invalid"), "{err}");
    assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
    let v1 = key.with_version("v1");
    let err = client.download(&MatrixFile::encrypted(mxc, v1)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn ping_reports_the_round_trip() {
    let (fake, base) = common::start().await;
    let client = common::client(&base);
    let duration = client.ping("brygga").await.unwrap();
    assert_eq!(duration.as_millis(), 12);
    assert_eq!(fake.requests()[0].path, "/_matrix/client/v1/appservice/brygga/ping");
}
