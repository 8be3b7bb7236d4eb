//! The integrity commands of `auditlog`: `verify`, `key public`
//! and `verify-proof`. The checks live in the engine
//! (`auditlog_engine::integrity`); this module reads arguments and prints.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use auditlog_engine::integrity::chain::hex;
use auditlog_engine::integrity::checkpoint::parse_checkpoints;
use auditlog_engine::integrity::key::{parse_public_key, public_key_pem, PublicKey, Signer};
use auditlog_engine::integrity::proof::EventProof;
use auditlog_engine::integrity::verify::{verify_store, VerifyOptions};
use auditlog_engine::io::{FileSystem, StdFs};
use auditlog_engine::Engine;

/// A public key given as a file (hex, PEM, raw or DER) or as 64 hex digits.
pub fn load_public_key(arg: &str) -> Result<PublicKey> {
    if let Some(k) = parse_public_key(arg.as_bytes()) {
        return Ok(k);
    }
    let bytes = std::fs::read(arg).with_context(|| format!("reading the public key file {arg}"))?;
    parse_public_key(&bytes).with_context(|| {
        format!("{arg} holds no Ed25519 public key (expected 64 hex digits, PEM, or 32 raw bytes)")
    })
}

/// `auditlog verify`: the checksum checks of the engine (quarantine, damaged
/// blocks), then the chain, tombstones and checkpoints. Returns whether
/// everything checked out; prints one line per finding.
pub fn verify(data: &Path, public_key: Option<&str>, checkpoint_files: &[PathBuf]) -> Result<bool> {
    let key = public_key.map(load_public_key).transpose()?;
    let mut external = Vec::new();
    for f in checkpoint_files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let list = parse_checkpoints(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not checkpoints: {e}", f.display()))?;
        external.extend(list);
    }

    let mut problems = 0usize;
    let (engine, report) = Engine::open(data, super::cli_config())
        .with_context(|| format!("opening {}", data.display()))?;
    for (path, why) in &report.quarantined {
        println!("QUARANTINED {}: {why}", path.display());
        problems += 1;
    }
    for d in engine.verify() {
        println!("DAMAGED {d}");
        problems += 1;
    }
    // Damage set aside by an earlier open stays a problem until an
    // operator has dealt with it and emptied quarantine/; the torn tails
    // of interrupted appends (never acknowledged) are noted.
    let reported: Vec<&Path> = report
        .quarantined
        .iter()
        .map(|(p, _)| p.as_path())
        .collect();
    let mut earlier: Vec<PathBuf> = std::fs::read_dir(data.join("quarantine"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    earlier.sort();
    for path in earlier.iter().filter(|p| !reported.contains(&p.as_path())) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.contains(".torn-tail-at-") {
            println!(
                "NOTE {}: torn tail of an interrupted append (never acknowledged)",
                path.display()
            );
        } else {
            println!("QUARANTINED {}: set aside earlier", path.display());
            problems += 1;
        }
    }
    let stats = engine.stats();
    drop(engine);

    let r = verify_store(
        &StdFs,
        data,
        &VerifyOptions {
            public_key: key,
            external,
        },
    )?;
    for p in &r.problems {
        println!("{p}");
        problems += 1;
    }
    for n in &r.notes {
        println!("NOTE {n}");
    }
    if key.is_none() {
        println!(
            "NOTE no --public-key given: signatures were checked against the key the files name, \
             which proves nothing if someone replaced it"
        );
    }
    if problems == 0 {
        println!(
            "OK: {} segments, {} events; chain verified to position {} ({}); \
             {} checkpoint(s) in the store and {} given agree; {} tombstone(s)",
            stats.segments,
            stats.events,
            r.chain.position,
            hex(&r.chain.value),
            r.checkpoints_checked,
            r.external_checked,
            r.tombstones
        );
        Ok(true)
    } else {
        println!(
            "{problems} problem(s) found; serving {} events in {} segments",
            stats.events, stats.segments
        );
        Ok(false)
    }
}

/// `auditlog key public`: prints the public key (hex, or PEM).
pub fn key_public(key: &Path, pem: bool) -> Result<()> {
    if StdFs.file_len(key).is_err() {
        bail!(
            "no signing key at {} (the server creates it on first start; pass --key or --data)",
            key.display()
        );
    }
    let signer = Signer::load_or_create(&StdFs, key)?;
    let public = signer.public_key();
    if pem {
        print!("{}", public_key_pem(&public));
    } else {
        println!("{}", hex(&public));
    }
    Ok(())
}

/// `auditlog verify-proof`: checks a proof from `GET /v1/events/{id}/proof`.
pub fn verify_proof(file: &Path, public_key: &str) -> Result<bool> {
    let key = load_public_key(public_key)?;
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let proof = EventProof::from_json(&value).map_err(anyhow::Error::msg)?;
    match proof.verify(&key) {
        Ok(s) => {
            println!(
                "OK: event {} is at chain position {} of the log, as of checkpoint {} \
                 (position {}, signed {})",
                s.event_id.as_deref().unwrap_or("?"),
                s.position,
                s.checkpoint_sequence,
                s.checkpoint_position,
                s.checkpoint_time
            );
            Ok(true)
        }
        Err(why) => {
            println!("INVALID {}: {why}", file.display());
            Ok(false)
        }
    }
}
