//! Event proofs and export manifests: built by the engine, checked with
//! nothing but the public key, and refused once anything in them changes.

use auditlog_engine::integrity::checkpoint::CheckpointReason;
use auditlog_engine::integrity::key::Signer;
use auditlog_engine::integrity::manifest::{ContentHasher, ExportFacts};
use auditlog_engine::integrity::proof::EventProof;
use auditlog_engine::io::StdFs;
use auditlog_engine::{Engine, EngineConfig};

fn open(dir: &std::path::Path) -> Engine {
    let cfg = EngineConfig {
        block_bytes: 512,
        max_segment_events: 40,
        dictionary: false,
        signing_key: Some(dir.join("signing.key")),
        ..EngineConfig::default()
    };
    Engine::open(dir.join("data"), cfg).unwrap().0
}

fn event(n: usize) -> String {
    format!(
        r#"{{"action_name":"a.b","actor":{{"type":"user","id":"{n}"}},"metadata":{{"n":{n}}}}}"#
    )
}

#[test]
fn proofs_verify_for_sealed_head_and_uncheckpointed_events_and_fail_when_altered() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = open(tmp.path());
    let mut ids = Vec::new();
    for b in 0..11 {
        let batch: Vec<String> = (b * 10..b * 10 + 10).map(event).collect();
        ids.extend(
            engine
                .append_json(&batch)
                .unwrap()
                .into_iter()
                .map(|o| o.id),
        );
    }
    engine.checkpoint(CheckpointReason::Interval).unwrap();
    // Events after the last checkpoint: proving one writes a new checkpoint.
    ids.extend(
        engine
            .append_json(&[event(200), event(201)])
            .unwrap()
            .into_iter()
            .map(|o| o.id),
    );
    let key = Signer::load_or_create(&StdFs, &tmp.path().join("signing.key"))
        .unwrap()
        .public_key();
    for (i, id) in ids.iter().enumerate() {
        let proof = engine.prove(*id).unwrap().expect("a proof");
        assert_eq!(proof.position, i as u64);
        // The earliest covering checkpoint: a seal at 40 or 80, the
        // interval one at 110, or the one written for the request.
        let expect_at = match i {
            0..=39 => 40,
            40..=79 => 80,
            80..=109 => 110,
            _ => 112,
        };
        assert_eq!(proof.checkpoint.position, expect_at, "event {i}");
        let text = proof.to_json().to_string();
        let parsed = EventProof::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        let summary = parsed.verify(&key).unwrap();
        assert_eq!(summary.event_id, Some(id.to_string()));

        let mut altered = parsed.clone();
        let at = altered.event_json.len() - 3;
        altered.event_json[at] ^= 1;
        assert!(altered.verify(&key).is_err());
        if let Some(first) = parsed.following.first() {
            let mut dropped = parsed.clone();
            dropped.following.retain(|l| l != first);
            assert!(dropped.verify(&key).is_err());
        }
        let other = Signer::load_or_create(&StdFs, &tmp.path().join("other.key")).unwrap();
        assert!(parsed.verify(&other.public_key()).is_err());
    }
    assert!(engine
        .prove(auditlog_engine::EventId::from_u128(7))
        .unwrap()
        .is_none());
}

#[test]
fn export_manifests_are_signed_over_a_covering_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = open(tmp.path());
    engine.append_json(&[event(1), event(2)]).unwrap();
    let mut h = ContentHasher::default();
    h.update(b"line 1\n");
    h.update(b"line 2\n");
    let (content_sha256, bytes) = h.finish();
    let facts = ExportFacts {
        filter: Some("actor.type = 'user'".into()),
        from: None,
        to: None,
        format: "ndjson".into(),
        count: 2,
        bytes,
        content_sha256,
        complete: true,
        position: engine.snapshot().chain_position(),
    };
    let signed = engine.sign_export_manifest(&facts).unwrap().unwrap();
    let key = engine.public_key().unwrap();
    assert!(signed.verify(&key));
    let m: serde_json::Value = serde_json::from_str(&signed.manifest).unwrap();
    assert_eq!(m["count"], 2);
    assert_eq!(m["checkpoint"]["position"], 2);
    assert_eq!(
        m["content_sha256"],
        auditlog_engine::integrity::chain::hex(&auditlog_engine::integrity::chain::sha256(
            b"line 1\nline 2\n"
        ))
    );
    let mut forged = signed.clone();
    forged.manifest = forged.manifest.replace("\"count\":2", "\"count\":3");
    assert!(!forged.verify(&key));
}
