//! The real `auditlog` binary on a loopback port, spoken to over HTTP.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

mod harness;

use harness::Server;

fn post(
    c: &Client,
    s: &Server,
    content_type: &str,
    body: impl Into<reqwest::blocking::Body>,
) -> (u16, Value) {
    let r = c
        .post(format!("{}/v1/events", s.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn get(c: &Client, s: &Server, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .get(format!("{}{path}", s.base))
        .query(query)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn ingest_query_errors_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new();
    let s = Server::start(&dir.path().join("data"));

    let (status, body) = post(&c, &s, "application/json", json!({
        "id": "01FC31EHYYR0MF7J7GEJK2TFM0",
        "occurred_at": "2026-11-01T10:00:00Z",
        "action_name": "items.publish",
        "actor": {"type": "user", "id": "4845293"},
        "request": {"path": "/items/239408/publish", "payload": {"data": {"relationships": {"item_type": {"data": {"id": "855832"}}}}}}
    }).to_string());
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ids"][0], "01FC31EHYYR0MF7J7GEJK2TFM0");

    let lines: String = (0..50)
        .map(|i| format!("{}\n", json!({"action_name": if i % 2 == 0 { "items.update" } else { "items.create" }, "actor": {"type": "account", "id": format!("{}", i % 5)}})))
        .collect();
    let (status, body) = post(&c, &s, "application/x-ndjson", lines);
    assert_eq!(status, 201);
    assert_eq!(body["ids"].as_array().unwrap().len(), 50);

    // A retry of a stored id stores nothing new.
    let (status, body) = post(&c, &s, "application/json", json!({"id": "01FC31EHYYR0MF7J7GEJK2TFM0", "action_name": "x", "actor": {"type": "u", "id": "1"}}).to_string());
    assert_eq!(
        (status, body["duplicates"][0].as_str()),
        (201, Some("01FC31EHYYR0MF7J7GEJK2TFM0"))
    );

    // Batches are all or nothing, and say which lines failed (line numbers
    // count blank lines too).
    let (status, body) = post(
        &c,
        &s,
        "application/x-ndjson",
        "{\"action_name\":\"ok\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}\n\n{\"action_name\":\"ok\"}\nnot json\n",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["lines"][0]["line"], 3);
    assert_eq!(body["error"]["lines"][0]["field"], "actor");
    assert_eq!(body["error"]["lines"][1]["line"], 4);
    assert_eq!(get(&c, &s, "/v1/events/count", &[]).1["count"], 51);

    // Filters, counts, one event.
    let (status, page) = get(
        &c,
        &s,
        "/v1/events",
        &[("filter", "request.path = '/items/239408/publish'")],
    );
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["id"], "01FC31EHYYR0MF7J7GEJK2TFM0");
    let (_, page) = get(&c, &s, "/v1/events", &[("filter", "action_name = 'items.publish' AND request.payload.data.relationships.item_type.data.id = '855832'")]);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(
            &c,
            &s,
            "/v1/events/count",
            &[("filter", "action_name = 'items.update'")]
        )
        .1["count"],
        25
    );
    assert_eq!(
        get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0", &[]).1["action_name"],
        "items.publish"
    );

    // Paging with a cursor walks every event once.
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "7")];
        if let Some(c) = cursor.as_deref() {
            q.push(("cursor", c));
        }
        let (status, page) = get(&c, &s, "/v1/events", &q);
        assert_eq!(status, 200);
        for e in page["events"].as_array().unwrap() {
            assert!(seen.insert(e["id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 51);

    // Client mistakes are 4xx with a JSON error, never 5xx.
    let (status, body) = get(&c, &s, "/v1/events", &[("filter", "actor.type = ")]);
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["column"].as_u64()
        ),
        (400, Some("bad_filter"), Some(14))
    );
    assert_eq!(get(&c, &s, "/v1/events", &[("from", "yesterday")]).0, 400);
    assert_eq!(get(&c, &s, "/v1/events", &[("cursor", "00")]).0, 400);
    assert_eq!(get(&c, &s, "/v1/events", &[("limit", "0")]).0, 400);
    assert_eq!(get(&c, &s, "/v1/events/not-a-ulid", &[]).0, 400);
    assert_eq!(
        get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM1", &[]).0,
        404
    );
    assert_eq!(post(&c, &s, "application/json", "{not json").0, 400);
    assert_eq!(post(&c, &s, "text/plain", "{}").0, 415);
    assert_eq!(
        // One byte past the 64 MiB limit: the server reads all of it before
        // its 413, so the client is not cut off mid-write (a broken pipe).
        post(&c, &s, "application/json", vec![b'x'; (64 << 20) + 1]).0,
        413
    );

    // A restart keeps every acknowledged event.
    s.stop();
    let s = Server::start(&dir.path().join("data"));
    assert_eq!(get(&c, &s, "/v1/events/count", &[]).1["count"], 51);
    assert_eq!(
        get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0", &[]).0,
        200
    );
    s.stop();
}

/// Makes a token with `auditlog token` and returns it with its config entry.
fn make_token(name: &str, role: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["token", "--name", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let entry = &stderr[stderr.find("[[tokens]]").unwrap()..];
    assert!(
        !entry.contains(&token),
        "the config entry must not hold the token"
    );
    (token, entry.to_owned())
}

/// A request with an optional bearer token; returns status and JSON body.
fn call(
    c: &Client,
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), format!("{}{path}", s.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some((ct, b)) = body {
        r = r.header("content-type", ct).body(b);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

struct Tokens {
    ingest: String,
    read: String,
    admin: String,
    config: std::path::PathBuf,
}

fn tokens_config(dir: &Path) -> Tokens {
    let (ingest, e1) = make_token("app-backend", "ingest");
    let (read, e2) = make_token("ops-reader", "read");
    let (admin, e3) = make_token("ops-admin", "admin");
    let config = dir.join("auditlog.toml");
    std::fs::write(&config, format!("retention_days = 0\n\n{e1}\n{e2}\n{e3}\n")).unwrap();
    Tokens {
        ingest,
        read,
        admin,
        config,
    }
}

#[test]
fn tokens_roles_and_the_open_paths() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens_config(dir.path());
    let data = dir.path().join("data");
    let s = Server::start_with(&data, &["--config", t.config.to_str().unwrap()]);
    let c = Client::new();
    let event = || {
        Some((
            "application/json",
            json!({"id": "01FC31EHYYR0MF7J7GEJK2TFM0", "action_name": "a", "actor": {"type": "u", "id": "1"}})
                .to_string(),
        ))
    };
    let retention = || Some(("application/json", json!({"days": 0}).to_string()));
    // (method, path, body, expected status for: none, bad, ingest, read, admin)
    type Body = fn() -> Option<(&'static str, String)>;
    let no_body: Body = || None;
    let matrix: Vec<(&str, &str, Body, [u16; 5])> = vec![
        ("POST", "/v1/events", event, [401, 401, 201, 403, 201]),
        ("GET", "/v1/events", no_body, [401, 401, 403, 200, 200]),
        (
            "GET",
            "/v1/events/count",
            no_body,
            [401, 401, 403, 200, 200],
        ),
        (
            "GET",
            "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0",
            no_body,
            [401, 401, 403, 200, 200],
        ),
        ("GET", "/v1/whoami", no_body, [401, 401, 200, 200, 200]),
        ("GET", "/metrics", no_body, [401, 401, 403, 200, 200]),
        (
            "GET",
            "/v1/settings/retention",
            no_body,
            [401, 401, 403, 403, 200],
        ),
        (
            "PUT",
            "/v1/settings/retention",
            retention,
            [401, 401, 403, 403, 200],
        ),
        ("GET", "/healthz", no_body, [200, 200, 200, 200, 200]),
        ("GET", "/openapi.json", no_body, [200, 200, 200, 200, 200]),
        (
            "GET",
            "/v1/no-such-thing",
            no_body,
            [401, 401, 404, 404, 404],
        ),
    ];
    let bad = format!("alog_{}", "0".repeat(64));
    let callers = [
        None,
        Some(bad.as_str()),
        Some(t.ingest.as_str()),
        Some(t.read.as_str()),
        Some(t.admin.as_str()),
    ];
    for (method, path, body, expected) in &matrix {
        for (who, want) in callers.iter().zip(expected) {
            let (status, resp) = call(&c, &s, method, path, *who, body());
            assert_eq!(status, *want, "{method} {path} as {who:?}: {resp}");
            match status {
                401 => assert_eq!(resp["error"]["code"], "unauthorized"),
                403 => assert_eq!(resp["error"]["code"], "forbidden"),
                _ => {}
            }
        }
    }
    // The scheme name is case-insensitive; other schemes are refused.
    let r = c
        .get(format!("{}/v1/whoami", s.base))
        .header("authorization", format!("bearer {}", t.read))
        .send()
        .unwrap();
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"name": "ops-reader", "role": "read"})
    );
    let r = c
        .get(format!("{}/v1/whoami", s.base))
        .header("authorization", format!("Basic {}", t.read))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let (_, who) = call(&c, &s, "GET", "/v1/whoami", Some(&t.admin), None);
    assert_eq!(who, json!({"name": "ops-admin", "role": "admin"}));
    s.stop();
}

#[test]
fn refuses_to_listen_beyond_loopback_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that wrongly starts serving fails the test rather
    // than running for ever.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve kept running on 0.0.0.0 without tokens");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("beyond loopback"));
}

