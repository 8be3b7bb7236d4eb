//! `GET|PUT /v1/settings/retention` (admin): read and change the retention
//! period. A change is recorded as a `retention.updated` event, stored
//! durably, and applied at once (crate::retention).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::{self, Access, RequestInfo};
use super::auth::{Caller, Role};
use super::error::ApiError;
use super::AppState;
use crate::settings::MAX_RETENTION_DAYS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    days: u32,
}

async fn current(state: &AppState) -> Value {
    let stored = state.retention.stored().await;
    json!({
        "days": state.retention.days(),
        "updated_at": stored.as_ref().map(|s| s.updated_at.clone()),
        "updated_by": stored.as_ref().map(|s| s.updated_by.clone()),
    })
}

pub async fn get_retention(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(current(&state).await))
}

pub async fn put_retention(
    State(state): State<AppState>,
    caller: Caller,
    req: RequestInfo,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let body = body.map_err(|e| ApiError::body_rejected(e, state.cfg.max_body_bytes))?;
    // An object only: serde would also take `[30]` for the struct.
    let days = serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
        .and_then(|obj| RetentionBody::deserialize(Value::Object(obj)))
        .map_err(|e| {
            ApiError::bad_request(
                "bad_setting",
                format!(
                    "send {{\"days\": N}} with N a whole number of days \
                     from 0 (keep everything) to {MAX_RETENTION_DAYS}: {e}"
                ),
            )
        })?
        .days;
    if days > MAX_RETENTION_DAYS {
        return Err(ApiError::bad_request(
            "bad_setting",
            format!("`days` must be at most {MAX_RETENTION_DAYS} (0 keeps everything)"),
        ));
    }
    let old = state.retention.days();
    audit::record(
        &state,
        &caller,
        &req,
        Access {
            action: audit::action::RETENTION_UPDATED,
            description: format!(
                "retention period changed from {} to {}",
                describe(old),
                describe(days)
            ),
            metadata: json!({"old_days": old, "new_days": days}),
        },
    )
    .await?;
    state.retention.set(days, &caller.name).await.map_err(|e| {
        tracing::error!(error = %e, "storing the retention setting failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            format!("the setting could not be stored and is unchanged: {e}"),
        )
    })?;
    Ok(Json(current(&state).await))
}

fn describe(days: u32) -> String {
    if days == 0 {
        "keep everything".to_owned()
    } else {
        format!("{days} days")
    }
}
