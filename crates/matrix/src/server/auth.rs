//! Authentication of the homeserver by its `hs_token`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{AppState, matrix_error};

/// Rejects requests without the right `hs_token` (header or legacy query).
pub(crate) async fn require_hs_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let provided = bearer_token(request.headers()).or_else(|| query_token(request.uri().query()));
    match provided {
        None => matrix_error(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing access token"),
        Some(token) if tokens_match(&token, &state.hs_token) => next.run(request).await,
        Some(_) => matrix_error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "Invalid access token"),
    }
}

/// Constant-time comparison, so response timing does not reveal a prefix.
fn tokens_match(provided: &str, expected: &str) -> bool {
    bool::from(provided.as_bytes().ct_eq(expected.as_bytes()))
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The deprecated `?access_token=` form older homeservers still send.
fn query_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_header_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        assert_eq!(query_token(Some("x=1&access_token=t%2B1")).as_deref(), Some("t+1"));
        assert_eq!(query_token(Some("access_token=")), None);
        assert!(tokens_match("same", "same"));
        assert!(!tokens_match("same", "sam"));
    }
}
