//! Byte layout of a segment file (see docs/FORMAT.md, which must match this
//! file field for field). Pure encoding and decoding: no I/O, no policy.
//!
//! ```text
//! segment := header block* [sections footer]      (sealed when the footer is valid)
//! ```
//! All integers are little-endian except event ids, which are stored
//! big-endian so that byte order equals ULID order.

use crate::types::{EventId, SegmentId, Timestamp};

pub const SEGMENT_MAGIC: [u8; 8] = *b"AUDLSEG\0";
pub const FOOTER_MAGIC: [u8; 8] = *b"AUDLEND\0";
pub const BLOCK_MAGIC: u32 = 0x4B4C_4241; // "ABLK"
/// Format version written by this code. Readers accept versions
/// `MIN_READ_VERSION..=FORMAT_VERSION`. Version 2 added the hash chain
/// (segment header fields, chain values in blocks and facts); version 1
/// stores are refused with a clear error rather than read without a chain.
/// Version 3 added the LZ4 block codec ([`CODEC_LZ4`]); nothing else
/// changed, so version 2 files are read as they are.
pub const FORMAT_VERSION: u16 = 3;
pub const MIN_READ_VERSION: u16 = 2;

pub const HEADER_LEN: usize = 112;
pub const BLOCK_HEADER_LEN: usize = 80;
pub const FOOTER_LEN: usize = 32;
pub const SECTION_ENTRY_LEN: usize = 24;
/// Per-event prefix inside a decompressed block: the JSON length. The id
/// and time are read from the canonical JSON, where they sit at fixed
/// offsets (see [`CANONICAL_ID`] and [`CANONICAL_TIME`]).
pub const EVENT_PREFIX_LEN: usize = 4;
/// Canonical JSON starts `{"id":"<26-char ULID>","occurred_at":"<27 chars>"`.
pub const CANONICAL_ID: std::ops::Range<usize> = 7..33;
pub const CANONICAL_TIME: std::ops::Range<usize> = 50..77;
const CANONICAL_HEAD: &[u8] = b"{\"id\":\"";
const CANONICAL_MID: &[u8] = b"\",\"occurred_at\":\"";
/// Bytes per id index entry: low 32 bits of the id, ordinal. The low bits
/// of a ULID are random, so few ids share them; a hit is always confirmed
/// against the stored event.
pub const ID_ENTRY_LEN: usize = 8;

/// Block flag: the last block of an append batch. Recovery cuts back to the
/// last block carrying it, which makes every batch all-or-nothing.
pub const FLAG_BATCH_END: u16 = 1;
/// Block codec: payload is one zstd frame. (0 would mean stored raw.)
pub const CODEC_ZSTD: u8 = 1;
/// Block codec: payload is one LZ4 block (no frame, no dictionary), the
/// fast codec of ingest; compaction turns it into zstd. Since version 3.
pub const CODEC_LZ4: u8 = 2;
pub use crate::integrity::chain::{CHAIN_NONE, CHAIN_SHA256};

fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
pub(crate) fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
pub(crate) fn id_at(b: &[u8], at: usize) -> Option<EventId> {
    Some(EventId::from_u128(u128::from_be_bytes(
        b.get(at..at + 16)?.try_into().ok()?,
    )))
}

