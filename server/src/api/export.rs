//! `GET /v1/export` (one streamed download) and `/v1/exports` (background
//! export jobs: submit, list, status, download).
//!
//! A streamed export is produced page by page on the blocking pool and
//! handed to the response body through a bounded channel: when the client
//! reads slowly, the producer waits (backpressure), so memory stays at a
//! few pages whatever the export's size. A failure after the headers went
//! out aborts the response (the client sees a truncated transfer, never a
//! silently short file that looks complete).

use std::io::Read;

use auditlog_engine::query::Filter;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use ulid::Ulid;

use super::audit::{self, action, Access, RequestInfo};
use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{blocking, parse_filter_param, parse_range};
use super::extract::{ApiPath, ApiQuery};
use super::AppState;
use crate::export::format::ExportFormat;
use crate::export::jobs::{Job, JobError, JobStatus, NewJob, MAX_NAME_BYTES};
use crate::export::run::{run_export, ExportSpec};

/// Chunks (pages) waiting for the client, at most.
pub const CHANNEL_CHUNKS: usize = 4;
/// Bytes per chunk when sending a finished job's file.
const FILE_CHUNK: usize = 64 << 10;

type Chunk = Result<Bytes, std::io::Error>;

/// A response body fed by a blocking producer through a bounded channel.
fn channel_body() -> (tokio::sync::mpsc::Sender<Chunk>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (tx, Body::from_stream(stream))
}

fn parse_format(v: Option<&str>) -> Result<ExportFormat, ApiError> {
    match v {
        None | Some("") => Ok(ExportFormat::Ndjson),
        Some(s) => ExportFormat::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "bad_format",
                format!("`format` must be csv, ndjson or json, not {s:?}"),
            )
        }),
    }
}

/// Parses and compiles the filter, so a bad one is a 400 before any
/// response bytes are sent.
fn checked_filter(filter: &Option<String>) -> Result<Option<Filter>, ApiError> {
    let parsed = parse_filter_param(filter)?;
    if let Some(f) = &parsed {
        f.compile()
            .map_err(|e| ApiError::from(auditlog_engine::Error::BadFilter(e)))?;
    }
    Ok(parsed)
}

/// `attachment; filename="..."` with only characters safe in any client:
/// the name never reaches a path, but it does reach users' disks.
fn disposition(name: &str, format: ExportFormat) -> HeaderValue {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        safe = "auditlog-export".into();
    }
    let value = format!("attachment; filename=\"{safe}.{}\"", format.extension());
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("attachment"))
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    req: RequestInfo,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let format = parse_format(p.format.as_deref())?;
    let filter = checked_filter(&p.filter)?;
    let range = parse_range(&p.from, &p.to)?;
    // Recorded before the first byte: the row count is not known yet, and
    // an export that could not be recorded is not served.
    audit::record(
        &state,
        &caller,
        &req,
        Access {
            action: action::EXPORTED,
            description: format!("exported events as {}", format.as_str()),
            metadata: json!({"format": format, "filter": p.filter, "from": p.from, "to": p.to}),
        },
    )
    .await?;
    let (tx, body) = channel_body();
    let engine = state.engine.clone();
    let spec = ExportSpec {
        format,
        filter,
        range,
    };
    tokio::task::spawn_blocking(move || {
        let snap = engine.snapshot();
        let sent = run_export(&snap, &spec, |chunk| {
            tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
        });
        if let Err(e) = sent {
            tracing::error!(error = %e, "export failed after the response started");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stamp: String = auditlog_engine::Timestamp::now()
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                disposition(&format!("auditlog-export-{stamp}"), format),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJobBody {
    name: Option<String>,
    format: Option<String>,
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn job_json(job: &Job) -> axum::Json<Job> {
    axum::Json(job.clone())
}

pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    req_info: RequestInfo,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let body = body.map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
    let req: NewJobBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("bad_json", format!("body is not an export request: {e}"))
    })?;
    let format = parse_format(req.format.as_deref())?;
    checked_filter(&req.filter)?;
    parse_range(&req.from, &req.to)?;
    let name = req.name.unwrap_or_default().trim().to_string();
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("`name` must be at most {MAX_NAME_BYTES} bytes without control characters"),
        ));
    }
    let new = NewJob {
        name: if name.is_empty() {
            "export".into()
        } else {
            name
        },
        format,
        filter: req.filter.filter(|f| !f.trim().is_empty()),
        from: req.from.filter(|f| !f.trim().is_empty()),
        to: req.to.filter(|f| !f.trim().is_empty()),
    };
    let jobs = state.live.jobs.clone();
    let who = caller.name.clone();
    let job = blocking(move || {
        jobs.submit(new, &who).map_err(|e| match e {
            JobError::Busy => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_exports",
                e.to_string(),
            ),
            JobError::Io(_) => {
                tracing::error!(error = %e, "could not store an export job");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    e.to_string(),
                )
            }
        })
    })
    .await?;
    audit::record(
        &state,
        &caller,
        &req_info,
        Access {
            action: action::EXPORT_REQUESTED,
            description: format!("requested export {} ({:?})", job.id, job.name),
            metadata: json!({"export_id": job.id, "name": job.name, "format": job.format,
                             "filter": job.filter, "from": job.from, "to": job.to}),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, job_json(&job)).into_response())
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    Ok(axum::Json(json!({"exports": state.live.jobs.list()})).into_response())
}

