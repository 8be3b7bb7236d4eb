//! Proof that one event is in the log as of a signed checkpoint, and its
//! check. The chain is linear, so the proof carries the event, the chain
//! value before it, and the leaf hash of every event after it up to the
//! checkpoint: 32 bytes per following event (docs/INTEGRITY.md discusses
//! the size). The engine picks the earliest checkpoint that covers the
//! event to keep that list short.
//!
//! Checking needs only SHA-256 and Ed25519: nothing of the store.

use crate::engine::Snapshot;
use crate::error::{Error, Result};
use crate::integrity::chain::{self, chain_step, hex, leaf_hash, ChainHead, Digest32};
use crate::integrity::checkpoint::Checkpoint;
use crate::integrity::key::PublicKey;
use crate::types::EventId;

pub const PROOF_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProof {
    /// The event's canonical JSON, byte for byte as stored and hashed.
    pub event_json: Vec<u8>,
    /// The event's place in the chain: the number of events before it
    /// since genesis, dropped ones included.
    pub position: u64,
    pub chain_before: Digest32,
    /// Leaf hashes of the events after it, up to the checkpoint.
    pub following: Vec<Digest32>,
    pub checkpoint: Checkpoint,
}

/// What a valid proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSummary {
    pub event_id: Option<String>,
    pub position: u64,
    pub checkpoint_sequence: u64,
    pub checkpoint_position: u64,
    pub checkpoint_time: String,
}

impl EventProof {
    /// Builds the proof of the event at `position` (found in `snapshot`)
    /// against `checkpoint`, which the snapshot must reach.
    pub fn build(
        snapshot: &Snapshot,
        id: EventId,
        checkpoint: Checkpoint,
    ) -> Result<Option<EventProof>> {
        let mut found: Option<(usize, u32)> = None;
        for (i, seg) in snapshot.segments.iter().enumerate().rev() {
            if let Some(o) = seg.find_id(id)? {
                found = Some((i, o));
                break;
            }
        }
        let Some((seg_index, ordinal)) = found else {
            return Ok(None);
        };
        let mut event_json = Vec::new();
        let mut before: Option<ChainHead> = None;
        let mut following = Vec::new();
        for seg in snapshot.segments.iter().skip(seg_index) {
            let header = seg.header();
            let mut chain = ChainHead {
                position: header.chain_position,
                value: header.chain_prev,
            };
            for meta in seg.blocks() {
                let end = chain.position + u64::from(meta.event_count);
                let first_needed = before.is_none() && meta.ordinals().contains(&ordinal);
                if before.is_none() && !first_needed {
                    // Before the event's block: take the stored value.
                    chain = ChainHead {
                        position: end,
                        value: seg.block_header(&meta)?.chain,
                    };
                    continue;
                }
                if chain.position >= checkpoint.position {
                    break;
                }
                let block = seg.read_block(&meta)?;
                for o in meta.ordinals().take_while(|o| *o < seg.event_count()) {
                    let json = block.json(o).unwrap_or_default();
                    if before.is_none() {
                        if o == ordinal {
                            before = Some(chain);
                            event_json = json.to_vec();
                        }
                        chain.push_json(json);
                    } else if chain.position < checkpoint.position {
                        let leaf = leaf_hash(json);
                        following.push(leaf);
                        chain.push(&leaf);
                    }
                }
            }
        }
        let Some(before) = before else {
            return Ok(None);
        };
        let proof = EventProof {
            event_json,
            position: before.position,
            chain_before: before.value,
            following,
            checkpoint,
        };
        // Never hand out a proof that does not check.
        let mut end = before;
        end.push_json(&proof.event_json);
        for l in &proof.following {
            end.push(l);
        }
        if end.position != proof.checkpoint.position || end.value != proof.checkpoint.chain_head {
            return Err(Error::Internal(format!(
                "the stored chain does not reach checkpoint {} (run auditlog verify)",
                proof.checkpoint.sequence
            )));
        }
        Ok(Some(proof))
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut following = String::with_capacity(self.following.len() * 64);
        for l in &self.following {
            following.push_str(&hex(l));
        }
        serde_json::json!({
            "version": PROOF_VERSION,
            "scheme": "sha256-chain-v1",
            "event": String::from_utf8_lossy(&self.event_json),
            "position": self.position,
            "chain_before": hex(&self.chain_before),
            "following_count": self.following.len(),
            "following": following,
            "checkpoint": self.checkpoint.to_json(),
        })
    }

    pub fn from_json(v: &serde_json::Value) -> std::result::Result<EventProof, String> {
        if v.get("version").and_then(serde_json::Value::as_u64) != Some(PROOF_VERSION) {
            return Err(format!("not a version {PROOF_VERSION} event proof"));
        }
        let field = |name: &str| {
            v.get(name)
                .ok_or_else(|| format!("proof has no \"{name}\""))
        };
        let event_json = field("event")?
            .as_str()
            .ok_or("\"event\" must be the event's JSON as a string")?
            .as_bytes()
            .to_vec();
        let position = field("position")?
            .as_u64()
            .ok_or("\"position\" must be a number")?;
        let chain_before = field("chain_before")?
            .as_str()
            .and_then(chain::digest_from_hex)
            .ok_or("\"chain_before\" must be 64 hex digits")?;
        let following_hex = field("following")?
            .as_str()
            .ok_or("\"following\" must be a hex string")?;
        let raw = chain::from_hex(following_hex).ok_or("\"following\" is not hex")?;
        if raw.len() % 32 != 0 {
            return Err("\"following\" is not a whole number of 32-byte hashes".into());
        }
        let following = raw
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        let checkpoint = Checkpoint::from_json(field("checkpoint")?).map_err(String::from)?;
        Ok(EventProof {
            event_json,
            position,
            chain_before,
            following,
            checkpoint,
        })
    }

    /// Checks the proof against the store's public key.
    pub fn verify(&self, key: &PublicKey) -> std::result::Result<ProofSummary, String> {
        if !self.checkpoint.verify(key) {
            return Err("the checkpoint's signature is not valid for this public key".into());
        }
        let mut value = chain_step(&self.chain_before, &leaf_hash(&self.event_json));
        for l in &self.following {
            value = chain_step(&value, l);
        }
        let end = self.position + 1 + self.following.len() as u64;
        if end != self.checkpoint.position {
            return Err(format!(
                "the proof ends at position {end}, the checkpoint is at {}",
                self.checkpoint.position
            ));
        }
        if value != self.checkpoint.chain_head {
            return Err(
                "the event and the following hashes do not lead to the checkpoint's chain value: \
                 the event or the proof was altered"
                    .into(),
            );
        }
        let event_id = crate::segment::format::canonical_id_and_time(&self.event_json)
            .map(|(id, _)| id.to_string());
        Ok(ProofSummary {
            event_id,
            position: self.position,
            checkpoint_sequence: self.checkpoint.sequence,
            checkpoint_position: self.checkpoint.position,
            checkpoint_time: self.checkpoint.time.to_rfc3339(),
        })
    }
}
