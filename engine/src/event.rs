//! Turning client JSON into a stored event: validation, defaults and the
//! canonical bytes that are written to disk (and later hashed into the chain).
//!
//! It owns the event schema rules. It must never touch storage: a prepared
//! event is a plain value that the writer may still refuse (e.g. duplicates).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::types::{EventId, Timestamp};

/// Limits applied to each incoming event.
#[derive(Debug, Clone)]
pub struct EventLimits {
    /// Largest accepted event, in bytes of JSON as received (default 1 MiB).
    pub max_event_bytes: usize,
    /// How far past the receive time `occurred_at` may lie. Far-future
    /// events would pin their segment against retention forever.
    pub max_future_skew_micros: i64,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_event_bytes: 1 << 20,
            max_future_skew_micros: 24 * 3600 * 1_000_000,
        }
    }
}

/// Why an event was refused. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is {size} bytes, over the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("event is not valid JSON: {0}")]
    Json(String),
    #[error("event nests arrays and objects more than {max} levels deep")]
    TooDeep { max: usize },
    #[error("event must be a JSON object")]
    NotAnObject,
    #[error("duplicate field `{0}`")]
    DuplicateField(String),
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    #[error("field `id` is not a valid ULID: {0:?}")]
    BadId(String),
    #[error("field `occurred_at` is not an RFC 3339 time: {0:?}")]
    BadTime(String),
    #[error("field `occurred_at` is {0} in the future, beyond the allowed clock skew")]
    TooFarInFuture(String),
}

impl EventError {
    /// The event field the error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EventError::Missing(f) | EventError::Invalid { field: f, .. } => Some(f),
            EventError::BadId(_) => Some("id"),
            EventError::BadTime(_) | EventError::TooFarInFuture(_) => Some("occurred_at"),
            _ => None,
        }
    }
}

/// The values the indexes are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKeys {
    pub action: Box<str>,
    pub actor_type: Box<str>,
    pub actor_id: Box<str>,
    pub environment: Box<str>,
}

/// A validated event, ready to be written.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub id: EventId,
    pub occurred_at: Timestamp,
    /// True when the client sent the id (then it may already be stored).
    pub id_from_client: bool,
    pub keys: IndexKeys,
    /// Canonical JSON: `id` and `occurred_at` first (normalised), then the
    /// client's fields in the order sent, values byte for byte.
    pub json: Vec<u8>,
}

/// An event as read back from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: EventId,
    pub occurred_at: Timestamp,
    /// The canonical JSON bytes, exactly as stored.
    pub json: Vec<u8>,
}

impl StoredEvent {
    pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }
}

/// Deepest nesting of arrays and objects accepted in an event. The
/// engine's own parse skips nested values without recursing, so it would
/// store any depth; but the consumers of the log would fail to read such an
/// event back (serde_json stops at 128 levels, browsers and other parsers
/// not far beyond). Real audit payloads stay far below this.
pub const MAX_NESTING: usize = 64;

/// Longest accepted `action_name`, actor type/id and environment id.
pub const MAX_KEY_BYTES: usize = 512;
/// The environment of an event that names none.
pub const DEFAULT_ENVIRONMENT: &str = "main";

/// Validates `input` (one JSON object) and builds its canonical form.
/// `now` is the receive time: the default `occurred_at` and the time of a
/// newly assigned id.
pub fn prepare_event(
    input: &[u8],
    now: Timestamp,
    limits: &EventLimits,
) -> Result<PreparedEvent, EventError> {
    if input.len() > limits.max_event_bytes {
        return Err(EventError::TooLarge {
            size: input.len(),
            max: limits.max_event_bytes,
        });
    }
    if nests_deeper_than(input, MAX_NESTING) {
        return Err(EventError::TooDeep { max: MAX_NESTING });
    }
    let top = parse_top_level(input)?;
    let (id, id_from_client) = match top.get("id") {
        Some(raw) if raw.get() != "null" => {
            let s = as_str(raw, "id", "must be a string holding a ULID")?;
            (
                EventId::parse(&s).ok_or_else(|| EventError::BadId(s.into_owned()))?,
                true,
            )
        }
        _ => (new_event_id(now), false),
    };
    let occurred_at = match top.get("occurred_at") {
        Some(raw) if raw.get() != "null" => {
            let s = as_str(raw, "occurred_at", "must be an RFC 3339 string")?;
            let t = Timestamp::parse_rfc3339(&s)
                .filter(|t| representable(*t))
                .ok_or_else(|| EventError::BadTime(s.clone().into_owned()))?;
            let ahead = t.as_micros().saturating_sub(now.as_micros());
            if ahead > limits.max_future_skew_micros {
                return Err(EventError::TooFarInFuture(format!(
                    "{}s",
                    ahead / 1_000_000
                )));
            }
            t
        }
        _ => now,
    };
    let keys = index_keys(&top)?;
    if let Some(role) = top.get("role") {
        let v = role.get().as_bytes().first();
        if !matches!(v, Some(b'{') | Some(b'n')) {
            return Err(EventError::Invalid {
                field: "role",
                problem: "must be an object or null",
            });
        }
    }
    for field in ["request", "response"] {
        if let Some(raw) = top.get(field) {
            if !matches!(raw.get().as_bytes().first(), Some(b'{') | Some(b'n')) {
                return Err(EventError::Invalid {
                    field: if field == "request" {
                        "request"
                    } else {
                        "response"
                    },
                    problem: "must be an object or null",
                });
            }
        }
    }
    let json = canonical_json(&top, id, occurred_at);
    Ok(PreparedEvent {
        id,
        occurred_at,
        id_from_client,
        keys,
        json,
    })
}

