//! The real `auditlog serve` under everything at once, for a bounded time:
//! 2 ingesting clients (NDJSON batches), a pager walking `GET /v1/events`
//! with cursors, a `GET /v1/tail` reader, a `GET /v1/pull` poller,
//! repeated streamed exports and `PUT /v1/settings/retention` toggles
//! (0 <-> 10 years, so nothing is dropped). Checked:
//! - no request hangs more than 30 s (a watchdog kills the server and
//!   fails the test), and tail and pull see the last event within
//!   [`SENTINEL_WAIT`] of posting it: the test ends, pass or fail,
//!   never hangs;
//! - every ingest is answered 201;
//! - a paging run never repeats an event and every page is sorted;
//! - tail and pull never repeat an event, and both see every acknowledged
//!   event (pull: exactly once);
//! - each export is whole JSON lines with no duplicate id, every id one
//!   that was acknowledged or an access event;
//! - at the end the count is the acknowledged events plus the access
//!   events, and a full listing holds every acknowledged id exactly once.
//!
//! CI runs ~8 s. Longer:
//! `AUDITLOG_STRESS_SECS=300 cargo test -p auditlog-server --test stress_http -- --nocapture`

mod harness;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harness::{all_events, count, Server};
use reqwest::blocking::Client;
use serde_json::Value;

const HANG: Duration = Duration::from_secs(30);
/// How long tail and pull may take to deliver the last event once it is
/// acknowledged. Tail lags a commit by a poll (100 ms), pull by its own
/// 20 ms wait; this is generous for a loaded CI machine. A tail kept open by
/// keep-alive comments would otherwise wait for ever on an event it missed.
const SENTINEL_WAIT: Duration = Duration::from_secs(60);
/// The last event's actor id. Tail and pull know the last event by its
/// content, not by the id its POST returns: they may well receive it before
/// the poster has read that answer (a race that once hung CI for an hour).
const SENTINEL: &str = "sentinel";
const ACCESS_FILTER: &str = "environment.id = 'auditlog'";

/// What each worker is waiting for, and since when: the watchdog's view.
#[derive(Clone, Default)]
struct Watch(Arc<Mutex<HashMap<&'static str, (Instant, String)>>>);

impl Watch {
    /// Runs `f` as worker `who`'s request `what`, visible to the watchdog.
    fn during<T>(&self, who: &'static str, what: &str, f: impl FnOnce() -> T) -> T {
        self.0
            .lock()
            .unwrap()
            .insert(who, (Instant::now(), what.to_owned()));
        let out = f();
        self.0.lock().unwrap().remove(who);
        out
    }
}

/// Shared by the workers: stop flag, acknowledged ids, the watchdog.
#[derive(Clone)]
struct Ctx {
    base: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashSet<String>>>,
    /// When the last event (actor [`SENTINEL`]) was posted, after every
    /// ingester stopped: tail and pull read until they see it (arrival
    /// order: all acked before it).
    sentinel_posted: Arc<OnceLock<Instant>>,
    watch: Watch,
}

impl Ctx {
    /// Fails `who` (tail or pull) when the sentinel was posted more than
    /// [`SENTINEL_WAIT`] ago, with what the server says about it.
    fn check_not_overdue(&self, who: &str, seen: usize, cursor: Option<&str>) {
        let Some(at) = self.sentinel_posted.get() else {
            return;
        };
        if at.elapsed() < SENTINEL_WAIT {
            return;
        }
        panic!(
            "{who} has not delivered the last event {SENTINEL_WAIT:?} after it was posted \
             ({seen} events seen, at cursor {cursor:?}); {}",
            self.where_is_sentinel()
        );
    }

    /// Whether a fresh pull from the start finds the sentinel.
    fn where_is_sentinel(&self) -> String {
        let c = harness::client();
        let mut cursor: Option<String> = None;
        let mut pulled = 0usize;
        let found = loop {
            if pulled > 10_000_000 {
                break format!("the feed did not end within {pulled} events");
            }
            let mut q = vec![("limit", "1000".to_owned())];
            if let Some(cur) = &cursor {
                q.push(("cursor", cur.clone()));
            }
            let page = match c.get(format!("{}/v1/pull", self.base)).query(&q).send() {
                Ok(r) => harness::answer(r).1,
                Err(e) => break format!("pull failed: {e}"),
            };
            let Some(events) = page["events"].as_array() else {
                break format!("pull answered {page}");
            };
            if events.is_empty() {
                break format!("no sentinel among {pulled} events");
            }
            if let Some(at) = events.iter().position(is_sentinel) {
                break format!("the sentinel is event {} of the feed", pulled + at);
            }
            pulled += events.len();
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break format!("a page without next_cursor: {page}"),
            }
        };
        format!("a fresh pull from the start: {found}")
    }
}

