//! `/v1/public-key`, `/v1/checkpoints` and `/v1/events/{id}/proof`: the
//! evidence a third party needs to check the log (docs/INTEGRITY.md). The
//! engine builds and signs everything; this module only maps it to HTTP.

use auditlog_engine::integrity::chain::hex;
use auditlog_engine::integrity::key::public_key_pem;
use auditlog_engine::EventId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::blocking;
use super::extract::{ApiPath, ApiQuery};
use super::AppState;

/// Most checkpoints one answer carries.
const MAX_CHECKPOINTS: usize = 10_000;

fn no_key() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this server runs without a signing key",
    )
}

pub async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Read)?;
    let key = state.engine.public_key().ok_or_else(no_key)?;
    Ok(Json(json!({
        "algorithm": "ed25519",
        "public_key": hex(&key),
        "pem": public_key_pem(&key),
        "store_id": hex(&state.engine.store_id()),
    })))
}

#[derive(Debug, Deserialize)]
pub struct CheckpointParams {
    /// Only checkpoints with a larger sequence number.
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<CheckpointParams>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Read)?;
    let key = state.engine.public_key().ok_or_else(no_key)?;
    let limit = p.limit.unwrap_or(1000).clamp(1, MAX_CHECKPOINTS);
    let engine = state.engine.clone();
    let after = p.after;
    let page = blocking(move || Ok(engine.checkpoints_page(after, limit)?)).await?;
    let list: Vec<Value> = page.iter().map(|c| c.to_json()).collect();
    Ok(Json(json!({
        "public_key": hex(&key),
        "checkpoints": list,
    })))
}

pub async fn proof(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Read)?;
    let id = EventId::parse(&id)
        .ok_or_else(|| ApiError::bad_request("bad_id", format!("{id:?} is not a ULID")))?;
    state.engine.public_key().ok_or_else(no_key)?;
    let engine = state.engine.clone();
    match blocking(move || Ok(engine.prove(id)?)).await? {
        Some(p) => Ok(Json(p.to_json())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no event with id {id}"),
        )),
    }
}
