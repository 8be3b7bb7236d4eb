//! `/v1/events`: ingest (one JSON event, a JSON array, or NDJSON), pages,
//! counts and single events.

use auditlog_engine::query::{parse_filter, Cursor, Filter};
use auditlog_engine::{EventId, Order, PreparedEvent, TimeRange, Timestamp};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::AppState;

/// Failing lines reported in one 400 answer, at most.
const MAX_REPORTED_LINES: usize = 100;

/// Runs blocking engine work (syncs, scans) on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
}

/// Splits a body into numbered event documents: NDJSON lines (numbered by
/// line), or one JSON value (an object, or an array of objects numbered
/// from 1).
fn split_body(body: &[u8], ndjson: bool) -> Result<Vec<(usize, &[u8])>, ApiError> {
    if ndjson {
        return Ok(auditlog_engine::event::ndjson_lines(body).collect());
    }
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(trimmed).map_err(|e| {
                ApiError::bad_request(
                    "bad_json",
                    format!("body is not a JSON array of events: {e}"),
                )
            })?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r.get().as_bytes()))
            .collect());
    }
    Ok(vec![(1, body)])
}

pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Ingest)?;
    let body = body.map_err(|e| ApiError::body_rejected(e, state.cfg.max_body_bytes))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        // Absent means JSON; present but unreadable means nothing we take.
        .map_or(Some("application/json"), |v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // The media type exactly, parameters (charset...) aside: a prefix
    // match took `application/jsonx` for JSON.
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let ndjson = matches!(media, "application/x-ndjson" | "application/jsonl");
    if !ndjson && media != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json (one event or an array) or application/x-ndjson",
        ));
    }
    let engine = state.engine.clone();
    let body_bytes = body.len() as u64;
    let work = move || {
        let docs = split_body(&body, ndjson)?;
        if docs.is_empty() {
            return Err(ApiError::bad_request(
                "empty_batch",
                "the body holds no events",
            ));
        }
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(docs.len());
        let mut failures = Vec::new();
        let mut failed = 0usize;
        let received = Timestamp::now();
        for &(line, doc) in &docs {
            match engine.prepare_received(doc, received) {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    failed += 1;
                    if failures.len() < MAX_REPORTED_LINES {
                        let (field, message) = match &e {
                            auditlog_engine::Error::InvalidEvent(inner) => {
                                (inner.field(), inner.to_string())
                            }
                            other => (None, other.to_string()),
                        };
                        failures.push(json!({"line": line, "field": field, "message": message}));
                    }
                }
            }
        }
        if failed > 0 {
            // All or nothing: one bad line and nothing of the batch is stored.
            let first = failures
                .first()
                .and_then(|f| f["message"].as_str())
                .unwrap_or_default()
                .to_owned();
            let message = if docs.len() == 1 {
                format!("invalid event: {first}")
            } else {
                format!(
                    "{failed} of {} events are invalid; nothing was stored (first: {first})",
                    docs.len()
                )
            };
            return Err(ApiError::bad_request("invalid_event", message)
                .with_detail(json!({"lines": failures, "failed": failed})));
        }
        Ok(engine.append(prepared)?)
    };
    let outcomes = state.ingest.run(work).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the ingest worker failed",
        )
    })??;
    let ids: Vec<String> = outcomes.iter().map(|o| o.id.to_string()).collect();
    let duplicates: Vec<String> = outcomes
        .iter()
        .filter(|o| o.duplicate)
        .map(|o| o.id.to_string())
        .collect();
    state.metrics.record_ingest(
        (ids.len() - duplicates.len()) as u64,
        duplicates.len() as u64,
        body_bytes,
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"ids": ids, "duplicates": duplicates})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub fn parse_time(name: &str, v: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Timestamp::parse_rfc3339(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "bad_time",
                format!("`{name}` is not an RFC 3339 time: {s:?}"),
            )
        }),
    }
}

pub fn parse_range(from: &Option<String>, to: &Option<String>) -> Result<TimeRange, ApiError> {
    let range = TimeRange {
        from: parse_time("from", from)?,
        to: parse_time("to", to)?,
    };
    if let (Some(f), Some(t)) = (range.from, range.to) {
        if f > t {
            return Err(ApiError::bad_request("bad_time", "`from` is after `to`"));
        }
    }
    Ok(range)
}

pub fn parse_filter_param(filter: &Option<String>) -> Result<Option<Filter>, ApiError> {
    match filter.as_deref() {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_filter(s)
            .map(Some)
            .map_err(|e| auditlog_engine::Error::BadFilter(e).into()),
    }
}

fn parse_order(v: &Option<String>) -> Result<Order, ApiError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("newest") | Some("desc") | Some("newest_first") => {
            Ok(Order::NewestFirst)
        }
        Some("oldest") | Some("asc") | Some("oldest_first") => Ok(Order::OldestFirst),
        Some(other) => Err(ApiError::bad_request(
            "bad_query",
            format!("`order` must be newest or oldest, not {other:?}"),
        )),
    }
}

pub(crate) fn parse_limit(v: &Option<String>) -> Result<usize, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(100),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=auditlog_engine::query::exec::MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "`limit` must be a whole number from 1 to {}",
                    auditlog_engine::query::exec::MAX_LIMIT
                ),
            )),
        },
    }
}

/// Writes `{"events":[...],"next_cursor":...}` from stored bytes, without
/// re-encoding the events.
fn page_body(events: &[auditlog_engine::StoredEvent], next: Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 64);
    out.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&e.json);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    match next {
        Some(c) => {
            out.push(b'"');
            out.extend_from_slice(c.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let filter = parse_filter_param(&p.filter)?;
    let range = parse_range(&p.from, &p.to)?;
    let order = parse_order(&p.order)?;
    let limit = parse_limit(&p.limit)?;
    let cursor = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode(c)?),
    };
    let engine = state.engine.clone();
    let page = blocking(move || {
        let query = auditlog_engine::query::Query {
            filter,
            range,
            order,
            limit,
            cursor,
        };
        Ok(engine.snapshot().query(&query)?)
    })
    .await?;
    let body = page_body(&page.events, page.next_cursor.map(|c| c.encode()));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CountParams {
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn count(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<CountParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let filter = parse_filter_param(&p.filter)?;
    let range = parse_range(&p.from, &p.to)?;
    let engine = state.engine.clone();
    let n = blocking(move || Ok(engine.snapshot().count(filter.as_ref(), range)?)).await?;
    Ok(axum::Json(json!({"count": n})).into_response())
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let id = EventId::parse(&id)
        .ok_or_else(|| ApiError::bad_request("bad_id", format!("{id:?} is not a ULID")))?;
    let engine = state.engine.clone();
    match blocking(move || Ok(engine.get(id)?)).await? {
        Some(e) => Ok(([(header::CONTENT_TYPE, "application/json")], e.json).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no event with id {id}"),
        )),
    }
}