fn is_sentinel(e: &Value) -> bool {
    e["actor"]["id"] == SENTINEL
}

fn no_timeout_client() -> Client {
    // The watchdog bounds every request instead (a tail is open for the
    // whole run).
    Client::builder().timeout(None).build().unwrap()
}

fn ids_of(v: &Value) -> Vec<String> {
    v["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids: {v}"))
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

fn ingest(ctx: Ctx, who: &'static str, seed: u64) {
    let c = no_timeout_client();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0usize;
    while !ctx.stop.load(Ordering::Relaxed) {
        let size = rng.usize(1..40);
        let body: String = (0..size)
            .map(|i| format!("{}\n", harness::event(&format!("{who}-{n}"), i)))
            .collect();
        let (status, v) = ctx.watch.during(who, "POST /v1/events", || {
            harness::answer(
                c.post(format!("{}/v1/events", ctx.base))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .unwrap(),
            )
        });
        assert_eq!(status, 201, "{who} batch {n}: {v}");
        let ids = ids_of(&v);
        assert_eq!(ids.len(), size);
        ctx.acked.lock().unwrap().extend(ids);
        n += 1;
    }
}

/// Full paging runs over `GET /v1/events`, alternating orders.
fn pager(ctx: Ctx) -> usize {
    let c = no_timeout_client();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut runs = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let order = if runs % 2 == 0 { "oldest" } else { "newest" };
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for page_no in 0.. {
            assert!(page_no < 1_000_000, "order={order}: paging never ended");
            let limit = rng.usize(1..300).to_string();
            let mut q = vec![("limit", limit), ("order", order.to_owned())];
            if let Some(cur) = &cursor {
                q.push(("cursor", cur.clone()));
            }
            let (status, page) = ctx.watch.during("pager", "GET /v1/events", || {
                harness::answer(
                    c.get(format!("{}/v1/events", ctx.base))
                        .query(&q)
                        .send()
                        .unwrap(),
                )
            });
            assert_eq!(status, 200, "{page}");
            let events = page["events"].as_array().unwrap();
            // `occurred_at` is fixed-width (27 chars): text order is time order.
            let times: Vec<&str> = events
                .iter()
                .map(|e| e["occurred_at"].as_str().unwrap())
                .collect();
            for w in times.windows(2) {
                let sorted = if order == "oldest" {
                    w[0] <= w[1]
                } else {
                    w[0] >= w[1]
                };
                assert!(sorted, "order={order}: page not sorted: {w:?}");
            }
            for e in events {
                let id = e["id"].as_str().unwrap().to_owned();
                assert!(seen.insert(id.clone()), "order={order}: {id} repeated");
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        runs += 1;
    }
    runs
}

/// `GET /v1/tail` from before the first ingest to the sentinel.
fn tail(ctx: Ctx, ready: std::sync::mpsc::Sender<()>) -> HashSet<String> {
    let c = no_timeout_client();
    let r = ctx.watch.during("tail", "GET /v1/tail (headers)", || {
        c.get(format!("{}/v1/tail", ctx.base)).send().unwrap()
    });
    assert_eq!(r.status().as_u16(), 200);
    ready.send(()).unwrap();
    let mut lines = BufReader::new(r).lines();
    let mut seen = HashSet::new();
    let (mut event, mut data) = (String::new(), String::new());
    let mut last_id: Option<String> = None;
    loop {
        // Keep-alive comments (every 15 s) bring the loop here even when
        // nothing else comes.
        ctx.check_not_overdue("tail", seen.len(), last_id.as_deref());
        let line = ctx
            .watch
            .during("tail", "GET /v1/tail (next line)", || lines.next());
        let line = line.expect("tail ended early").unwrap();
        if let Some(v) = line.strip_prefix("id:") {
            last_id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        } else if line.is_empty() && !data.is_empty() {
            match event.as_str() {
                "checkpoint" => {}
                "event" => {
                    let e: Value = serde_json::from_str(&data).unwrap();
                    let id = e["id"].as_str().unwrap().to_owned();
                    assert!(seen.insert(id.clone()), "tail repeated {id}");
                    if is_sentinel(&e) {
                        return seen;
                    }
                }
                other => panic!("tail sent `{other}`: {data}"),
            }
            event.clear();
            data.clear();
        }
    }
}

/// `GET /v1/pull` from the start, until it has seen the sentinel.
fn pull(ctx: Ctx) -> HashSet<String> {
    let c = no_timeout_client();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        ctx.check_not_overdue("pull", seen.len(), cursor.as_deref());
        let mut q = vec![("limit", "500".to_owned())];
        if let Some(cur) = &cursor {
            q.push(("cursor", cur.clone()));
        }
        let (status, page) = ctx.watch.during("pull", "GET /v1/pull", || {
            harness::answer(
                c.get(format!("{}/v1/pull", ctx.base))
                    .query(&q)
                    .send()
                    .unwrap(),
            )
        });
        assert_eq!(status, 200, "{page}");
        assert!(page["gap"].is_null(), "nothing is dropped: {page}");
        let events = page["events"].as_array().unwrap();
        let mut done = false;
        for e in events {
            let id = e["id"].as_str().unwrap().to_owned();
            done |= is_sentinel(e);
            assert!(seen.insert(id.clone()), "pull repeated {id}");
        }
        if done {
            return seen;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if events.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Streamed NDJSON exports, one after another: every id they held.
fn exporter(ctx: Ctx) -> (usize, HashSet<String>) {
    let c = no_timeout_client();
    let mut all = HashSet::new();
    let mut exports = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let body = ctx.watch.during("export", "GET /v1/export", || {
            let r = c
                .get(format!("{}/v1/export", ctx.base))
                .query(&[("format", "ndjson")])
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().unwrap()
        });
        let mut ids = HashSet::new();
        for line in body.lines() {
            let e: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("export line not JSON ({err}): {line}"));
            let id = e["id"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "export repeated {id}");
        }
        all.extend(ids);
        exports += 1;
    }
    (exports, all)
}

/// Retention 0 (keep forever) <-> 10 years, back and forth.
fn retention(ctx: Ctx) -> usize {
    let c = no_timeout_client();
    let mut toggles = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let days = if toggles % 2 == 0 { 3650 } else { 0 };
        let (status, v) = ctx.watch.during("retention", "PUT retention", || {
            harness::answer(
                c.put(format!("{}/v1/settings/retention", ctx.base))
                    .json(&serde_json::json!({ "days": days }))
                    .send()
                    .unwrap(),
            )
        });
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["days"], days);
        toggles += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    toggles
}

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::spawn(f)
}

