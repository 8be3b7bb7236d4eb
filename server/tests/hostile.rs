//! Hostile requests against the real server: malformed and deeply nested
//! JSON, huge bodies and lines, invalid UTF-8, control characters and NUL
//! bytes, extreme filters, forged cursors, path traversal, wrong content
//! types, malformed query strings and half-sent requests. Each must get a
//! 4xx with a JSON `{"error":{"code","message"}}` body, the server must stay
//! up, and the stored events must be exactly what they were (count and a
//! checksum of every event's bytes).

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use harness::{client, fingerprint, get, post, Server};
use serde_json::Value;

/// A server with a small body limit (so the 413 cases are cheap) and a
/// few stored events to guard.
fn start(dir: &std::path::Path) -> Server {
    let cfg = dir.join("auditlog.toml");
    std::fs::write(&cfg, "max_body_bytes = 2097152\nmax_event_bytes = 65536\n").unwrap();
    let data = dir.join("data");
    let s = Server::start_with(&data, &["--config", cfg.to_str().unwrap()]);
    let batch: String = (0..40).map(|i| harness::event("guard", i) + "\n").collect();
    let (status, body) = post(&s, "application/x-ndjson", batch);
    assert_eq!(status, 201, "{body}");
    s
}

/// The promise for every hostile request.
fn refused(s: &Server, before: (usize, u64), what: &str, (status, body): (u16, Value)) {
    assert!(
        (400..500).contains(&status),
        "{what}: answered {status}, want a 4xx: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        body["error"]["code"].is_string() && !message.is_empty(),
        "{what}: no JSON error body: {body}"
    );
    assert!(s.healthy(), "{what}: the server is down");
    assert_eq!(fingerprint(s), before, "{what}: stored data changed");
}

