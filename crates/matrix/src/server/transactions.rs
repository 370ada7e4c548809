//! `PUT /_matrix/app/v1/transactions/{txnId}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AppState, matrix_error, ok_empty, parse};

/// The transaction body. Events stay raw so one bad event cannot fail the
/// whole transaction: each is parsed on its own afterwards.
#[derive(Deserialize)]
struct TransactionBody<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    ephemeral: Option<Vec<&'a RawValue>>,
    /// MSC2409's unstable name, still sent by Synapse next to the stable one.
    #[serde(borrow, default, rename = "de.sorunome.msc2409.ephemeral")]
    unstable_ephemeral: Option<Vec<&'a RawValue>>,
}

pub(crate) async fn put_transaction(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(txn_id)) = path else {
        return matrix_error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "Invalid transaction id");
    };
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return matrix_error(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Transaction too large");
        }
        Err(_) => return matrix_error(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Could not read the body"),
    };
    // Syntax first, shape second: the two failures have different errcodes.
    if serde_json::from_slice::<&RawValue>(&bytes).is_err() {
        return matrix_error(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not valid JSON");
    }
    let parsed: TransactionBody<'_> = match serde_json::from_slice(&bytes) {
        Ok(parsed) => parsed,
        Err(_) => return matrix_error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "Body is not a transaction"),
    };

    let raw_events = parsed.events.unwrap_or_default();
    if let Some(e2ee) = &state.e2ee {
        // Room keys first: this transaction's events may need them.
        if let Err(err) = e2ee.receive(&bytes, &raw_events).await {
            tracing::warn!(txn_id = %txn_id, error = %err, "crypto sections not taken; homeserver will retry");
            return matrix_error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Transaction not stored, retry");
        }
    }
    let events: Vec<_> = raw_events.iter().filter_map(|raw| parse::room_event(raw)).collect();
    let ephemeral_raw = merge_ephemeral(parsed.ephemeral, parsed.unstable_ephemeral);
    tracing::debug!(
        txn_id = %txn_id,
        received = raw_events.len(),
        parsed = events.len(),
        ephemeral = ephemeral_raw.len(),
        "appservice transaction"
    );

    let stored = state.handler.transaction(&txn_id, events).await;

    // Ephemeral events go out whatever the outcome above: homeservers do not
    // keep them for a retried transaction, and replays are harmless (typing is
    // diffed against our state, receipts are idempotent).
    let ephemeral = state.ephemeral.parse_all(&ephemeral_raw);
    if !ephemeral.is_empty() {
        state.handler.ephemeral(ephemeral).await;
    }

    match stored {
        Ok(()) => ok_empty(),
        Err(err) => {
            tracing::warn!(txn_id = %txn_id, error = %err, "storing transaction failed; homeserver will retry");
            matrix_error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Transaction not stored, retry")
        }
    }
}

/// Stable and unstable ephemeral arrays, with events present in both only once.
fn merge_ephemeral<'a>(stable: Option<Vec<&'a RawValue>>, unstable: Option<Vec<&'a RawValue>>) -> Vec<&'a RawValue> {
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut out = Vec::new();
    for raw in stable.into_iter().flatten().chain(unstable.into_iter().flatten()) {
        // Compare parsed values (order-insensitive for object keys): the two
        // copies may be serialised differently. Batches are small (<= 100).
        let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) else {
            out.push(raw);
            continue;
        };
        if !seen.contains(&value) {
            seen.push(value);
            out.push(raw);
        }
    }
    out
}
