//! Control API: people acting in Teams (through the code paths REST uses, so
//! notifications fire) and reading messages back.

use crate::GraphDouble;
use crate::conversations::Draft;
use crate::error::DoubleError;
use crate::model::{Conversation, MessageRecord, SentVia, TestUser};

impl GraphDouble {
    /// `user` sends a root message; returns its id.
    pub fn send(&self, user: &TestUser, conversation: &Conversation, draft: Draft) -> Result<String, DoubleError> {
        self.post(user, conversation, None, draft)
    }

    /// `user` replies in the thread of root message `root` of a channel; returns the reply's id.
    pub fn reply(
        &self,
        user: &TestUser,
        conversation: &Conversation,
        root: &str,
        draft: Draft,
    ) -> Result<String, DoubleError> {
        self.post(user, conversation, Some(root), draft)
    }

    fn post(&self, user: &TestUser, c: &Conversation, root: Option<&str>, draft: Draft) -> Result<String, DoubleError> {
        if root.is_some() && matches!(c, Conversation::Chat { .. }) {
            return Err(crate::error::GraphError::bad_request("Chats have no reply threads.").into());
        }
        Ok(self.shared.with(|w| w.post(c, Some(&user.id), root, draft, SentVia::Control))?.id)
    }

    /// `user` edits the body of their message to `html`.
    pub fn edit(&self, user: &TestUser, conversation: &Conversation, id: &str, html: &str) -> Result<(), DoubleError> {
        Ok(self.shared.with(|w| w.edit(conversation, id, &user.id, "html", html, SentVia::Control))?)
    }

    /// `user` deletes their message (soft delete).
    pub fn delete(&self, user: &TestUser, conversation: &Conversation, id: &str) -> Result<(), DoubleError> {
        Ok(self.shared.with(|w| w.soft_delete(conversation, id, &user.id, false, SentVia::Control))?)
    }

    /// `user` restores their deleted message.
    pub fn undelete(&self, user: &TestUser, conversation: &Conversation, id: &str) -> Result<(), DoubleError> {
        Ok(self.shared.with(|w| w.soft_delete(conversation, id, &user.id, true, SentVia::Control))?)
    }

    /// `user` reacts with `reaction` (an emoji such as `👍`).
    pub fn react(
        &self,
        user: &TestUser,
        conversation: &Conversation,
        id: &str,
        reaction: &str,
    ) -> Result<(), DoubleError> {
        Ok(self.shared.with(|w| w.react(conversation, id, &user.id, reaction, false, SentVia::Control))?)
    }

    /// `user` removes their `reaction`.
    pub fn unreact(
        &self,
        user: &TestUser,
        conversation: &Conversation,
        id: &str,
        reaction: &str,
    ) -> Result<(), DoubleError> {
        Ok(self.shared.with(|w| w.react(conversation, id, &user.id, reaction, true, SentVia::Control))?)
    }

    /// Every message of a conversation (roots and replies, soft-deleted ones included), oldest first.
    pub fn messages(&self, conversation: &Conversation) -> Vec<MessageRecord> {
        self.shared.with(|w| w.conversation(conversation).to_vec())
    }

    /// One message by id.
    pub fn message(&self, conversation: &Conversation, id: &str) -> Option<MessageRecord> {
        self.shared.with(|w| w.message(conversation, id).ok().cloned())
    }
}
