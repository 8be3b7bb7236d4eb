//! A small blocking HTTP client for the subcommands that talk to a running
//! server: base URL, bearer token, and the server's JSON errors turned into
//! readable messages.

use anyhow::{anyhow, Context, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

pub struct Server {
    http: Client,
    base: String,
    token: Option<String>,
}

impl Server {
    pub fn new(url: &str, token: Option<String>) -> Result<Server> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "--url must start with http:// or https://, not {url:?}"
            ));
        }
        let http = Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()?;
        Ok(Server { http, base, token })
    }

    fn with_token(&self, r: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> RequestBuilder {
        self.with_token(self.http.get(format!("{}{path}", self.base)).query(query))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.with_token(self.http.post(format!("{}{path}", self.base)))
    }

    /// Sends, and turns a non-2xx answer into its JSON error.
    pub fn send(&self, r: RequestBuilder) -> Result<Response> {
        let resp = r
            .send()
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(ServerError::from_response(resp).into())
    }
}

/// A JSON error answer: status, `error.code`, `error.message` and the rest.
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub error: Value,
}

impl ServerError {
    fn from_response(resp: Response) -> ServerError {
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        let error = body["error"].clone();
        ServerError {
            status,
            code: error["code"].as_str().unwrap_or("http_error").to_owned(),
            message: error["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}")),
            error,
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server answered {} {}: {}",
            self.status, self.code, self.message
        )?;
        if self.status == 401 {
            write!(f, " (pass --token or set AUDITLOG_TOKEN)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}
