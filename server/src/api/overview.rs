//! `GET /v1/events/overview`: totals, events per time bucket and the top
//! actions and actors for a filter and range (the viewer's overview).
//!
//! The counting is the engine's (`Snapshot::facets`); this handler parses
//! the query, fills the empty buckets between the range's ends so a chart
//! can draw them, and says when the engine's work bound left events out.

use auditlog_engine::query::{FacetLimits, FacetQuery};
use auditlog_engine::Timestamp;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{blocking, parse_filter_param, parse_range};
use super::extract::ApiQuery;
use super::AppState;

/// Most buckets one answer may hold (about 83 days of hours, 27 years of days).
pub const MAX_BUCKETS: i64 = 2000;
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Deserialize)]
pub struct OverviewParams {
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    top: Option<String>,
}

fn parse_bucket(v: &Option<String>) -> Result<i64, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") | Some("hour") => Ok(HOUR),
        Some("day") => Ok(DAY),
        Some(other) => Err(ApiError::bad_request(
            "bad_query",
            format!("`bucket` must be hour or day, not {other:?}"),
        )),
    }
}

fn parse_top(v: &Option<String>) -> Result<usize, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(10),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "bad_query",
                "`top` must be a whole number from 1 to 100",
            )),
        },
    }
}

fn floor_to(t: i64, width: i64) -> i64 {
    t.div_euclid(width).saturating_mul(width)
}

pub async fn overview(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<OverviewParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let filter = parse_filter_param(&p.filter)?;
    let range = parse_range(&p.from, &p.to)?;
    let width = parse_bucket(&p.bucket)?;
    let top = parse_top(&p.top)?;
    // The chart spans the asked range; an open end stops at the data (or,
    // for an open `to`, at the current bucket, so "the last 24 hours" ends now).
    let first = range.from.map(|f| floor_to(f.as_micros(), width));
    let last = range
        .to
        .map(|t| floor_to(t.as_micros().saturating_sub(1), width))
        .or_else(|| first.map(|_| floor_to(Timestamp::now().as_micros(), width)));
    if let (Some(a), Some(b)) = (first, last) {
        if (b - a) / width + 1 > MAX_BUCKETS {
            return Err(ApiError::bad_request(
                "too_many_buckets",
                format!(
                    "the range holds more than {MAX_BUCKETS} buckets; use bucket=day or a shorter range"
                ),
            ));
        }
    }
    let engine = state.engine.clone();
    let facets = blocking(move || {
        let q = FacetQuery {
            filter,
            range,
            bucket_micros: width,
            top,
            actor_names: true,
        };
        Ok(engine.snapshot().facets(&q, FacetLimits::default())?)
    })
    .await?;

    let start = first.or_else(|| facets.buckets.first().map(|(t, _)| t.as_micros()));
    let end = last
        .into_iter()
        .chain(facets.buckets.last().map(|(t, _)| t.as_micros()))
        .max();
    let mut buckets = Vec::new();
    if let (Some(start), Some(end)) = (start, end) {
        if (end - start) / width + 1 > MAX_BUCKETS {
            return Err(ApiError::bad_request(
                "too_many_buckets",
                format!(
                    "the matching events span more than {MAX_BUCKETS} buckets; use bucket=day or a range"
                ),
            ));
        }
        let mut counts = facets.buckets.iter().peekable();
        let mut t = start;
        while t <= end {
            let mut n = 0;
            while let Some((bt, c)) = counts.peek() {
                if bt.as_micros() < t {
                    counts.next();
                } else {
                    if bt.as_micros() == t {
                        n = *c;
                    }
                    break;
                }
            }
            buckets.push(json!({"start": Timestamp(t).to_rfc3339(), "count": n}));
            t += width;
        }
    }
    let complete = facets.complete();
    Ok(axum::Json(json!({
        "total": facets.total,
        "bucket": if width == DAY { "day" } else { "hour" },
        "buckets": buckets,
        "top_actions": facets.top_actions.iter()
            .map(|(v, c)| json!({"value": v, "count": c})).collect::<Vec<_>>(),
        "top_actors": facets.top_actors.iter()
            .map(|a| json!({"type": a.actor_type, "id": a.id, "name": a.name, "count": a.count}))
            .collect::<Vec<_>>(),
        "top_environments": facets.top_environments.iter()
            .map(|(v, c)| json!({"value": v, "count": c})).collect::<Vec<_>>(),
        "complete": complete,
        "decoded_events": facets.decoded_events,
        "skipped_segments": facets.skipped_segments,
        "distinct_capped": facets.distinct_capped,
    }))
    .into_response())
}