/// True when arrays and objects nest more than `max` deep (brackets inside
/// strings do not count). Counting brackets first settles nearly every
/// event without the byte-by-byte walk.
fn nests_deeper_than(input: &[u8], max: usize) -> bool {
    if opening_brackets(input) <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in input {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// How many `[` and `{` bytes `input` holds. Counted in a `u8` per 255-byte
/// chunk (it cannot overflow) with no branch, which the compiler turns into
/// 16-byte compares: 7 times faster on events than counting into a `usize`
/// (4 bytes a step), and 3 times faster than memchr's search, which stops
/// at every bracket (docs/PERFORMANCE.md, "Session 4").
fn opening_brackets(input: &[u8]) -> usize {
    input
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from((b == b'[') | (b == b'{'))) as usize
        })
        .sum()
}

/// The non-blank lines of an NDJSON body with their 1-based line numbers
/// (a trailing `\r` is dropped, so CRLF bodies work too).
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .enumerate()
        .filter_map(move |(i, end)| {
            let line = body.get(start..end).unwrap_or_default();
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (!line.iter().all(u8::is_ascii_whitespace)).then_some((i + 1, line))
        })
}

/// Reads the index keys back from stored canonical JSON (used when a
/// segment's in-memory indexes are rebuilt after a restart).
pub fn keys_of_stored(json: &[u8]) -> Result<IndexKeys, EventError> {
    index_keys(&parse_top_level(json)?)
}

/// A new id whose time part is the receive time, so ids sort roughly by
/// arrival and a lookup by id can pick segments by time.
fn new_event_id(now: Timestamp) -> EventId {
    let ms = u64::try_from(now.as_micros().div_euclid(1000)).unwrap_or(0);
    let random: u128 = (u128::from(fastrand::u64(..)) << 64) | u128::from(fastrand::u64(..));
    EventId(ulid::Ulid::from_parts(ms, random))
}

/// Years 0000-9999 only, so the canonical text stays fixed-width.
fn representable(t: Timestamp) -> bool {
    const MIN: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
    (MIN..=MAX).contains(&t.as_micros())
}

/// The top-level object as (key, raw value) pairs in input order.
struct TopLevel<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> TopLevel<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| *v)
    }
}

fn parse_top_level(input: &[u8]) -> Result<TopLevel<'_>, EventError> {
    let text = std::str::from_utf8(input).map_err(|e| EventError::Json(e.to_string()))?;
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') {
        // Tell "valid JSON but not an object" apart from "not JSON at all".
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(EventError::NotAnObject),
            Err(e) => Err(EventError::Json(e.to_string())),
        };
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopLevelSeed
        .deserialize(&mut de)
        .map_err(|e| classify_json_error(e.to_string()))?;
    de.end().map_err(|e| EventError::Json(e.to_string()))?;
    Ok(top)
}

fn classify_json_error(msg: String) -> EventError {
    match msg.strip_prefix("duplicate field ") {
        Some(rest) => {
            EventError::DuplicateField(rest.split('`').nth(1).unwrap_or_default().to_owned())
        }
        None => EventError::Json(msg),
    }
}

struct TopLevelSeed;

impl<'de> de::DeserializeSeed<'de> for TopLevelSeed {
    type Value = TopLevel<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
        while let Some(BorrowedStr(key)) = map.next_key::<BorrowedStr<'de>>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let value: &'de RawValue = map.next_value()?;
            fields.push((key, value));
        }
        Ok(TopLevel { fields })
    }
}

