//! Files of the workspace, fetched for Matrix with the bot's auth headers
//! (file links such as `/file-upload/<id>/<name>` need them), within the
//! size limit.

use std::sync::Arc;

use async_trait::async_trait;
use brygga_core::{BridgeError, MediaBytes, RemoteMedia};

use crate::adapter::Shared;

/// Remote media access of the adapter.
pub(crate) struct Files {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl RemoteMedia for Files {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        let bot = self.shared.bot()?;
        let (data, mime) = self.shared.rest.download(locator, &bot.creds).await?;
        Ok(MediaBytes { data, mime })
    }
}
