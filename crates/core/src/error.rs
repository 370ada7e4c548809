//! Errors shared across the bridge.

use std::time::Duration;

/// An identifier failed validation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidId {
    /// Which id type rejected it.
    pub kind: &'static str,
    /// The rejected value, truncated.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// Whether a failed step is worth retrying.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A temporary failure: retry later, optionally not before `retry_after`.
    #[error("transient: {message}")]
    Transient {
        /// What went wrong, without message bodies or secrets.
        message: String,
        /// A server-requested delay.
        retry_after: Option<Duration>,
    },
    /// A failure that will not go away by retrying this event.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl BridgeError {
    /// A transient error without a requested delay.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient { message: message.into(), retry_after: None }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// True when retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(String),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A referenced row does not exist (for example an unknown tenant).
    #[error("not found: {0}")]
    NotFound(String),
    /// A row conflicts with an existing one.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<StoreError> for BridgeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(m) => BridgeError::transient(m),
            other => BridgeError::permanent(other.to_string()),
        }
    }
}
