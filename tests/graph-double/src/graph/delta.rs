//! `GET /teams/{t}/channels/{c}/messages/delta`: the channel's root messages
//! changed since a `$deltatoken`, paged with `@odata.nextLink` and ending in
//! an `@odata.deltaLink`.
//!
//! Tokens are change-sequence cursors. A round fixes its upper bound on the
//! first page, so a message that changes while a client pages moves past the
//! bound and shows up in the next round: nothing is lost, and within a round
//! each message appears once, in its newest state.

use super::listing::{link, top};
use super::{CHANNEL_READ_ROLES, CHANNEL_READ_SCOPES, Params, conversation};
use crate::error::GraphError;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn bad_token() -> GraphError {
    GraphError::bad_request("The delta or skip token is invalid.")
}

/// `(after, upto)` from `$skiptoken=after_upto` or `$deltatoken=after`.
fn cursor(q: &HashMap<String, String>, now: u64) -> Result<(u64, u64), GraphError> {
    if let Some(skip) = q.get("$skiptoken") {
        let (after, upto) = skip.split_once('_').ok_or_else(bad_token)?;
        return Ok((after.parse().map_err(|_| bad_token())?, upto.parse().map_err(|_| bad_token())?));
    }
    let after = q.get("$deltatoken").map(|d| d.parse::<u64>().map_err(|_| bad_token())).transpose()?.unwrap_or(0);
    if after > now {
        return Err(bad_token());
    }
    Ok((after, now))
}

/// The delta route.
pub async fn channel(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let top = top(&q)?;
    let since = match q.get("$filter") {
        Some(f) if !q.contains_key("$deltatoken") && !q.contains_key("$skiptoken") => {
            let time = f.strip_prefix("lastModifiedDateTime gt ").and_then(crate::time::parse);
            Some(time.ok_or_else(|| {
                GraphError::bad_request(
                    "Delta supports only $filter=lastModifiedDateTime gt <time> on the first request.",
                )
            })?)
        }
        _ => None,
    };
    let (rows, next) = s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        caller.require(CHANNEL_READ_ROLES, CHANNEL_READ_SCOPES)?;
        let (after, upto) = cursor(&q, w.seq)?;
        let mut changed: Vec<_> = w
            .conversation(&c)
            .iter()
            .filter(|m| m.reply_to.is_none() && m.seq > after && m.seq <= upto)
            .filter(|m| since.is_none_or(|t| m.last_modified > t))
            .collect();
        changed.sort_by_key(|m| m.seq);
        let more = changed.len() > top;
        changed.truncate(top);
        let last = changed.last().map_or(after, |m| m.seq);
        let rows: Vec<Value> = changed.into_iter().map(|m| crate::render::message(&base, &c, m)).collect();
        Ok::<_, GraphError>((rows, if more { Err(format!("{last}_{upto}")) } else { Ok(upto.to_string()) }))
    })?;
    let mut body = json!({ "@odata.context": format!("{base}/$metadata#Collection(chatMessage)"), "value": rows });
    match next {
        Err(skip) => body["@odata.nextLink"] = json!(link(&base, &uri, &q, "$skiptoken", &skip)),
        Ok(delta) => body["@odata.deltaLink"] = json!(link(&base, &uri, &q, "$deltatoken", &delta)),
    }
    Ok(Json(body))
}
