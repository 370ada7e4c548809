//! The bridge bot's account commands for Teams: `link` runs the device code
//! sign-in (the code and address at once, the outcome when the person has
//! signed in), `unlink` forgets the person's sealed grant.

use std::sync::Arc;

use brygga_core::{AccountCommand, BridgeError, CommandReplies, RemoteUserId};

use crate::link::Linked;
use crate::shared::Shared;

/// Carries out one account command.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    command: AccountCommand,
    replies: Arc<dyn CommandReplies>,
) -> Result<(), BridgeError> {
    match command {
        AccountCommand::Link { user } => {
            let (prompt, outcome) = crate::link::start(shared, user).await?;
            replies
                .notice(&format!(
                    "To link your Teams account, open {} and enter the code {} within {} minutes. \
                     I will tell you here when it is done.",
                    prompt.verification_uri,
                    prompt.user_code,
                    prompt.expires_in.div_ceil(60)
                ))
                .await;
            tokio::spawn(async move {
                match outcome.await {
                    Ok(Ok(Linked { aad, display_name })) => {
                        if let Ok(remote) = RemoteUserId::new(aad) {
                            replies.linked(&remote).await;
                        }
                        let text = format!("Linked: your messages now reach Teams as {display_name}.");
                        replies.notice(&text).await;
                    }
                    Ok(Err(reason)) => replies.notice(&format!("Linking your Teams account failed: {reason}")).await,
                    Err(_) => replies.notice("Linking your Teams account was interrupted; please try again.").await,
                }
            });
            Ok(())
        }
        AccountCommand::Unlink { user } => {
            if shared.accounts.unlink(&user).await? {
                tracing::info!(tenant = %shared.tenant, "a Matrix user unlinked their Teams account");
                replies.unlinked().await;
                replies.notice("Your Teams account is unlinked: your messages go through the relay again.").await;
            } else {
                replies.notice("You have no linked Teams account.").await;
            }
            Ok(())
        }
        _ => {
            replies.notice("Teams does not know that account command.").await;
            Ok(())
        }
    }
}
