//! Damage on disk, end to end: bit flips, a zeroed block, truncation, an
//! extra or foreign segment file. Each is found by `auditlog verify`, which
//! names the file and the byte offset and exits 1; the rest of the store is
//! still served; nothing damaged is ever served as whole.
//!
//! The first test damages a sealed segment under a running server and
//! queries around it over HTTP; the second damages copies of one store in
//! every way and reads what `verify` prints.

mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use auditlog_engine::segment::format::{BLOCK_HEADER_LEN, HEADER_LEN};
use harness::{all_events, count, get, post, Server};
use serde_json::Value;

const DAYS: [i64; 3] = [3, 2, 1];
const PER_DAY: usize = 30;

/// Three batches, one per day (3, 2 and 1 days ago): the first two days
/// end up in sealed segments (a batch in a later day seals the head), the
/// last in the head. Returns id -> JSON of everything acknowledged.
fn fill(s: &Server) -> HashMap<String, String> {
    let now = time::OffsetDateTime::now_utc();
    for (b, days) in DAYS.iter().enumerate() {
        let at = now - time::Duration::days(*days);
        let body: String = (0..PER_DAY)
            .map(|i| {
                let t = (at + time::Duration::seconds(i as i64))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                format!(
                    "{{\"occurred_at\":\"{t}\",\"action_name\":\"damage.test\",\"actor\":{{\"type\":\"day\",\"id\":\"d{days}\"}},\"i\":{i},\"pad\":\"{}\"}}\n",
                    "z".repeat((b * 31 + i * 7) % 90)
                )
            })
            .collect();
        let (status, body) = post(s, "application/x-ndjson", body);
        assert_eq!(status, 201, "{body}");
    }
    all_events(s).into_iter().collect()
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn verify(data: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["verify", "--data"])
        .arg(data)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Changes bytes in place: never truncates, because a running server maps
/// sealed segments and a shrinking mapped file is fatal to the process
/// that maps it (SIGBUS), which is not the damage under test.
fn patch(path: &Path, at: usize, f: impl FnOnce(&mut Vec<u8>, usize)) {
    use std::os::unix::fs::FileExt;
    let before = std::fs::read(path).unwrap();
    let mut bytes = before.clone();
    f(&mut bytes, at);
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    if bytes.len() < before.len() {
        file.set_len(bytes.len() as u64).unwrap();
    }
    file.write_all_at(&bytes, 0).unwrap();
}

/// Every event a 200 answer carried must be one acknowledged, byte for byte.
fn genuine(page: &Value, acked: &HashMap<String, String>) {
    for e in page["events"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        let want: Value = serde_json::from_str(&acked[id]).unwrap();
        assert_eq!(e, &want, "served {id} altered");
    }
}

#[test]
fn a_damaged_sealed_segment_under_a_running_server_hides_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // No background compaction: it could read the segment's blocks just
    // before the damage and rename a clean copy over the damaged file.
    let s = Server::start_with(&data, &["--compact-level", "0"]);
    let acked = fill(&s);
    let segs = segments(&data);
    assert_eq!(segs.len(), 3, "two sealed segments and a head: {segs:?}");
    // Flip a bit inside the first block's payload of the middle (day 2)
    // segment, under the server's feet.
    patch(&segs[1], HEADER_LEN + BLOCK_HEADER_LEN + 5, |b, at| {
        b[at] ^= 0x10
    });

    // Everything around it is served, whole.
    for day in ["d3", "d1"] {
        let (status, page) = get(
            &s,
            "/v1/events",
            &[("filter", &format!("actor.id = '{day}'"))],
        );
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["events"].as_array().unwrap().len(), PER_DAY);
        genuine(&page, &acked);
        assert_eq!(
            count(&s, Some(&format!("actor.id = '{day}'"))),
            PER_DAY as u64
        );
    }
    for (id, json) in acked.iter().filter(|(_, j)| !j.contains("\"d2\"")).take(10) {
        let (status, e) = get(&s, &format!("/v1/events/{id}"), &[]);
        assert_eq!(status, 200);
        assert_eq!(e, serde_json::from_str::<Value>(json).unwrap());
    }
    // Reads of the damaged block fail plainly; never a damaged event.
    let (status, page) = get(&s, "/v1/events", &[("filter", "actor.id = 'd2'")]);
    match status {
        200 => genuine(&page, &acked),
        _ => assert_eq!(page["error"]["code"], "damaged_data", "{status} {page}"),
    }
    assert!(s.healthy());

    // Stopped, the store is verified: the file and the block's offset.
    s.stop();
    let (code, out) = verify(&data);
    assert_eq!(code, 1, "{out}");
    let name = segs[1].file_name().unwrap().to_str().unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(name) && l.contains(&format!("byte {HEADER_LEN}"))),
        "verify must name {name} and byte {HEADER_LEN}:\n{out}"
    );
    // Verify set it aside: the server serves every other event again.
    let s = Server::start(&data);
    let listed: HashMap<String, String> = all_events(&s).into_iter().collect();
    assert_eq!(listed.len(), 2 * PER_DAY);
    for (id, json) in &listed {
        assert_eq!(
            serde_json::from_str::<Value>(json).unwrap(),
            serde_json::from_str::<Value>(&acked[id]).unwrap()
        );
        assert!(!json.contains("\"d2\""));
    }
    s.stop();
}