fn nested(open: &str, depth: usize, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn hostile_bodies_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let before = fingerprint(&s);
    let json = "application/json";
    let ndjson = "application/x-ndjson";
    let ok_event = r#"{"action_name":"a","actor":{"type":"u","id":"1"}}"#;

    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("100k [", json, "[".repeat(100_000).into_bytes()),
        ("100k [ closed", json, nested("[", 100_000, "", "]").into_bytes()),
        ("100k {", json, r#"{"a":"#.repeat(100_000).into_bytes()),
        (
            "deep payload",
            json,
            format!(
                r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"request":{{"payload":{}}}}}"#,
                nested("[", 5000, "1", "]")
            )
            .into_bytes(),
        ),
        ("deep ndjson line", ndjson, nested("[", 100_000, "", "]").into_bytes()),
        ("not json", json, b"{not json".to_vec()),
        ("empty body", json, Vec::new()),
        ("only whitespace ndjson", ndjson, b"\n\n  \r\n\t\n".to_vec()),
        ("json null", json, b"null".to_vec()),
        ("json string", json, b"\"event\"".to_vec()),
        ("empty array", json, b"[]".to_vec()),
        ("array of non-objects", json, b"[1,2,3]".to_vec()),
        ("trailing garbage", json, format!("{ok_event}xyz").into_bytes()),
        (
            "two objects in a json body",
            json,
            format!("{ok_event}{ok_event}").into_bytes(),
        ),
        ("invalid utf-8", json, {
            let mut b = br#"{"action_name":"a"#.to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            b.extend_from_slice(br#"","actor":{"type":"u","id":"1"}}"#);
            b
        }),
        ("invalid utf-8 ndjson", ndjson, {
            let mut b = format!("{ok_event}\n").into_bytes();
            b.extend_from_slice(b"{\"action_name\":\"\xed\xa0\x80\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}\n");
            b
        }),
        (
            "raw control character in a string",
            json,
            b"{\"action_name\":\"a\x01b\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}".to_vec(),
        ),
        (
            "raw NUL in a string",
            json,
            b"{\"action_name\":\"a\0\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}".to_vec(),
        ),
        ("NUL bytes", json, vec![0u8; 4096]),
        ("NUL between events", ndjson, {
            let mut b = format!("{ok_event}\n").into_bytes();
            b.push(0);
            b.extend_from_slice(format!("\n{ok_event}\n").as_bytes());
            b
        }),
        (
            "lone surrogate escape",
            json,
            br#"{"action_name":"\ud800","actor":{"type":"u","id":"1"}}"#.to_vec(),
        ),
        (
            "duplicate field",
            json,
            br#"{"action_name":"a","action_name":"b","actor":{"type":"u","id":"1"}}"#.to_vec(),
        ),
        (
            "huge number",
            json,
            format!(
                r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"occurred_at":{}}}"#,
                "9".repeat(10_000)
            )
            .into_bytes(),
        ),
        (
            "one event over the event limit",
            json,
            format!(
                r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"pad":"{}"}}"#,
                "x".repeat(100_000)
            )
            .into_bytes(),
        ),
        ("a huge ndjson line among good ones", ndjson, {
            let mut b = format!("{ok_event}\n").into_bytes();
            b.extend_from_slice(
                format!(
                    r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"pad":"{}"}}"#,
                    "x".repeat(1_500_000)
                )
                .as_bytes(),
            );
            b.extend_from_slice(format!("\n{ok_event}\n").as_bytes());
            b
        }),
        (
            "100k lines of {}",
            ndjson,
            "{}\n".repeat(100_000).into_bytes(),
        ),
        (
            "an id with path traversal",
            json,
            br#"{"id":"../../etc/passwd","action_name":"a","actor":{"type":"u","id":"1"}}"#.to_vec(),
        ),
        (
            "a time far in the future",
            json,
            br#"{"occurred_at":"9999-12-31T23:59:59Z","action_name":"a","actor":{"type":"u","id":"1"}}"#.to_vec(),
        ),
        (
            "a time before year 0",
            json,
            br#"{"occurred_at":"-0001-01-01T00:00:00Z","action_name":"a","actor":{"type":"u","id":"1"}}"#.to_vec(),
        ),
        (
            "an index key over the key limit",
            json,
            format!(
                r#"{{"action_name":"{}","actor":{{"type":"u","id":"1"}}}}"#,
                "a".repeat(10_000)
            )
            .into_bytes(),
        ),
    ];
    for (what, content_type, body) in cases {
        refused(&s, before, what, post(&s, content_type, body));
    }

    // Wrong content types.
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "\u{0}",
    ] {
        let r = client()
            .post(s.url("/v1/events"))
            .header("content-type", content_type)
            .body(ok_event)
            .send();
        // A header value reqwest itself refuses never reaches the server.
        if let Ok(r) = r {
            refused(
                &s,
                before,
                &format!("content type {content_type:?}"),
                harness::answer(r),
            );
        }
    }

    // Escaped control characters and NULs are valid JSON: stored byte for
    // byte and served back as sent, never mangled.
    let (status, body) = post(
        &s,
        json,
        r#"{"action_name":"a\u0000\u001fb","actor":{"type":"u","id":"\u0000"},"description":"\r\n\t\b\f\u007f"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = body["ids"][0].as_str().unwrap();
    let (status, e) = get(&s, &format!("/v1/events/{id}"), &[]);
    assert_eq!(status, 200);
    assert_eq!(e["action_name"], "a\u{0}\u{1f}b");
    assert_eq!(e["actor"]["id"], "\u{0}");
    assert_eq!(e["description"], "\r\n\t\u{8}\u{c}\u{7f}");
    s.stop();
}

