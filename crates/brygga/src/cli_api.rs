//! The CLI's tenant and adapter commands against a running bridge, through
//! its admin API, so they take effect at once (the same code paths as any
//! other API client). Without a running bridge the CLI works on the store.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::Config;

/// The admin API of the running bridge of a config.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// The bridge's API when it answers and the config has the operator token.
    pub async fn connect(config: &Config) -> Option<Self> {
        let token = config.admin.operator_token.clone().filter(|t| !t.is_empty())?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().ok()?;
        let base = format!("http://{}", config.admin.listen);
        let health = http.get(format!("{base}/health")).timeout(Duration::from_secs(1)).send().await.ok()?;
        health.status().is_success().then_some(Self { base, token, http })
    }

    /// Calls the API; an error answer becomes an error naming the API's reason.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context("calling the bridge's admin API")?;
        let status = response.status();
        let text = response.text().await.context("reading the admin API's answer")?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        if !status.is_success() {
            let reason = value["error"].as_str().unwrap_or(text.as_str());
            bail!("the bridge refused ({status}): {reason}");
        }
        Ok(value)
    }

    /// `tenant add`.
    pub async fn add_tenant(&self, id: &str, name: Option<String>, invite: Vec<String>) -> anyhow::Result<()> {
        let mut body = json!({"id": id, "invite": invite});
        if let Some(name) = name {
            body["display_name"] = json!(name);
        }
        self.call(reqwest::Method::POST, "/tenants", Some(body)).await.map(drop)
    }

    /// `tenant list`: id, name and state per line.
    pub async fn tenant_lines(&self) -> anyhow::Result<Vec<String>> {
        let tenants = self.call(reqwest::Method::GET, "/tenants", None).await?;
        Ok(tenants["tenants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let state = if t["suspended"] == true { "suspended" } else { "active" };
                format!(
                    "{}\t{}\t{state}",
                    t["id"].as_str().unwrap_or_default(),
                    t["display_name"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// `tenant remove --yes`.
    pub async fn remove_tenant(&self, id: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("/tenants/{id}?confirm={id}"), None).await.map(drop)
    }

    /// `adapter enable|disable`, configuring it first when a config is given.
    pub async fn set_adapter(&self, tenant: &str, kind: &str, on: bool, config: Option<Value>) -> anyhow::Result<()> {
        let path = format!("/tenants/{tenant}/adapters/{kind}");
        if let Some(config) = config {
            let body = json!({"config": config, "enabled": on});
            return self.call(reqwest::Method::PUT, &path, Some(body)).await.map(drop);
        }
        let action = if on { "enable" } else { "disable" };
        self.call(reqwest::Method::POST, &format!("{path}/{action}"), None).await.map(drop)
    }

    /// `adapter list`: tenant, kind and state per line (the state as the running adapter reports it).
    pub async fn adapter_lines(&self) -> anyhow::Result<Vec<String>> {
        let tenants = self.call(reqwest::Method::GET, "/tenants", None).await?;
        let mut lines = Vec::new();
        for tenant in tenants["tenants"].as_array().into_iter().flatten() {
            let id = tenant["id"].as_str().unwrap_or_default();
            let adapters = self.call(reqwest::Method::GET, &format!("/tenants/{id}/adapters"), None).await?;
            for adapter in adapters["adapters"].as_array().into_iter().flatten() {
                let (kind, status) =
                    (adapter["kind"].as_str().unwrap_or_default(), adapter["status"].as_str().unwrap_or_default());
                lines.push(format!("{id}\t{kind}\t{status}"));
            }
        }
        Ok(lines)
    }
}
