//! Files: XMPP shares them as links (XEP-0066 out-of-band data, usually
//! pointing at a XEP-0363 upload service); the bridge fetches them, within a
//! size limit, to re-upload them to Matrix.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use brygga_core::{Attachment, BridgeError, MediaBytes, MediaSource, RemoteMedia};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::vcard::VCard;

use crate::adapter::Shared;
use crate::stanzas;

/// Locator prefix of avatars in vCards: `vcard:<jid>#<hash>`.
pub(crate) const VCARD_SCHEME: &str = "vcard:";

/// An attachment for a shared link; name and type come from the URL until fetched.
pub(crate) fn attachment(url: &str) -> Attachment {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("file");
    let name = percent_decode(name);
    Attachment {
        mime: guess_mime(&name).to_owned(),
        name,
        size: None,
        source: MediaSource::Remote { locator: url.to_owned() },
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        _ => "application/octet-stream",
    }
}

/// Fetches shared files over HTTP(S), refusing anything over the limit.
pub(crate) struct LinkFetcher {
    http: reqwest::Client,
    pub(crate) max_bytes: u64,
}

impl LinkFetcher {
    pub(crate) fn new(max_bytes: u64) -> Result<Self, BridgeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| BridgeError::permanent(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, max_bytes })
    }
}

#[async_trait]
impl RemoteMedia for LinkFetcher {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        if !(locator.starts_with("https://") || locator.starts_with("http://")) {
            return Err(BridgeError::permanent("only http(s) links are fetched"));
        }
        let mut response = self
            .http
            .get(locator)
            .send()
            .await
            .map_err(|e| BridgeError::transient(format!("fetching a shared file failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(BridgeError::transient(format!("the file server answered {status}")));
        }
        if !status.is_success() {
            return Err(BridgeError::permanent(format!("the file server answered {status}")));
        }
        if response.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(BridgeError::permanent(format!("the file is larger than {} bytes", self.max_bytes)));
        }
        let mime = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut data = Vec::new();
        // The length header may be missing or wrong: count while reading.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| BridgeError::transient(format!("reading a shared file: {}", e.without_url())))?
        {
            if (data.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(BridgeError::permanent(format!("the file is larger than {} bytes", self.max_bytes)));
            }
            data.extend_from_slice(&chunk);
        }
        Ok(MediaBytes { data, mime })
    }
}

/// Remote media of the adapter: shared links over HTTP(S), avatars from vCards.
pub(crate) struct XmppMedia {
    pub(crate) links: LinkFetcher,
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl RemoteMedia for XmppMedia {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        let Some(rest) = locator.strip_prefix(VCARD_SCHEME) else { return self.links.fetch(locator).await };
        let jid = rest.rsplit_once('#').map_or(rest, |(jid, _)| jid);
        let jid = Jid::new(jid).map_err(|_| BridgeError::permanent("invalid vCard JID"))?;
        let link = self.shared.current_link().ok_or_else(|| BridgeError::transient("XMPP adapter not started"))?;
        let query = stanzas::vcard_query(&self.shared.listener, &jid, &link.fresh_id("vcard"));
        let answer = link.iq(query).await?;
        if answer.attr("type") != Some("result") {
            return Err(BridgeError::permanent("no vCard"));
        }
        let vcard = answer
            .get_child("vCard", ns::VCARD)
            .cloned()
            .and_then(|v: Element| VCard::try_from(v).ok())
            .ok_or_else(|| BridgeError::permanent("the vCard does not parse"))?;
        let photo = vcard.photo.ok_or_else(|| BridgeError::permanent("the vCard has no photo"))?;
        if photo.binval.data.len() as u64 > self.links.max_bytes {
            return Err(BridgeError::permanent("the avatar is too large"));
        }
        let mime = if photo.type_.data.starts_with("image/") { photo.type_.data } else { "image/png".to_owned() };
        Ok(MediaBytes { data: photo.binval.data, mime })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_named_after_the_link() {
        let a = attachment("https://up.example/share/abc/My%20Photo.JPG?x=1");
        assert_eq!(a.name, "My Photo.JPG");
        assert_eq!(a.mime, "image/jpeg");
        assert_eq!(a.source, MediaSource::Remote { locator: "https://up.example/share/abc/My%20Photo.JPG?x=1".into() });
        assert_eq!(attachment("https://up.example/").name, "file");
    }
}