/// The first [`HEADER_LEN`] bytes of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u16,
    pub store_id: [u8; 16],
    pub segment_id: SegmentId,
    pub created_at: Timestamp,
    pub window_start: Timestamp,
    /// Compression dictionary of every block in the segment; 0 for none.
    pub dict_id: u32,
    /// Hash chain algorithm of every block ([`CHAIN_SHA256`]).
    pub chain_algo: u8,
    /// Events in the store's chain before this segment's first (dropped
    /// ones included), and the chain value after them: where this segment
    /// continues the chain, so that it checks on its own.
    pub chain_position: u64,
    pub chain_prev: [u8; 32],
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let mut w = Writer(&mut b, 0);
        w.put(&SEGMENT_MAGIC);
        w.put(&self.version.to_le_bytes());
        w.put(&0u16.to_le_bytes()); // flags
        w.put(&(HEADER_LEN as u32).to_le_bytes());
        w.put(&self.store_id);
        w.put(&self.segment_id.0.to_le_bytes());
        w.put(&self.created_at.0.to_le_bytes());
        w.put(&self.window_start.0.to_le_bytes());
        w.put(&self.dict_id.to_le_bytes());
        w.put(&[self.chain_algo, 0, 0, 0]);
        w.put(&self.chain_position.to_le_bytes());
        w.put(&self.chain_prev);
        w.put(&0u32.to_le_bytes());
        let c = crc(w.0.get(..HEADER_LEN - 4).unwrap_or_default());
        w.put(&c.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, &'static str> {
        let h = b.get(..HEADER_LEN).ok_or("file shorter than its header")?;
        if h.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err("bad segment magic");
        }
        // The version is checked before the CRC: a version 1 header is
        // shorter and would otherwise look damaged instead of old.
        let version = u16_at(h, 8).ok_or("header")?;
        if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err("unsupported segment format version (this build reads versions 2 and 3)");
        }
        let crc_at = HEADER_LEN - 4;
        if u32_at(h, crc_at) != Some(crc(h.get(..crc_at).unwrap_or_default())) {
            return Err("header checksum mismatch");
        }
        if u32_at(h, 12) != Some(HEADER_LEN as u32) {
            return Err("unexpected header length");
        }
        Ok(SegmentHeader {
            version,
            store_id: h
                .get(16..32)
                .and_then(|s| s.try_into().ok())
                .ok_or("header")?,
            segment_id: SegmentId(u64_at(h, 32).ok_or("header")?),
            created_at: Timestamp(i64_at(h, 40).ok_or("header")?),
            window_start: Timestamp(i64_at(h, 48).ok_or("header")?),
            dict_id: u32_at(h, 56).ok_or("header")?,
            chain_algo: *h.get(60).ok_or("header")?,
            chain_position: u64_at(h, 64).ok_or("header")?,
            chain_prev: h
                .get(72..104)
                .and_then(|s| s.try_into().ok())
                .ok_or("header")?,
        })
    }
}

/// Fixed header in front of each compressed block of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub event_count: u32,
    pub first_ordinal: u32,
    pub flags: u16,
    pub codec: u8,
    pub chain_algo: u8,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    /// Chain value after the last event of this block (zero when
    /// `chain_algo` is [`CHAIN_NONE`]).
    pub chain: [u8; 32],
    pub payload_crc: u32,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        let mut w = Writer(&mut b, 0);
        w.put(&BLOCK_MAGIC.to_le_bytes());
        w.put(&self.compressed_len.to_le_bytes());
        w.put(&self.raw_len.to_le_bytes());
        w.put(&self.event_count.to_le_bytes());
        w.put(&self.first_ordinal.to_le_bytes());
        w.put(&self.flags.to_le_bytes());
        w.put(&[self.codec, self.chain_algo]);
        w.put(&self.min_ts.0.to_le_bytes());
        w.put(&self.max_ts.0.to_le_bytes());
        w.put(&self.chain);
        w.put(&self.payload_crc.to_le_bytes());
        let c = crc(w.0.get(..76).unwrap_or_default());
        w.put(&c.to_le_bytes());
        b
    }

    /// Decodes and checks a block header. `None` for anything that is not a
    /// whole, intact header (recovery treats that as the end of the log).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let h = b.get(..BLOCK_HEADER_LEN)?;
        if u32_at(h, 0)? != BLOCK_MAGIC || u32_at(h, 76)? != crc(h.get(..76)?) {
            return None;
        }
        let header = BlockHeader {
            compressed_len: u32_at(h, 4)?,
            raw_len: u32_at(h, 8)?,
            event_count: u32_at(h, 12)?,
            first_ordinal: u32_at(h, 16)?,
            flags: u16_at(h, 20)?,
            codec: *h.get(22)?,
            chain_algo: *h.get(23)?,
            min_ts: Timestamp(i64_at(h, 24)?),
            max_ts: Timestamp(i64_at(h, 32)?),
            chain: h.get(40..72)?.try_into().ok()?,
            payload_crc: u32_at(h, 72)?,
        };
        (matches!(header.codec, CODEC_ZSTD | CODEC_LZ4)
            && header.event_count > 0
            && matches!(header.chain_algo, CHAIN_NONE | CHAIN_SHA256))
        .then_some(header)
    }
}

/// Where one block sits and what it holds; kept in memory for the head
/// segment and stored as the block directory section when sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Offset of the block header in the file.
    pub offset: u64,
    pub compressed_len: u32,
    pub raw_len: u32,
    pub first_ordinal: u32,
    pub event_count: u32,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
}

pub const BLOCK_META_LEN: usize = 40;

