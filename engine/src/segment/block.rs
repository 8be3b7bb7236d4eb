//! Blocks: groups of consecutive events, compressed together (LZ4 at
//! ingest while compaction is on, zstd otherwise: [`BlockCodec`]) and
//! checksummed. Compression runs on the appending thread, before the commit
//! lock, so that two cores compress in parallel; the committer then only
//! stamps headers and writes.
//!
//! This module never does I/O; it turns events into bytes and back.

use std::cell::RefCell;
use std::path::Path;

use zstd::zstd_safe::{CCtx, DCtx};

use crate::error::{Error, Result};
use crate::event::{PreparedEvent, StoredEvent};
use crate::segment::dict::Dictionary;
use crate::segment::format::{
    self, BlockHeader, BlockMeta, EventSlot, BLOCK_HEADER_LEN, CODEC_LZ4, CODEC_ZSTD,
};
use crate::types::{EventId, Timestamp};

/// How blocks are compressed at ingest.
///
/// Ingest must keep up with appends on the cores it shares with everything
/// else; compaction compresses every sealed segment again with zstd at
/// `compact_level` and the store's dictionary. So while compaction is on,
/// ingest only has to hold the data compactly until then, and LZ4 does that
/// at less than half of zstd's CPU per event (docs/PERFORMANCE.md, "Session
/// 6"), at about twice the size on disk until the segment is compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCodec {
    /// One LZ4 block per block, without the dictionary.
    Lz4,
    /// One zstd frame per block at this level, with the store's dictionary
    /// once one is trained.
    Zstd { level: i32 },
}

impl BlockCodec {
    fn id(self) -> u8 {
        match self {
            BlockCodec::Lz4 => CODEC_LZ4,
            BlockCodec::Zstd { .. } => CODEC_ZSTD,
        }
    }
}

/// A block of events, compressed and ready to be stamped and written.
#[derive(Debug, Clone)]
pub struct EncodedBlock {
    /// `CODEC_ZSTD` or `CODEC_LZ4`.
    pub codec: u8,
    pub compressed: Vec<u8>,
    pub raw_len: u32,
    pub event_count: u32,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub payload_crc: u32,
}

impl EncodedBlock {
    /// The header the commit leader stamps once the block's place in the
    /// file and in the hash chain (`chain`: the value after its last
    /// event) are known.
    pub fn header(
        &self,
        first_ordinal: u32,
        flags: u16,
        chain_algo: u8,
        chain: [u8; 32],
    ) -> BlockHeader {
        BlockHeader {
            compressed_len: self.compressed.len() as u32,
            raw_len: self.raw_len,
            event_count: self.event_count,
            first_ordinal,
            flags,
            codec: self.codec,
            chain_algo,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            chain,
            payload_crc: self.payload_crc,
        }
    }
}

/// Largest decompressed block accepted when reading. Blocks are written at
/// about `block_bytes` (default 64 KiB) but one large event makes a block of
/// its own, so the bound is the event limit with room to spare.
pub const MAX_RAW_BLOCK: u32 = 64 << 20;

thread_local! {
    // One zstd context per thread, reused for every block: creating one
    // costs more than compressing a small block.
    static CCTX: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

fn compress(raw: &[u8], level: i32, dict: Option<&Dictionary>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
    let cdict = match dict {
        Some(d) => Some(
            d.cdict(level)
                .ok_or_else(|| std::io::Error::other("zstd could not load the dictionary"))?,
        ),
        None => None,
    };
    CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = CCtx::try_create();
        }
        let cctx = slot
            .as_mut()
            .ok_or_else(|| std::io::Error::other("zstd context"))?;
        match &cdict {
            Some(c) => cctx.compress_using_cdict(&mut out, raw, c),
            None => cctx.compress(&mut out, raw, level),
        }
        .map_err(zstd_error)
    })?;
    Ok(out)
}

/// Compresses a block's uncompressed payload (compaction re-encodes
/// sealed blocks with it at a higher level).
pub fn compress_payload(
    raw: &[u8],
    level: i32,
    dict: Option<&Dictionary>,
) -> std::io::Result<Vec<u8>> {
    compress(raw, level, dict)
}

/// Decompresses one block's payload into at most `raw_len` bytes (a
/// payload claiming more is an error, so damaged input cannot make it
/// allocate more). LZ4 blocks never use the dictionary.
fn decompress(
    codec: u8,
    payload: &[u8],
    raw_len: usize,
    dict: Option<&Dictionary>,
) -> std::io::Result<Vec<u8>> {
    if codec == CODEC_LZ4 {
        return lz4_flex::block::decompress(payload, raw_len).map_err(std::io::Error::other);
    }
    let mut out = Vec::with_capacity(raw_len);
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = DCtx::try_create();
        }
        let dctx = slot
            .as_mut()
            .ok_or_else(|| std::io::Error::other("zstd context"))?;
        match dict {
            Some(d) => dctx.decompress_using_ddict(&mut out, payload, d.ddict()),
            None => dctx.decompress(&mut out, payload),
        }
        .map_err(zstd_error)
    })?;
    Ok(out)
}

