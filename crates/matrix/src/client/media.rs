//! Media upload and download; in encrypted rooms only ciphertext reaches
//! the homeserver, and the key travels in the (encrypted) event.

use brygga_core::{BridgeError, MatrixFile, MatrixRoomId, MatrixUserId, MediaBytes};
use ruma::OwnedMxcUri;
use ruma::api::client::authenticated_media::get_content as authenticated;
use ruma::api::client::media::create_content;
#[allow(deprecated)]
use ruma::api::client::media::get_content as legacy;

use super::{CallError, MatrixClient, Versions, room_id, user_id};
use crate::files;

const FALLBACK_MIME: &str = "application/octet-stream";

impl MatrixClient {
    /// Uploads `media` as `user` for `room`, encrypted when the room is.
    pub(super) async fn upload_for(
        &self,
        user: &MatrixUserId,
        room: Option<&MatrixRoomId>,
        name: &str,
        media: MediaBytes,
    ) -> Result<MatrixFile, BridgeError> {
        let ruma_user = user_id(user)?;
        let encrypted = match room {
            Some(room) => self.room_is_encrypted(&room_id(room)?, &ruma_user).await?,
            None => false,
        };
        if !encrypted {
            return Ok(MatrixFile::plain(self.upload_as(user, Some(name), media).await?));
        }
        let sealed = brygga_crypto::encrypt_file(&media.data);
        let key = files::key_from_json(&sealed.key)
            .map_err(|e| BridgeError::permanent(format!("encrypting a file gave an unusable key: {e}")))?;
        // The homeserver learns neither the file's name nor its type.
        let ciphertext = MediaBytes { data: sealed.ciphertext, mime: FALLBACK_MIME.to_owned() };
        Ok(MatrixFile::encrypted(self.upload_as(user, None, ciphertext).await?, key))
    }

    /// Downloads `file`, decrypting it (and checking its hash) when encrypted.
    pub(super) async fn download_file(&self, file: &MatrixFile) -> Result<MediaBytes, BridgeError> {
        let media = self.download_media(&file.mxc).await?;
        let Some(key) = &file.key else { return Ok(media) };
        let data = brygga_crypto::decrypt_file(&media.data, &files::key_json(key))
            .map_err(|e| BridgeError::permanent(format!("encrypted file not opened: {e}")))?;
        Ok(MediaBytes { data, ..media })
    }

    async fn upload_as(
        &self,
        user: &MatrixUserId,
        name: Option<&str>,
        media: MediaBytes,
    ) -> Result<String, BridgeError> {
        let user = user_id(user)?;
        let mut request = create_content::v3::Request::new(media.data);
        request.filename = name.map(str::to_owned);
        request.content_type = Some(media.mime);
        let response = self
            .http
            .call("upload", request, Some(&user), Versions::Modern)
            .await
            .map_err(|e| e.into_bridge("upload"))?;
        Ok(response.content_uri.to_string())
    }

    async fn download_media(&self, mxc: &str) -> Result<MediaBytes, BridgeError> {
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