/// Copies a directory tree (the pristine store) for one scenario.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn block_len(seg: &[u8], at: usize) -> usize {
    BLOCK_HEADER_LEN + u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize
}

#[test]
fn verify_names_the_file_and_offset_of_every_kind_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let s = Server::start(&pristine);
    let acked = fill(&s);
    // Today's events start a new head (the day-1 segment is sealed), in
    // two batches so the head holds a whole block after its first.
    for n in 0..2 {
        let (status, _) = post(&s, "application/json", harness::event("today", n));
        assert_eq!(status, 201);
    }
    s.stop();
    let (code, out) = verify(&pristine);
    assert_eq!(code, 0, "the pristine store verifies: {out}");
    let other = dir.path().join("other");
    let s = Server::start(&other);
    fill(&s);
    s.stop();
    let foreign = segments(&other)[0].clone();

    type Damage = Box<dyn Fn(&[PathBuf], &Path) -> (String, u64)>;
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    let scenarios: Vec<(&str, Damage)> = vec![
        (
            "bit flip in a block payload",
            Box::new(move |segs, _| {
                patch(&segs[0], HEADER_LEN + BLOCK_HEADER_LEN + 9, |b, at| {
                    b[at] ^= 1
                });
                (name(&segs[0]), HEADER_LEN as u64)
            }),
        ),
        (
            "bit flip in a segment header",
            Box::new(move |segs, _| {
                patch(&segs[1], 40, |b, at| b[at] ^= 0x80);
                (name(&segs[1]), 0)
            }),
        ),
        (
            "bit flip in the footer",
            Box::new(move |segs, _| {
                let len = std::fs::metadata(&segs[0]).unwrap().len() as usize;
                patch(&segs[0], len - 30, |b, at| b[at] ^= 4);
                (name(&segs[0]), (len - 32) as u64)
            }),
        ),
        (
            "a zeroed block",
            Box::new(move |segs, _| {
                patch(&segs[1], HEADER_LEN, |b, at| {
                    let n = block_len(b, at);
                    b[at..at + n].fill(0);
                });
                (name(&segs[1]), HEADER_LEN as u64)
            }),
        ),
        (
            "a zeroed block in the head, whole blocks after it",
            Box::new(move |segs, _| {
                assert_eq!(segs.len(), 4, "three sealed days and today's head");
                patch(&segs[3], HEADER_LEN, |b, at| {
                    let n = block_len(b, at);
                    b[at..at + n].fill(0);
                });
                (name(&segs[3]), HEADER_LEN as u64)
            }),
        ),
        (
            "a truncated sealed segment",
            Box::new(move |segs, _| {
                let len = std::fs::metadata(&segs[0]).unwrap().len();
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&segs[0])
                    .unwrap();
                f.set_len(len - 100).unwrap();
                (name(&segs[0]), len - 100)
            }),
        ),
        (
            "an extra copy of a segment under another name",
            Box::new(move |segs, data| {
                let extra = data.join("segments/0000000000000100.seg");
                std::fs::copy(&segs[0], &extra).unwrap();
                (name(&extra), 32)
            }),
        ),
        (
            "a segment from another data directory",
            Box::new(move |_, data| {
                let target = data.join("segments/0000000000000100.seg");
                std::fs::copy(&foreign, &target).unwrap();
                (name(&target), 16)
            }),
        ),
    ];
    for (what, damage) in scenarios {
        let data = dir.path().join(what.replace(' ', "_"));
        copy_dir(&pristine, &data);
        let (file, offset) = damage(&segments(&data), &data);
        let (code, out) = verify(&data);
        assert_eq!(code, 1, "{what}: verify must fail:\n{out}");
        assert!(
            out.lines()
                .any(|l| l.contains(&file) && l.contains(&format!("byte {offset}"))),
            "{what}: verify must name {file} at byte {offset}:\n{out}"
        );
        // A second verify still fails until an operator deals with it.
        assert_eq!(verify(&data).0, 1, "{what}: damage forgotten");
        // The rest is served, and only whole, acknowledged events.
        let s = Server::start(&data);
        let listed = all_events(&s);
        assert!(!listed.is_empty(), "{what}: nothing served");
        if what.contains("extra") || what.contains("another") {
            // A stray file must not cost the real store anything.
            assert_eq!(listed.len(), 3 * PER_DAY + 2, "{what}: events hidden");
        }
        for (id, json) in &listed {
            let Some(want) = acked.get(id) else { continue };
            assert_eq!(
                serde_json::from_str::<Value>(json).unwrap(),
                serde_json::from_str::<Value>(want).unwrap(),
                "{what}: {id} altered"
            );
        }
        assert_eq!(count(&s, None), listed.len() as u64, "{what}");
        s.stop();
    }
}
