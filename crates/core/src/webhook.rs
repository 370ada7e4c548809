//! HTTP requests a remote platform makes to the bridge (change
//! notifications, validation handshakes), handed to the adapter they are
//! for. The binary serves them at `/_brygga/webhook/{tenant}/{kind}/{path}`.

/// One request to an adapter's webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// The path after `/_brygga/webhook/{tenant}/{kind}/`.
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the server).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// Builds a request.
    pub fn new(method: impl Into<String>, path: impl Into<String>, query: impl Into<String>, body: Vec<u8>) -> Self {
        Self { method: method.into(), path: path.into(), query: query.into(), headers: Vec::new(), body }
    }

    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An adapter's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// Content type of the body.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl WebhookResponse {
    /// A response with a body of `content_type`.
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type: content_type.into(), body: body.into() }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// An empty response with `status`.
    pub fn empty(status: u16) -> Self {
        Self::new(status, "text/plain; charset=utf-8", Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_by_lower_case_name() {
        let mut request = WebhookRequest::new("POST", "notify", "validationToken=x", b"{}".to_vec());
        request.headers.push(("content-type".into(), "application/json".into()));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(WebhookResponse::text(200, "x").content_type, "text/plain; charset=utf-8");
    }
}
