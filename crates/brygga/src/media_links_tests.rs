//! Tests of signed media links, for clear and encrypted files.

use std::sync::Mutex;

use async_trait::async_trait;
use brygga_core::{BridgeError, MediaBytes};

use super::*;

fn links() -> SignedLinks {
    SignedLinks::new(&"https://bridge.example/".parse().unwrap(), "0123456789abcdef", Duration::from_secs(60))
}

fn parts(link: &str) -> Vec<String> {
    link.trim_start_matches("https://bridge.example/_brygga/media/").split('/').map(str::to_owned).collect()
}

#[test]
fn links_verify_and_tampering_fails() {
    let l = links();
    let link = l.link(&MatrixFile::plain("mxc://hs.example/AbC123"), "report 1.pdf").unwrap();
    let p = parts(&link);
    assert_eq!(p[0], "hs.example");
    assert_eq!(p[4], "report%201%2Epdf");
    let expires: u64 = p[2].parse().unwrap();
    assert!(l.verify(&p[0], &p[1], expires, None, &p[3]));
    assert!(!l.verify(&p[0], "Other", expires, None, &p[3]), "another file");
    assert!(!l.verify(&p[0], &p[1], expires + 1, None, &p[3]), "a longer life");
    assert!(!l.verify(&p[0], &p[1], expires, None, "00"), "a made-up signature");
    let other_key = SignedLinks::new(&"https://x/".parse().unwrap(), "another-secret-key", Duration::from_secs(60));
    assert!(!other_key.verify(&p[0], &p[1], expires, None, &p[3]), "another key");
}

#[test]
fn expired_and_odd_links_are_refused() {
    let l = links();
    let expired = now_secs() - 1;
    let signature = hex::encode(l.mac("hs", "id", expired, None).finalize().into_bytes());
    assert!(!l.verify("hs", "id", expired, None, &signature));
    assert_eq!(l.link(&MatrixFile::plain("https://not-mxc/x"), "f"), None);
    assert_eq!(l.link(&MatrixFile::plain("mxc://hs/../../etc"), "f"), None);
}

fn sealed_file() -> MatrixFile {
    let key =
        FileKey::new("qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA", "X85+XgHN/HEAAAAAAAAAAA", "5qG4fF+bbV/lAB1Q72JDKw");
    MatrixFile::encrypted("mxc://hs.example/Sealed1", key)
}

#[test]
fn encrypted_links_sign_their_key() {
    let l = links();
    let file = sealed_file();
    let link = l.link(&file, "plan.pdf").unwrap();
    let (path, query) = link.split_once('?').expect("the key is in the query");
    let p = parts(path);
    assert_eq!(p[4], "plan%2Epdf", "the name stays last in the path");
    let key = percent_encoding::percent_decode_str(query.strip_prefix("key=").unwrap()).decode_utf8().unwrap();
    assert_eq!(parse_key_part(&key), file.key.clone());
    let expires: u64 = p[2].parse().unwrap();
    assert!(l.verify(&p[0], &p[1], expires, Some(&key), &p[3]));
    assert!(!l.verify(&p[0], &p[1], expires, None, &p[3]), "the key left out");
    let other = key.replacen("qcH", "qcX", 1);
    assert!(!l.verify(&p[0], &p[1], expires, Some(&other), &p[3]), "another key");
    // A clear file's signature does not open its encrypted twin, or back.
    let clear = parts(&l.link(&MatrixFile::plain("mxc://hs.example/Sealed1"), "plan.pdf").unwrap());
    assert!(!l.verify(&p[0], &p[1], expires, Some(&key), &clear[3]));
}

#[test]
fn key_parts_split_one_way_only() {
    assert_eq!(parse_key_part("v2.k.iv"), None);
    assert_eq!(parse_key_part("v2.k.iv.sha.extra"), None);
    assert_eq!(parse_key_part("v2.k.i v.sha"), None);
    assert_eq!(parse_key_part("v2..iv.sha"), None);
    let mut odd = sealed_file();
    odd.key = Some(FileKey::new("k.x", "iv", "sha"));
    assert_eq!(links().link(&odd, "f"), None, "a key that would split differently gets no link");
}

/// Matrix media that serves one file and remembers what it was asked for.
#[derive(Default)]
struct OneFile {
    asked: Mutex<Vec<MatrixFile>>,
}

#[async_trait]
impl MatrixMedia for OneFile {
    async fn download(&self, file: &MatrixFile) -> Result<MediaBytes, BridgeError> {
        self.asked.lock().unwrap().push(file.clone());
        Ok(MediaBytes { data: b"the plaintext".to_vec(), mime: "application/pdf".into() })
    }
}

#[tokio::test]
async fn an_encrypted_link_hands_its_key_to_the_download() {
    let links = Arc::new(links());
    let media = Arc::new(OneFile::default());
    let app = routes(links.clone(), media.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let local = |link: String| link.replace("https://bridge.example", &origin);

    let file = sealed_file();
    let link = local(links.link(&file, "plan.pdf").unwrap());
    let response = reqwest::get(&link).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"the plaintext");
    assert_eq!(*media.asked.lock().unwrap(), vec![file.clone()]);

    let clear = MatrixFile::plain("mxc://hs.example/Clear1");
    let response = reqwest::get(local(links.link(&clear, "a.txt").unwrap())).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(media.asked.lock().unwrap().last(), Some(&clear));

    let asked = media.asked.lock().unwrap().len();
    let without_key = link.split_once('?').unwrap().0.to_owned();
    let altered_key = link.replacen("qcH", "qcX", 1);
    let garbled_key = format!("{without_key}?key=v2.only.three");
    for bad in [without_key, altered_key, garbled_key] {
        assert_eq!(reqwest::get(&bad).await.unwrap().status(), 403, "{bad}");
    }
    assert_eq!(media.asked.lock().unwrap().len(), asked, "nothing downloaded for a bad link");
}
