//! Signed public links to Matrix media, for platforms that take files by URL
//! (XMPP out-of-band data). A link names one file and an expiry, signed with
//! HMAC-SHA256; the bridge fetches the file from the homeserver (as the bot,
//! with authenticated media) only for a link whose signature checks out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brygga_core::{MatrixMedia, MediaLinks};
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

    fn mac(&self, server: &str, media_id: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("{server}/{media_id}/{expires}").as_bytes());
        mac
    }

    /// Whether a link's parts are genuine and unexpired (compared in constant time).
    fn verify(&self, server: &str, media_id: &str, expires: u64, signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else { return false };
        now_secs() <= expires && self.mac(server, media_id, expires).verify_slice(&signature).is_ok()
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A Matrix media id part, as the content repository allows it.
fn plain_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl MediaLinks for SignedLinks {
    fn link(&self, mxc: &str, name: &str) -> Option<String> {
        let (server, media_id) = mxc.strip_prefix("mxc://")?.split_once('/')?;
        if !plain_part(server) || !plain_part(media_id) {
            return None;
        }
        let expires = now_secs() + self.lifetime.as_secs();
        let signature = hex::encode(self.mac(server, media_id, expires).finalize().into_bytes());
        let name = utf8_percent_encode(if name.is_empty() { "file" } else { name }, NON_ALPHANUMERIC);
        Some(format!("{}{PREFIX}/{server}/{media_id}/{expires}/{signature}/{name}", self.base))
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

async fn serve(
    State(state): State<Arc<LinkState>>,
    Path((server, media_id, expires, signature, name)): Path<(String, String, u64, String, String)>,
) -> Response {
    if !plain_part(&server) || !plain_part(&media_id) || !state.links.verify(&server, &media_id, expires, &signature) {
        return (StatusCode::FORBIDDEN, "invalid or expired link").into_response();
    }
    match state.media.download(&format!("mxc://{server}/{media_id}")).await {
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
mod tests {
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
        let link = l.link("mxc://hs.example/AbC123", "report 1.pdf").unwrap();
        let p = parts(&link);
        assert_eq!(p[0], "hs.example");
        assert_eq!(p[4], "report%201%2Epdf");
        let expires: u64 = p[2].parse().unwrap();
        assert!(l.verify(&p[0], &p[1], expires, &p[3]));
        assert!(!l.verify(&p[0], "Other", expires, &p[3]), "another file");
        assert!(!l.verify(&p[0], &p[1], expires + 1, &p[3]), "a longer life");
        assert!(!l.verify(&p[0], &p[1], expires, "00"), "a made-up signature");
        let other_key = SignedLinks::new(&"https://x/".parse().unwrap(), "another-secret-key", Duration::from_secs(60));
        assert!(!other_key.verify(&p[0], &p[1], expires, &p[3]), "another key");
    }

    #[test]
    fn expired_and_odd_links_are_refused() {
        let l = links();
        let expired = now_secs() - 1;
        let signature = hex::encode(l.mac("hs", "id", expired).finalize().into_bytes());
        assert!(!l.verify("hs", "id", expired, &signature));
        assert_eq!(l.link("https://not-mxc/x", "f"), None);
        assert_eq!(l.link("mxc://hs/../../etc", "f"), None);
    }
}
