//! Value indexes on arbitrary event paths, built from a sealed segment's
//! events when a query first needs one, and kept only in the bounded cache.
//!
//! Owns: extracting the value at one path from stored JSON (the same
//! lookup rules as `query::eval`: objects key by key, the last of
//! duplicate keys wins, arrays are not searched), grouping events by that
//! value, and answering a filter term on that path from the groups.
//! Must never: write anything to disk, decide when to build (the executor
//! does), or answer a term whose meaning depends on anything but the value
//! at its one path.
//!
//! Why it is exact for every operator: a term on path `p` (`=`, `!=`, `<`,
//! `IN`, `LIKE`, `IS NULL`, and any NOT/AND/OR of terms on `p`) depends only
//! on the value found at `p`. So the term is evaluated once per *distinct*
//! value (on a small event holding just that value, with the filter
//! evaluator itself, so the semantics cannot drift), plus once for "absent";
//! the answer is the union of the groups whose value matched. Arrays and
//! objects at `p` behave alike for every term (no comparison matches them,
//! they are not null), so they share one group.
//!
//! Paths with many distinct values in a segment (ids, free text) are not
//! indexed: the index would be about as large as the data and a term would
//! be evaluated per value. Such segments are recorded as not indexable so
//! that they are not tried again while cached.

use std::collections::HashMap;
use std::fmt;

use roaring::{MultiOps, RoaringBitmap};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::query::ast::{FieldPath, Filter};

/// Most distinct values a path may hold in one segment and be indexed.
pub const MAX_DISTINCT: usize = 1024;

/// The value found at a path, as the filter evaluator distinguishes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Null,
    Bool(bool),
    /// Compared as `f64` by the evaluator (`1 = 1.0`).
    Num(f64),
    Str(String),
    /// An array or object.
    Compound,
}

/// Hashable form of [`Found`] (numbers by their bits, with `-0.0` as
/// `0.0`, which compares equal to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Compound,
}

impl From<Found> for Key {
    fn from(f: Found) -> Key {
        match f {
            Found::Null => Key::Null,
            Found::Bool(b) => Key::Bool(b),
            Found::Num(n) => Key::Num(if n == 0.0 { 0.0f64 } else { n }.to_bits()),
            Found::Str(s) => Key::Str(s),
            Found::Compound => Key::Compound,
        }
    }
}

impl Key {
    fn to_value(&self) -> Value {
        match self {
            Key::Null => Value::Null,
            Key::Bool(b) => Value::Bool(*b),
            Key::Num(bits) => serde_json::Number::from_f64(f64::from_bits(*bits))
                .map_or(Value::Null, Value::Number),
            Key::Str(s) => Value::String(s.clone()),
            Key::Compound => Value::Array(Vec::new()),
        }
    }

    fn weight(&self) -> usize {
        match self {
            Key::Str(s) => s.len() + 32,
            _ => 32,
        }
    }
}

/// Events of one segment grouped by their value at one path.
#[derive(Debug, Clone)]
pub struct PathIndex {
    groups: Vec<(Key, RoaringBitmap)>,
    /// Events that have the path (the union of the groups).
    present: RoaringBitmap,
}

/// Builds a [`PathIndex`] from events fed in ordinal order.
pub struct PathIndexBuilder<'p> {
    path: &'p [String],
    groups: HashMap<Key, RoaringBitmap>,
    too_many: bool,
}

impl<'p> PathIndexBuilder<'p> {
    pub fn new(path: &'p FieldPath) -> Self {
        PathIndexBuilder {
            path: &path.0,
            groups: HashMap::new(),
            too_many: false,
        }
    }

    /// Adds the event at `ordinal`. `Err` when its JSON does not parse.
    pub fn add(&mut self, ordinal: u32, json: &[u8]) -> Result<(), serde_json::Error> {
        if self.too_many {
            return Ok(());
        }
        let Some(found) = value_at(json, self.path)? else {
            return Ok(());
        };
        let key = Key::from(found);
        let distinct = self.groups.len();
        match self.groups.get_mut(&key) {
            Some(b) => {
                b.push(ordinal);
            }
            None if distinct >= MAX_DISTINCT => self.too_many = true,
            None => {
                self.groups.insert(
                    key,
                    RoaringBitmap::from_sorted_iter([ordinal]).unwrap_or_default(),
                );
            }
        }
        Ok(())
    }

    /// True once the path has shown too many distinct values: the rest of
    /// the events need not be read.
    pub fn gave_up(&self) -> bool {
        self.too_many
    }

    /// The index, or `None` when the path has too many distinct values.
    pub fn finish(self) -> Option<PathIndex> {
        if self.too_many {
            return None;
        }
        let groups: Vec<(Key, RoaringBitmap)> = self.groups.into_iter().collect();
        let present = groups.iter().map(|(_, b)| b).union();
        Some(PathIndex { groups, present })
    }
}

impl PathIndex {
    /// Approximate memory held, for cache accounting.
    pub fn weight(&self) -> usize {
        self.groups
            .iter()
            .map(|(k, b)| k.weight() + b.serialized_size())
            .sum::<usize>()
            + self.present.serialized_size()
            + 64
    }

    pub fn distinct(&self) -> usize {
        self.groups.len()
    }