/// Cuts `events` into blocks of at most `target_raw` uncompressed bytes
/// (an event larger than that gets a block of its own). Staying under the
/// target matters: zstd uses a digested dictionary in place only for
/// inputs up to 16 KiB at the default level; above, it copies it per block.
pub fn encode_blocks(
    events: &[PreparedEvent],
    target_raw: usize,
    codec: BlockCodec,
    dict: Option<&Dictionary>,
) -> std::io::Result<Vec<EncodedBlock>> {
    let mut blocks = Vec::new();
    let mut raw = Vec::with_capacity(target_raw + 4096);
    let mut start = 0;
    for (i, e) in events.iter().enumerate() {
        let size = format::EVENT_PREFIX_LEN + e.json.len();
        if !raw.is_empty() && raw.len() + size > target_raw {
            let slice = events.get(start..i).unwrap_or_default();
            blocks.push(finish_block(&raw, slice, codec, dict)?);
            raw.clear();
            start = i;
        }
        format::encode_event(&mut raw, &e.json);
    }
    if !raw.is_empty() {
        let slice = events.get(start..).unwrap_or_default();
        blocks.push(finish_block(&raw, slice, codec, dict)?);
    }
    Ok(blocks)
}

fn finish_block(
    raw: &[u8],
    events: &[PreparedEvent],
    codec: BlockCodec,
    dict: Option<&Dictionary>,
) -> std::io::Result<EncodedBlock> {
    let compressed = match codec {
        BlockCodec::Lz4 => lz4_flex::block::compress(raw),
        BlockCodec::Zstd { level } => compress(raw, level, dict)?,
    };
    let (min_ts, max_ts) = events
        .iter()
        .fold((Timestamp::MAX, Timestamp::MIN), |(lo, hi), e| {
            (lo.min(e.occurred_at), hi.max(e.occurred_at))
        });
    Ok(EncodedBlock {
        codec: codec.id(),
        payload_crc: format::crc32(&compressed),
        compressed,
        raw_len: raw.len() as u32,
        event_count: events.len() as u32,
        min_ts,
        max_ts,
    })
}

/// A decompressed block.
#[derive(Debug)]
pub struct DecodedBlock {
    pub first_ordinal: u32,
    payload: Vec<u8>,
    slots: Vec<EventSlot>,
}

impl DecodedBlock {
    /// Approximate memory held, for cache accounting.
    pub fn weight(&self) -> usize {
        self.payload.capacity() + self.slots.capacity() * std::mem::size_of::<EventSlot>() + 64
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The event at segment `ordinal`, if this block holds it.
    pub fn event(&self, ordinal: u32) -> Option<StoredEvent> {
        let i = ordinal.checked_sub(self.first_ordinal)? as usize;
        let slot = self.slots.get(i)?;
        Some(StoredEvent {
            id: slot.id,
            occurred_at: slot.ts,
            json: self.payload.get(slot.json.clone())?.to_vec(),
        })
    }

    /// The JSON of the event at segment `ordinal`, borrowed.
    pub fn json(&self, ordinal: u32) -> Option<&[u8]> {
        let i = ordinal.checked_sub(self.first_ordinal)? as usize;
        self.payload.get(self.slots.get(i)?.json.clone())
    }

    /// The segment ordinals this block holds, in order.
    pub fn ordinals(&self) -> std::ops::Range<u32> {
        self.first_ordinal..self.first_ordinal.saturating_add(self.slots.len() as u32)
    }

    /// The uncompressed payload: the events with their length prefixes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn slots(&self) -> &[EventSlot] {
        &self.slots
    }

    pub fn ids(&self) -> impl Iterator<Item = EventId> + '_ {
        self.slots.iter().map(|s| s.id)
    }
}