#[test]
fn retention_setting_is_audited_applied_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens_config(dir.path());
    let data = dir.path().join("data");
    let config = ["--config", t.config.to_str().unwrap()];
    let s = Server::start_with(&data, &config);
    let c = Client::new();
    let admin = Some(t.admin.as_str());
    let (status, body) = call(&c, &s, "GET", "/v1/settings/retention", admin, None);
    assert_eq!(
        (status, body["days"].as_u64()),
        (200, Some(0)),
        "the config's 0"
    );

    // Old events (2020) and a current one: different daily windows, so
    // different segments.
    let old: String = (0..20)
        .map(|i| format!("{}\n", json!({"occurred_at": format!("2020-01-01T00:00:{i:02}Z"), "action_name": "old", "actor": {"type": "u", "id": "1"}})))
        .collect();
    let json_body = |v: Value| Some(("application/json", v.to_string()));
    assert_eq!(
        call(
            &c,
            &s,
            "POST",
            "/v1/events",
            admin,
            Some(("application/x-ndjson", old))
        )
        .0,
        201
    );
    let count = |filter: &str| {
        call(
            &c,
            &s,
            "GET",
            &format!(
                "/v1/events/count?filter={}",
                filter.replace(' ', "%20").replace('\'', "%27")
            ),
            admin,
            None,
        )
        .1["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("action_name = 'old'"), 20);

    // Nonsense is refused and changes nothing.
    for bad in [
        json!({"days": -1}),
        json!({"days": "30"}),
        json!({"days": 1.5}),
        json!({"days": 40000}),
        json!({}),
        json!({"days": 30, "hours": 2}),
        json!([30]),
    ] {
        let (status, body) = call(
            &c,
            &s,
            "PUT",
            "/v1/settings/retention",
            admin,
            json_body(bad.clone()),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_setting")),
            "{bad}"
        );
    }
    assert_eq!(
        call(&c, &s, "GET", "/v1/settings/retention", admin, None).1["days"],
        0
    );

    let (status, body) = call(
        &c,
        &s,
        "PUT",
        "/v1/settings/retention",
        admin,
        json_body(json!({"days": 30})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["days"].as_u64(), body["updated_by"].as_str()),
        (Some(30), Some("ops-admin"))
    );
    // Applied without a restart: the 2020 segment goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("action_name = 'old'") > 0 {
        assert!(Instant::now() < deadline, "retention did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The change is in the log, with the token's name as actor.
    let (_, page) = call(
        &c,
        &s,
        "GET",
        "/v1/events?filter=action_name%20%3D%20%27retention.updated%27",
        Some(&t.read),
        None,
    );
    let e = &page["events"][0];
    assert_eq!(
        e["actor"],
        json!({"type": "token", "id": "ops-admin", "name": "ops-admin"})
    );
    assert_eq!(e["environment"]["id"], "auditlog");
    assert_eq!(e["request"]["method"], "PUT");
    assert_eq!(e["request"]["path"], "/v1/settings/retention");
    assert_eq!(e["request"]["ip"], "127.0.0.1");
    assert_eq!(e["metadata"], json!({"old_days": 0, "new_days": 30}));
    assert!(e["description"].as_str().unwrap().contains("30 days"));
    // Metrics follow once the drop has finished.
    let metrics = || {
        c.get(format!("{}/metrics", s.base))
            .bearer_auth(&t.read)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    while !metrics().contains("auditlog_retention_dropped_events_total 20") {
        assert!(Instant::now() < deadline, "{}", metrics());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(metrics().contains("auditlog_audit_events_total 1"));

    // A restart with another configured value keeps the stored one.
    s.stop();
    let s = Server::start_with(&data, &[config[0], config[1], "--retention-days", "7"]);
    assert_eq!(
        call(&c, &s, "GET", "/v1/settings/retention", admin, None).1["days"],
        30
    );
    s.stop();
}

#[test]
fn metrics_count_ingest_queries_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let c = Client::new();
    let lines: String = (0..30)
        .map(|i| {
            format!(
                "{}\n",
                json!({"action_name": "m", "actor": {"type": "u", "id": format!("{i}")}})
            )
        })
        .collect();
    let bytes = lines.len();
    assert_eq!(post(&c, &s, "application/x-ndjson", lines).0, 201);
    assert_eq!(get(&c, &s, "/v1/events", &[("limit", "5")]).0, 200);
    for _ in 0..3 {
        assert_eq!(
            get(&c, &s, "/v1/events", &[("filter", "actor.type = ")]).0,
            400
        );
    }
    assert_eq!(
        get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM1", &[]).0,
        404
    );
    let r = c.get(format!("{}/metrics", s.base)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(value("auditlog_events_ingested_total"), 30.0);
    assert_eq!(value("auditlog_ingest_request_bytes_total"), bytes as f64);
    assert_eq!(value("auditlog_ingest_duration_seconds_count"), 1.0);
    assert_eq!(value("auditlog_events_stored"), 30.0);
    assert!(value("auditlog_segments") >= 1.0);
    assert!(value("auditlog_disk_bytes") > 0.0);
    // Nothing sealed yet: no backlog of either kind.
    assert_eq!(value("auditlog_segments_sealing"), 0.0);
    assert_eq!(value("auditlog_segments_awaiting_compaction"), 0.0);
    assert_eq!(value("auditlog_errors_total{code=\"bad_filter\"}"), 3.0);
    assert_eq!(value("auditlog_errors_total{code=\"not_found\"}"), 1.0);
    assert_eq!(
        value("auditlog_query_duration_seconds_count{route=\"/v1/events\"}"),
        4.0
    );
    assert!(text.contains("auditlog_query_duration_seconds_bucket{le="));
    s.stop();
}

#[test]
fn sigterm_during_ingest_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // Set once the server has exited: a later server on the same port (another
    // test's) must not keep these clients going.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (base, acked, stop) = (s.base.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = Client::new();
                for batch in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let body: String = (0..200)
                        .map(|i| format!("{}\n", json!({"action_name": "load", "actor": {"type": "client", "id": format!("{client}-{batch}-{i}")}})))
                        .collect();
                    let Ok(r) = c
                        .post(format!("{base}/v1/events"))
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                    else {
                        return; // the server has gone: nothing acknowledged
                    };
                    if r.status().as_u16() != 201 {
                        return;
                    }
                    let Ok(v) = r.json::<Value>() else { return };
                    let ids = v["ids"].as_array().unwrap().iter();
                    acked
                        .lock()
                        .unwrap()
                        .extend(ids.map(|i| i.as_str().unwrap().to_owned()));
                }
            })
        })
        .collect();
    // Let some batches through, then SIGTERM mid-stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 2_000 {
        assert!(Instant::now() < deadline, "no ingest progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_, graceful) = s.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(graceful, "graceful exit, code 0");
    for c in clients {
        c.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    drop(s);

    let s = Server::start(&dir.path().join("data"));
    let c = Client::new();
    let mut stored = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "10000")];
        if let Some(c) = cursor.as_deref() {
            q.push(("cursor", c));
        }
        let (status, page) = get(&c, &s, "/v1/events", &q);
        assert_eq!(status, 200);
        for e in page["events"].as_array().unwrap() {
            stored.insert(e["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged events lost",
        acked.len()
    );
    s.stop();
}

#[test]
fn cli_ingests_to_a_server_and_queries_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens_config(dir.path());
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", t.config.to_str().unwrap()],
    );
    let file = dir.path().join("events.ndjson");
    let mut text: String = (0..25)
        .map(|i| {
            format!(
                "{}\n",
                json!({"action_name": "cli", "actor": {"type": "u", "id": format!("{i}")}})
            )
        })
        .collect();
    text.push('\n');
    std::fs::write(&file, &text).unwrap();
    let auditlog = |args: &[&str], token: &str| {
        Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .args(args)
            .args(["--url", &s.base])
            .env("AUDITLOG_TOKEN", token)
            .output()
            .unwrap()
    };
    let file_arg = file.to_str().unwrap();
    let out = auditlog(&["ingest", file_arg, "--batch", "10"], &t.ingest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ingested 25 events"));

    // A bad line: the failing batch is refused whole and the input line named.
    text.push_str("{\"action_name\": \"cli\"}\n");
    std::fs::write(&file, &text).unwrap();
    let out = auditlog(&["ingest", file_arg, "--batch", "10"], &t.ingest);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 27: missing required field `actor`"),
        "{err}"
    );
    assert!(
        err.contains("20 events of earlier batches were stored"),
        "{err}"
    );

    // Reads need a read token; the ingest token is refused with 403.
    let out = auditlog(&["query", "action_name = 'cli'", "--count"], &t.ingest);
    assert!(String::from_utf8_lossy(&out.stderr).contains("403 forbidden"));
    let out = auditlog(&["query", "action_name = 'cli'", "--count"], &t.read);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "45");
    let out = auditlog(
        &[
            "query",
            "actor.id = '3'",
            "--format",
            "json",
            "--limit",
            "10",
        ],
        &t.read,
    );
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        events.as_array().unwrap().len(),
        2,
        "batches 1 and 2 both hold actor 3"
    );
    assert_eq!(events[0]["actor"]["id"], "3");
    // CSV: the export's header and columns, one row per event.
    let out = auditlog(&["query", "actor.id = '3'", "--format", "csv"], &t.read);
    let csv_text = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv_text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("occurred_at,id,action_name,actor.type,actor.id"),
        "{csv_text}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    for (row, event) in rows.iter().zip(events.as_array().unwrap()) {
        let id = event["id"].as_str().unwrap();
        assert!(row.contains(&format!(",{id},cli,")), "{row}");
    }
    let out = auditlog(&["query", "actor.id = '3'"], &t.read);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("OCCURRED_AT"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let out = auditlog(&["stats", "--json"], &t.read);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["events"], 45);
    assert_eq!(stats["sealing"], 0);
    assert!(stats["awaiting_compaction"].is_u64(), "{stats}");
    s.stop();
}