    /// Ordinals in `0..event_count` of the events matching `term`, which
    /// must test nothing but `path` (the path this index was built for).
    pub fn answer(&self, path: &FieldPath, term: &Filter, event_count: u32) -> RoaringBitmap {
        let holding = |v: Option<Value>| {
            let mut event = v;
            for segment in path.0.iter().rev() {
                let mut m = serde_json::Map::new();
                if let Some(inner) = event {
                    m.insert(segment.clone(), inner);
                }
                event = Some(Value::Object(m));
            }
            event.unwrap_or(Value::Null)
        };
        let mut parts: Vec<&RoaringBitmap> = self
            .groups
            .iter()
            .filter(|(k, _)| term.matches(&holding(Some(k.to_value()))))
            .map(|(_, b)| b)
            .collect();
        let absent;
        if term.matches(&holding(None)) {
            let mut all = RoaringBitmap::new();
            all.insert_range(0..event_count);
            absent = all - &self.present;
            parts.push(&absent);
        }
        let mut out = parts.union();
        out.remove_range(event_count..);
        out
    }
}

/// The value at `path` in one event's JSON, `None` when absent (a missing
/// key, or a non-object on the way).
pub fn value_at(json: &[u8], path: &[String]) -> Result<Option<Found>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = At(path).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// Descends along the remaining path; skips everything else unparsed.
struct At<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Option<Found>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => d.deserialize_any(Leaf).map(Some),
            Some((first, rest)) => d.deserialize_any(Walk { key: first, rest }),
        }
    }
}

/// Reads the value found at the end of the path.
struct Leaf;

impl<'de> Visitor<'de> for Leaf {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::Null)
    }
    fn visit_none<E>(self) -> Result<Found, E> {
        Ok(Found::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Found, E> {
        Ok(Found::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Found, E> {
        Ok(Found::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Found, E> {
        Ok(Found::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Found, E> {
        Ok(Found::Num(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Found, E> {
        Ok(Found::Str(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Found::Compound)
    }
}

/// Looks for `key` in an object; anything else means the path is absent.
struct Walk<'p> {
    key: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<Found>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Like serde_json's own maps: of duplicate keys, the last one wins.
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.key))? {
            if hit {
                found = map.next_value_seed(At(self.rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares an object key (unescaped) with the wanted one.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_filter;

    fn found(json: &str, path: &str) -> Option<Found> {
        value_at(json.as_bytes(), &FieldPath::from(path).0).unwrap()
    }

    #[test]
    fn finds_values_as_the_evaluator_does() {
        let e = r#"{"a":{"b":1,"c":"x","d":null,"e":[1,{"b":2}],"f":{"g":true}},"h":"\u00e9","k":1,"k":"2"}"#;
        assert_eq!(found(e, "a.b"), Some(Found::Num(1.0)));
        assert_eq!(found(e, "a.c"), Some(Found::Str("x".into())));
        assert_eq!(found(e, "a.d"), Some(Found::Null));
        assert_eq!(found(e, "a.e"), Some(Found::Compound));
        assert_eq!(found(e, "a.e.b"), None, "arrays are not searched");
        assert_eq!(found(e, "a.f"), Some(Found::Compound));
        assert_eq!(found(e, "a.f.g"), Some(Found::Bool(true)));
        assert_eq!(found(e, "a.c.x"), None);
        assert_eq!(found(e, "a.z"), None);
        assert_eq!(found(e, "h"), Some(Found::Str("é".into())));
        assert_eq!(found(e, "k"), Some(Found::Str("2".into())), "last key wins");
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["k"], Value::String("2".into()));
        assert!(value_at(b"{\"a\":", &["a".to_string()]).is_err());
    }

    #[test]
    fn answers_agree_with_the_evaluator_event_by_event() {
        let events = [
            r#"{"p":{"v":1}}"#,
            r#"{"p":{"v":"1"}}"#,
            r#"{"p":{"v":1.0}}"#,
            r#"{"p":{"v":null}}"#,
            r#"{"p":{"v":[1]}}"#,
            r#"{"p":{"v":{"x":1}}}"#,
            r#"{"p":{}}"#,
            r#"{"p":"v"}"#,
            r#"{"p":{"v":"abc"}}"#,
            r#"{"p":{"v":"2024-03-10T00:07:00Z"}}"#,
            r#"{"p":{"v":-0.0}}"#,
            r#"{"p":{"v":true}}"#,
        ];
        let path = FieldPath::from("p.v");
        let mut b = PathIndexBuilder::new(&path);
        for (i, e) in events.iter().enumerate() {
            b.add(i as u32, e.as_bytes()).unwrap();
        }
        let index = b.finish().unwrap();
        for text in [
            "p.v = 1",
            "p.v = '1'",
            "p.v != 1",
            "p.v = 0",
            "p.v IN (1, 'abc')",
            "p.v NOT IN (1, 'abc')",
            "p.v IS NULL",
            "p.v IS NOT NULL",
            "p.v LIKE 'a%'",
            "p.v NOT LIKE '%'",
            "p.v < 2",
            "p.v >= '2024-03-10T02:07:00+02:00'",
            "p.v = true",
            "NOT (p.v = 1 OR p.v = 'abc')",
        ] {
            let f = parse_filter(text).unwrap();
            let want: RoaringBitmap = events
                .iter()
                .enumerate()
                .filter(|(_, e)| f.matches(&serde_json::from_str(e).unwrap()))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(index.answer(&path, &f, events.len() as u32), want, "{text}");
        }
    }

    #[test]
    fn too_many_values_is_not_indexed() {
        let path = FieldPath::from("v");
        let mut b = PathIndexBuilder::new(&path);
        for i in 0..=MAX_DISTINCT as u32 {
            b.add(i, format!(r#"{{"v":{i}}}"#).as_bytes()).unwrap();
        }
        assert!(b.finish().is_none());
    }
}
