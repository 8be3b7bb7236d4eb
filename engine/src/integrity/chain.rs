//! The hash chain over every event in commit order (docs/INTEGRITY.md).
//!
//! ```text
//! leaf_i    = SHA-256(0x00 || canonical JSON of event i)
//! chain_0   = SHA-256(0x02 || "auditlog chain v1" || store id)      (genesis)
//! chain_i+1 = SHA-256(0x01 || chain_i || leaf_i)
//! ```
//! The leading byte separates the three kinds of input. Leaves are hashed by
//! the appending threads in parallel; the commit leader only folds them in,
//! two SHA-256 compressions per event. This module is pure computation: it
//! never does I/O and knows nothing of files.

use sha2::{Digest as _, Sha256};

use crate::segment::block::DecodedBlock;

/// A SHA-256 value: a leaf, a chain value, or a record hash.
pub type Digest32 = [u8; 32];

/// Chain algorithm byte in segment and block headers: no chain (only the
/// measurement switch `EngineConfig::hash_chain = false` writes this).
pub const CHAIN_NONE: u8 = 0;
/// Chain algorithm byte: the SHA-256 chain above.
pub const CHAIN_SHA256: u8 = 1;

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;
const GENESIS: u8 = 0x02;
const GENESIS_LABEL: &[u8] = b"auditlog chain v1";

/// The hash of one event's canonical JSON.
pub fn leaf_hash(json: &[u8]) -> Digest32 {
    let mut h = Sha256::new();
    h.update([LEAF]);
    h.update(json);
    h.finalize().into()
}

/// One link: the chain value after an event, from the value before it.
pub fn chain_step(prev: &Digest32, leaf: &Digest32) -> Digest32 {
    let mut h = Sha256::new();
    h.update([NODE]);
    h.update(prev);
    h.update(leaf);
    h.finalize().into()
}

/// The chain value before the first event a store ever held. Binding it to
/// the store id keeps one store's chain from being passed off as another's.
pub fn genesis(store_id: &[u8; 16]) -> Digest32 {
    let mut h = Sha256::new();
    h.update([GENESIS]);
    h.update(GENESIS_LABEL);
    h.update(store_id);
    h.finalize().into()
}

/// Plain SHA-256, for record hashes (checkpoint links, export content).
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Where the chain stands: how many events it covers since genesis
/// (dropped ones included) and the value after the last of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub position: u64,
    pub value: Digest32,
}

impl ChainHead {
    pub fn genesis(store_id: &[u8; 16]) -> ChainHead {
        ChainHead {
            position: 0,
            value: genesis(store_id),
        }
    }

    pub fn push(&mut self, leaf: &Digest32) {
        self.value = chain_step(&self.value, leaf);
        self.position += 1;
    }

    pub fn push_json(&mut self, json: &[u8]) {
        self.push(&leaf_hash(json));
    }

    /// The chain after every event of a decoded block, in order. With
    /// [`CHAIN_NONE`] only the position moves.
    pub fn after_block(mut self, block: &DecodedBlock, algo: u8) -> ChainHead {
        if algo == CHAIN_NONE {
            self.position += block.len() as u64;
            return self;
        }
        for o in block.ordinals() {
            self.push_json(block.json(o).unwrap_or_default());
        }
        self
    }
}

/// Lower-case hex, the spelling used in every JSON output.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex character.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(digit(*p.first()?)? << 4 | digit(*p.get(1)?)?))
        .collect()
}

/// Parses exactly 32 bytes of hex.
pub fn digest_from_hex(s: &str) -> Option<Digest32> {
    from_hex(s)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256_of_the_documented_inputs() {
        // The same inputs hashed in one piece, as `sha256sum` would.
        let json = br#"{"id":"x"}"#;
        let mut input = vec![0u8];
        input.extend_from_slice(json);
        assert_eq!(leaf_hash(json), sha256(&input));
        let prev = [7u8; 32];
        let leaf = leaf_hash(json);
        let mut node = vec![1u8];
        node.extend_from_slice(&prev);
        node.extend_from_slice(&leaf);
        assert_eq!(chain_step(&prev, &leaf), sha256(&node));
        assert_ne!(genesis(&[0; 16]), genesis(&[1; 16]));
    }

    #[test]
    fn order_matters_and_hex_round_trips() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut x = ChainHead::genesis(&[0; 16]);
        let mut y = x;
        x.push(&a);
        x.push(&b);
        y.push(&b);
        y.push(&a);
        assert_ne!(x.value, y.value);
        assert_eq!(x.position, 2);
        assert_eq!(digest_from_hex(&hex(&x.value)), Some(x.value));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
