//! Exports, export jobs, pull and tail against the real binary over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

mod harness;

use harness::Server;

/// The server, with its signing key inside the temporary directory rather
/// than beside it.
fn start(data: &Path) -> Server {
    let key = data.join("signing.key");
    Server::start_with(data, &["--key", key.to_str().unwrap()])
}

/// A request stalled for a minute fails the test rather than hanging it
/// (the timeout applies to each read, so a tail's keep-alives hold it open).
fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Events with hard cells (commas, quotes, newlines, unicode), several
/// actions, and occurred_at jumping back and forth (late arrivals).
fn events(n: usize, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            // Recent days (retention keeps 180), in a jumbled order.
            let day = days_ago(1 + (i * 7) % 20);
            let action = ["items.update", "items.create", "users.login"][i % 3];
            let mut e = json!({
                "occurred_at": format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60),
                "action_name": action,
                "actor": {"type": "user", "id": format!("{}", i % 5), "name": format!("Zoë, \"{tag}\" #{i}")},
                "environment": {"id": "prod"},
                "request": {"method": "PUT", "path": format!("/items/{i}"), "ip": "10.0.0.1",
                            "user_agent": "curl/8.0", "payload": {"n": i}},
                "response": {"status": 200 + (i % 3) as u64},
                "description": format!("line one\nline two, {tag} 世界"),
            });
            if i % 4 == 0 {
                e["role"] = json!({"name": "admin", "scopes": ["a", "b"]});
            }
            if i % 5 == 0 {
                e["error"] = json!("boom, \"quoted\"");
            }
            e
        })
        .collect()
}

