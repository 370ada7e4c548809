//! Message lists: a channel's root messages, a root's replies and a chat's
//! messages (`$top`, `$skiptoken` paging, and for chats `$orderby`/`$filter`).

use super::{Params, conversation, require_read};
use crate::error::GraphError;
use crate::model::MessageRecord;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

type Q = Query<HashMap<String, String>>;

/// `$top` (default 20, Graph's maximum 50 for message lists).
pub fn top(q: &HashMap<String, String>) -> Result<usize, GraphError> {
    match q.get("$top") {
        None => Ok(20),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=50).contains(&n) => Ok(n),
            _ => Err(GraphError::bad_request(format!(
                "Invalid page size specified: '{v}'. Must be between 1 and 50 inclusive."
            ))),
        },
    }
}

/// The URL of the next page: the same request with `$skiptoken` replaced.
pub fn link(base: &str, uri: &Uri, q: &HashMap<String, String>, key: &str, token: &str) -> String {
    let path = uri.path().strip_prefix("/v1.0").unwrap_or(uri.path());
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).expect("the double's own URL parses");
    {
        let mut pairs = url.query_pairs_mut();
        let mut keys: Vec<&String> =
            q.keys().filter(|k| !k.starts_with("$skiptoken") && !k.starts_with("$deltatoken")).collect();
        keys.sort();
        for k in keys {
            pairs.append_pair(k, &q[k]);
        }
        pairs.append_pair(key, token);
    }
    url.to_string()
}

/// One page of `items` starting at `$skiptoken`, with the next link.
fn page(s: &Shared, uri: &Uri, q: &HashMap<String, String>, items: Vec<Value>) -> Result<Value, GraphError> {
    let top = top(q)?;
    let skip = match q.get("$skiptoken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| GraphError::bad_request("Invalid skip token."))?,
    };
    let rest: Vec<Value> = items.into_iter().skip(skip).collect();
    let more = rest.len() > top;
    let value: Vec<Value> = rest.into_iter().take(top).collect();
    let next = more.then(|| link(&s.graph_base(), uri, q, "$skiptoken", &(skip + top).to_string()));
    Ok(crate::render::collection("#Collection(chatMessage)", value, next))
}

/// `GET /teams/{t}/channels/{c}/messages`: root messages, newest first (`$expand=replies` supported).
pub async fn channel(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    uri: Uri,
    Query(q): Q,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let items = s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let all = w.conversation(&c);
        let expand = q.get("$expand").is_some_and(|e| e == "replies");
        let items = all.iter().rev().filter(|m| m.reply_to.is_none()).map(|m| {
            let mut json = crate::render::message(&base, &c, m);
            if expand {
                let replies = all.iter().filter(|r| r.reply_to.as_deref() == Some(&m.id));
                json["replies"] = replies.map(|r| crate::render::message(&base, &c, r)).collect();
            }
            json
        });
        Ok::<_, GraphError>(items.collect())
    })?;
    page(&s, &uri, &q, items).map(Json)
}

/// `GET /teams/{t}/channels/{c}/messages/{id}/replies`: replies, newest first.
pub async fn replies(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    uri: Uri,
    Query(q): Q,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let items = s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let root = w.message(&c, &p["id"])?;
        let replies = w.conversation(&c).iter().rev().filter(|m| m.reply_to.as_deref() == Some(&root.id));
        Ok::<_, GraphError>(replies.map(|m| crate::render::message(&base, &c, m)).collect())
    })?;
    page(&s, &uri, &q, items).map(Json)
}

/// Which timestamp a chat listing orders and filters by.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Created,
    Modified,
}

impl Field {
    fn of(self, m: &MessageRecord) -> DateTime<Utc> {
        match self {
            Field::Created => m.created,
            Field::Modified => m.last_modified,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "createdDateTime" => Some(Field::Created),
            "lastModifiedDateTime" => Some(Field::Modified),
            _ => None,
        }
    }
}

/// The chat listing's documented `$filter` forms: `<field> gt|lt <time>` clauses joined by `and`, on the `$orderby` field.
fn chat_filter(filter: &str, field: Field) -> Result<Vec<(bool, DateTime<Utc>)>, GraphError> {
    let bad = || {
        GraphError::bad_request(format!(
            "The $filter '{filter}' is not supported: use lastModifiedDateTime gt/lt with $orderby=lastModifiedDateTime desc, or createdDateTime lt with $orderby=createdDateTime desc."
        ))
    };
    filter
        .split(" and ")
        .map(|clause| {
            let parts: Vec<&str> = clause.split_whitespace().collect();
            let [name, op, time] = parts[..] else { return Err(bad()) };
            if Field::parse(name) != Some(field) {
                return Err(bad());
            }
            let time = crate::time::parse(time).ok_or_else(bad)?;
            match op {
                "gt" => Ok((true, time)),
                "lt" => Ok((false, time)),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// `GET /chats/{id}/messages`: all messages, newest first by `$orderby` (`lastModifiedDateTime desc` or `createdDateTime desc`).
pub async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
    uri: Uri,
    Query(q): Q,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let base = s.graph_base();
    let field = match q.get("$orderby").map(String::as_str) {
        None | Some("createdDateTime desc") => Field::Created,
        Some("lastModifiedDateTime desc") => Field::Modified,
        Some(other) => {
            return Err(GraphError::bad_request(format!(
                "The $orderby '{other}' is not supported: use lastModifiedDateTime desc or createdDateTime desc."
            )));
        }
    };
    let filter = q.get("$filter").map(|f| chat_filter(f, field)).transpose()?.unwrap_or_default();
    let items = s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        require_read(&caller, &c)?;
        let mut ms: Vec<&MessageRecord> = w
            .conversation(&c)
            .iter()
            .filter(|m| filter.iter().all(|(gt, t)| if *gt { field.of(m) > *t } else { field.of(m) < *t }))
            .collect();
        ms.sort_by_key(|m| std::cmp::Reverse((field.of(m), m.id.parse::<u64>().unwrap_or_default())));
        Ok::<_, GraphError>(ms.into_iter().map(|m| crate::render::message(&base, &c, m)).collect())
    })?;
    page(&s, &uri, &q, items).map(Json)
}