/// A JSON string borrowed from the input when it has no escapes (serde's
/// own `Cow<str>` always allocates, which showed in ingest profiles).
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn as_str<'a>(
    raw: &'a RawValue,
    field: &'static str,
    problem: &'static str,
) -> Result<Cow<'a, str>, EventError> {
    serde_json::from_str::<BorrowedStr<'a>>(raw.get())
        .map(|b| b.0)
        .map_err(|_| EventError::Invalid { field, problem })
}

#[derive(Deserialize)]
struct ActorFields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EnvironmentFields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

fn index_keys(top: &TopLevel<'_>) -> Result<IndexKeys, EventError> {
    let action = match top.get("action_name") {
        None => return Err(EventError::Missing("action_name")),
        Some(raw) => key_string(raw, "action_name")?,
    };
    let actor_raw = top.get("actor").ok_or(EventError::Missing("actor"))?;
    let actor: ActorFields =
        serde_json::from_str(actor_raw.get()).map_err(|_| EventError::Invalid {
            field: "actor",
            problem: "must be an object with string `type` and `id`",
        })?;
    let actor_type = key_string(
        actor.kind.ok_or(EventError::Missing("actor.type"))?,
        "actor.type",
    )?;
    let actor_id = key_string(actor.id.ok_or(EventError::Missing("actor.id"))?, "actor.id")?;
    let environment = match top.get("environment") {
        None => DEFAULT_ENVIRONMENT.into(),
        Some(raw) if raw.get() == "null" => DEFAULT_ENVIRONMENT.into(),
        Some(raw) => {
            let env: EnvironmentFields =
                serde_json::from_str(raw.get()).map_err(|_| EventError::Invalid {
                    field: "environment",
                    problem: "must be an object with a string `id`, or null",
                })?;
            key_string(
                env.id.ok_or(EventError::Missing("environment.id"))?,
                "environment.id",
            )?
        }
    };
    Ok(IndexKeys {
        action,
        actor_type,
        actor_id,
        environment,
    })
}

/// A non-empty string of at most [`MAX_KEY_BYTES`].
fn key_string(raw: &RawValue, field: &'static str) -> Result<Box<str>, EventError> {
    let s = as_str(raw, field, "must be a string")?;
    if s.is_empty() {
        return Err(EventError::Invalid {
            field,
            problem: "must not be empty",
        });
    }
    if s.len() > MAX_KEY_BYTES {
        return Err(EventError::Invalid {
            field,
            problem: "is longer than 512 bytes",
        });
    }
    Ok(s.into())
}