impl BlockMeta {
    /// What a block header found at `offset` says about its block (for
    /// reading blocks in file order, without a directory).
    pub fn from_header(offset: u64, h: &BlockHeader) -> BlockMeta {
        BlockMeta {
            offset,
            compressed_len: h.compressed_len,
            raw_len: h.raw_len,
            first_ordinal: h.first_ordinal,
            event_count: h.event_count,
            min_ts: h.min_ts,
            max_ts: h.max_ts,
        }
    }

    pub fn payload_offset(&self) -> u64 {
        self.offset + BLOCK_HEADER_LEN as u64
    }
    pub fn end_offset(&self) -> u64 {
        self.payload_offset() + u64::from(self.compressed_len)
    }
    pub fn ordinals(&self) -> std::ops::Range<u32> {
        self.first_ordinal..self.first_ordinal.saturating_add(self.event_count)
    }
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.first_ordinal.to_le_bytes());
        out.extend_from_slice(&self.event_count.to_le_bytes());
        out.extend_from_slice(&self.min_ts.0.to_le_bytes());
        out.extend_from_slice(&self.max_ts.0.to_le_bytes());
    }
    pub fn decode(b: &[u8]) -> Option<Self> {
        Some(BlockMeta {
            offset: u64_at(b, 0)?,
            compressed_len: u32_at(b, 8)?,
            raw_len: u32_at(b, 12)?,
            first_ordinal: u32_at(b, 16)?,
            event_count: u32_at(b, 20)?,
            min_ts: Timestamp(i64_at(b, 24)?),
            max_ts: Timestamp(i64_at(b, 32)?),
        })
    }
}

/// Kinds of sections in a sealed segment. Unknown kinds with the
/// `OPTIONAL` bit set may be ignored by older readers; any other unknown
/// kind makes the segment unreadable for them (see the versioning rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionKind {
    Facts = 1,
    BlockDirectory = 2,
    TimeColumn = 3,
    TimeOrder = 4,
    IdIndex = 5,
    Dictionary = 6,
    IndexAction = 10,
    IndexActorType = 11,
    IndexActorId = 12,
    IndexEnvironment = 13,
}

pub const SECTION_OPTIONAL: u32 = 1 << 31;
/// Optional section: the segment's blocks were compressed again after
/// sealing (`segment::compact`). Level u32, file length before u64.
pub const SECTION_COMPACTED: u32 = SECTION_OPTIONAL | 7;

impl SectionKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        use SectionKind::*;
        Some(match v {
            1 => Facts,
            2 => BlockDirectory,
            3 => TimeColumn,
            4 => TimeOrder,
            5 => IdIndex,
            6 => Dictionary,
            10 => IndexAction,
            11 => IndexActorType,
            12 => IndexActorId,
            13 => IndexEnvironment,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    pub kind: u32,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// Per-segment facts: enough to skip a segment without reading its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub event_count: u32,
    pub block_count: u32,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub min_id: EventId,
    pub max_id: EventId,
    /// Sum of the events' canonical JSON lengths.
    pub raw_bytes: u64,
    pub sealed_at: Timestamp,
    /// The hash chain value before the first event (equal to the header's)
    /// and after the last (equal to the last block's). Zero without a chain.
    pub chain_prev: [u8; 32],
    pub chain_last: [u8; 32],
}

pub const FACTS_LEN: usize = 4 + 4 + 8 + 8 + 16 + 16 + 8 + 8 + 32 + 32;

impl Facts {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FACTS_LEN);
        out.extend_from_slice(&self.event_count.to_le_bytes());
        out.extend_from_slice(&self.block_count.to_le_bytes());
        out.extend_from_slice(&self.min_ts.0.to_le_bytes());
        out.extend_from_slice(&self.max_ts.0.to_le_bytes());
        out.extend_from_slice(&self.min_id.to_be_bytes());
        out.extend_from_slice(&self.max_id.to_be_bytes());
        out.extend_from_slice(&self.raw_bytes.to_le_bytes());
        out.extend_from_slice(&self.sealed_at.0.to_le_bytes());
        out.extend_from_slice(&self.chain_prev);
        out.extend_from_slice(&self.chain_last);
        out
    }
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < FACTS_LEN {
            return None;
        }
        Some(Facts {
            event_count: u32_at(b, 0)?,
            block_count: u32_at(b, 4)?,
            min_ts: Timestamp(i64_at(b, 8)?),
            max_ts: Timestamp(i64_at(b, 16)?),
            min_id: id_at(b, 24)?,
            max_id: id_at(b, 40)?,
            raw_bytes: u64_at(b, 56)?,
            sealed_at: Timestamp(i64_at(b, 64)?),
            chain_prev: b.get(72..104)?.try_into().ok()?,
            chain_last: b.get(104..136)?.try_into().ok()?,
        })
    }
}

