//! Signed manifests for exports: what was exported (filter, time range,
//! format), how much (events, bytes), the SHA-256 of the exported bytes,
//! whether it is complete, and the signed checkpoint the snapshot it was
//! read from is consistent with.
//!
//! The signature covers the manifest's JSON text exactly as written in
//! `"manifest"` (a string), so checking it needs no canonical JSON:
//! `ed25519_verify(public_key, manifest.encode("utf-8"), signature)`.

use sha2::{Digest as _, Sha256};

use crate::integrity::chain::{hex, Digest32};
use crate::integrity::checkpoint::Checkpoint;
use crate::integrity::key::{verify_signature, PublicKey, Signature, Signer};
use crate::types::Timestamp;

/// Hashes an export's bytes as they stream out.
#[derive(Default, Clone)]
pub struct ContentHasher {
    hasher: Sha256,
    bytes: u64,
}

impl ContentHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    pub fn finish(self) -> (Digest32, u64) {
        (self.hasher.finalize().into(), self.bytes)
    }
}

/// What the exporter knows about its export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFacts {
    pub filter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub format: String,
    pub count: u64,
    pub bytes: u64,
    pub content_sha256: Digest32,
    /// False when the export stopped early (a limit, an error): a manifest
    /// never claims a truncated export is whole.
    pub complete: bool,
    /// The chain position of the snapshot the export was read from.
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// The manifest's JSON text, exactly as signed.
    pub manifest: String,
    pub public_key: PublicKey,
    pub signature: Signature,
}

impl SignedManifest {
    pub fn sign(
        signer: &Signer,
        store_id: &[u8; 16],
        facts: &ExportFacts,
        checkpoint: &Checkpoint,
    ) -> SignedManifest {
        let manifest = serde_json::json!({
            "version": 1,
            "kind": "auditlog.export",
            "store_id": hex(store_id),
            "filter": facts.filter,
            "from": facts.from,
            "to": facts.to,
            "format": facts.format,
            "count": facts.count,
            "bytes": facts.bytes,
            "content_sha256": hex(&facts.content_sha256),
            "complete": facts.complete,
            "position": facts.position,
            "created_at": Timestamp::now().to_rfc3339(),
            "checkpoint": checkpoint.to_json(),
        })
        .to_string();
        SignedManifest {
            signature: signer.sign(manifest.as_bytes()),
            public_key: signer.public_key(),
            manifest,
        }
    }

    /// The `.manifest.json` file served beside an export.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "manifest": self.manifest,
            "public_key": hex(&self.public_key),
            "signature": hex(&self.signature),
        })
    }

    pub fn verify(&self, key: &PublicKey) -> bool {
        &self.public_key == key && verify_signature(key, self.manifest.as_bytes(), &self.signature)
    }
}
