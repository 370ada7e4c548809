//! Files of the workspace, fetched for Matrix with auth headers (file links
//! such as `/file-upload/<id>/<name>` need them) within the size limit. A
//! file of a direct chat is fetched as the puppet in it (the bot cannot see
//! those), so its locator names that puppet's Matrix user.

use std::sync::Arc;

use async_trait::async_trait;
use brygga_core::{BridgeError, MatrixUserId, MediaBytes, RemoteMedia};
use reqwest::StatusCode;

use crate::adapter::Shared;
use crate::rest::{Creds, Rest, with_creds};

/// Prefix of locators fetched as a puppet: `as <@matrix:user> <link>`.
const AS_PUPPET: &str = "as ";

/// The locator of a file link, fetched as `owner`'s puppet when given.
pub(crate) fn locator(link: &str, owner: Option<&MatrixUserId>) -> String {
    match owner {
        Some(owner) => format!("{AS_PUPPET}{owner} {link}"),
        None => link.to_owned(),
    }
}

/// The puppet owner and link of a locator.
fn parse(locator: &str) -> (Option<MatrixUserId>, &str) {
    if let Some(rest) = locator.strip_prefix(AS_PUPPET)
        && let Some((owner, link)) = rest.split_once(' ')
        && let Ok(owner) = MatrixUserId::new(owner)
    {
        return (Some(owner), link);
    }
    (None, locator)
}

/// Remote media access of the adapter.
pub(crate) struct Files {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl RemoteMedia for Files {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        let shared = &self.shared;
        let bot = shared.bot()?;
        let (owner, link) = parse(locator);
        let creds = match owner {
            Some(owner) => {
                shared.puppets.ensure(&shared.rest, shared.state.as_ref(), &bot.creds, &owner, None).await?.creds()
            }
            None => bot.creds,
        };
        let (data, mime) = download(&shared.rest, link, &creds).await?;
        Ok(MediaBytes { data, mime })
    }
}

/// Downloads a file of the workspace (relative or absolute URL) with the
/// user's auth headers, refusing anything over the size limit.
async fn download(rest: &Rest, link: &str, creds: &Creds) -> Result<(Vec<u8>, String), BridgeError> {
    let config = rest.config();
    let url = config.url.join(link.trim_start_matches('/')).map_err(|_| BridgeError::permanent("bad file URL"))?;
    // Auth headers go only to the workspace itself, never to a third-party link.
    let ours = url.origin() == config.url.origin();
    let max = config.max_file_bytes;
    rest.wait_for_window().await;
    let mut request = rest.http().get(url);
    if ours {
        request = with_creds(request, Some(creds));
    }
    let failed = |e: reqwest::Error| BridgeError::transient(format!("fetching a file: {}", e.without_url()));
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(BridgeError::transient(format!("the workspace answered {status} for a file")));
    }
    if !status.is_success() {
        return Err(BridgeError::permanent(format!("the workspace answered {status} for a file")));
    }
    if response.content_length().is_some_and(|n| n > max) {
        return Err(BridgeError::permanent(format!("the file is larger than {max} bytes")));
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut data = Vec::new();
    // The length header may be missing or wrong: count while reading.
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (data.len() + chunk.len()) as u64 > max {
            return Err(BridgeError::permanent(format!("the file is larger than {max} bytes")));
        }
        data.extend_from_slice(&chunk);
    }
    Ok((data, mime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_name_the_puppet_to_fetch_as() {
        let alice = MatrixUserId::new("@alice:hs").unwrap();
        let as_alice = locator("/file-upload/f1/a b.png", Some(&alice));
        assert_eq!(parse(&as_alice), (Some(alice), "/file-upload/f1/a b.png"));
        assert_eq!(parse(&locator("/file-upload/f1/a.png", None)), (None, "/file-upload/f1/a.png"));
        assert_eq!(parse("as nobody /x"), (None, "as nobody /x"));
    }
}
