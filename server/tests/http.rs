//! The real `auditlog` binary on a loopback port, spoken to over HTTP.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Client::new().get(format!("{base}/healthz")).send().is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, base }
    }

    /// SIGTERM, then wait: the graceful path.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let s = Server::start(dir.path());

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
        post(&c, &s, "application/json", vec![b'x'; 70 << 20]).0,
        413
    );

    // A restart keeps every acknowledged event.
    s.stop();
    let s = Server::start(dir.path());
    assert_eq!(get(&c, &s, "/v1/events/count", &[]).1["count"], 51);
    assert_eq!(
        get(&c, &s, "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0", &[]).0,
        200
    );
    s.stop();
}