/// Encodes the section table and the fixed footer that ends a sealed file.
/// `version` is the segment header's: a sealed segment keeps the version it
/// was written with, also when compaction rewrites it.
pub fn encode_footer(table_offset: u64, sections: &[SectionEntry], version: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(sections.len() * SECTION_ENTRY_LEN + FOOTER_LEN);
    for s in sections {
        out.extend_from_slice(&s.kind.to_le_bytes());
        out.extend_from_slice(&s.offset.to_le_bytes());
        out.extend_from_slice(&s.len.to_le_bytes());
        out.extend_from_slice(&s.crc.to_le_bytes());
    }
    let table_crc = crc(&out);
    let tail_start = out.len();
    out.extend_from_slice(&table_offset.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&table_crc.to_le_bytes());
    let tail_crc = crc(out.get(tail_start..).unwrap_or_default());
    out.extend_from_slice(&tail_crc.to_le_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    out
}

/// Reads the footer at the end of `file`. `Ok(None)`: the file has no
/// footer (an unsealed head segment). `Err`: a footer is there but damaged.
pub fn decode_footer(file: &[u8]) -> Result<Option<Vec<SectionEntry>>, &'static str> {
    let len = file.len();
    if len < HEADER_LEN + FOOTER_LEN {
        return Ok(None);
    }
    let tail = file.get(len - FOOTER_LEN..).ok_or("footer")?;
    if tail.get(24..32) != Some(&FOOTER_MAGIC[..]) {
        return Ok(None);
    }
    if u32_at(tail, 20) != Some(crc(tail.get(..20).unwrap_or_default())) {
        return Err("footer checksum mismatch");
    }
    let table_offset = u64_at(tail, 0).ok_or("footer")?;
    let count = u32_at(tail, 8).ok_or("footer")? as usize;
    let version = u16_at(tail, 12).ok_or("footer")?;
    if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err("unsupported footer format version");
    }
    let table_len = count
        .checked_mul(SECTION_ENTRY_LEN)
        .ok_or("section table")?;
    let start = usize::try_from(table_offset).map_err(|_| "section table offset")?;
    if start.checked_add(table_len) != Some(len - FOOTER_LEN) {
        return Err("section table does not end at the footer");
    }
    let table = file.get(start..start + table_len).ok_or("section table")?;
    if u32_at(tail, 16) != Some(crc(table)) {
        return Err("section table checksum mismatch");
    }
    let mut sections = Vec::with_capacity(count);
    for entry in table.chunks_exact(SECTION_ENTRY_LEN) {
        let s = SectionEntry {
            kind: u32_at(entry, 0).ok_or("section")?,
            offset: u64_at(entry, 4).ok_or("section")?,
            len: u64_at(entry, 12).ok_or("section")?,
            crc: u32_at(entry, 20).ok_or("section")?,
        };
        if s.offset
            .checked_add(s.len)
            .is_none_or(|end| end > table_offset)
        {
            return Err("section lies outside the file");
        }
        if SectionKind::from_u32(s.kind).is_none() && s.kind & SECTION_OPTIONAL == 0 {
            return Err("unknown required section kind");
        }
        sections.push(s);
    }
    Ok(Some(sections))
}

/// Checks a section's bytes against its recorded CRC and returns them.
pub fn section_bytes<'a>(file: &'a [u8], s: &SectionEntry) -> Option<&'a [u8]> {
    let start = usize::try_from(s.offset).ok()?;
    let end = start.checked_add(usize::try_from(s.len).ok()?)?;
    let bytes = file.get(start..end)?;
    (crc(bytes) == s.crc).then_some(bytes)
}

pub fn section_entry(kind: u32, offset: u64, bytes: &[u8]) -> SectionEntry {
    SectionEntry {
        kind,
        offset,
        len: bytes.len() as u64,
        crc: crc(bytes),
    }
}

/// Appends one event (length + canonical JSON) to an uncompressed block.
pub fn encode_event(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
}

/// Reads the id and time from the fixed prefix of canonical JSON.
pub fn canonical_id_and_time(json: &[u8]) -> Option<(EventId, Timestamp)> {
    if !json.starts_with(CANONICAL_HEAD)
        || json.get(CANONICAL_ID.end..CANONICAL_TIME.start)? != CANONICAL_MID
    {
        return None;
    }
    let id = std::str::from_utf8(json.get(CANONICAL_ID)?)
        .ok()
        .and_then(EventId::parse)?;
    let ts = Timestamp::parse_canonical(json.get(CANONICAL_TIME)?)?;
    (json.get(CANONICAL_TIME.end) == Some(&b'"')).then_some((id, ts))
}

