//! Small types that carry meaning: event ids, segment ids, instants and ranges.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use ulid::Ulid;

/// The id of a stored event: a ULID, ordered by its 128-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub Ulid);

impl EventId {
    pub fn from_u128(v: u128) -> Self {
        EventId(Ulid(v))
    }
    pub fn as_u128(self) -> u128 {
        self.0 .0
    }
    pub fn to_be_bytes(self) -> [u8; 16] {
        self.0 .0.to_be_bytes()
    }
    pub fn parse(s: &str) -> Option<Self> {
        Ulid::from_string(s).ok().map(EventId)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Segments are numbered in creation order; a larger id was created later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl SegmentId {
    pub fn file_name(self) -> String {
        format!("{:016x}.seg", self.0)
    }
    pub fn from_file_name(name: &str) -> Option<Self> {
        let hex = name.strip_suffix(".seg")?;
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SegmentId)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// An instant as microseconds since the Unix epoch (UTC). Microseconds keep
/// more than the millisecond precision audit sources send, and fit in an i64
/// for ±292,000 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp(i64::try_from(nanos / 1000).unwrap_or(i64::MAX))
    }

    pub fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (any offset); sub-microsecond digits are truncated.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos().div_euclid(1000))
            .ok()
            .map(Timestamp)
    }

    /// Parses exactly the canonical form written by [`Timestamp::to_rfc3339`]
    /// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, 27 bytes), fast: it is read back from
    /// every stored event when a block is decoded.
    pub fn parse_canonical(s: &[u8]) -> Option<Self> {
        if s.len() != 27 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            s.get(r)?.iter().try_fold(0i64, |acc, &b| {
                b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
            })
        };
        let punct = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ];
        if punct.iter().any(|&(i, c)| s.get(i) != Some(&c)) {
            return None;
        }
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hh, mm, ss, us) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        // Days from civil (H. Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(Timestamp(
            ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + us,
        ))
    }

    /// Appends the canonical form (see [`Timestamp::to_rfc3339`]) without
    /// allocating; used once per stored event. Years outside 0000-9999 are
    /// rejected at validation, so the width is fixed.
    pub fn write_canonical(self, out: &mut Vec<u8>) {
        let us = self.0.rem_euclid(1_000_000);
        let secs = self.0.div_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        // Civil from days (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        fn digits(out: &mut Vec<u8>, v: i64, width: u32) {
            for i in (0..width).rev() {
                out.push(b'0' + (v / 10i64.pow(i) % 10) as u8);
            }
        }
        digits(out, y, 4);
        out.push(b'-');
        digits(out, m, 2);
        out.push(b'-');
        digits(out, d, 2);
        out.push(b'T');
        digits(out, sod / 3600, 2);
        out.push(b':');
        digits(out, sod / 60 % 60, 2);
        out.push(b':');
        digits(out, sod % 60, 2);
        out.push(b'.');
        digits(out, us, 6);
        out.push(b'Z');
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: fixed width, so the text
    /// sorts in time order. Years outside 0000-9999 are not representable
    /// and were rejected at validation.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            ),
            Err(_) => format!("@{}us", self.0),
        }
    }

    pub fn saturating_add_micros(self, us: i64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A half-open time range: `from` inclusive, `to` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        from: None,
        to: None,
    };

    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }

    /// True when `[min, max]` (both inclusive) shares an instant with the range.
    pub fn overlaps(&self, min: Timestamp, max: Timestamp) -> bool {
        self.from.is_none_or(|f| max >= f) && self.to.is_none_or(|e| min < e)
    }
}

/// Order of results by `(occurred_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_micros_and_sorts_as_text() {
        let t = Timestamp::parse_rfc3339("2021-08-05T12:00:00.123456789+02:00");
        assert_eq!(
            t.map(Timestamp::to_rfc3339).as_deref(),
            Some("2021-08-05T10:00:00.123456Z")
        );
        let a = Timestamp(1).to_rfc3339();
        let b = Timestamp(1_000_000).to_rfc3339();
        assert!(a < b);
    }

    #[test]
    fn canonical_parse_agrees_with_the_general_parser() {
        for us in [
            0i64,
            1,
            -1,
            951_782_400_000_000,
            1_767_225_600_123_456,
            -62_167_219_200_000_000,
            253_402_300_799_999_999,
        ] {
            let t = Timestamp(us);
            let text = t.to_rfc3339();
            assert_eq!(
                Timestamp::parse_canonical(text.as_bytes()),
                Some(t),
                "{text}"
            );
            assert_eq!(Timestamp::parse_rfc3339(&text), Some(t), "{text}");
        }
        assert_eq!(
            Timestamp::parse_canonical(b"2026-01-01T00:00:00.000000+"),
            None
        );
        assert_eq!(
            Timestamp::parse_canonical(b"2026-13-01T00:00:00.000000Z"),
            None
        );
    }

    #[test]
    fn segment_file_names_round_trip() {
        let id = SegmentId(0xabc);
        assert_eq!(SegmentId::from_file_name(&id.file_name()), Some(id));
        assert_eq!(SegmentId::from_file_name("x.seg"), None);
    }
}
