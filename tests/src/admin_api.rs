//! A client of the bridge's admin API that checks every answer against the
//! OpenAPI document the bridge ships: an undocumented status or a body that
//! does not match its schema fails the test.

use serde_json::{Value, json};

/// The admin API of one bridge.
pub struct AdminApi {
    base: String,
    http: reqwest::Client,
    spec: Value,
}

/// One answer: the status and the JSON body (`null` when empty).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl AdminApi {
    /// A client of the admin listener at `base` (e.g. `http://127.0.0.1:1234`).
    pub fn new(base: &str) -> Self {
        let spec = serde_yaml::from_str(brygga::api::OPENAPI).expect("the OpenAPI document is YAML");
        Self { base: base.trim_end_matches('/').to_owned(), http: reqwest::Client::new(), spec }
    }

    /// Calls `method path` (relative to `/api/v1`) with `token`, raw body
    /// text, and checks the answer against the document.
    pub async fn call_raw(&self, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method.clone(), format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.expect("admin API reachable");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
        self.check(method.as_str(), path, status, &body);
        Answer { status, body }
    }

    /// Calls with a JSON body (or none).
    pub async fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Answer {
        let text = body.map(|b| b.to_string());
        self.call_raw(token, method, path, text.as_deref()).await
    }

    /// Fails unless the document describes this answer and the body matches.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let path = path.split('?').next().unwrap_or_default();
        let template = self.template(path).unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
        let operation = &self.spec["paths"][&template][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {template} is not in the OpenAPI document");
        let mut response = operation["responses"][status.to_string()].clone();
        assert!(response.is_object(), "{method} {path} answered {status}, which the document does not list: {body}");
        if let Some(reference) = response["$ref"].as_str() {
            response = self.resolve(reference);
        }
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            assert!(body.is_null(), "{method} {path} {status} has a body the document does not describe: {body}");
            return;
        }
        let mut root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema]});
        root["components"] = self.spec["components"].clone();
        let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{method} {path} {status} does not match the document: {errors:?}\n{body}");
    }

    fn template(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.spec["paths"].as_object()?;
        paths
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
                parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .cloned()
    }

    fn resolve(&self, reference: &str) -> Value {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        self.spec.pointer(pointer).cloned().unwrap_or_else(|| panic!("dangling reference {reference}"))
    }
}
