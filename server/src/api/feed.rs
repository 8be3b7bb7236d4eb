//! `GET /v1/pull` (pages in arrival order for pollers) and `GET /v1/tail`
//! (the same feed, live, as server-sent events).
//!
//! Both read the engine's arrival-order feed (`query::feed`): positions are
//! storage positions, so resuming from a returned cursor (or an SSE event's
//! id) never misses or repeats an event, late back-dated ones included.
//! When a cursor points into data retention dropped, reading resumes at the
//! next stored event and the answer carries a `gap` (pull: a field; tail:
//! an `event: gap` message).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use auditlog_engine::query::{Feed, FeedGap, FeedPage, FeedPosition};
use auditlog_engine::Engine;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{blocking, parse_filter_param, parse_limit};
use super::extract::ApiQuery;
use super::AppState;

/// Events one tail read takes from the feed before sending them.
const TAIL_BATCH: usize = 500;
/// Comment lines sent on an idle tail, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn feed_for(filter: &Option<String>) -> Result<Feed, ApiError> {
    let filter = parse_filter_param(filter)?;
    Ok(Feed::new(filter.as_ref())?)
}

fn decode_cursor(c: Option<&str>) -> Result<Option<FeedPosition>, ApiError> {
    match c.map(str::trim) {
        None | Some("") => Ok(None),
        Some(c) => Ok(Some(FeedPosition::decode(c)?)),
    }
}

fn gap_json(gap: &FeedGap) -> Value {
    let message = match gap.reason {
        auditlog_engine::query::GapReason::SegmentGone => {
            "the cursor's events are no longer stored (retention or damage set them aside); \
             reading resumed at the next stored event: events may have been missed"
        }
        auditlog_engine::query::GapReason::SegmentsMissing => {
            "stored data after the cursor was dropped (retention or damage) before it was read; \
             reading resumed at the next stored event: events may have been missed"
        }
        auditlog_engine::query::GapReason::BeyondEnd => {
            "the cursor lies past the stored events (events lost to a power failure under a \
             relaxed sync policy, or a cursor from another store); reading resumed at the end"
        }
    };
    json!({
        "reason": gap.reason.as_str(),
        "message": message,
        "from": gap.from.encode(),
        "resumed_at": gap.resumed_at.map(|p| p.encode()),
    })
}

#[derive(Debug, Deserialize)]
pub struct PullParams {
    cursor: Option<String>,
    filter: Option<String>,
    limit: Option<String>,
}

pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PullParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::Read)?;
    let feed = feed_for(&p.filter)?;
    let from = decode_cursor(p.cursor.as_deref())?.unwrap_or(FeedPosition::START);
    let limit = parse_limit(&p.limit)?;
    let engine = state.engine.clone();
    let page = blocking(move || Ok(feed.read(&engine.snapshot(), from, limit)?)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        pull_body(&page),
    )
        .into_response())
}

/// `{"events":[...],"next_cursor":"...","gap":null|{...}}`, with the
/// events' stored bytes as they are.
fn pull_body(page: &FeedPage) -> Vec<u8> {
    let size: usize = page.events.iter().map(|e| e.event.json.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(b"{\"events\":[");
    for (i, e) in page.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&e.event.json);
    }
    out.extend_from_slice(b"],\"next_cursor\":\"");
    out.extend_from_slice(page.next.encode().as_bytes());
    out.extend_from_slice(b"\",\"gap\":");
    match &page.gap {
        Some(g) => out.extend_from_slice(gap_json(g).to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

#[derive(Debug, Deserialize)]
pub struct TailParams {
    cursor: Option<String>,
    filter: Option<String>,
}

/// `event: checkpoint` with the checkpoint's JSON (as in GET
/// /v1/checkpoints); no `id:`, so the resume cursor stays the last event's.
fn checkpoint_event(c: &auditlog_engine::integrity::checkpoint::Checkpoint) -> Event {
    Event::default()
        .event("checkpoint")
        .data(c.to_json().to_string())
}

struct Tail {
    engine: Engine,
    feed: Arc<Feed>,
    pos: FeedPosition,
    ready: VecDeque<Event>,
    end: watch::Receiver<FeedPosition>,
    stop: watch::Receiver<bool>,
    /// Signed checkpoints are sent as `event: checkpoint` as they are made
    /// (docs/INTEGRITY.md): the newest one sent so far, and the watch that
    /// wakes a waiting tail when a new one is signed.
    checkpoint_seen: Option<u64>,
    checkpoints: watch::Receiver<Option<u64>>,
    failed: bool,
}

impl Tail {
    /// The next message, or `None` when the tail ends (shutdown, or after
    /// an error message).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.failed {
                return None;
            }
            // Seen before reading: a commit that lands during the read
            // wakes the wait below.
            self.end.borrow_and_update();
            self.checkpoints.borrow_and_update();
            for c in self.engine.checkpoints_after(self.checkpoint_seen) {
                self.checkpoint_seen = Some(c.sequence);
                self.ready.push_back(checkpoint_event(&c));
            }
            let (engine, feed, pos) = (self.engine.clone(), self.feed.clone(), self.pos);
            let read =
                tokio::task::spawn_blocking(move || feed.read(&engine.snapshot(), pos, TAIL_BATCH))
                    .await;
            let page = match read {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    self.fail(ApiError::from(e).message);
                    continue;
                }
                Err(e) => {
                    self.fail(e.to_string());
                    continue;
                }
            };
            if let Some(gap) = &page.gap {
                let mut event = Event::default()
                    .event("gap")
                    .data(gap_json(gap).to_string());
                if let Some(at) = gap.resumed_at {
                    event = event.id(at.encode());
                }
                self.ready.push_back(event);
            }
            for e in &page.events {
                let data = String::from_utf8_lossy(&e.event.json);
                self.ready.push_back(
                    Event::default()
                        .id(e.next.encode())
                        .event("event")
                        .data(data),
                );
            }
            self.pos = page.next;
            if self.ready.is_empty() && page.at_end {
                tokio::select! {
                    _ = self.end.changed() => {}
                    _ = self.checkpoints.changed() => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
    }

    fn fail(&mut self, message: String) {
        tracing::warn!(error = %message, "tail ended by an error");
        self.ready.push_back(
            Event::default()
                .event("error")
                .data(json!({"message": message}).to_string()),
        );
        self.failed = true;
    }
}

pub async fn tail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<TailParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Role::Read)?;
    let feed = feed_for(&p.filter)?;
    // A reconnecting client's Last-Event-ID is newer than the cursor it
    // started with.
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("bad_cursor", "Last-Event-ID is not text"))
        })
        .transpose()?;
    let resume = match decode_cursor(header_id)? {
        Some(p) => Some(p),
        None => decode_cursor(p.cursor.as_deref())?,
    };
    // Without a cursor a tail shows what arrives from now on.
    let pos = resume.unwrap_or_else(|| state.engine.feed_end());
    // A tail starts with the newest checkpoint, so a client holds one
    // from the start.
    let mut ready = VecDeque::new();
    let latest = state.engine.latest_checkpoint();
    if let Some(c) = &latest {
        ready.push_back(checkpoint_event(c));
    }
    let tail = Tail {
        engine: state.engine.clone(),
        feed: Arc::new(feed),
        pos,
        ready,
        end: state.live.end_watch(),
        stop: state.live.stop_watch(),
        checkpoint_seen: latest.map(|c| c.sequence),
        checkpoints: state.live.checkpoint_watch(),
        failed: false,
    };
    let stream =
        futures_util::stream::unfold(
            tail,
            |mut t| async move { t.next().await.map(|e| (Ok(e), t)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
