//! Message mutations shared by the REST routes and the control API: each one
//! checks what Graph checks, updates the stored message and queues a change
//! for the notifier.

use crate::error::GraphError;
use crate::model::{Conversation, HostedContent, MessageRecord, Reaction, SentVia};
use crate::world::{Change, World};

/// A message a test person is about to send (see [`Draft::html`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Draft {
    /// `html` or `text`.
    pub content_type: String,
    /// Body content.
    pub content: String,
    /// Subject (channel root messages).
    pub subject: Option<String>,
    /// `chatMessageMention` JSON objects.
    pub mentions: Vec<serde_json::Value>,
    /// `chatMessageAttachment` JSON objects.
    pub attachments: Vec<serde_json::Value>,
    /// Inline hosted contents.
    pub hosted: Vec<HostedContent>,
    /// `eventDetail` for a system event message (then there is no sender).
    pub event_detail: Option<serde_json::Value>,
}

impl Draft {
    /// An HTML body.
    pub fn html(content: impl Into<String>) -> Self {
        Self { content_type: "html".to_owned(), content: content.into(), ..Self::default() }
    }

    /// A plain text body.
    pub fn text(content: impl Into<String>) -> Self {
        Self { content_type: "text".to_owned(), content: content.into(), ..Self::default() }
    }

    /// Adds a subject line (channel root messages).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Appends an `<at id="n">name</at>` mention of `user` to the body, with its `mentions` entry.
    pub fn with_mention(mut self, user: &crate::TestUser) -> Self {
        let id = self.mentions.len();
        self.content_type = "html".to_owned();
        self.content.push_str(&format!("<at id=\"{id}\">{}</at>", user.display_name));
        self.mentions.push(serde_json::json!({
            "id": id,
            "mentionText": user.display_name,
            "mentioned": { "application": null, "device": null, "conversation": null, "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": user.id,
                "displayName": user.display_name,
                "userIdentityType": "aadUser",
            }},
        }));
        self
    }

    /// Appends an inline image hosted with the message (`<img src=".../hostedContents/{id}/$value">`).
    pub fn with_image(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Self {
        let id = crate::ids::secret();
        self.content_type = "html".to_owned();
        self.content.push_str(&format!("<p><img src=\"hostedContents/{id}\" alt=\"image\" width=\"250\" height=\"250\" style=\"vertical-align:bottom\"></p>"));
        self.hosted.push(HostedContent { id, content_type: content_type.to_owned(), bytes: bytes.into() });
        self
    }
}

impl World {
    /// The messages of a conversation.
    pub fn conversation(&self, conversation: &Conversation) -> &[MessageRecord] {
        self.messages.get(conversation).map_or(&[], Vec::as_slice)
    }

    /// One message (root or reply) of a conversation, or 404.
    pub fn message(&self, conversation: &Conversation, id: &str) -> Result<&MessageRecord, GraphError> {
        self.conversation(conversation).iter().find(|m| m.id == id).ok_or_else(|| GraphError::not_found("Message"))
    }

    fn message_mut(&mut self, conversation: &Conversation, id: &str) -> Result<&mut MessageRecord, GraphError> {
        self.messages
            .get_mut(conversation)
            .and_then(|ms| ms.iter_mut().find(|m| m.id == id))
            .ok_or_else(|| GraphError::not_found("Message"))
    }

    /// Posts a message (or a reply to `reply_to`) from `sender` (`None` for a system event).
    pub fn post(
        &mut self,
        conversation: &Conversation,
        sender: Option<&str>,
        reply_to: Option<&str>,
        new: Draft,
        via: SentVia,
    ) -> Result<MessageRecord, GraphError> {
        if let Some(user) = sender
            && !self.is_member(conversation, user)
        {
            return Err(GraphError::forbidden("User is not a member of this conversation."));
        }
        if let Some(parent) = reply_to {
            let root = self.message(conversation, parent)?;
            if root.reply_to.is_some() {
                return Err(GraphError::bad_request("Replies can only be posted to a root message."));
            }
        }
        let now = crate::time::now();
        let id = self.next_message_id(now);
        let seq = self.next_seq();
        let tenant = conversation.tenant().to_owned();
        let message = MessageRecord {
            id: id.clone(),
            reply_to: reply_to.map(str::to_owned),
            message_type: if new.event_detail.is_some() { "systemEventMessage" } else { "message" }.to_owned(),
            from_user: sender.map(str::to_owned),
            from_name: sender.map(|u| self.display_name(&tenant, u)),
            content_type: new.content_type,
            content: new.content,
            subject: new.subject,
            created: now,
            last_modified: now,
            last_edited: None,
            deleted: None,
            reactions: Vec::new(),
            mentions: new.mentions,
            attachments: new.attachments,
            hosted: new.hosted,
            event_detail: new.event_detail,
            last_change_via: via.clone(),
            via,
            seq,
        };
        self.messages.entry(conversation.clone()).or_default().push(message.clone());
        self.touch_root(conversation, reply_to, seq);
        self.queue(conversation, &message, "created");
        Ok(message)
    }