fn find(state: &AppState, id: &str) -> Result<(Ulid, Job), ApiError> {
    // Only a well-formed ULID ever becomes part of a path.
    let ulid = Ulid::from_string(id).map_err(|_| {
        ApiError::bad_request("bad_id", format!("{id:?} is not an export id (a ULID)"))
    })?;
    state
        .live
        .jobs
        .get(ulid)
        .map(|job| (ulid, job))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no export with id {ulid}"),
            )
        })
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let (_, job) = find(&state, &id)?;
    Ok(job_json(&job).into_response())
}

pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    req: RequestInfo,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let (ulid, job) = find(&state, &id)?;
    if job.status != JobStatus::Completed {
        let message = match (&job.status, &job.error) {
            (JobStatus::Failed, Some(e)) => format!("export {ulid} failed: {e}"),
            (status, _) => format!("export {ulid} is {status:?}, not completed yet").to_lowercase(),
        };
        return Err(
            ApiError::new(StatusCode::CONFLICT, "export_not_ready", message)
                .with_detail(json!({"status": job.status})),
        );
    }
    let path = state.live.jobs.file_path(ulid, job.format);
    let expected = job.bytes;
    let file = blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| {
            tracing::error!(file = %path.display(), error = %e, "export file missing");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "export_file_missing",
                format!("the file of export {ulid} cannot be read: {e}"),
            )
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        if len != expected {
            tracing::error!(file = %path.display(), len, expected, "export file has the wrong size");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "damaged_data",
                format!("the file of export {ulid} is {len} bytes, not the {expected} written"),
            ));
        }
        Ok(file)
    })
    .await?;
    audit::record(
        &state,
        &caller,
        &req,
        Access {
            action: action::EXPORT_DOWNLOADED,
            description: format!("downloaded export {ulid} ({} rows)", job.rows),
            metadata: json!({"export_id": job.id, "name": job.name, "format": job.format,
                             "rows": job.rows, "bytes": job.bytes}),
        },
    )
    .await?;
    let (tx, body) = channel_body();
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buf = vec![0u8; FILE_CHUNK];
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(job.format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                disposition(&job.name, job.format),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(expected)),
        ],
        body,
    )
        .into_response())
}

/// `GET /v1/exports/{id}/manifest`: the signed manifest of a completed
/// export (docs/INTEGRITY.md §6): count, SHA-256 of the file's bytes,
/// completeness, and the checkpoint its snapshot is consistent with.
pub async fn manifest(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let (ulid, job) = find(&state, &id)?;
    if job.status != JobStatus::Completed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            format!("export {ulid} is {:?}, not completed", job.status).to_lowercase(),
        )
        .with_detail(json!({"status": job.status})));
    }
    let path = state.live.jobs.manifest_path(ulid, job.format);
    let text = blocking(move || {
        std::fs::read(&path).map_err(|e| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("export {ulid} has no signed manifest ({e})"),
            )
        })
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}
