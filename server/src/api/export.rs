//! `GET /v1/export` (one streamed download) and its manifest, and
//! `/v1/exports` (background export jobs: submit, list, status, download).
//!
//! A streamed export is produced page by page on the blocking pool and
//! handed to the response body through a bounded channel: when the client
//! reads slowly, the producer waits (backpressure), so memory stays at a
//! few pages whatever the export's size. A failure after the headers went
//! out aborts the response (the client sees a truncated transfer, never a
//! silently short file that looks complete). A streamed export that
//! reaches its end gets a signed manifest, stored before the body ends
//! (`export::streamed`, `GET /v1/export/manifests/{id}`).

use std::io::Read;

use auditlog_engine::integrity::manifest::ExportFacts;
use auditlog_engine::query::Filter;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
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
use crate::export::run::{run_export, ExportSpec, ExportSummary};
use crate::export::streamed;

/// Chunks (pages) waiting for the client, at most.
pub const CHANNEL_CHUNKS: usize = 4;
/// Names the streamed export, for `GET /v1/export/manifests/{id}`.
pub const EXPORT_ID_HEADER: &str = "x-auditlog-export-id";
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
    let id = Ulid::new();
    audit::record(
        &state,
        &caller,
        &req,
        Access {
            action: action::EXPORTED,
            description: format!("exported events as {}", format.as_str()),
            metadata: json!({"format": format, "filter": p.filter, "from": p.from, "to": p.to,
                             "export_id": id.to_string()}),
        },
    )
    .await?;
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let facts = ExportFacts {
        filter: given(&p.filter),
        from: given(&p.from),
        to: given(&p.to),
        format: format.as_str().to_string(),
        count: 0,
        bytes: 0,
        content_sha256: [0; 32],
        complete: false,
        position: 0,
    };
    let spec = ExportSpec {
        format,
        filter,
        range,
    };
    state.streamed.set(id, streamed::Outcome::Streaming);
    let body = signed_stream(&state, id, spec, facts);
    let stamp: String = auditlog_engine::Timestamp::now()
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let link = format!("</v1/export/manifests/{id}>; rel=\"describedby\"");
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
            (
                HeaderName::from_static(EXPORT_ID_HEADER),
                HeaderValue::from_str(&id.to_string()).unwrap_or(HeaderValue::from_static("")),
            ),
            (
                header::LINK,
                HeaderValue::from_str(&link).unwrap_or(HeaderValue::from_static("")),
            ),
        ],
        body,
    )
        .into_response())
}

/// What the producer of a streamed export hands the response body.
enum Piece {
    Chunk(Bytes),
    /// Every chunk was handed over; the export is whole.
    Done(ExportSummary),
    Failed(String),
}

/// Records a streamed export's outcome exactly once: signed when its last
/// byte went out, else (an error, the client going away: the body is
/// dropped) incomplete.
struct Recorder {
    state: AppState,
    id: Ulid,
    recorded: bool,
}

impl Recorder {
    fn record(&mut self, outcome: streamed::Outcome) {
        self.recorded = true;
        self.state.streamed.set(self.id, outcome);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(streamed::Outcome::Incomplete(
                "the transfer stopped before the last byte (the client went away?)".into(),
            ));
        }
    }
}

/// The body of `GET /v1/export`: pages produced on the blocking pool
/// through a bounded channel (backpressure), and after the last one the
/// signed manifest. The manifest is stored before the body ends, so a
/// client that read the whole body finds it at once.
fn signed_stream(state: &AppState, id: Ulid, spec: ExportSpec, facts: ExportFacts) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(CHANNEL_CHUNKS);
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let snap = engine.snapshot();
        let sent = run_export(&snap, &spec, |chunk| {
            tx.blocking_send(Piece::Chunk(Bytes::from(chunk))).is_ok()
        });
        let last = match sent {
            Ok(summary) if summary.complete => Piece::Done(summary),
            // The body was dropped: nobody is listening.
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "export failed after the response started");
                Piece::Failed(e.to_string())
            }
        };
        let _ = tx.blocking_send(last);
    });
    let outcome = Recorder {
        state: state.clone(),
        id,
        recorded: false,
    };
    let stream = futures_util::stream::unfold(
        (rx, outcome, facts),
        |(mut rx, mut outcome, facts)| async move {
            loop {
                match rx.recv().await? {
                    Piece::Chunk(bytes) => return Some((Ok(bytes), (rx, outcome, facts))),
                    Piece::Failed(why) => {
                        outcome.record(streamed::Outcome::Incomplete(format!(
                            "the export failed: {why}"
                        )));
                        let err = std::io::Error::other(why);
                        return Some((Err(err), (rx, outcome, facts)));
                    }
                    Piece::Done(summary) => {
                        let facts = ExportFacts {
                            count: summary.rows,
                            bytes: summary.bytes,
                            content_sha256: summary.content_sha256,
                            complete: summary.complete,
                            position: summary.position,
                            ..facts.clone()
                        };
                        let engine = outcome.state.engine.clone();
                        let signed = tokio::task::spawn_blocking(move || {
                            engine.sign_export_manifest(&facts)
                        })
                        .await;
                        outcome.record(match signed {
                            Ok(Ok(Some(m))) => streamed::Outcome::Signed(m),
                            Ok(Ok(None)) => {
                                streamed::Outcome::Incomplete("this server signs no manifests".into())
                            }
                            Ok(Err(e)) => {
                                tracing::error!(error = %e, "could not sign a streamed export's manifest");
                                streamed::Outcome::Incomplete(format!("signing its manifest failed: {e}"))
                            }
                            Err(e) => streamed::Outcome::Incomplete(format!(
                                "signing its manifest failed: {e}"
                            )),
                        });
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}

/// `GET /v1/export/manifests/{id}`: the signed manifest of a streamed
/// export whose last byte was sent (docs/INTEGRITY.md §6).
pub async fn stream_manifest(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let ulid = Ulid::from_string(&id).map_err(|_| {
        ApiError::bad_request("bad_id", format!("{id:?} is not an export id (a ULID)"))
    })?;
    match state.streamed.get(ulid) {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no streamed export {ulid}: unknown, or forgotten (the server keeps the last {} \
                 for {} hours, in memory)",
                streamed::KEEP_LAST,
                streamed::KEEP_FOR.as_secs() / 3600
            ),
        )),
        Some(streamed::Outcome::Streaming) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            format!("export {ulid} is still streaming; its manifest is signed after the last byte"),
        )),
        Some(streamed::Outcome::Incomplete(why)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "export_incomplete",
            format!("export {ulid} did not complete, so it has no manifest: {why}"),
        )),
        Some(streamed::Outcome::Signed(m)) => Ok(axum::Json(m.to_json()).into_response()),
    }
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
    let body = body.map_err(|e| ApiError::body_rejected(e, state.cfg.max_body_bytes))?;
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