/// `YYYY-MM-DD` of `n` days before today (UTC).
fn days_ago(n: usize) -> String {
    let d = time::OffsetDateTime::now_utc() - time::Duration::days(n as i64);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn ingest(c: &Client, s: &Server, events: &[Value]) -> Vec<String> {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let r = c
        .post(s.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().unwrap();
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn query_oldest(c: &Client, s: &Server, params: &[(&str, &str)]) -> Vec<Value> {
    let mut q = params.to_vec();
    q.extend([("order", "oldest"), ("limit", "10000")]);
    let v: Value = c
        .get(s.url("/v1/events"))
        .query(&q)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(v["next_cursor"].is_null());
    v["events"].as_array().unwrap().clone()
}

fn export(c: &Client, s: &Server, params: &[(&str, &str)]) -> (String, String, Vec<u8>) {
    let r = c.get(s.url("/v1/export")).query(params).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let disp = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    (ctype, disp, r.bytes().unwrap().to_vec())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn export_in_each_format_is_exactly_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    ingest(&c, &s, &events(1500, "a"));
    let from = format!("{}T00:00:00Z", days_ago(15));
    let to = format!("{}T00:00:00Z", days_ago(5));
    for params in [
        vec![(
            "filter",
            "action_name IN ('items.update', 'users.login') AND actor.id != '3'",
        )],
        vec![
            ("filter", "request.path LIKE '/items/1%'"),
            ("from", &from),
            ("to", &to),
        ],
        vec![],
    ] {
        // Each export is recorded (an `audit_log.exported` event) before its
        // snapshot is taken, so the query to compare with comes after it.
        let mut p = params.clone();
        p.push(("format", "ndjson"));
        let (ctype, disp, body) = export(&c, &s, &p);
        let expected = query_oldest(&c, &s, &params);
        assert!(!expected.is_empty());
        assert_eq!(ctype, "application/x-ndjson");
        assert!(
            disp.starts_with("attachment; filename=\"auditlog-export-")
                && disp.ends_with(".ndjson\"")
        );
        let got: Vec<Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(got, expected);

        let mut p = params.clone();
        p.push(("format", "json"));
        let (ctype, _, body) = export(&c, &s, &p);
        let expected = query_oldest(&c, &s, &params);
        assert_eq!(ctype, "application/json");
        let got: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, expected);

        let mut p = params.clone();
        p.push(("format", "csv"));
        let (ctype, disp, body) = export(&c, &s, &p);
        let expected = query_oldest(&c, &s, &params);
        assert!(ctype.starts_with("text/csv"));
        assert!(disp.ends_with(".csv\""));
        let mut r = csv::Reader::from_reader(body.as_slice());
        assert_eq!(r.headers().unwrap().len(), 15);
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), expected.len());
        assert!(
            count(
                &c,
                &s,
                "action_name = 'audit_log.exported' AND environment.id = 'auditlog'"
            ) >= 3
        );
        for (row, e) in rows.iter().zip(&expected) {
            let want = [
                cell(&e["occurred_at"]),
                cell(&e["id"]),
                cell(&e["action_name"]),
                cell(&e["actor"]["type"]),
                cell(&e["actor"]["id"]),
                cell(&e["actor"]["name"]),
                cell(&e["role"]),
                cell(&e["environment"]["id"]),
                cell(&e["request"]["method"]),
                cell(&e["request"]["path"]),
                cell(&e["request"]["ip"]),
                cell(&e["request"]["user_agent"]),
                cell(&e["response"]["status"]),
                cell(&e["error"]),
                cell(&e["description"]),
            ];
            let got: Vec<&str> = row.iter().collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn bad_parameters_are_400_and_ids_never_reach_paths() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    let code = |r: reqwest::blocking::Response| -> (u16, String) {
        let status = r.status().as_u16();
        let v: Value = r.json().unwrap_or(Value::Null);
        (
            status,
            v["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    let get = |path: &str, q: &[(&str, &str)]| code(c.get(s.url(path)).query(q).send().unwrap());
    assert_eq!(
        get("/v1/export", &[("format", "xml")]),
        (400, "bad_format".into())
    );
    assert_eq!(
        get("/v1/export", &[("filter", "action_name = ")]),
        (400, "bad_filter".into())
    );
    assert_eq!(
        get("/v1/export", &[("from", "yesterday")]),
        (400, "bad_time".into())
    );
    assert_eq!(
        get("/v1/pull", &[("cursor", "zz")]),
        (400, "bad_cursor".into())
    );
    assert_eq!(
        get("/v1/pull", &[("cursor", &"0".repeat(36))]),
        (400, "bad_cursor".into())
    );
    assert_eq!(
        get("/v1/pull", &[("limit", "0")]),
        (400, "bad_query".into())
    );
    assert_eq!(
        get("/v1/pull", &[("filter", "a = = b")]),
        (400, "bad_filter".into())
    );
    assert_eq!(
        get("/v1/tail", &[("cursor", "nope")]),
        (400, "bad_cursor".into())
    );
    assert_eq!(
        code(
            c.get(s.url("/v1/tail"))
                .header("last-event-id", "nope")
                .send()
                .unwrap()
        ),
        (400, "bad_cursor".into())
    );
    let post = |body: &str| {
        code(
            c.post(s.url("/v1/exports"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    };
    assert_eq!(post("{"), (400, "bad_json".into()));
    assert_eq!(post(r#"{"nmae":"x"}"#), (400, "bad_json".into()));
    assert_eq!(post(r#"{"format":"pdf"}"#), (400, "bad_format".into()));
    assert_eq!(post(r#"{"filter":"(("}"#), (400, "bad_filter".into()));
    assert_eq!(post(r#"{"to":"soon"}"#), (400, "bad_time".into()));
    assert_eq!(
        post(&json!({"name": "x".repeat(300)}).to_string()),
        (400, "bad_name".into())
    );
    for id in [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "01J0000000000000000000000.json",
        "%2e%2e",
    ] {
        let (status, _) = get(&format!("/v1/exports/{id}"), &[]);
        assert!(status == 400 || status == 404, "{id}: {status}");
        let (status, _) = get(&format!("/v1/exports/{id}/download"), &[]);
        assert!(status == 400 || status == 404, "{id}: {status}");
    }
    assert_eq!(get("/v1/exports/not-a-ulid", &[]), (400, "bad_id".into()));
    assert_eq!(
        get("/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV/download", &[]),
        (404, "not_found".into())
    );
}

fn wait_job(c: &Client, s: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job: Value = c
            .get(s.url(&format!("/v1/exports/{id}")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        match job["status"].as_str().unwrap() {
            "completed" | "failed" => return job,
            _ => {
                assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn submit(c: &Client, s: &Server, body: Value) -> Value {
    let r = c.post(s.url("/v1/exports")).json(&body).send().unwrap();
    assert_eq!(r.status().as_u16(), 202);
    r.json().unwrap()
}

fn download(c: &Client, s: &Server, id: &str) -> (String, Vec<u8>) {
    let r = c
        .get(s.url(&format!("/v1/exports/{id}/download")))
        .send()
        .unwrap();
    if r.status().as_u16() != 200 {
        panic!("download of {id}: {} {}", r.status(), r.text().unwrap());
    }
    let disp = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    (disp, r.bytes().unwrap().to_vec())
}

#[test]
fn export_jobs_complete_survive_restarts_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let c = client();
    ingest(&c, &s, &events(3000, "j"));
    let filter = "action_name = 'items.update'";
    let from = format!("{}T00:00:00Z", days_ago(10));
    let job = submit(
        &c,
        &s,
        json!({"name": "Q1 \"audit\"/../x", "format": "csv", "filter": filter, "from": from}),
    );
    assert_eq!(job["status"], "queued");
    assert_eq!(job["requested_by"], "local");
    let id = job["id"].as_str().unwrap().to_string();
    let done = wait_job(&c, &s, &id);
    assert_eq!(done["status"], "completed", "{done}");
    let (_, _, streamed) = export(
        &c,
        &s,
        &[("format", "csv"), ("filter", filter), ("from", &from)],
    );
    let (disp, file) = download(&c, &s, &id);
    assert_eq!(disp, "attachment; filename=\"Q1__audit__.._x.csv\"");
    assert!(
        file == streamed,
        "job file differs from the streamed export"
    );
    assert_eq!(done["bytes"].as_u64().unwrap(), file.len() as u64);
    assert_eq!(done["rows"].as_u64().unwrap() + 1, csv_lines(&file));
    let second = submit(&c, &s, json!({"format": "ndjson"}));
    wait_job(&c, &s, second["id"].as_str().unwrap());
    let list: Value = c.get(s.url("/v1/exports")).send().unwrap().json().unwrap();
    let ids: Vec<&str> = list["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![second["id"].as_str().unwrap(), id.as_str()],
        "newest first"
    );

    // Requests, downloads and streamed exports were recorded as events.
    let requested =
        format!("action_name = 'audit_log.export_requested' AND metadata.export_id = '{id}'");
    assert_eq!(count(&c, &s, &requested), 1);
    let downloaded = format!("action_name = 'audit_log.export_downloaded' AND actor.id = 'local' AND metadata.export_id = '{id}'");
    assert_eq!(count(&c, &s, &downloaded), 1);
    assert_eq!(count(&c, &s, "action_name = 'audit_log.exported'"), 1);

    // A graceful restart keeps jobs and files.
    let (_, ok) = s.terminate();
    assert!(ok);
    let s = start(dir.path());
    assert!(
        download(&c, &s, &id).1 == streamed,
        "file changed over a restart"
    );

    // kill -9 while jobs are queued or running: after the restart every
    // job completes, with exactly the export's bytes.
    ingest(&c, &s, &events(6000, "k"));
    let formats = ["csv", "ndjson", "json", "csv"];
    let jobs: Vec<String> = formats
        .iter()
        .map(|f| submit(&c, &s, json!({"format": f, "filter": PROD})))
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let unfinished = jobs
        .iter()
        .filter(|id| {
            let j: Value = c
                .get(s.url(&format!("/v1/exports/{id}")))
                .send()
                .unwrap()
                .json()
                .unwrap();
            j["status"] != "completed"
        })
        .count();
    s.kill();
    let s = start(dir.path());
    for (id, format) in jobs.iter().zip(formats) {
        let job = wait_job(&c, &s, id);
        assert_eq!(job["status"], "completed", "{job}");
        let (_, _, streamed) = export(&c, &s, &[("format", format), ("filter", PROD)]);
        let file = download(&c, &s, id).1;
        assert!(
            file == streamed,
            "job {id} ({format}): {} bytes, streamed {}",
            file.len(),
            streamed.len()
        );
    }
    // Nothing half-written is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!(
        "{unfinished} of {} jobs were unfinished at kill -9",
        jobs.len()
    );
}

/// The test's own events, without the access events exports add.
const PROD: &str = "environment.id = 'prod'";

fn count(c: &Client, s: &Server, filter: &str) -> u64 {
    let v: Value = c
        .get(s.url("/v1/events/count"))
        .query(&[("filter", filter)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["count"].as_u64().unwrap()
}

fn csv_lines(bytes: &[u8]) -> u64 {
    csv::Reader::from_reader(bytes).records().count() as u64 + 1
}

#[test]
fn pull_never_misses_or_repeats_with_concurrent_back_dated_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    let base = s.base.clone();
    let writer = std::thread::spawn(move || {
        let c = client();
        let s2 = Server2 { base };
        let mut ids = Vec::new();
        for round in 0..40 {
            let evs = events(25, &format!("r{round}"));
            ids.extend(ingest_base(&c, &s2.base, &evs));
            std::thread::sleep(Duration::from_millis(5));
        }
        ids
    });
    let filter = "action_name != 'items.create'";
    let mut cursor = String::new();
    let mut seen: Vec<String> = Vec::new();
    let mut unfiltered: Vec<String> = Vec::new();
    let mut plain_cursor = String::new();
    let poll = |cursor: &mut String, filter: &str, limit: &str, out: &mut Vec<String>| {
        let v: Value = c
            .get(s.url("/v1/pull"))
            .query(&[
                ("cursor", cursor.as_str()),
                ("filter", filter),
                ("limit", limit),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(v["gap"].is_null(), "{v}");
        for e in v["events"].as_array().unwrap() {
            out.push(e["id"].as_str().unwrap().to_string());
        }
        *cursor = v["next_cursor"].as_str().unwrap().to_string();
        v["events"].as_array().unwrap().len()
    };
    while !writer.is_finished() {
        poll(&mut cursor, filter, "7", &mut seen);
        poll(&mut plain_cursor, "", "13", &mut unfiltered);
    }
    let written = writer.join().unwrap();
    let drain = |poll_once: &mut dyn FnMut() -> usize| {
        // Bounded: a feed that never ends fails instead of spinning.
        for _ in 0..100_000 {
            if poll_once() == 0 {
                return;
            }
        }
        panic!("the pull never reached its end");
    };
    drain(&mut || poll(&mut cursor, filter, "7", &mut seen));
    drain(&mut || poll(&mut plain_cursor, "", "13", &mut unfiltered));
    // Every event exactly once.
    let mut sorted = unfiltered.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), unfiltered.len(), "an event was repeated");
    let mut all = written.clone();
    all.sort();
    assert_eq!(sorted, all, "an event was missed");
    // The filtered poller saw exactly the matching ones, in the same order.
    let matching: std::collections::HashSet<String> = query_oldest(&c, &s, &[("filter", filter)])
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = unfiltered
        .iter()
        .filter(|id| matching.contains(*id))
        .cloned()
        .collect();
    assert_eq!(seen, expected);
    // One pull from the start gives the same arrival order.
    let mut fresh = String::new();
    let mut again = Vec::new();
    drain(&mut || poll(&mut fresh, "", "10000", &mut again));
    assert_eq!(again, unfiltered);
}

struct Server2 {
    base: String,
}

fn ingest_base(c: &Client, base: &str, events: &[Value]) -> Vec<String> {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let r = c
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().unwrap();
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// One SSE message: (id, event, data).
type Message = (Option<String>, String, String);

/// Reads a tail in a thread; messages arrive on the channel, `None` at the
/// end of the stream.
fn open_tail(
    s: &Server,
    filter: &str,
    last_event_id: Option<&str>,
) -> mpsc::Receiver<Option<Message>> {
    let mut req = client().get(s.url("/v1/tail")).query(&[("filter", filter)]);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let r = req.send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut id = None;
        let mut event = String::new();
        let mut data = String::new();
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if !data.is_empty()
                    && tx
                        .send(Some((
                            id.take(),
                            std::mem::take(&mut event),
                            std::mem::take(&mut data),
                        )))
                        .is_err()
                {
                    return;
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v);
            }
        }
        let _ = tx.send(None);
    });
    rx
}

/// The next `event: event` message; signed checkpoints, which a tail sends
/// whenever one is made, are skipped.
fn next_event(rx: &mpsc::Receiver<Option<Message>>) -> (String, Value) {
    loop {
        let (id, kind, data) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no tail message within 10 s")
            .expect("tail ended");
        if kind == "checkpoint" {
            continue;
        }
        assert_eq!(kind, "event");
        return (id.unwrap(), serde_json::from_str(&data).unwrap());
    }
}

#[test]
fn tail_is_live_and_resumes_from_last_event_id_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    ingest(&c, &s, &events(10, "before")); // not shown: a tail starts at the end
    let filter = "actor.id = '1'";
    let rx = open_tail(&s, filter, None);
    std::thread::sleep(Duration::from_millis(200));
    // Matching and non-matching, back-dated.
    let mut evs = events(10, "live");
    evs.reverse();
    let ids = ingest(&c, &s, &evs);
    let want: Vec<String> = ids
        .iter()
        .zip(&evs)
        .filter(|(_, e)| e["actor"]["id"] == "1")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(want.len(), 2);
    let (first_cursor, first) = next_event(&rx);
    assert_eq!(first["id"], want[0].as_str());
    assert!(
        first["description"].as_str().unwrap().contains('\n'),
        "multi-line data rejoined"
    );
    let (_, second) = next_event(&rx);
    assert_eq!(second["id"], want[1].as_str());
    drop(rx);
    // Missed while disconnected, then resumed from the first event's id.
    let later = ingest(&c, &s, &events(6, "later"));
    let rx = open_tail(&s, filter, Some(&first_cursor));
    let (_, again) = next_event(&rx);
    assert_eq!(
        again["id"],
        want[1].as_str(),
        "resumes right after the first"
    );
    let (_, missed) = next_event(&rx);
    assert_eq!(missed["id"], later[1].as_str());
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing repeated"
    );
}

#[test]
fn shutdown_ends_open_tails_and_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let tails: Vec<_> = (0..3).map(|_| open_tail(&s, "", None)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (took, ok) = s.terminate();
    assert!(ok, "clean exit");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    for rx in tails {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            None,
            "tail ended"
        );
    }
}

#[test]
fn tails_carry_signed_checkpoints_and_export_jobs_a_signed_manifest() {
    use auditlog_engine::integrity::chain::{digest_from_hex, hex, sha256};
    use auditlog_engine::integrity::checkpoint::Checkpoint;
    use auditlog_engine::integrity::key::verify_signature;

    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    let ids = ingest(&c, &s, &events(12, "signed"));
    let key: Value = c
        .get(s.url("/v1/public-key"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let public: [u8; 32] = digest_from_hex(key["public_key"].as_str().unwrap()).unwrap();

    // A proof makes a checkpoint; an open tail sends it as it is made.
    let rx = open_tail(&s, "", None);
    std::thread::sleep(Duration::from_millis(200));
    let r = c
        .get(s.url(&format!("/v1/events/{}/proof", ids[3])))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (id, kind, data) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a checkpoint message")
        .expect("tail open");
    assert_eq!(kind, "checkpoint");
    assert!(id.is_none(), "checkpoints do not move the resume cursor");
    let checkpoint = Checkpoint::from_json(&serde_json::from_str(&data).unwrap()).unwrap();
    assert!(checkpoint.verify(&public));
    assert_eq!(checkpoint.position, 12);
    // A new tail starts with the newest checkpoint.
    let rx2 = open_tail(&s, "", None);
    let (_, kind, _) = rx2.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(kind, "checkpoint");

    let job = submit(
        &c,
        &s,
        json!({"name": "signed", "format": "ndjson", "filter": PROD}),
    );
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(wait_job(&c, &s, &id)["status"], "completed");
    let (_, file) = download(&c, &s, &id);
    let r = c
        .get(s.url(&format!("/v1/exports/{id}/manifest")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let signed: Value = r.json().unwrap();
    let text = signed["manifest"].as_str().unwrap();
    let sig: [u8; 64] =
        auditlog_engine::integrity::chain::from_hex(signed["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
    assert!(verify_signature(&public, text.as_bytes(), &sig));
    let m: Value = serde_json::from_str(text).unwrap();
    assert_eq!(m["content_sha256"], hex(&sha256(&file)));
    assert_eq!(m["bytes"], file.len());
    assert_eq!(m["count"], 12);
    assert_eq!(m["complete"], true);
    assert_eq!(m["filter"], PROD);
    let covered = Checkpoint::from_json(&m["checkpoint"]).unwrap();
    assert!(covered.verify(&public));
    assert!(covered.position >= m["position"].as_u64().unwrap());
    let forged = text.replace("\"count\":12", "\"count\":11");
    assert_ne!(forged, text);
    assert!(!verify_signature(&public, forged.as_bytes(), &sig));
    let r = c
        .get(s.url("/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV/manifest"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

fn stream_manifest(c: &Client, s: &Server, id: &str) -> (u16, Value) {
    let r = c
        .get(s.url(&format!("/v1/export/manifests/{id}")))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

#[test]
fn a_streamed_export_has_a_signed_manifest_of_the_bytes_sent() {
    use auditlog_engine::integrity::chain::{digest_from_hex, from_hex, hex, sha256};
    use auditlog_engine::integrity::checkpoint::Checkpoint;
    use auditlog_engine::integrity::manifest::SignedManifest;

    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    // More than two pages, so the hash spans several chunks.
    let all = events(2500, "streamed");
    ingest(&c, &s, &all);
    let key: Value = c
        .get(s.url("/v1/public-key"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let public: [u8; 32] = digest_from_hex(key["public_key"].as_str().unwrap()).unwrap();

    for (format, filter) in [("ndjson", PROD), ("csv", "action_name = 'users.login'")] {
        let r = c
            .get(s.url("/v1/export"))
            .query(&[("format", format), ("filter", filter)])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let id = r.headers()["x-auditlog-export-id"]
            .to_str()
            .unwrap()
            .to_string();
        let link = r.headers()["link"].to_str().unwrap().to_string();
        assert_eq!(
            link,
            format!("</v1/export/manifests/{id}>; rel=\"describedby\"")
        );
        let bytes = r.bytes().unwrap().to_vec();
        let rows = if format == "csv" {
            csv_lines(&bytes) - 1
        } else {
            bytes.iter().filter(|b| **b == b'\n').count() as u64
        };
        assert_eq!(rows, count(&c, &s, filter), "{format}");
        assert!(rows > 0);

        // Fetched right after the last byte: it is stored before the body ends.
        let (status, signed) = stream_manifest(&c, &s, &id);
        assert_eq!(status, 200, "{signed}");
        let text = signed["manifest"].as_str().unwrap().to_string();
        let manifest = SignedManifest {
            manifest: text.clone(),
            public_key: digest_from_hex(signed["public_key"].as_str().unwrap()).unwrap(),
            signature: from_hex(signed["signature"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        };
        assert!(manifest.verify(&public));
        let m: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(m["content_sha256"], hex(&sha256(&bytes)));
        assert_eq!(m["bytes"], bytes.len());
        assert_eq!(m["count"], rows);
        assert_eq!(m["complete"], true);
        assert_eq!(m["format"], format);
        assert_eq!(m["filter"], filter);
        let covered = Checkpoint::from_json(&m["checkpoint"]).unwrap();
        assert!(covered.verify(&public));
        assert!(covered.position >= m["position"].as_u64().unwrap());
        // The ingested events and the audit events of the exports so far.
        assert!(m["position"].as_u64().unwrap() > 2500);
        let forged = SignedManifest {
            manifest: text.replace(&format!("\"count\":{rows}"), "\"count\":1"),
            ..manifest.clone()
        };
        assert_ne!(forged.manifest, text);
        assert!(!forged.verify(&public));
    }

    let (status, body) = stream_manifest(&c, &s, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = stream_manifest(&c, &s, "not-a-ulid");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_id");
}

/// While the client has not read the last byte there is no manifest yet;
/// when it goes away before the end there never is one.
#[test]
fn a_streamed_export_cut_short_has_no_manifest() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let c = client();
    // Far more than the socket buffers and the channel hold, so the
    // server is still producing when the client stops reading.
    let all = events(5000, "cut");
    for _ in 0..4 {
        ingest(&c, &s, &all);
    }
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "GET /v1/export?format=ndjson HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let id = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-auditlog-export-id: ")
                .map(str::to_string)
        })
        .expect("an export id header")
        .to_uppercase();
    let (status, body) = stream_manifest(&c, &s, &id);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "export_not_ready");

    drop(sock);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = stream_manifest(&c, &s, &id);
        if status == 409 {
            assert!(Instant::now() < deadline, "the cut export still streams");
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "export_incomplete");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not complete"));
        break;
    }
}
