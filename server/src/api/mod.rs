//! The HTTP API: routes, shared state, and the background retention task.
//! Handlers translate HTTP to engine calls and back; blocking engine work
//! (syncs, scans) runs on tokio's blocking pool.

pub mod auth;
pub mod error;
pub mod events;

use std::sync::Arc;
use std::time::Duration;

use auditlog_engine::{Engine, Timestamp};
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};

use crate::config::ServeConfig;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub cfg: Arc<ServeConfig>,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/events", get(events::list).post(events::ingest))
        .route("/v1/events/count", get(events::count))
        .route("/v1/events/{id}", get(events::get_one))
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Drops segments older than the retention period, now and every hour.
pub async fn retention_loop(engine: Engine, days: u32) {
    let period = i64::from(days) * 86_400 * 1_000_000;
    loop {
        let engine2 = engine.clone();
        let cutoff = Timestamp(Timestamp::now().as_micros().saturating_sub(period));
        match tokio::task::spawn_blocking(move || engine2.drop_before(cutoff)).await {
            Ok(Ok(r)) if r.segments > 0 => tracing::info!(
                segments = r.segments,
                events = r.events,
                bytes = r.bytes,
                "retention"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
            Err(e) => tracing::error!(error = %e, "retention task failed"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
