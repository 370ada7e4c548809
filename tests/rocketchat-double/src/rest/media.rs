//! File upload in two steps (`rooms.media/{rid}` then
//! `rooms.mediaConfirm/{rid}/{fileId}`) and downloads from `/file-upload/`.

use super::{ApiResult, json_body, success, text};
use crate::error::ApiError;
use crate::ids;
use crate::model::{RoomType, Upload};
use crate::server::Shared;
use crate::time::{Format, now_ms};
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::sync::Arc;

/// `FileUpload_MaxFileSize`'s default (100 MiB).
pub const MAX_FILE_SIZE: usize = 104_857_600;

/// The body keys `rooms.mediaConfirm` takes (rest-typings' type for the route; it ships no validator).
const CONFIRM_KEYS: &[&str] = &[
    "description",
    "avatar",
    "emoji",
    "alias",
    "groupable",
    "msg",
    "tmid",
    "customFields",
    "t",
    "content",
    "fileName",
    "fileContent",
];

/// `POST rooms.media/{rid}`: a multipart `file` becomes a temporary upload.
pub async fn upload(
    State(s): State<Arc<Shared>>,
    Path(rid): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> ApiResult {
    let me = s.authenticate(&headers)?;
    if !s.with(|ws| ws.is_member(&rid, &me.id)) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            body: json!({ "success": false, "error": "forbidden" }),
        });
    }
    let mut file = None;
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::failure(format!("Invalid multipart body: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
        let bytes = field.bytes().await.map_err(|e| ApiError::failure(format!("Invalid multipart body: {e}")))?;
        file = Some((name, content_type, bytes.to_vec()));
    }
    let (name, content_type, bytes) = file.ok_or_else(|| ApiError::meteor("invalid-field", ""))?;
    if bytes.len() > MAX_FILE_SIZE {
        return Err(ApiError::meteor("error-file-too-large", "File is too large"));
    }
    let upload = Upload {
        id: ids::random_id(),
        rid,
        user_id: me.id,
        name,
        content_type,
        bytes,
        confirmed: false,
        uploaded_at: now_ms(),
    };
    let reply = json!({ "file": { "_id": upload.id, "url": upload.url() } });
    s.with(|ws| ws.add_upload(upload));
    Ok(success(reply))
}

/// `POST rooms.mediaConfirm/{rid}/{fileId}` with `{msg?, tmid?, description?}`: posts the file message.
pub async fn confirm(
    State(s): State<Arc<Shared>>,
    Path((rid, file_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    let unknown: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().filter(|k| !CONFIRM_KEYS.contains(&k.as_str())).collect())
        .unwrap_or_default();
    if !body.is_object() || !unknown.is_empty() {
        let errors = json!([{ "message": "must NOT have additional properties", "params": { "additionalProperties": unknown } }]);
        return Err(s.record_violation(
            "POST rooms.mediaConfirm",
            "rest-typings type of rooms.mediaConfirm (checked by the double)",
            &body,
            errors,
        ));
    }
    let mut request = super::chat::send_request(&body);
    request.id = None;
    request.rid = rid;
    let description = text(&body, "description").map(str::to_owned);
    let message = s.with(|ws| ws.confirm_upload(&me.id, &file_id, request, description))?;
    Ok(success(json!({ "message": message.render(Format::Rest) })))
}

/// `GET /file-upload/{fileId}/{name}`, authorised by headers or the `rc_uid`/`rc_token` cookies.
pub async fn download(
    State(s): State<Arc<Shared>>,
    Path((file_id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    let Ok(me) = s.authenticate(&headers) else { return StatusCode::FORBIDDEN.into_response() };
    let found = s.with(|ws| {
        let upload = ws.upload(&file_id)?;
        let readable = upload.user_id == me.id
            || ws.is_member(&upload.rid, &me.id)
            || ws.room(&upload.rid).is_some_and(|r| r.kind == RoomType::Channel);
        readable.then(|| upload.clone())
    });
    let Some(upload) = found else { return StatusCode::NOT_FOUND.into_response() };
    let disposition = format!("inline; filename*=UTF-8''{}", upload.url().rsplit('/').next().unwrap_or_default());
    let mut response = upload.bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&upload.content_type) {
        headers.insert("content-type", v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert("content-disposition", v);
    }
    response
}

impl Shared {
    /// Records a request the double checked by hand against the route's published type, and refuses it.
    pub fn record_violation(&self, endpoint: &str, validator: &str, body: &Value, errors: Value) -> ApiError {
        let reply = ApiError::invalid_params(&crate::schemas::describe(&errors));
        self.push_violation(crate::schemas::SchemaViolation {
            endpoint: endpoint.into(),
            validator: validator.into(),
            body: body.clone(),
            errors,
        });
        reply
    }
}
