//! One error shape for every response: `{"error": {"code", "message", ...}}`,
//! with the right status. A client mistake is always a 4xx.

use auditlog_engine::Error as EngineError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Set on every error response, so the metrics layer can count errors by
/// code wherever they were made.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra machine-readable detail (a filter column, failing lines).
    pub detail: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A request body that could not be read: 413 past the body limit,
    /// else 400. One mapping for every handler that takes a body.
    pub fn body_rejected(e: axum::extract::rejection::BytesRejection, limit: usize) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is over the limit of {limit} bytes"),
            )
        } else {
            ApiError::bad_request("bad_body", e.body_text())
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let (Some(obj), Some(Value::Object(extra))) = (body.as_object_mut(), self.detail) {
            obj.extend(extra);
        }
        let mut resp = (self.status, Json(json!({ "error": body }))).into_response();
        resp.extensions_mut().insert(ErrorCode(self.code));
        resp
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::InvalidEvent(inner) => {
                ApiError::bad_request("invalid_event", e.to_string())
                    .with_detail(json!({"field": inner.field()}))
            }
            EngineError::InvalidEventInBatch { index, source } => {
                ApiError::bad_request("invalid_event", e.to_string())
                    .with_detail(json!({"line": index + 1, "field": source.field()}))
            }
            EngineError::BatchTooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                e.to_string(),
            ),
            EngineError::BadFilter(f) => ApiError::bad_request("bad_filter", e.to_string())
                .with_detail(json!({"column": f.column})),
            EngineError::BadCursor(_) => ApiError::bad_request("bad_cursor", e.to_string()),
            EngineError::BadQuery(_) => ApiError::bad_request("bad_query", e.to_string()),
            EngineError::StorageFull(_) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the disk is full; the events were not stored",
            ),
            EngineError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            EngineError::Corrupt { .. } => {
                tracing::error!(error = %e, "damaged data met while serving");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "damaged_data",
                    format!(
                        "{e}; nothing damaged was served. \
                         Run `auditlog verify` to set the damaged segment aside"
                    ),
                )
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("storage error, nothing was acknowledged: {e}"),
                )
            }
        }
    }
}