/// Checks and decompresses one block. `bytes` starts at the block header
/// and holds at least the header and payload; `meta` is what the directory
/// says the block should be, and must agree with the header.
pub fn decode_block(
    file: &Path,
    meta: &BlockMeta,
    bytes: &[u8],
    dict: Option<&Dictionary>,
) -> Result<DecodedBlock> {
    let bad = |what: &str| Error::corrupt(file, meta.offset, what.to_string());
    let header = BlockHeader::decode(bytes).ok_or_else(|| bad("block header damaged"))?;
    if header.compressed_len != meta.compressed_len
        || header.raw_len != meta.raw_len
        || header.first_ordinal != meta.first_ordinal
        || header.event_count != meta.event_count
    {
        return Err(bad("block header disagrees with the block directory"));
    }
    if header.raw_len > MAX_RAW_BLOCK {
        return Err(bad("block claims an implausible size"));
    }
    let payload = bytes
        .get(BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + header.compressed_len as usize)
        .ok_or_else(|| bad("block payload cut short"))?;
    if format::crc32(payload) != header.payload_crc {
        return Err(bad("block payload checksum mismatch"));
    }
    let raw = decompress(header.codec, payload, header.raw_len as usize, dict)
        .map_err(|e| bad(&format!("block does not decompress: {e}")))?;
    if raw.len() != header.raw_len as usize {
        return Err(bad("block decompressed to the wrong size"));
    }
    let slots = format::decode_events(&raw, header.event_count)
        .ok_or_else(|| bad("block events are malformed"))?;
    Ok(DecodedBlock {
        first_ordinal: header.first_ordinal,
        payload: raw,
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{prepare_event, EventLimits};
    use crate::testing::gen::{EventGenerator, GenConfig};
    use crate::types::Timestamp;
    use proptest::prelude::*;

    fn events(n: usize) -> Vec<PreparedEvent> {
        let mut g = EventGenerator::new(GenConfig::default());
        (0..n)
            .map(|_| {
                let json = g.next_event().to_string();
                prepare_event(json.as_bytes(), Timestamp::now(), &EventLimits::default()).unwrap()
            })
            .collect()
    }

    /// The block as it sits in a file (header, then payload) and the
    /// directory entry for it.
    fn stamped(block: &EncodedBlock) -> (Vec<u8>, BlockMeta) {
        let header = block.header(0, 0, format::CHAIN_NONE, [0; 32]);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&block.compressed);
        (bytes, BlockMeta::from_header(0, &header))
    }

    #[test]
    fn both_codecs_give_back_the_events_and_say_which_they_are() {
        let events = events(60);
        let dict = None;
        for (codec, id) in [
            (BlockCodec::Lz4, CODEC_LZ4),
            (BlockCodec::Zstd { level: 3 }, CODEC_ZSTD),
        ] {
            let blocks = encode_blocks(&events, 8 << 10, codec, dict).unwrap();
            assert!(blocks.len() > 1, "{codec:?}: several blocks");
            let mut back = Vec::new();
            for block in &blocks {
                let (bytes, meta) = stamped(block);
                assert_eq!(BlockHeader::decode(&bytes).unwrap().codec, id);
                let decoded = decode_block(Path::new("t"), &meta, &bytes, dict).unwrap();
                back.extend(
                    decoded
                        .slots()
                        .iter()
                        .map(|s| decoded.payload().get(s.json.clone()).unwrap().to_vec()),
                );
            }
            let sent: Vec<Vec<u8>> = events.iter().map(|e| e.json.clone()).collect();
            assert_eq!(back, sent, "{codec:?}");
        }
    }

    #[test]
    fn a_block_of_an_unknown_codec_is_damage() {
        let blocks = encode_blocks(&events(5), 8 << 10, BlockCodec::Lz4, None).unwrap();
        let header = BlockHeader {
            codec: 3,
            ..blocks[0].header(0, 0, format::CHAIN_NONE, [0; 32])
        };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&blocks[0].compressed);
        let meta = BlockMeta::from_header(0, &header);
        let err = decode_block(Path::new("t"), &meta, &bytes, None).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Bytes that pass the CRC (it is recomputed) but are not what the
        /// encoder wrote, or a raw length that is not the true one: the
        /// LZ4 decoder reports damage, and never panics or reads out of
        /// bounds (`checked-decode`).
        #[test]
        fn damaged_lz4_payloads_are_errors(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
            raw_len_delta in -64i64..64,
        ) {
            let block = encode_blocks(&events(12), 16 << 10, BlockCodec::Lz4, None)
                .unwrap()
                .remove(0);
            let mut payload = block.compressed.clone();
            for (at, x) in &flips {
                let i = at.index(payload.len());
                payload[i] ^= x;
            }
            let raw_len = (i64::from(block.raw_len) + raw_len_delta).max(0) as u32;
            let header = BlockHeader {
                compressed_len: payload.len() as u32,
                raw_len,
                payload_crc: format::crc32(&payload),
                ..block.header(0, 0, format::CHAIN_NONE, [0; 32])
            };
            let mut bytes = header.encode().to_vec();
            bytes.extend_from_slice(&payload);
            let meta = BlockMeta::from_header(0, &header);
            match decode_block(Path::new("t"), &meta, &bytes, None) {
                Err(Error::Corrupt { .. }) => {}
                Err(e) => prop_assert!(false, "not reported as damage: {e}"),
                // A flip inside a literal can still decode; then the
                // length and event framing held, and the size is exact.
                Ok(d) => prop_assert_eq!(d.payload().len(), raw_len as usize),
            }
        }
    }
}
