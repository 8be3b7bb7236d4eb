//! The HTTP API: routes, shared state and layers. Handlers translate HTTP
//! to engine calls and back; blocking engine work (syncs, scans) runs on
//! tokio's blocking pool. Layers, outermost first: metrics (`track`),
//! authentication (`auth::authenticate`), the body limit.

pub mod audit;
pub mod auth;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod feed;
pub mod integrity;
pub mod metrics;
pub mod openapi;
pub mod overview;
pub mod settings;

use std::sync::Arc;

use auditlog_engine::Engine;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::{Json, Router};

use crate::config::ServeConfig;
use crate::retention::Retention;
use crate::settings::SettingsError;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub cfg: Arc<ServeConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// The retention period in force (crate::retention).
    pub retention: Arc<Retention>,
    /// Tails' end-of-store watch and stop signal, and the export jobs.
    pub live: Arc<crate::live::Live>,
    /// Recent streamed exports and their signed manifests.
    pub streamed: Arc<crate::export::streamed::StreamedExports>,
    /// Threads that run ingest below the readers' CPU priority.
    pub ingest: Arc<crate::workers::IngestWorkers>,
}

impl AppState {
    /// The state of a server on `engine` with `cfg`; reads the stored
    /// settings of the data directory.
    pub fn new(
        engine: Engine,
        cfg: ServeConfig,
        live: Arc<crate::live::Live>,
    ) -> Result<AppState, SettingsError> {
        let retention = Retention::open(cfg.data.clone(), cfg.retention_days)?;
        Ok(AppState {
            engine,
            cfg: Arc::new(cfg),
            metrics: Arc::new(metrics::Metrics::new()),
            retention: Arc::new(retention),
            live,
            streamed: Arc::default(),
            // Enough appenders to keep two cores busy while a commit
            // waits for its sync (group commit), as the benchmarks use.
            ingest: Arc::new(crate::workers::IngestWorkers::start(4)),
        })
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/whoami", get(auth::whoami))
        .route("/v1/events", get(events::list).post(events::ingest))
        .route("/v1/events/count", get(events::count))
        .route("/v1/events/overview", get(overview::overview))
        .route("/v1/events/{id}", get(events::get_one))
        .route("/v1/events/{id}/proof", get(integrity::proof))
        .route("/v1/checkpoints", get(integrity::checkpoints))
        .route("/v1/public-key", get(integrity::public_key))
        .route(
            "/v1/settings/retention",
            get(settings::get_retention).put(settings::put_retention),
        )
        .route("/v1/export", get(export::export))
        .route("/v1/export/manifests/{id}", get(export::stream_manifest))
        .route("/v1/exports", get(export::list).post(export::submit))
        .route("/v1/exports/{id}", get(export::get_one))
        .route("/v1/exports/{id}/download", get(export::download))
        .route("/v1/exports/{id}/manifest", get(export::manifest))
        .route("/v1/pull", get(feed::pull))
        .route("/v1/tail", get(feed::tail))
        .merge(crate::web::routes())
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}
