//! Inline images of Teams messages (hosted contents), fetched with the
//! app's token for re-upload to Matrix. Only hosted-content URLs under the
//! configured Graph root are fetched: a locator never sends the token elsewhere.

use std::sync::Arc;

use async_trait::async_trait;
use brygga_core::{BridgeError, MediaBytes, RemoteMedia};

use crate::shared::{Shared, token_failure};

/// The adapter's media access.
pub(crate) struct Files {
    pub(crate) shared: Arc<Shared>,
}

/// Whether a locator is a hosted content of this tenant's Graph.
pub(crate) fn is_hosted(graph_root: &str, locator: &str) -> bool {
    locator.starts_with(graph_root)
        && locator.contains("/hostedContents/")
        && locator.ends_with("/$value")
        && !locator.contains("/../")
        && !locator.contains('#')
}

#[async_trait]
impl RemoteMedia for Files {
    async fn fetch(&self, locator: &str) -> Result<MediaBytes, BridgeError> {
        let shared = &self.shared;
        if !is_hosted(shared.config().graph_url.as_str(), locator) {
            return Err(BridgeError::permanent("not a Teams hosted content"));
        }
        let token = shared.identity.app_token().await.map_err(token_failure)?;
        let (data, mime) = shared.graph.bytes(locator, &token, "media").await?;
        Ok(MediaBytes { data, mime })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosted_contents_of_the_tenants_graph_are_fetched() {
        let root = "https://graph.microsoft.com/v1.0/";
        assert!(is_hosted(root, "https://graph.microsoft.com/v1.0/chats/19:x/messages/1/hostedContents/aWQ=/$value"));
        assert!(!is_hosted(root, "https://evil.example/v1.0/chats/x/messages/1/hostedContents/a/$value"));
        assert!(!is_hosted(root, "https://graph.microsoft.com.evil.example/v1.0/x/hostedContents/a/$value"));
        assert!(!is_hosted(root, "https://graph.microsoft.com/v1.0/users/x/photo/$value"));
        assert!(!is_hosted(root, "https://graph.microsoft.com/v1.0/x/hostedContents/../../me/$value"));
    }
}
