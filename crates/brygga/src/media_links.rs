//! Signed public links to Matrix media, for platforms that take files by URL
//! (XMPP out-of-band data, Teams). A link names one file and an expiry, signed
//! with HMAC-SHA256; the bridge fetches the file from the homeserver (as the
//! bot, with authenticated media) only for a link whose signature checks out.
//!
//! A file from an encrypted room is only ciphertext on the homeserver; its
//! link also carries the file's key (`?key=v.k.iv.sha256`), inside the signed
//! part, and the bridge decrypts (checking the hash) while serving it. Like a
//! link to a clear file, such a link grants the plaintext to whoever holds it
//! until it expires: encryption ends at the bridge, and the link is how the
//! file leaves it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brygga_core::{FileKey, MatrixFile, MatrixMedia, MediaLinks};
use hmac::{Hmac, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// Where the links live on the appservice listener.
const PREFIX: &str = "/_brygga/media";

/// Signs and checks media links.
pub struct SignedLinks {
    base: String,
    key: Vec<u8>,
    lifetime: Duration,
}

impl SignedLinks {
    /// Links under `public_url`, signed with `secret`, valid for `lifetime`.
    pub fn new(public_url: &url::Url, secret: &str, lifetime: Duration) -> Self {
        Self { base: public_url.as_str().trim_end_matches('/').to_owned(), key: secret.as_bytes().to_vec(), lifetime }
    }

    /// The MAC over a link's parts; `file_key` (an encrypted file's key part)
    /// comes after the expiry, which no `/` follows in a clear file's link.
    fn mac(&self, server: &str, media_id: &str, expires: u64, file_key: Option<&str>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("{server}/{media_id}/{expires}").as_bytes());
        if let Some(file_key) = file_key {
            mac.update(format!("/{file_key}").as_bytes());
        }
        mac
    }

    /// Whether a link's parts are genuine and unexpired (compared in constant time).
    fn verify(&self, server: &str, media_id: &str, expires: u64, file_key: Option<&str>, signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else { return false };
        now_secs() <= expires && self.mac(server, media_id, expires, file_key).verify_slice(&signature).is_ok()
    }
}

/// An encrypted file's key as one link part, `v.k.iv.sha256`; `None` when a
/// part holds anything but base64 (so the dots split it one way only).
fn key_part(key: &FileKey) -> Option<String> {
    let parts = [&key.version, &key.k, &key.iv, &key.sha256];
    parts.iter().all(|p| base64_part(p)).then(|| parts.map(String::as_str).join("."))
}

/// The key back from its link part.
fn parse_key_part(part: &str) -> Option<FileKey> {
    let parts: Vec<&str> = part.split('.').collect();
    let [version, k, iv, sha256] = parts.as_slice() else { return None };
    parts.iter().all(|p| base64_part(p)).then(|| FileKey::new(*k, *iv, *sha256).with_version(*version))
}

/// Base64 of either alphabet, unpadded or padded.
fn base64_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A Matrix media id part, as the content repository allows it.
fn plain_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl MediaLinks for SignedLinks {
    fn link(&self, file: &MatrixFile, name: &str) -> Option<String> {
        let (server, media_id) = file.mxc.strip_prefix("mxc://")?.split_once('/')?;
        if !plain_part(server) || !plain_part(media_id) {
            return None;
        }
        let file_key = match &file.key {
            Some(key) => Some(key_part(key)?),
            None => None,
        };
        let expires = now_secs() + self.lifetime.as_secs();
        let signature = hex::encode(self.mac(server, media_id, expires, file_key.as_deref()).finalize().into_bytes());
        let name = utf8_percent_encode(if name.is_empty() { "file" } else { name }, NON_ALPHANUMERIC);
        let query = file_key.map(|k| format!("?key={}", utf8_percent_encode(&k, NON_ALPHANUMERIC))).unwrap_or_default();
        Some(format!("{}{PREFIX}/{server}/{media_id}/{expires}/{signature}/{name}{query}", self.base))
    }
}

struct LinkState {
    links: Arc<SignedLinks>,
    media: Arc<dyn MatrixMedia>,
}

/// The route serving signed links.
pub fn routes(links: Arc<SignedLinks>, media: Arc<dyn MatrixMedia>) -> axum::Router {
    axum::Router::new()
        .route(&format!("{PREFIX}/{{server}}/{{media_id}}/{{expires}}/{{signature}}/{{name}}"), get(serve))
        .with_state(Arc::new(LinkState { links, media }))
}

/// A link's query: an encrypted file's key part.
#[derive(serde::Deserialize)]
struct LinkQuery {
    key: Option<String>,
}

async fn serve(
    State(state): State<Arc<LinkState>>,
    Path((server, media_id, expires, signature, name)): Path<(String, String, u64, String, String)>,
    Query(query): Query<LinkQuery>,
) -> Response {
    let file_key = query.key.as_deref();
    let key = file_key.map(parse_key_part);
    if !plain_part(&server)
        || !plain_part(&media_id)
        || matches!(key, Some(None))
        || !state.links.verify(&server, &media_id, expires, file_key, &signature)
    {
        return (StatusCode::FORBIDDEN, "invalid or expired link").into_response();
    }
    let mxc = format!("mxc://{server}/{media_id}");
    let file = match key.flatten() {
        Some(key) => MatrixFile::encrypted(mxc, key),
        None => MatrixFile::plain(mxc),
    };
    match state.media.download(&file).await {
        Ok(bytes) => {
            let mut response = bytes.data.into_response();
            let headers = response.headers_mut();
            if let Ok(mime) = HeaderValue::from_str(&bytes.mime) {
                headers.insert(header::CONTENT_TYPE, mime);
            }
            // Shown inline only for types a browser cannot run as a page.
            let disposition = if bytes.mime.starts_with("image/")
                || bytes.mime.starts_with("video/")
                || bytes.mime.starts_with("audio/")
            {
                "inline"
            } else {
                "attachment"
            };
            let name = utf8_percent_encode(&name, NON_ALPHANUMERIC);
            if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename*=UTF-8''{name}")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
        Err(err) if err.is_transient() => (StatusCode::BAD_GATEWAY, "the homeserver is unavailable").into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
#[path = "media_links_tests.rs"]
mod tests;
