//! Account commands: a Matrix user linking (or unlinking) their own account
//! on a platform through the bridge bot, e.g. for double puppeting.
//!
//! The bot parses and authorises the command; the adapter does the
//! platform's part and answers through [`CommandReplies`], possibly much
//! later (a device code sign-in takes minutes).

use async_trait::async_trait;

use crate::ids::{MatrixUserId, RemoteUserId};

/// What a Matrix user asked the adapter to do with their account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountCommand {
    /// Link the user's own account on the platform.
    Link {
        /// Who asked.
        user: MatrixUserId,
    },
    /// Forget the user's linked account.
    Unlink {
        /// Who asked.
        user: MatrixUserId,
    },
}

impl AccountCommand {
    /// The Matrix user the command is about.
    pub fn user(&self) -> &MatrixUserId {
        match self {
            Self::Link { user } | Self::Unlink { user } => user,
        }
    }
}

/// Where an adapter answers an account command: notices in the room the
/// command came from, and the outcome for the bridge's own records.
/// Failures to post are logged by the implementation, never returned.
#[async_trait]
pub trait CommandReplies: Send + Sync {
    /// Posts a notice to the user who gave the command (never a secret).
    async fn notice(&self, text: &str);

    /// The user's account is now linked as `remote`.
    async fn linked(&self, _remote: &RemoteUserId) {}

    /// The user's account is no longer linked.
    async fn unlinked(&self) {}
}
