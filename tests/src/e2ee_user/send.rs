//! Sending into rooms; matrix-sdk encrypts whatever goes into an encrypted
//! room, except reactions and redactions (as Element does).

use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::ruma::EventId;
use serde_json::{Value, json};

use super::{E2eeResult, E2eeUser, failed};

impl E2eeUser {
    /// Sends an event with the given type and content; returns its event id.
    pub async fn send_json(&self, room_id: &str, event_type: &str, content: Value) -> E2eeResult<String> {
        let room = self.room(room_id).await?;
        let sent = room
            .send_raw(event_type, content)
            .await
            .map_err(failed(format_args!("sending {event_type} to {room_id}")))?;
        Ok(sent.response.event_id.to_string())
    }

    /// Sends a plain text message.
    pub async fn send_text(&self, room_id: &str, body: &str) -> E2eeResult<String> {
        self.send_json(room_id, "m.room.message", json!({"msgtype": "m.text", "body": body})).await
    }

    /// Replaces the text of `event_id` with `body` (an `m.replace` edit).
    pub async fn send_edit(&self, room_id: &str, event_id: &str, body: &str) -> E2eeResult<String> {
        let content = json!({
            "msgtype": "m.text",
            "body": format!("* {body}"),
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        });
        self.send_json(room_id, "m.room.message", content).await
    }

    /// Answers `event_id` with a text reply.
    pub async fn send_reply(&self, room_id: &str, event_id: &str, body: &str) -> E2eeResult<String> {
        let content = json!({
            "msgtype": "m.text",
            "body": body,
            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        });
        self.send_json(room_id, "m.room.message", content).await
    }

    /// Reacts to `event_id` with `key` (sent in the clear, as matrix-sdk and Element do).
    pub async fn send_reaction(&self, room_id: &str, event_id: &str, key: &str) -> E2eeResult<String> {
        let content = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}});
        self.send_json(room_id, "m.reaction", content).await
    }

    /// Redacts `event_id`; returns the redaction's event id.
    pub async fn redact(&self, room_id: &str, event_id: &str, reason: Option<&str>) -> E2eeResult<String> {
        let room = self.room(room_id).await?;
        let target = EventId::parse(event_id).map_err(failed(format_args!("event id {event_id:?}")))?;
        let response = room
            .redact(&target, reason, None)
            .await
            .map_err(failed(format_args!("redacting {event_id} in {room_id}")))?;
        Ok(response.event_id.to_string())
    }

    /// Uploads `data` and sends it as a file message; in an encrypted room the
    /// upload is encrypted and the key travels in the (encrypted) event.
    pub async fn send_file(
        &self,
        room_id: &str,
        filename: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> E2eeResult<String> {
        let room = self.room(room_id).await?;
        let mime: mime::Mime = content_type.parse().map_err(failed(format_args!("content type {content_type:?}")))?;
        let response = room
            .send_attachment(filename, &mime, data, AttachmentConfig::new())
            .await
            .map_err(failed(format_args!("sending {filename} to {room_id}")))?;
        Ok(response.event_id.to_string())
    }
}