type Panic = Box<dyn std::any::Any + Send>;

/// A worker's result, or its panic kept for after the watchdog's verdict.
fn join<T>(h: JoinHandle<T>, panics: &mut Vec<Panic>) -> Option<T> {
    h.join().map_err(|p| panics.push(p)).ok()
}

#[test]
fn everything_at_once_keeps_every_invariant() {
    let secs: u64 = std::env::var("AUDITLOG_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    let ctx = Ctx {
        base: s.base.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        acked: Arc::default(),
        sentinel_posted: Arc::default(),
        watch: Watch::default(),
    };

    // Watchdog: a request waiting longer than HANG kills the server, so the
    // stuck worker fails instead of blocking the test for ever.
    let hung: Arc<Mutex<Option<String>>> = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (watch, hung, finished, pid) =
            (ctx.watch.clone(), hung.clone(), finished.clone(), s.pid());
        spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                let late = watch
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(_, (since, _))| since.elapsed() > HANG)
                    .map(|(who, (_, what))| format!("{who}: {what} hung > {HANG:?}"));
                if let Some(late) = late {
                    *hung.lock().unwrap() = Some(late);
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let tail_h = spawn({
        let ctx = ctx.clone();
        move || tail(ctx, ready_tx)
    });
    ready_rx.recv().unwrap();
    let pull_h = spawn({
        let ctx = ctx.clone();
        move || pull(ctx)
    });
    let ingest_h: Vec<_> = [("ingest-a", 1), ("ingest-b", 2)]
        .into_iter()
        .map(|(who, seed)| {
            let ctx = ctx.clone();
            spawn(move || ingest(ctx, who, seed))
        })
        .collect();
    let pager_h = spawn({
        let ctx = ctx.clone();
        move || pager(ctx)
    });
    let export_h = spawn({
        let ctx = ctx.clone();
        move || exporter(ctx)
    });
    let retention_h = spawn({
        let ctx = ctx.clone();
        move || retention(ctx)
    });

    std::thread::sleep(Duration::from_secs(secs));
    ctx.stop.store(true, Ordering::Relaxed);

    let mut panics = Vec::new();
    for h in ingest_h {
        join(h, &mut panics);
    }
    let pages = join(pager_h, &mut panics);
    let exports = join(export_h, &mut panics);
    let toggles = join(retention_h, &mut panics);
    let sentinel_ok = hung.lock().unwrap().is_none() && panics.is_empty();
    if sentinel_ok {
        ctx.sentinel_posted.set(Instant::now()).unwrap();
        let (status, v) = harness::post(&s, "application/x-ndjson", harness::event(SENTINEL, 0));
        assert_eq!(status, 201, "{v}");
        let id = ids_of(&v).remove(0);
        ctx.acked.lock().unwrap().insert(id);
    } else {
        // Tail and pull end with the server.
        s.kill_now();
    }
    let tailed = join(tail_h, &mut panics);
    let pulled = join(pull_h, &mut panics);
    finished.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    if let Some(h) = hung.lock().unwrap().take() {
        panic!("watchdog: {h}");
    }
    if let Some(p) = panics.into_iter().next() {
        std::panic::resume_unwind(p);
    }
    let (tailed, pulled) = (tailed.unwrap(), pulled.unwrap());
    let (exports, exported) = exports.unwrap();
    let acked = ctx.acked.lock().unwrap().clone();

    // The final state, from the listing (nothing writes any more).
    let listed = all_events(&s);
    let mut access = HashSet::new();
    let mut listed_ids = HashMap::<&str, usize>::new();
    for (id, json) in &listed {
        *listed_ids.entry(id).or_default() += 1;
        let e: Value = serde_json::from_str(json).unwrap();
        if e["environment"]["id"] == "auditlog" {
            access.insert(id.clone());
        }
    }
    for id in &acked {
        assert_eq!(
            listed_ids.get(id.as_str()),
            Some(&1),
            "{id} not listed once"
        );
        assert!(tailed.contains(id), "tail missed {id}");
        assert!(pulled.contains(id), "pull missed {id}");
    }
    assert!(listed_ids.values().all(|&n| n == 1), "a listed id repeated");
    for id in &exported {
        assert!(
            acked.contains(id) || access.contains(id),
            "export held {id}, neither acknowledged nor an access event"
        );
    }
    let access_count = count(&s, Some(ACCESS_FILTER));
    assert_eq!(access_count, access.len() as u64);
    assert_eq!(count(&s, None), acked.len() as u64 + access_count);
    assert_eq!(listed.len() as u64, acked.len() as u64 + access_count);
    assert!(exports > 0 && toggles.unwrap() > 0 && pages.unwrap() > 0);
    println!(
        "stress {secs}s: {} acknowledged, {} access events, {exports} exports, {} tailed, {} pulled",
        acked.len(),
        access.len(),
        tailed.len(),
        pulled.len()
    );
}