fn canonical_json(top: &TopLevel<'_>, id: EventId, occurred_at: Timestamp) -> Vec<u8> {
    let body: usize = top
        .fields
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum();
    let mut out = Vec::with_capacity(body + 96);
    out.extend_from_slice(b"{\"id\":\"");
    let mut id_text = [0u8; ulid::ULID_LEN];
    out.extend_from_slice(id.0.array_to_str(&mut id_text).as_bytes());
    out.extend_from_slice(b"\",\"occurred_at\":\"");
    occurred_at.write_canonical(&mut out);
    out.push(b'"');
    let mut has_environment = false;
    for (key, value) in &top.fields {
        match key.as_ref() {
            "id" | "occurred_at" => continue,
            "environment" if value.get() == "null" => continue,
            "environment" => has_environment = true,
            _ => {}
        }
        out.push(b',');
        match key {
            // Borrowed from the input, so it had no escapes: serde_json
            // refuses raw quotes and control characters in strings, and
            // the input is UTF-8, so the text between the quotes is
            // already a JSON string body. Re-escaping it cost 1.5% of
            // ingest in profiles.
            Cow::Borrowed(k) => {
                out.push(b'"');
                out.extend_from_slice(k.as_bytes());
                out.push(b'"');
            }
            Cow::Owned(k) => write_json_string(&mut out, k),
        }
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    if !has_environment {
        out.extend_from_slice(b",\"environment\":{\"id\":\"main\",\"primary\":true}");
    }
    out.push(b'}');
    out
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(s: &str) -> Result<PreparedEvent, EventError> {
        prepare_event(
            s.as_bytes(),
            Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap_or_default(),
            &EventLimits::default(),
        )
    }

    const OK: &str = r#"{"action_name":"items.update","actor":{"type":"user","id":"42","name":"a"},"x_extra":{"k":[1,2]}}"#;

    #[test]
    fn assigns_id_and_time_and_keeps_unknown_fields() {
        let e = prep(OK).unwrap();
        assert!(!e.id_from_client);
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["id"], e.id.to_string());
        assert_eq!(v["occurred_at"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(v["x_extra"]["k"][1], 2);
        assert_eq!(v["environment"]["id"], "main");
        assert_eq!(&*e.keys.actor_id, "42");
    }

    #[test]
    fn client_id_and_time_are_normalised() {
        let e = prep(r#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM0","occurred_at":"2021-08-05T12:00:00.5+02:00","action_name":"a","actor":{"type":"t","id":"i"},"environment":{"id":"dev","primary":false}}"#).unwrap();
        assert!(e.id_from_client);
        assert_eq!(e.id.to_string(), "01FC31EHYYR0MF7J7GEJK2TFM0");
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["occurred_at"], "2021-08-05T10:00:00.500000Z");
        assert_eq!(&*e.keys.environment, "dev");
    }

    proptest::proptest! {
        #[test]
        fn opening_brackets_counts_as_a_plain_loop_does(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![proptest::strategy::Just(b'['), proptest::strategy::Just(b'{'), proptest::num::u8::ANY],
                0..1200,
            ),
        ) {
            let plain = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
            proptest::prop_assert_eq!(opening_brackets(&bytes), plain);
        }
    }

    #[test]
    fn keys_with_and_without_escapes_stay_valid_json() {
        let e = prep(
            r#"{"action_name":"a","actor":{"type":"t","id":"i"},"k\"q":1,"\u0041b":2,"ключ":3,"tab\t":4}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["k\"q"], 1);
        assert_eq!(v["Ab"], 2);
        assert_eq!(v["ключ"], 3);
        assert_eq!(v["tab\t"], 4);
        let text = std::str::from_utf8(&e.json).unwrap();
        assert!(text.contains(r#","ключ":3"#), "{text}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, Option<&str>)] = &[
            ("[1]", None),
            ("{", None),
            (r#"{"actor":{"type":"u","id":"1"}}"#, Some("action_name")),
            (
                r#"{"action_name":"","actor":{"type":"u","id":"1"}}"#,
                Some("action_name"),
            ),
            (r#"{"action_name":"a"}"#, Some("actor")),
            (
                r#"{"action_name":"a","actor":{"id":"1"}}"#,
                Some("actor.type"),
            ),
            (
                r#"{"action_name":"a","actor":{"type":"u"}}"#,
                Some("actor.id"),
            ),
            (
                r#"{"action_name":"a","actor":{"type":"u","id":5}}"#,
                Some("actor.id"),
            ),
            (
                r#"{"id":"nope","action_name":"a","actor":{"type":"u","id":"1"}}"#,
                Some("id"),
            ),
            (
                r#"{"occurred_at":"yesterday","action_name":"a","actor":{"type":"u","id":"1"}}"#,
                Some("occurred_at"),
            ),
            (
                r#"{"occurred_at":"2999-01-01T00:00:00Z","action_name":"a","actor":{"type":"u","id":"1"}}"#,
                Some("occurred_at"),
            ),
            (
                r#"{"role":3,"action_name":"a","actor":{"type":"u","id":"1"}}"#,
                Some("role"),
            ),
            (
                r#"{"environment":{},"action_name":"a","actor":{"type":"u","id":"1"}}"#,
                Some("environment.id"),
            ),
        ];
        for (input, field) in cases {
            let err = prep(input).expect_err(input);
            assert_eq!(err.field(), *field, "{input}: {err}");
        }
        assert_eq!(prep("[1]").unwrap_err(), EventError::NotAnObject);
        assert!(matches!(
            prep(r#"{"action_name":"a","action_name":"b","actor":{"type":"u","id":"1"}}"#),
            Err(EventError::DuplicateField(f)) if f == "action_name"
        ));
        let big = format!(
            r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"p":"{}"}}"#,
            "x".repeat(1 << 20)
        );
        assert!(matches!(prep(&big), Err(EventError::TooLarge { .. })));
    }

    #[test]
    fn ndjson_lines_number_lines_and_skip_blank_ones() {
        let body = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}";
        let lines: Vec<(usize, &[u8])> = ndjson_lines(body).collect();
        assert_eq!(
            lines,
            vec![
                (1, &b"{\"a\":1}"[..]),
                (4, &b"{\"b\":2}"[..]),
                (5, &b"{\"c\":3}"[..])
            ]
        );
        assert_eq!(ndjson_lines(b"").count(), 0);
        assert_eq!(ndjson_lines(b"\n\n").count(), 0);
    }

    #[test]
    fn keys_survive_the_round_trip_through_storage() {
        let e = prep(r#"{"action_name":"a\u00e9","actor":{"type":"u","id":"1"}}"#).unwrap();
        assert_eq!(keys_of_stored(&e.json).unwrap(), e.keys);
        assert_eq!(&*e.keys.action, "aé");
    }
}
