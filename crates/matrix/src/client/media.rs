//! Media upload and download.

use brygga_core::{BridgeError, MatrixUserId, MediaBytes};
use ruma::OwnedMxcUri;
use ruma::api::client::authenticated_media::get_content as authenticated;
use ruma::api::client::media::create_content;
#[allow(deprecated)]
use ruma::api::client::media::get_content as legacy;

use super::{CallError, MatrixClient, Versions, user_id};

const FALLBACK_MIME: &str = "application/octet-stream";

impl MatrixClient {
    pub(super) async fn upload_as(
        &self,
        user: &MatrixUserId,
        name: &str,
        media: MediaBytes,
    ) -> Result<String, BridgeError> {
        let user = user_id(user)?;
        let mut request = create_content::v3::Request::new(media.data);
        request.filename = Some(name.to_owned());
        request.content_type = Some(media.mime);
        let response = self
            .http
            .call("upload", request, Some(&user), Versions::Modern)
            .await
            .map_err(|e| e.into_bridge("upload"))?;
        Ok(response.content_uri.to_string())
    }

    pub(super) async fn download_media(&self, mxc: &str) -> Result<MediaBytes, BridgeError> {
        let uri = OwnedMxcUri::from(mxc);
        let request =
            authenticated::v1::Request::from_uri(&uri).map_err(|_| BridgeError::permanent("invalid mxc URI"))?;
        match self.http.call("download", request, None, Versions::Modern).await {
            Ok(response) => Ok(bytes(response.file, response.content_type)),
            Err(err) if lacks_authenticated_media(&err) => self.download_legacy(&uri).await,
            Err(err) => Err(err.into_bridge("download")),
        }
    }

    /// Homeservers older than Matrix 1.11 only serve unauthenticated media.
    #[allow(deprecated)]
    async fn download_legacy(&self, uri: &OwnedMxcUri) -> Result<MediaBytes, BridgeError> {
        let request = legacy::v3::Request::from_url(uri).map_err(|_| BridgeError::permanent("invalid mxc URI"))?;
        let response = self
            .http
            .call("download (legacy)", request, None, Versions::Legacy)
            .await
            .map_err(|e| e.into_bridge("download"))?;
        Ok(bytes(response.file, response.content_type))
    }
}

/// A 404 that means "unknown endpoint", not "unknown media". A bare 404
/// without a Matrix body usually comes from a proxy in front of an old server.
fn lacks_authenticated_media(err: &CallError) -> bool {
    err.status() == Some(404) && matches!(err.errcode(), Some("M_UNRECOGNIZED" | ""))
}

fn bytes(data: Vec<u8>, mime: Option<String>) -> MediaBytes {
    MediaBytes { data, mime: mime.unwrap_or_else(|| FALLBACK_MIME.to_owned()) }
}