/// Runs the `auditlog` binary; (exit success, stdout).
fn run_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn public_key_checkpoints_proofs_and_offline_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let c = Client::new();
    let s = Server::start(&data);
    let lines: String = (0..20)
        .map(|i| {
            format!("{{\"action_name\":\"a.b\",\"actor\":{{\"type\":\"user\",\"id\":\"{i}\"}}}}\n")
        })
        .collect();
    let (status, body) = post(&c, &s, "application/x-ndjson", lines);
    assert_eq!(status, 201, "{body}");
    let id = body["ids"][7].as_str().unwrap().to_string();

    let (status, key) = get(&c, &s, "/v1/public-key", &[]);
    assert_eq!(status, 200);
    let public = key["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 64);
    assert!(key["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let (ok, printed) = run_cli(&["key", "public", "--data", data_arg]);
    assert!(ok);
    assert_eq!(printed.trim(), public);
    // The key sits beside the data directory, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let key_file = dir.path().join("data.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // The proof needs a checkpoint past the event: one is written for it.
    let (status, proof) = get(&c, &s, &format!("/v1/events/{id}/proof"), &[]);
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["position"], 7);
    assert_eq!(proof["following_count"], 12);
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    let (ok, out) = run_cli(&[
        "verify-proof",
        proof_file.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains(&id), "{out}");
    // The documented stand-alone checker (hashlib + cryptography) agrees,
    // where Python with `cryptography` is installed.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/tools/verify_proof.py");
    let has_python = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_python {
        let out = Command::new("python3")
            .args([script, proof_file.to_str().unwrap(), &public])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&id), "{text}");
    } else {
        eprintln!("python3 with cryptography not found: docs/tools/verify_proof.py not run");
    }
    let mut forged = proof.clone();
    forged["event"] = Value::String(proof["event"].as_str().unwrap().replace("a.b", "a.c"));
    std::fs::write(&proof_file, forged.to_string()).unwrap();
    let (ok, out) = run_cli(&[
        "verify-proof",
        proof_file.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(!ok, "{out}");

    let (status, list) = get(&c, &s, "/v1/checkpoints", &[]);
    assert_eq!(status, 200);
    let checkpoints = list["checkpoints"].as_array().unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0]["position"], 20);
    let (status, none) = get(&c, &s, "/v1/checkpoints", &[("after", "0")]);
    assert_eq!(status, 200);
    assert_eq!(none["checkpoints"].as_array().unwrap().len(), 0);
    let (status, _) = get(&c, &s, "/v1/events/not-a-ulid/proof", &[]);
    assert_eq!(status, 400);
    let (status, _) = get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0/proof", &[]);
    assert_eq!(status, 404);
    s.stop();

    // Kept elsewhere: the answer of GET /v1/checkpoints.
    let kept = dir.path().join("kept.json");
    std::fs::write(&kept, list.to_string()).unwrap();
    let copy = dir.path().join("copy");
    for sub in ["segments", "checkpoints"] {
        std::fs::create_dir_all(copy.join(sub)).unwrap();
    }
    for sub in ["", "segments", "checkpoints"] {
        for e in std::fs::read_dir(data.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, copy.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let copy_arg = copy.to_str().unwrap();
    let (ok, out) = run_cli(&[
        "verify",
        "--data",
        copy_arg,
        "--public-key",
        &public,
        "--checkpoint",
        kept.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("OK: 1 segments, 20 events"), "{out}");

    // Cut the newest events off the copy, consistently: only the checkpoint
    // kept elsewhere shows it.
    let seg = std::fs::read_dir(copy.join("segments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&seg).unwrap();
    let (ok, out) = run_cli(&[
        "verify",
        "--data",
        copy_arg,
        "--public-key",
        &public,
        "--checkpoint",
        kept.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("TRUNCATED"), "{out}");
}

#[test]
fn checkpoints_are_signed_at_the_configured_interval_while_events_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--checkpoint-interval-secs", "1"],
    );
    let one = json!({"action_name": "a.b", "actor": {"type": "user", "id": "1"}}).to_string();
    assert_eq!(post(&c, &s, "application/json", one.clone()).0, 201);
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = get(&c, &s, "/v1/checkpoints", &[]);
            let list = v["checkpoints"].as_array().unwrap().clone();
            if list.len() >= n {
                return list;
            }
            assert!(Instant::now() < deadline, "no interval checkpoint: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = wait_for(1);
    assert_eq!(first[0]["reason"], "interval");
    assert_eq!(first[0]["position"], 1);
    // None while nothing arrives; the next one once events do.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        get(&c, &s, "/v1/checkpoints", &[]).1["checkpoints"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(post(&c, &s, "application/json", one).0, 201);
    let second = wait_for(2);
    assert_eq!(second[1]["position"], 2);
    assert_eq!(second[1]["sequence"], 1);
}
