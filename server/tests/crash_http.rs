//! The real `auditlog serve` under continuous ingest from several
//! concurrent clients, killed with SIGKILL at random moments and started
//! again, many times. After every restart:
//! - every event whose batch was answered 201 is there exactly once: in a
//!   full listing, by `GET /v1/events/{id}`, and in the counts;
//! - it is found by its filters (indexed and not);
//! - every batch is whole or absent (batches are all or nothing);
//! - counts agree with the listing, and ingest goes on.
//!
//! CI runs `ROUNDS` rounds (about 20-30 s). A longer run:
//! `AUDITLOG_CRASH_ROUNDS=200 cargo test -p auditlog-server --test crash_http -- --nocapture`

mod harness;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{all_events, client, count, get, Server};
use serde_json::Value;

const ROUNDS: usize = 10;
const CLIENTS: usize = 4;

/// What the clients were told: batch tag -> the ids answered 201.
type Acked = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// Posts batches until the server stops answering; records each 201.
fn client_loop(base: String, client_no: usize, round: usize, acked: Acked) {
    let c = client();
    let mut rng = fastrand::Rng::with_seed((round * 100 + client_no) as u64);
    for n in 0.. {
        let size = rng.usize(1..20);
        let tag = format!("r{round}-c{client_no}-b{n}");
        let body: String = (0..size)
            .map(|i| {
                format!(
                    "{{\"action_name\":\"crash.a{}\",\"actor\":{{\"type\":\"client\",\"id\":\"c{client_no}\"}},\"request\":{{\"path\":\"/batch/{tag}\"}},\"batch\":\"{tag}\",\"size\":{size},\"i\":{i},\"pad\":\"{}\"}}\n",
                    i % 3,
                    "p".repeat(rng.usize(0..200))
                )
            })
            .collect();
        let r = c
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send();
        let Ok(r) = r else { return };
        let status = r.status().as_u16();
        let Ok(v) = r.json::<Value>() else { return };
        assert!(
            status == 201 || status == 503,
            "{tag}: answered {status}: {v}"
        );
        if status == 201 {
            let ids: Vec<String> = v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids.len(), size);
            acked.lock().unwrap().insert(tag, ids);
        }
    }
}

fn check_store(
    s: &Server,
    acked: &HashMap<String, Vec<String>>,
    round: usize,
    rng: &mut fastrand::Rng,
) {
    let listed = all_events(s);
    let mut by_id: HashMap<&str, &str> = HashMap::new();
    let mut batches: HashMap<String, (u64, u64)> = HashMap::new();
    let mut per_client: HashMap<String, u64> = HashMap::new();
    for (id, json) in &listed {
        assert!(
            by_id.insert(id, json).is_none(),
            "round {round}: {id} listed twice"
        );
        let v: Value = serde_json::from_str(json).unwrap();
        if let Some(tag) = v["batch"].as_str() {
            let e = batches
                .entry(tag.to_owned())
                .or_insert((0, v["size"].as_u64().unwrap()));
            e.0 += 1;
            *per_client
                .entry(v["actor"]["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for (tag, (have, size)) in &batches {
        assert_eq!(have, size, "round {round}: batch {tag} is not whole");
    }
    for (tag, ids) in acked {
        for id in ids {
            assert!(
                by_id.contains_key(id.as_str()),
                "round {round}: acknowledged {id} of {tag} is gone"
            );
        }
    }
    assert_eq!(
        count(s, None),
        listed.len() as u64,
        "round {round}: count disagrees with the listing"
    );
    // Indexed filters: the count per client equals what the listing holds.
    for (client_id, n) in &per_client {
        assert_eq!(
            count(s, Some(&format!("actor.id = '{client_id}'"))),
            *n,
            "round {round}: count for {client_id}"
        );
    }
    // A sample of acknowledged batches by a residual (unindexed) filter,
    // and their events one by one.
    let mut tags: Vec<&String> = acked.keys().collect();
    tags.sort();
    rng.shuffle(&mut tags);
    for tag in tags.into_iter().take(8) {
        let (status, page) = get(
            s,
            "/v1/events",
            &[
                (
                    "filter",
                    &format!("request.path = '/batch/{tag}' AND actor.type = 'client'"),
                ),
                ("limit", "100"),
            ],
        );
        assert_eq!(status, 200, "{page}");
        let found: HashSet<&str> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let want: HashSet<&str> = acked[tag].iter().map(String::as_str).collect();
        assert_eq!(found, want, "round {round}: filter for batch {tag}");
        for id in acked[tag].iter().take(5) {
            let r = client()
                .get(s.url(&format!("/v1/events/{id}")))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "round {round}: GET {id}");
            let got: Value = r.json().unwrap();
            let listed: Value = serde_json::from_str(by_id[id.as_str()]).unwrap();
            assert_eq!(
                got, listed,
                "round {round}: GET {id} differs from the listing"
            );
        }
    }
}

#[test]
fn sigkill_under_concurrent_ingest_loses_no_acknowledged_event() {
    let rounds: usize = std::env::var("AUDITLOG_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = fastrand::Rng::with_seed(11);
    let acked: Acked = Arc::default();
    let mut s = Server::start(&data);
    for round in 0..rounds {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (base, acked) = (s.base.clone(), acked.clone());
                std::thread::spawn(move || client_loop(base, n, round, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.u64(100..500)));
        s.kill_now();
        for c in clients {
            c.join().expect("a client saw a wrong answer");
        }
        s = s.restart();
        let acked_now = acked.lock().unwrap().clone();
        check_store(&s, &acked_now, round, &mut rng);
        // Ingest goes on after recovery.
        let (status, body) = harness::post(&s, "application/json", harness::event("after", round));
        assert_eq!(status, 201, "round {round}: {body}");
    }
    let total: usize = acked.lock().unwrap().values().map(Vec::len).sum();
    println!("{rounds} kills, {total} acknowledged events, none lost");
    assert!(
        total > rounds * 10,
        "too few acknowledged events to prove anything: {total}"
    );
    s.stop();
}