    /// Replaces the body of `sender`'s own message (PATCH).
    pub fn edit(
        &mut self,
        conversation: &Conversation,
        id: &str,
        sender: &str,
        content_type: &str,
        content: &str,
        via: SentVia,
    ) -> Result<(), GraphError> {
        let seq = self.next_seq();
        let m = self.message_mut(conversation, id)?;
        if m.from_user.as_deref() != Some(sender) {
            return Err(GraphError::forbidden("Only the sender of a message can edit its body."));
        }
        if m.deleted.is_some() {
            return Err(GraphError::bad_request("A deleted message cannot be edited."));
        }
        let now = crate::time::now();
        m.content_type = content_type.to_owned();
        m.content = content.to_owned();
        m.last_edited = Some(now);
        m.last_modified = now;
        m.seq = seq;
        m.last_change_via = via;
        let m = m.clone();
        self.touch_root(conversation, m.reply_to.as_deref(), seq);
        self.queue(conversation, &m, "updated");
        Ok(())
    }

    /// Soft-deletes (or with `undo`, restores) `sender`'s own message.
    pub fn soft_delete(
        &mut self,
        conversation: &Conversation,
        id: &str,
        sender: &str,
        undo: bool,
        via: SentVia,
    ) -> Result<(), GraphError> {
        let seq = self.next_seq();
        let m = self.message_mut(conversation, id)?;
        if m.from_user.as_deref() != Some(sender) {
            return Err(GraphError::forbidden("Only the sender of a message can delete it."));
        }
        let now = crate::time::now();
        if undo == m.deleted.is_none() {
            // Graph answers 204 for a repeated delete or undo; nothing changes and nothing is notified.
            return Ok(());
        }
        m.deleted = if undo { None } else { Some(now) };
        m.last_modified = now;
        m.seq = seq;
        m.last_change_via = via;
        let m = m.clone();
        self.touch_root(conversation, m.reply_to.as_deref(), seq);
        // Graph notifies a soft delete as `deleted` and an undo as `updated`.
        self.queue(conversation, &m, if undo { "updated" } else { "deleted" });
        Ok(())
    }

    /// Sets (or with `unset`, removes) `user`'s reaction on a message.
    pub fn react(
        &mut self,
        conversation: &Conversation,
        id: &str,
        user: &str,
        reaction_type: &str,
        unset: bool,
        via: SentVia,
    ) -> Result<(), GraphError> {
        if !self.is_member(conversation, user) {
            return Err(GraphError::forbidden("User is not a member of this conversation."));
        }
        let display_name = self.display_name(conversation.tenant(), user);
        let seq = self.next_seq();
        let m = self.message_mut(conversation, id)?;
        if m.deleted.is_some() {
            return Err(GraphError::bad_request("Cannot react to a deleted message."));
        }
        let now = crate::time::now();
        let existing = m.reactions.iter().position(|r| r.user == user && r.reaction_type == reaction_type);
        match (unset, existing) {
            (false, None) => m.reactions.push(Reaction {
                user: user.to_owned(),
                display_name,
                reaction_type: reaction_type.to_owned(),
                created: now,
            }),
            (true, Some(i)) => {
                m.reactions.remove(i);
            }
            // Setting an existing reaction or removing an absent one changes nothing.
            _ => return Ok(()),
        }
        // lastModifiedDateTime includes reactions being added or removed (chatMessage docs).
        m.last_modified = now;
        m.seq = seq;
        m.last_change_via = via;
        let m = m.clone();
        self.touch_root(conversation, m.reply_to.as_deref(), seq);
        self.queue(conversation, &m, "updated");
        Ok(())
    }

    /// A reply's change moves its root up in the channel's delta (replies are not delta rows themselves).
    fn touch_root(&mut self, conversation: &Conversation, reply_to: Option<&str>, seq: u64) {
        if let Some(parent) = reply_to
            && let Ok(root) = self.message_mut(conversation, parent)
        {
            root.seq = seq;
        }
    }

    fn queue(&mut self, conversation: &Conversation, m: &MessageRecord, change_type: &'static str) {
        self.changes.push(Change {
            conversation: conversation.clone(),
            id: m.id.clone(),
            reply_to: m.reply_to.clone(),
            change_type,
        });
    }
}