#[test]
fn hostile_queries_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let before = fingerprint(&s);
    let long_filter = format!("action_name = '{}'", "a".repeat(20_000));
    let deep_filter = nested("(", 10_000, "a = 1", ")");
    let deep_not = format!("{}a = 1", "NOT ".repeat(10_000));
    let wide_in = format!(
        "actor.id IN ({})",
        (0..1000)
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let long_path = format!("{} = 1", vec!["a"; 1000].join("."));
    // A cursor with a valid checksum over nonsense: a client can forge
    // the CRC, so the server must not trust what the cursor says.
    let forged_cursor = {
        let mut b = vec![1u8, 0];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&i64::MIN.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let (upper, zeros, very_long, accented) = (
        "AB".repeat(38),
        "00".repeat(38),
        "0".repeat(50_000),
        "é".repeat(38),
    );
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("filter 20k long", vec![("filter", &long_filter)]),
        ("filter 10k (", vec![("filter", &deep_filter)]),
        ("filter 10k NOT", vec![("filter", &deep_not)]),
        (
            "filter with 1000 path segments",
            vec![("filter", &long_path)],
        ),
        ("filter with NUL", vec![("filter", "action_name\0 = 'a'")]),
        (
            "filter of control characters",
            vec![("filter", "\u{1}\u{2}\u{7f}")],
        ),
        (
            "filter unterminated string",
            vec![("filter", "action_name = 'a")],
        ),
        (
            "filter sql injection",
            vec![("filter", "1=1; DROP TABLE events; --")],
        ),
        ("filter subquery", vec![("filter", "a IN (SELECT 1)")]),
        ("cursor garbage", vec![("cursor", "garbage")]),
        ("cursor upper-case hex", vec![("cursor", &upper)]),
        ("cursor wrong checksum", vec![("cursor", &zeros)]),
        ("cursor very long", vec![("cursor", &very_long)]),
        ("cursor not ascii", vec![("cursor", &accented)]),
        ("limit negative", vec![("limit", "-1")]),
        ("limit huge", vec![("limit", "99999999999999999999999")]),
        ("order sideways", vec![("order", "sideways")]),
        ("from not a time", vec![("from", "yesterday")]),
        (
            "from after to",
            vec![
                ("from", "2026-02-01T00:00:00Z"),
                ("to", "2026-01-01T00:00:00Z"),
            ],
        ),
        ("year 99999", vec![("from", "99999-01-01T00:00:00Z")]),
    ];
    for (what, query) in &cases {
        for path in ["/v1/events", "/v1/events/count"] {
            if path.ends_with("count")
                && query
                    .iter()
                    .any(|(k, _)| ["cursor", "limit", "order"].contains(k))
            {
                continue;
            }
            refused(&s, before, &format!("{path} {what}"), get(&s, path, query));
        }
    }
    // The wide IN list is legal, if long: it must answer, not fall over.
    let (status, body) = get(&s, "/v1/events/count", &[("filter", &wide_in)]);
    assert_eq!((status, &body["count"]), (200, &Value::from(0)), "{body}");

    // A forged cursor may point anywhere; the answer is a page or a 4xx.
    let (status, body) = get(&s, "/v1/events", &[("cursor", &forged_cursor)]);
    assert!(
        status == 200 || (400..500).contains(&status),
        "forged cursor: {status} {body}"
    );
    assert!(s.healthy());

    // Malformed query strings: the extractor's own rejections must use the
    // JSON error shape too.
    for raw in [
        "filter=a&filter=b",
        "filter=%zz",
        "filter=%ff%fe",
        "from=%00",
        "to=%C0%80",
    ] {
        for path in ["/v1/events", "/v1/events/count"] {
            let r = client()
                .get(format!("{}?{raw}", s.url(path)))
                .send()
                .unwrap();
            refused(&s, before, &format!("{path}?{raw}"), harness::answer(r));
        }
    }

    // Ids: not ULIDs, traversal, overlong, encoded slashes and NULs.
    for id in [
        "not-a-ulid",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%5C..%5Cwindows",
        "01FC31EHYYR0MF7J7GEJK2TFM0%00",
        "%00",
        "01FC31EHYYR0MF7J7GEJK2TFM0/../../x",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ] {
        let r = client()
            .get(format!("{}/v1/events/{id}", s.base))
            .send()
            .unwrap();
        refused(&s, before, &format!("id {id}"), harness::answer(r));
    }
    let long_id = "A".repeat(50_000);
    let r = client()
        .get(format!("{}/v1/events/{long_id}", s.base))
        .send()
        .unwrap();
    refused(&s, before, "id 50k long", harness::answer(r));
    s.stop();
}

