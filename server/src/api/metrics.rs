//! Counters, gauges and histograms of the running server, and `GET /metrics`
//! in the Prometheus (OpenMetrics) text format.
//!
//! One place records everything: handlers call the `record_*` methods on
//! `AppState::metrics`; the `track` layer times every matched route and
//! counts every error answer by its code (each `ApiError` response carries
//! its code in a response extension, so errors are counted wherever they
//! are made). Store-wide gauges (segments, disk use) are read from the
//! engine when scraped, never kept in step by hand.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use auditlog_engine::{DropReport, EngineStats};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::error::{ApiError, ErrorCode};
use super::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 100 µs to about 13 s: a cached first page to a large durable batch.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Routes whose answer time is a query's latency.
const QUERY_ROUTES: &[&str] = &[
    "/v1/events",
    "/v1/events/count",
    "/v1/events/{id}",
    "/v1/events/overview",
    "/v1/pull",
];

pub struct Metrics {
    registry: Registry,
    events_ingested: Counter,
    duplicates: Counter,
    ingest_bytes: Counter,
    ingest_seconds: Histogram,
    query_seconds: HistogramFamily<RouteLabel>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<CodeLabel, Counter>,
    retention_segments: Counter,
    retention_events: Counter,
    retention_bytes: Counter,
    audit_events: Counter,
    segments: Gauge,
    events_stored: Gauge,
    head_events: Gauge,
    disk_bytes: Gauge<u64, AtomicU64>,
    raw_bytes: Gauge<u64, AtomicU64>,
    sealing: Gauge,
    awaiting_compaction: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("auditlog");
        let m = Metrics {
            events_ingested: Counter::default(),
            duplicates: Counter::default(),
            ingest_bytes: Counter::default(),
            ingest_seconds: latency_histogram(),
            query_seconds: Family::new_with_constructor(latency_histogram),
            requests: Family::default(),
            errors: Family::default(),
            retention_segments: Counter::default(),
            retention_events: Counter::default(),
            retention_bytes: Counter::default(),
            audit_events: Counter::default(),
            segments: Gauge::default(),
            events_stored: Gauge::default(),
            head_events: Gauge::default(),
            disk_bytes: Gauge::default(),
            raw_bytes: Gauge::default(),
            sealing: Gauge::default(),
            awaiting_compaction: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_ingested",
            "Events stored by POST /v1/events (duplicates not counted)",
            m.events_ingested.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events sent again with an id already stored (nothing written)",
            m.duplicates.clone(),
        );
        registry.register_with_unit(
            "ingest_request",
            "Request body bytes of accepted ingest requests",
            Unit::Bytes,
            m.ingest_bytes.clone(),
        );
        registry.register_with_unit(
            "ingest_duration",
            "Time to answer POST /v1/events, durable storage included",
            Unit::Seconds,
            m.ingest_seconds.clone(),
        );
        registry.register_with_unit(
            "query_duration",
            "Time to answer a query route, by route",
            Unit::Seconds,
            m.query_seconds.clone(),
        );
        registry.register(
            "http_requests",
            "Answered requests by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "errors",
            "Error answers by error code (the `code` of the JSON error body)",
            m.errors.clone(),
        );
        registry.register(
            "retention_dropped_segments",
            "Segments removed by retention",
            m.retention_segments.clone(),
        );
        registry.register(
            "retention_dropped_events",
            "Events removed by retention",
            m.retention_events.clone(),
        );
        registry.register_with_unit(
            "retention_dropped",
            "Bytes on disk removed by retention",
            Unit::Bytes,
            m.retention_bytes.clone(),
        );
        registry.register(
            "audit_events",
            "Accesses to the log recorded as events (exports, settings changes)",
            m.audit_events.clone(),
        );
        registry.register(
            "segments",
            "Live segments, the head included",
            m.segments.clone(),
        );
        registry.register("events_stored", "Events stored", m.events_stored.clone());
        registry.register(
            "head_events",
            "Events in the open head segment",
            m.head_events.clone(),
        );
        registry.register_with_unit(
            "disk",
            "Bytes of live segment files",
            Unit::Bytes,
            m.disk_bytes.clone(),
        );
        registry.register_with_unit(
            "raw_event",
            "Bytes of event JSON stored, before compression",
            Unit::Bytes,
            m.raw_bytes.clone(),
        );
        registry.register(
            "segments_sealing",
            "Full head segments being sealed in the background",
            m.sealing.clone(),
        );
        registry.register(
            "segments_awaiting_compaction",
            "Sealed segments not yet recompressed (grows while ingest keeps the cores busy)",
            m.awaiting_compaction.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An accepted ingest request: `stored` new events, `duplicates`
    /// already there, `body_bytes` of request body.
    pub fn record_ingest(&self, stored: u64, duplicates: u64, body_bytes: u64) {
        self.events_ingested.inc_by(stored);
        self.duplicates.inc_by(duplicates);
        self.ingest_bytes.inc_by(body_bytes);
    }

    pub fn record_retention(&self, r: &DropReport) {
        self.retention_segments.inc_by(r.segments as u64);
        self.retention_events.inc_by(r.events);
        self.retention_bytes.inc_by(r.bytes);
    }

    pub fn record_audit_event(&self) {
        self.audit_events.inc();
    }

    /// Counts one error answer (done by the `track` layer for every
    /// `ApiError`; call it only for errors that never become a response).
    pub fn record_error(&self, code: &'static str) {
        self.errors.get_or_create(&CodeLabel { code }).inc();
    }

    fn record_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        if method == Method::POST && route == "/v1/events" {
            self.ingest_seconds.observe(seconds);
        } else if method == Method::GET && QUERY_ROUTES.contains(&route) {
            self.query_seconds
                .get_or_create(&RouteLabel {
                    route: route.to_owned(),
                })
                .observe(seconds);
        }
        self.requests
            .get_or_create(&RequestLabels {
                method: method.as_str().to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// The text exposition, with store gauges read from `stats`.
    pub fn encode(&self, stats: &EngineStats) -> Result<String, std::fmt::Error> {
        self.segments.set(stats.segments as i64);
        self.events_stored
            .set(i64::try_from(stats.events).unwrap_or(i64::MAX));
        self.head_events.set(i64::from(stats.head_events));
        self.disk_bytes.set(stats.disk_bytes);
        self.raw_bytes.set(stats.raw_bytes);
        self.sealing
            .set(i64::try_from(stats.sealing_segments).unwrap_or(i64::MAX));
        self.awaiting_compaction
            .set(i64::try_from(stats.awaiting_compaction).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The outermost layer: times each request and counts error answers by
/// code. Routes are named by their pattern (`/v1/events/{id}`), never the
/// raw path, so label sets stay few.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let resp = next.run(req).await;
    if let Some(code) = resp.extensions().get::<ErrorCode>() {
        state.metrics.record_error(code.0);
    }
    let route = route.as_deref().unwrap_or("unmatched");
    state.metrics.record_request(
        &method,
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics` (role read).
pub async fn metrics(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<Response, ApiError> {
    caller.require(super::auth::Role::Read)?;
    let body = state.metrics.encode(&state.engine.stats()).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
