//! Reading the audit log is itself audited: exports, export downloads and
//! settings changes are appended to the log as events, with the calling
//! token as actor. [`record`] is the one way to do it.
//!
//! The event is stored durably before `record` returns, and a failure to
//! store it fails the request: an access that could not be recorded is
//! not granted. This module builds the event; it never decides who may do
//! what (handlers check roles first).

use std::net::SocketAddr;

use auditlog_engine::EventId;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;

/// The environment id every access event carries.
pub const ENVIRONMENT: &str = "auditlog";

/// The action names of access events (docs/API.md lists them).
pub mod action {
    pub const EXPORTED: &str = "audit_log.exported";
    pub const EXPORT_REQUESTED: &str = "audit_log.export_requested";
    pub const EXPORT_DOWNLOADED: &str = "audit_log.export_downloaded";
    pub const RETENTION_UPDATED: &str = "retention.updated";
    pub const SETTINGS_UPDATED: &str = "settings.updated";
}

/// What an access event says about the HTTP request that made it. Take it
/// as an extractor in a handler (it never fails).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string, if any (an export's filter and range).
    pub query: Option<String>,
    /// The peer address, when the server was started with connect info.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestInfo {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// One access to record.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// One of [`action`].
    pub action: &'a str,
    /// A sentence for humans: "exported 1,204 events as CSV".
    pub description: String,
    /// Structured detail (old and new settings, an export's filter), stored
    /// as `metadata`; `Value::Null` for none.
    pub metadata: Value,
}

/// The event [`record`] appends (public for tests and for callers that
/// append in a batch of their own).
pub fn access_event(caller: &Caller, req: &RequestInfo, access: &Access<'_>) -> Value {
    let mut request = Map::new();
    request.insert("method".into(), json!(req.method));
    request.insert("path".into(), json!(req.path));
    if let Some(ip) = &req.ip {
        request.insert("ip".into(), json!(ip));
    }
    if let Some(ua) = &req.user_agent {
        request.insert("user_agent".into(), json!(ua));
    }
    if let Some(q) = &req.query {
        request.insert("query".into(), json!(q));
    }
    let mut event = json!({
        "action_name": access.action,
        "actor": {"type": "token", "id": caller.name, "name": caller.name},
        "role": {"name": caller.role},
        "environment": {"id": ENVIRONMENT},
        "request": request,
        "description": access.description,
    });
    if !access.metadata.is_null() {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("metadata".into(), access.metadata.clone());
        }
    }
    event
}

/// Appends an access event durably and returns its id. Call it after the
/// role check and before answering.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    req: &RequestInfo,
    access: Access<'_>,
) -> Result<EventId, ApiError> {
    let event = access_event(caller, req, &access);
    let engine = state.engine.clone();
    let id = tokio::task::spawn_blocking(move || -> Result<EventId, ApiError> {
        let bytes = serde_json::to_vec(&event).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?;
        let prepared = engine.prepare(&bytes)?;
        let out = engine.append(vec![prepared])?;
        out.first().map(|o| o.id).ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the access event was not stored",
            )
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    state.metrics.record_audit_event();
    tracing::info!(action = access.action, actor = %caller.name, event = %id, "access recorded");
    Ok(id)
}
