//! The viewer's server side over real HTTP: the page, its assets and
//! headers, and `GET /v1/events/overview`.

use reqwest::blocking::Client;
use serde_json::{json, Value};

mod harness;

/// The server on a data directory of its own, removed with it.
struct Server {
    server: harness::Server,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Server {
    type Target = harness::Server;
    fn deref(&self) -> &harness::Server {
        &self.server
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    Server {
        server: harness::Server::start(&dir.path().join("data")),
        _dir: dir,
    }
}

fn overview(c: &Client, s: &Server, query: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .get(format!("{}/v1/events/overview", s.base))
        .query(query)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

#[test]
fn page_and_assets_carry_their_types_caching_and_csp() {
    let s = start();
    let c = Client::new();
    let page = c.get(format!("{}/", s.base)).send().unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    let html = page.text().unwrap();
    let js = html
        .split("src=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        js.starts_with("/assets/") && js.ends_with("/app.js"),
        "{js}"
    );

    let asset = c.get(format!("{}{js}", s.base)).send().unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = c
        .get(format!("{}{}", s.base, js.replace("app.js", "app.css")))
        .send()
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // An older version's URL still answers, but is not cached for good.
    let old = c
        .get(format!("{}/assets/0000000000000000/app.js", s.base))
        .send()
        .unwrap();
    assert_eq!(old.status(), 200);
    assert_eq!(old.headers()["cache-control"], "no-cache");
    let missing = c
        .get(format!("{}/assets/0000000000000000/nope.js", s.base))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);

    // A permanent link to an event answers the same page.
    let deep = c
        .get(format!("{}/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", s.base))
        .send()
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert_eq!(deep.text().unwrap(), html);
}

#[test]
fn overview_counts_buckets_and_top_values() {
    let s = start();
    let c = Client::new();
    // 2024-03-10: 5 events in hour 00, 3 in hour 02, none in hour 01.
    let mut events = Vec::new();
    for (i, (hour, action, actor)) in [
        (0, "items.update", "1"),
        (0, "items.update", "1"),
        (0, "items.update", "2"),
        (0, "items.create", "1"),
        (0, "users.login", "3"),
        (2, "items.update", "2"),
        (2, "items.create", "2"),
        (2, "items.update", "1"),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(json!({
            "occurred_at": format!("2024-03-10T0{hour}:{:02}:00Z", i),
            "action_name": action,
            "actor": {"type": "user", "id": actor, "name": format!("user{actor}@example.com")},
            "environment": {"id": if i % 2 == 0 { "main" } else { "staging" }},
        }));
    }
    let r = c
        .post(format!("{}/v1/events", s.base))
        .json(&events)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    let (status, o) = overview(
        &c,
        &s,
        &[
            ("from", "2024-03-10T00:00:00Z"),
            ("to", "2024-03-10T03:00:00Z"),
            ("top", "2"),
        ],
    );
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["total"], 8);
    assert_eq!(o["complete"], true);
    let counts: Vec<(String, u64)> = o["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let hours: Vec<u64> = counts.iter().map(|c| c.1).collect();
    assert_eq!(hours, [5, 0, 3], "empty hours are filled in: {counts:?}");
    assert!(counts[1].0.starts_with("2024-03-10T01:00:00"));
    assert_eq!(
        o["top_actions"],
        json!([{"value": "items.update", "count": 5}, {"value": "items.create", "count": 2}])
    );
    assert_eq!(
        o["top_actors"],
        json!([
            {"type": "user", "id": "1", "name": "user1@example.com", "count": 4},
            {"type": "user", "id": "2", "name": "user2@example.com", "count": 3},
        ])
    );
    assert_eq!(
        o["top_environments"],
        json!([{"value": "main", "count": 4}, {"value": "staging", "count": 4}])
    );

    // A filter the indexes answer, and one that needs the events read.
    let (_, o) = overview(&c, &s, &[("filter", "actor.id = '2'"), ("bucket", "day")]);
    assert_eq!(o["total"], 3);
    assert_eq!(o["decoded_events"], 0);
    assert_eq!(o["bucket"], "day");
    assert_eq!(o["buckets"].as_array().unwrap().len(), 1);
    let (_, o) = overview(&c, &s, &[("filter", "actor.name = 'user3@example.com'")]);
    assert_eq!(o["total"], 1);
    assert_eq!(
        o["top_actions"],
        json!([{"value": "users.login", "count": 1}])
    );
    assert!(o["decoded_events"].as_u64().unwrap() >= 1);

    // Client mistakes are 400s with a precise error.
    let (status, e) = overview(&c, &s, &[("filter", "action_name = = 'x'")]);
    assert_eq!(status, 400);
    assert_eq!(e["error"]["code"], "bad_filter");
    assert!(e["error"]["column"].as_u64().unwrap() > 1);
    let (status, e) = overview(&c, &s, &[("bucket", "minute")]);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_query"))
    );
    let (status, e) = overview(&c, &s, &[("top", "0")]);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_query"))
    );
    let (status, e) = overview(
        &c,
        &s,
        &[
            ("from", "2000-01-01T00:00:00Z"),
            ("to", "2024-01-01T00:00:00Z"),
        ],
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("too_many_buckets"))
    );
    let (status, _) = overview(
        &c,
        &s,
        &[
            ("from", "2000-01-01T00:00:00Z"),
            ("to", "2024-01-01T00:00:00Z"),
            ("bucket", "day"),
        ],
    );
    assert_eq!(status, 400, "24 years of days is over the limit too");
}