/// Sends raw bytes on a fresh connection and returns what came back.
fn raw(s: &Server, request: &[u8]) -> String {
    let addr = s.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn raw_http_abuse_and_slow_clients_leave_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let before = fingerprint(&s);

    // A body over the limit. Sent whole, it races the server: the 413
    // comes after the first 2 MiB and the connection closes while the
    // client still writes (a broken pipe instead of the answer).
    let mut request = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 3000000\r\nConnection: close\r\n\r\n".to_vec();
    // One byte past the limit: the server reads all of it, so it closes
    // without unread data (which would reset the connection).
    request.resize(request.len() + 2 * 1024 * 1024 + 1, b'\n');
    let response = raw(&s, &request);
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(response.contains("body_too_large"), "{response}");
    assert!(s.healthy());

    // Paths a client library would normalise away, sent as they are.
    for path in [
        "/v1/events/../../../../etc/passwd",
        "/v1/events/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/events/%2e%2e/%2e%2e/etc/passwd",
        "/../../etc/passwd",
        "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0/../../../x",
    ] {
        let response = raw(
            &s,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = status_of(&response);
        assert!((400..500).contains(&status), "{path}: {status}\n{response}");
        assert!(
            !response.contains("root:"),
            "{path} served a file: {response}"
        );
        assert!(response.contains("\"error\""), "{path}: {response}");
    }

    // A body shorter than its Content-Length, then the client goes away:
    // nothing is stored.
    let ok_event = br#"{"action_name":"a","actor":{"type":"u","id":"1"}}"#;
    {
        let addr = s.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            ok_event.len() + 100
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(ok_event).unwrap();
    }
    // Slow clients: many connections holding half-sent headers or bodies
    // open must not stop others from being served.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow: Vec<TcpStream> = Vec::new();
    for i in 0..64 {
        let mut stream = TcpStream::connect(&addr).unwrap();
        let partial: &[u8] = if i % 2 == 0 {
            b"GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: "
        } else {
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"action_name\":"
        };
        stream.write_all(partial).unwrap();
        slow.push(stream);
    }
    assert!(s.healthy(), "healthz while slow clients hang on");
    assert_eq!(fingerprint(&s), before, "a half-sent body was stored");
    drop(slow);

    // Garbage instead of HTTP, oversized headers, bad chunked encoding.
    for request in [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello\r\n\r\n".to_vec(),
        format!("GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)).into_bytes(),
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(),
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}".to_vec(),
    ] {
        let response = raw(&s, &request);
        let status = status_of(&response);
        assert!(
            status == 0 || (400..500).contains(&status),
            "answered {status}: {response}"
        );
        assert!(s.healthy(), "down after {:?}", String::from_utf8_lossy(&request[..20]));
    }
    assert_eq!(fingerprint(&s), before);

    // Methods and endpoints that do not exist.
    for (method, path) in [
        ("DELETE", "/v1/events"),
        ("PUT", "/v1/events/01FC31EHYYR0MF7J7GEJK2TFM0"),
        ("PATCH", "/v1/events/count"),
        ("GET", "/v1/nothing"),
    ] {
        let r = client()
            .request(method.parse().unwrap(), s.url(path))
            .send()
            .unwrap();
        refused(&s, before, &format!("{method} {path}"), harness::answer(r));
    }

    // A request line of a megabyte.
    let response = raw(
        &s,
        format!(
            "GET /v1/events?filter={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(1 << 20)
        )
        .as_bytes(),
    );
    let status = status_of(&response);
    assert!(status == 0 || (400..500).contains(&status), "{status}");
    assert!(s.healthy());
    assert_eq!(fingerprint(&s), before);
    s.stop();
}