/// One event inside a decompressed block.
#[derive(Debug, Clone)]
pub struct EventSlot {
    pub ts: Timestamp,
    pub id: EventId,
    pub json: std::ops::Range<usize>,
}

/// Splits a decompressed block payload into its events; `None` if the
/// payload does not hold exactly `count` well-formed events.
pub fn decode_events(payload: &[u8], count: u32) -> Option<Vec<EventSlot>> {
    // The count comes from disk: reserve no more than the payload can hold.
    let mut slots = Vec::with_capacity((count as usize).min(payload.len() / EVENT_PREFIX_LEN));
    let mut at = 0usize;
    while at < payload.len() {
        let len = u32_at(payload, at)? as usize;
        let start = at + EVENT_PREFIX_LEN;
        let end = start.checked_add(len)?;
        let (id, ts) = canonical_id_and_time(payload.get(start..end)?)?;
        slots.push(EventSlot {
            ts,
            id,
            json: start..end,
        });
        at = end;
    }
    (slots.len() == count as usize).then_some(slots)
}

pub fn crc32(bytes: &[u8]) -> u32 {
    crc(bytes)
}

struct Writer<'a>(&'a mut [u8], usize);
impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(self.1..self.1 + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.1 += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_any_flip_is_caught() {
        let h = SegmentHeader {
            version: FORMAT_VERSION,
            store_id: [7; 16],
            segment_id: SegmentId(9),
            created_at: Timestamp(5),
            window_start: Timestamp(3),
            dict_id: 77,
            chain_algo: CHAIN_SHA256,
            chain_position: 1234,
            chain_prev: [9; 32],
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..HEADER_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(SegmentHeader::decode(&c).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn block_header_round_trip_and_any_flip_is_caught() {
        let h = BlockHeader {
            compressed_len: 10,
            raw_len: 20,
            event_count: 2,
            first_ordinal: 7,
            flags: FLAG_BATCH_END,
            codec: CODEC_ZSTD,
            chain_algo: CHAIN_SHA256,
            min_ts: Timestamp(-1),
            max_ts: Timestamp(99),
            chain: [3; 32],
            payload_crc: 0xdead,
        };
        let b = h.encode();
        assert_eq!(BlockHeader::decode(&b), Some(h));
        for i in 0..BLOCK_HEADER_LEN {
            let mut c = b;
            c[i] ^= 0x01;
            assert_eq!(BlockHeader::decode(&c), None, "flip at {i}");
        }
    }

    #[test]
    fn footer_round_trip() {
        let mut file = vec![0u8; 100];
        let body = b"hello";
        file.extend_from_slice(body);
        let s = section_entry(SectionKind::Facts as u32, 100, body);
        let table_offset = file.len() as u64;
        file.extend_from_slice(&encode_footer(table_offset, &[s], FORMAT_VERSION));
        let got = decode_footer(&file).unwrap().unwrap();
        assert_eq!(got, vec![s]);
        assert_eq!(section_bytes(&file, &got[0]), Some(&body[..]));
        let n = file.len();
        file[n - 10] ^= 1;
        assert!(decode_footer(&file).is_err());
    }

    #[test]
    fn events_round_trip() {
        let a =
            br#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM0","occurred_at":"2021-08-05T10:00:00.500000Z"}"#;
        let b = br#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM1","occurred_at":"2021-08-05T10:00:01.000000Z","x":1}"#;
        let mut p = Vec::new();
        encode_event(&mut p, a);
        encode_event(&mut p, b);
        let slots = decode_events(&p, 2).unwrap();
        assert_eq!(slots[1].id.to_string(), "01FC31EHYYR0MF7J7GEJK2TFM1");
        assert_eq!(
            slots[0].ts,
            Timestamp::parse_rfc3339("2021-08-05T10:00:00.5Z").unwrap()
        );
        assert_eq!(&p[slots[1].json.clone()], &b[..]);
        assert!(decode_events(&p, 3).is_none());
        assert!(decode_events(&p[..p.len() - 1], 2).is_none());
        let mut q = Vec::new();
        encode_event(
            &mut q,
            br#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM0","occurred_at":"2021-08-05T10:00:00.500000"}"#,
        );
        assert!(
            decode_events(&q, 1).is_none(),
            "non-canonical time is refused"
        );
    }
}
