//! A real crash loop: a child process appends batches and reports each
//! acknowledgement on stdout; it is killed with SIGKILL at a random moment,
//! many times over. After each kill the store must hold every acknowledged
//! event exactly once, hold every batch whole or not at all, and take new
//! appends.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use auditlog_engine::{Engine, EngineConfig};

const CHILD_ENV: &str = "AUDITLOG_CRASH_CHILD_DIR";

fn config() -> EngineConfig {
    // Small segments so that kills also land during seals.
    EngineConfig {
        max_segment_events: 400,
        block_bytes: 4096,
        ..EngineConfig::default()
    }
}

/// The child's loop: append forever, print "ACK <batch> <id>..." after each.
fn child(dir: &str) {
    let (engine, _) = Engine::open(dir, config()).unwrap();
    let pid = std::process::id();
    for n in 0.. {
        let size = 1 + (n * 7 + pid as usize) % 40;
        let tag = format!("{pid}-{n}");
        let batch: Vec<String> = (0..size)
            .map(|i| {
                format!(
                    r#"{{"action_name":"crash.test","actor":{{"type":"proc","id":"{pid}"}},"batch":"{tag}","size":{size},"i":{i},"pad":"{}"}}"#,
                    "p".repeat(i * 13 % 300)
                )
            })
            .collect();
        let out = engine.append_json(&batch).unwrap();
        let ids: Vec<String> = out.iter().map(|o| o.id.to_string()).collect();
        println!("ACK {tag} {}", ids.join(" "));
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    let mut rng = fastrand::Rng::with_seed(7);
    let rounds = 12;
    for round in 0..rounds {
        let mut proc = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_at_random_moments_loses_no_acknowledged_event",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.u64(80..600)));
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        let lines = reader.join().unwrap();
        for line in lines.iter().filter_map(|l| l.strip_prefix("ACK ")) {
            // A line cut by the kill is not an acknowledgement we can trust
            // to be whole: only count lines with every id of the batch.
            let mut parts = line.split(' ');
            parts.next();
            acked.extend(parts.filter(|p| p.len() == 26).map(str::to_owned));
        }

        let (engine, report) = Engine::open(dir.path(), config()).unwrap();
        // A process crash loses only what was not yet written: a torn
        // tail at most, never something reported as damage.
        assert!(report.quarantined.is_empty(), "round {round}: {report:?}");
        let mut seen = HashSet::new();
        let mut batches: HashMap<String, (u64, u64)> = HashMap::new();
        for e in engine.snapshot().events() {
            let e = e.unwrap();
            assert!(
                seen.insert(e.id.to_string()),
                "round {round}: {} stored twice",
                e.id
            );
            let v = e.value().unwrap();
            let entry = batches
                .entry(v["batch"].as_str().unwrap().to_owned())
                .or_insert((0, v["size"].as_u64().unwrap()));
            entry.0 += 1;
        }
        for id in &acked {
            assert!(
                seen.contains(id),
                "round {round}: acknowledged event {id} lost"
            );
        }
        for (tag, (have, size)) in batches {
            assert_eq!(have, size, "round {round}: batch {tag} is not whole");
        }
        // The store takes appends after recovery.
        engine
            .append_json(&[r#"{"action_name":"after.crash","actor":{"type":"t","id":"1"},"batch":"after","size":1}"#.replace("after\"", &format!("after-{round}\""))])
            .unwrap();
    }
    assert!(
        acked.len() > 100,
        "the child acknowledged too little to prove anything: {}",
        acked.len()
    );
}
