//! Evaluating a [`Filter`] against one JSON event.
//!
//! Owns: the matching semantics of the filter language (path lookup, absent
//! vs. null, comparisons, time comparison on `occurred_at`, LIKE), and
//! [`CompiledFilter`], the pre-processed form for matching many events.
//! Must never: panic on any event or any hand-built filter, redo per event
//! what can be done once (parsing literal times, compiling LIKE patterns) on
//! the compiled path, recurse over event data, or consult indexes/storage.
//!
//! # Semantics (two-valued: every filter is either true or false)
//!
//! * **Path lookup** walks JSON objects key by key. A missing key, or a
//!   non-object (string, array, ...) on the way, makes the field *absent*.
//!   Arrays are not searched.
//! * `IS NULL` is true when the field is absent **or** JSON `null`;
//!   `IS NOT NULL` is its exact negation.
//! * `=`: a string literal equals a JSON string with exactly the same text; a
//!   number literal equals a JSON number with the same numeric value
//!   (`1 = 1.0`; large integers are compared as `f64`); `true`/`false` equal
//!   JSON booleans. A type mismatch or an absent field is false.
//! * `!=` / `<>` is exactly `NOT (=)`. In particular it is **true when the
//!   field is absent or has another type**. This keeps `a != x` equal to
//!   "all events minus those matching `a = x`", the algebra used by bitmap
//!   indexes.
//! * `<`, `<=`, `>`, `>=`: number vs. JSON number numerically; string vs. JSON
//!   string by byte order (lexicographic on UTF-8). When both the literal and
//!   the field value parse as RFC 3339 timestamps they are compared as
//!   instants instead. Booleans, null, absent or mismatched types: false.
//! * `occurred_at` (the top-level key) is a time: every comparison
//!   (`=`, `!=`, `<`, ..., `IN`) on it compares instants, so
//!   `occurred_at = '2021-08-05T12:00:00+02:00'` matches an event stored with
//!   `"2021-08-05T10:00:00Z"`. Its literals must be RFC 3339 strings (checked
//!   by the parser and by [`Filter::compile`]); an event whose `occurred_at`
//!   is missing or not RFC 3339 fails every such comparison (so `!=` is true).
//! * `IN (a, b)` is `= a OR = b`; `NOT IN` is its negation (true when absent).
//! * `LIKE` matches JSON strings only (anything else: false), the whole
//!   string, case-sensitively, character by character: `%` is any run of
//!   characters (including none), `_` is exactly one character, and a
//!   backslash makes the next character literal (`\%`, `\_`, `\\`). A pattern
//!   may not end with a lone backslash. `NOT LIKE` is the negation.
//! * `NOT`, `AND`, `OR` are ordinary boolean logic; an empty `And` is true
//!   and an empty `Or` is false (only possible in hand-built filters).
//! * A `NULL` literal inside `Compare`/`In` (never produced by the parser)
//!   matches nothing, so `!= NULL` / `NOT IN (NULL)` match everything.
//!
//! Evaluation recursion is proportional to the filter's nesting depth, which
//! the parser caps (see `crate::query::parse::MAX_NESTING_DEPTH`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::query::ast::{CmpOp, FieldPath, Filter, Literal};
use crate::query::error::FilterError;

/// The path whose string values are compared as instants.
pub const TIME_FIELD: &str = "occurred_at";

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Checks a literal used with `=`, `!=`, `<`, ..., or `IN` on `path`.
///
/// For the time field (`occurred_at`) the literal must be an RFC 3339 string;
/// the error text is what the parser reports (it adds the column).
pub(crate) fn check_time_literal(path: &FieldPath, value: &Literal) -> Result<(), String> {
    if !path.is(TIME_FIELD) {
        return Ok(());
    }
    match value {
        Literal::String(s) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "'{}' is not an RFC 3339 timestamp ({e}); {TIME_FIELD} must be compared \
                 with values like '2024-01-01T00:00:00Z'",
                excerpt(s)
            )),
        },
        other => Err(format!(
            "{TIME_FIELD} must be compared with an RFC 3339 timestamp string such as \
             '2024-01-01T00:00:00Z', not {}",
            describe_literal(other)
        )),
    }
}

fn describe_literal(value: &Literal) -> &'static str {
    match value {
        Literal::String(_) => "a string",
        Literal::Number(_) => "a number",
        Literal::Bool(_) => "a boolean",
        Literal::Null => "NULL",
    }
}

/// At most 40 characters of user text, for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

// ---------------------------------------------------------------------------
// LIKE

#[derive(Debug, Clone, PartialEq)]
enum LikeTok {
    Char(char),
    /// `_`
    One,
    /// `%` (consecutive ones are merged)
    Many,
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LikePattern {
    toks: Vec<LikeTok>,
}

impl LikePattern {
    /// Compiles a raw SQL pattern; the error text is reported by the parser.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => toks.push(LikeTok::Char(escaped)),
                    None => {
                        return Err("LIKE pattern ends with a lone backslash; write '\\\\' \
                                    to match a backslash"
                            .to_owned())
                    }
                },
                '%' => {
                    if toks.last() != Some(&LikeTok::Many) {
                        toks.push(LikeTok::Many);
                    }
                }
                '_' => toks.push(LikeTok::One),
                other => toks.push(LikeTok::Char(other)),
            }
        }
        Ok(LikePattern { toks })
    }

    /// Whole-string match; iterative with backtracking to the last `%`, so it
    /// is O(len(text) * len(pattern)) in the worst case and never recurses.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let next_char = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
        let mut p = 0usize; // index into toks
        let mut t = 0usize; // byte offset into text
                            // (pattern index after the last `%`, text offset that `%` currently ends at)
        let mut backtrack: Option<(usize, usize)> = None;
        while let Some(c) = next_char(t) {
            match self.toks.get(p) {
                Some(LikeTok::Many) => {
                    p += 1;
                    backtrack = Some((p, t));
                    continue;
                }
                Some(LikeTok::One) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                Some(LikeTok::Char(want)) if *want == c => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((after_star, star_end)) => {
                    // Let the last `%` swallow one more character and retry.
                    let Some(swallowed) = next_char(star_end) else {
                        return false;
                    };
                    let star_end = star_end + swallowed.len_utf8();
                    backtrack = Some((after_star, star_end));
                    p = after_star;
                    t = star_end;
                }
                None => return false,
            }
        }
        self.toks.iter().skip(p).all(|tok| *tok == LikeTok::Many)
    }
}

// ---------------------------------------------------------------------------
// Shared comparison helpers (used by both evaluation paths)

fn lookup<'a>(event: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut current = event;
    for segment in &path.0 {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

/// A literal with its RFC 3339 parse done up front.
#[derive(Debug, Clone)]
enum CLit {
    Str {
        text: String,
        time: Option<OffsetDateTime>,
    },
    Num(f64),
    Bool(bool),
    Null,
}

impl CLit {
    fn new(lit: &Literal) -> Self {
        match lit {
            Literal::String(s) => CLit::Str {
                text: s.clone(),
                time: parse_time(s),
            },
            Literal::Number(n) => CLit::Num(*n),
            Literal::Bool(b) => CLit::Bool(*b),
            Literal::Null => CLit::Null,
        }
    }
}

fn eval_eq(field: Option<&Value>, lit: &CLit, time_field: bool) -> bool {
    match (lit, field) {
        (CLit::Str { text, time }, Some(Value::String(value))) => {
            if time_field {
                matches!((time, parse_time(value)), (Some(a), Some(b)) if *a == b)
            } else {
                value == text
            }
        }
        (CLit::Num(n), Some(Value::Number(value))) => value.as_f64() == Some(*n),
        (CLit::Bool(b), Some(Value::Bool(value))) => value == b,
        _ => false,
    }
}

fn eval_order(field: Option<&Value>, op: CmpOp, lit: &CLit, time_field: bool) -> bool {
    let ordering = match (lit, field) {
        (CLit::Str { text, time }, Some(Value::String(value))) => {
            if time_field {
                match (parse_time(value), time) {
                    (Some(v), Some(l)) => Some(v.cmp(l)),
                    _ => None,
                }
            } else {
                match (time, time.and_then(|_| parse_time(value))) {
                    (Some(l), Some(v)) => Some(v.cmp(l)),
                    _ => Some(value.as_str().cmp(text.as_str())),
                }
            }
        }
        (CLit::Num(n), Some(Value::Number(value))) => value.as_f64().and_then(|v| v.partial_cmp(n)),
        _ => None,
    };
    match (ordering, op) {
        (Some(o), CmpOp::Lt) => o == Ordering::Less,
        (Some(o), CmpOp::Le) => o != Ordering::Greater,
        (Some(o), CmpOp::Gt) => o == Ordering::Greater,
        (Some(o), CmpOp::Ge) => o != Ordering::Less,
        _ => false,
    }
}

fn eval_cmp(field: Option<&Value>, op: CmpOp, lit: &CLit, time_field: bool) -> bool {
    match op {
        CmpOp::Eq => eval_eq(field, lit, time_field),
        CmpOp::Ne => !eval_eq(field, lit, time_field),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => eval_order(field, op, lit, time_field),
    }
}

fn is_null(field: Option<&Value>) -> bool {
    matches!(field, None | Some(Value::Null))
}

// ---------------------------------------------------------------------------
// Direct evaluation

impl Filter {
    /// True when `event` satisfies the filter (see the module docs for the
    /// exact semantics).
    ///
    /// Convenience for one-off checks: literals and LIKE patterns are
    /// re-processed on every call. To test many events, use
    /// [`Filter::compile`] once and [`CompiledFilter::matches`]. A LIKE
    /// pattern that does not compile (only possible in hand-built filters)
    /// matches no string here, so its `NOT LIKE` matches every event.
    pub fn matches(&self, event: &Value) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|f| f.matches(event)),
            Filter::Or(items) => items.iter().any(|f| f.matches(event)),
            Filter::Not(inner) => !inner.matches(event),
            Filter::Compare { path, op, value } => eval_cmp(
                lookup(event, path),
                *op,
                &CLit::new(value),
                path.is(TIME_FIELD),
            ),
            Filter::In {
                path,
                values,
                negated,
            } => {
                let field = lookup(event, path);
                let time_field = path.is(TIME_FIELD);
                let any = values
                    .iter()
                    .any(|v| eval_eq(field, &CLit::new(v), time_field));
                any != *negated
            }
            Filter::Like {
                path,
                pattern,
                negated,
            } => match (LikePattern::new(pattern), lookup(event, path)) {
                (Ok(p), Some(Value::String(s))) => p.matches(s) != *negated,
                (Ok(_), _) => *negated,
                (Err(_), _) => *negated,
            },
            Filter::IsNull { path, negated } => is_null(lookup(event, path)) != *negated,
        }
    }

    /// Pre-processes the filter for fast repeated matching: RFC 3339 literals
    /// are parsed and LIKE patterns compiled once.
    ///
    /// Fails when an `occurred_at` comparison has a literal that is not an
    /// RFC 3339 string, or a LIKE pattern ends with a lone backslash. Filters
    /// from `parse_filter` never fail (the parser already checked, with
    /// columns); errors here carry column 1 because a hand-built filter has
    /// no source text.
    pub fn compile(&self) -> Result<CompiledFilter, FilterError> {
        Ok(CompiledFilter {
            root: Node::compile(self)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Compiled evaluation

/// A [`Filter`] prepared for matching many events; see [`Filter::compile`].
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp {
        path: FieldPath,
        op: CmpOp,
        lit: CLit,
        time_field: bool,
    },
    In {
        path: FieldPath,
        values: Vec<CLit>,
        time_field: bool,
        negated: bool,
    },
    Like {
        path: FieldPath,
        pattern: LikePattern,
        negated: bool,
    },
    IsNull {
        path: FieldPath,
        negated: bool,
    },
}

impl Node {
    fn compile(filter: &Filter) -> Result<Node, FilterError> {
        let invalid = |msg: String| FilterError::new(msg, 1);
        Ok(match filter {
            Filter::And(items) => {
                Node::And(items.iter().map(Node::compile).collect::<Result<_, _>>()?)
            }
            Filter::Or(items) => {
                Node::Or(items.iter().map(Node::compile).collect::<Result<_, _>>()?)
            }
            Filter::Not(inner) => Node::Not(Box::new(Node::compile(inner)?)),
            Filter::Compare { path, op, value } => {
                check_time_literal(path, value).map_err(invalid)?;
                Node::Cmp {
                    path: path.clone(),
                    op: *op,
                    lit: CLit::new(value),
                    time_field: path.is(TIME_FIELD),
                }
            }
            Filter::In {
                path,
                values,
                negated,
            } => {
                for v in values {
                    check_time_literal(path, v).map_err(invalid)?;
                }
                Node::In {
                    path: path.clone(),
                    values: values.iter().map(CLit::new).collect(),
                    time_field: path.is(TIME_FIELD),
                    negated: *negated,
                }
            }
            Filter::Like {
                path,
                pattern,
                negated,
            } => Node::Like {
                path: path.clone(),
                pattern: LikePattern::new(pattern).map_err(invalid)?,
                negated: *negated,
            },
            Filter::IsNull { path, negated } => Node::IsNull {
                path: path.clone(),
                negated: *negated,
            },
        })
    }

    fn matches(&self, event: &Value) -> bool {
        match self {
            Node::And(items) => items.iter().all(|n| n.matches(event)),
            Node::Or(items) => items.iter().any(|n| n.matches(event)),
            Node::Not(inner) => !inner.matches(event),
            Node::Cmp {
                path,
                op,
                lit,
                time_field,
            } => eval_cmp(lookup(event, path), *op, lit, *time_field),
            Node::In {
                path,
                values,
                time_field,
                negated,
            } => {
                let field = lookup(event, path);
                values.iter().any(|v| eval_eq(field, v, *time_field)) != *negated
            }
            Node::Like {
                path,
                pattern,
                negated,
            } => match lookup(event, path) {
                Some(Value::String(s)) => pattern.matches(s) != *negated,
                _ => *negated,
            },
            Node::IsNull { path, negated } => is_null(lookup(event, path)) != *negated,
        }
    }
}

impl CompiledFilter {
    /// True when `event` satisfies the filter; same semantics as
    /// [`Filter::matches`].
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse::parse_filter;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "id": "01FC31EHYYR0MF7J7GEJK2TFM0",
            "occurred_at": "2021-08-05T10:00:00.123456Z",
            "action_name": "items.update",
            "actor": {"type": "user", "id": "4845293", "name": "bob"},
            "role": null,
            "environment": {"id": "main", "primary": true},
            "request": {
                "method": "PUT",
                "path": "/items/239408/publish",
                "ip": "1.2.3.4",
                "payload": {"data": {"relationships": {"item_type": {"data": {"id": "855832"}}}}}
            },
            "response": {"status": 200},
            "tags": ["a", "b"],
            "ratio": 0.5,
            "note": "it's 100% _done_ \\o/",
            "unicode": "héllo wörld",
            "deploy": {"at": "2021-08-05T12:00:00+02:00"}
        })
    }

    /// Parses, checks both evaluation paths agree, returns the result.
    fn check(src: &str, ev: &Value) -> bool {
        let filter = match parse_filter(src) {
            Ok(f) => f,
            Err(e) => panic!("{src}: {e}"),
        };
        let direct = filter.matches(ev);
        let compiled = match filter.compile() {
            Ok(c) => c.matches(ev),
            Err(e) => panic!("{src}: compile: {e}"),
        };
        assert_eq!(direct, compiled, "direct vs compiled disagree for {src}");
        direct
    }

    fn yes(src: &str) {
        assert!(check(src, &event()), "expected match: {src}");
    }

    fn no(src: &str) {
        assert!(!check(src, &event()), "expected no match: {src}");
    }

    #[test]
    fn the_five_required_filters_match() {
        yes("action_name = 'items.update'");
        yes("actor.type = 'user'");
        yes("actor.type = 'user' AND actor.id = '4845293'");
        yes("request.path = '/items/239408/publish'");
        no("action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'");
        let mut create = event();
        if let Some(obj) = create.as_object_mut() {
            obj.insert("action_name".into(), json!("items.create"));
        }
        assert!(check(
            "action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'",
            &create
        ));
        assert!(!check(
            "action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '1'",
            &create
        ));
    }

    #[test]
    fn equality_by_type() {
        yes("response.status = 200");
        yes("response.status = 200.0");
        no("response.status = '200'");
        no("actor.id = 4845293");
        yes("environment.primary = true");
        no("environment.primary = false");
        no("environment.primary = 'true'");
        yes("ratio = 0.5");
        yes("ratio = 5e-1");
        no("action_name = 'Items.Update'");
        no("missing = 'x'");
        no("actor.type.deeper = 'user'");
        no("tags = 'a'");
    }

    #[test]
    fn not_equal_is_negation_of_equal() {
        yes("action_name != 'x'");
        yes("action_name <> 'x'");
        no("action_name != 'items.update'");
        yes("missing != 'x'");
        yes("role != 'admin'");
        yes("response.status != '200'");
        no("response.status <> 200");
    }

    #[test]
    fn ordering_numbers_and_strings() {
        yes("response.status >= 200");
        yes("response.status > 199.5");
        no("response.status > 200");
        yes("response.status < 300 AND response.status <= 200");
        yes("response.status > -1");
        no("response.status < '300'");
        no("missing < 1");
        no("missing >= 'a'");
        yes("action_name > 'items'");
        yes("action_name < 'items.upgrade'");
        yes("action_name >= 'items.update'");
        no("action_name > 'items.update'");
        yes("request.method < 'a'"); // byte order: uppercase before lowercase
        yes("unicode > 'hz'"); // 'é' (U+00E9) sorts after 'z' in UTF-8
    }

    #[test]
    fn occurred_at_compares_instants() {
        yes("occurred_at >= '2021-01-01T00:00:00Z'");
        yes("occurred_at > '2021-08-05T10:00:00Z'");
        yes("occurred_at < '2021-08-05T10:00:00.2Z'");
        no("occurred_at < '2021-08-05T10:00:00.123456Z'");
        yes("occurred_at <= '2021-08-05T10:00:00.123456Z'");
    }

    #[test]
    fn occurred_at_with_offsets_and_equality() {
        yes("occurred_at = '2021-08-05T12:00:00.123456+02:00'");
        yes("occurred_at = '2021-08-05T10:00:00.123456000Z'");
        no("occurred_at = '2021-08-05T10:00:00Z'");
        yes("occurred_at != '2021-08-05T10:00:00Z'");
        yes("occurred_at < '2021-08-05T11:00:00.5+01:00'");
        no("occurred_at > '2021-08-05T11:00:00.5+01:00'");
        yes("occurred_at IN ('2020-01-01T00:00:00Z', '2021-08-05T10:00:00.123456Z')");
        yes("occurred_at NOT IN ('2020-01-01T00:00:00Z')");
        yes("occurred_at LIKE '2021-08-05T%'");
        // An event without a parsable occurred_at fails every time comparison.
        let bad = json!({"occurred_at": "yesterday"});
        assert!(!check("occurred_at < '2030-01-01T00:00:00Z'", &bad));
        assert!(!check("occurred_at >= '2000-01-01T00:00:00Z'", &bad));
        assert!(check("occurred_at != '2000-01-01T00:00:00Z'", &bad));
        assert!(!check("occurred_at < '2030-01-01T00:00:00Z'", &json!({})));
    }

    #[test]
    fn other_timestamps_compare_as_instants_only_when_both_parse() {
        // deploy.at is 10:00Z written with a +02:00 offset.
        yes("deploy.at < '2021-08-05T11:00:00Z'");
        yes("deploy.at > '2021-08-05T09:59:59Z'");
        // `=` stays exact text on ordinary fields.
        no("deploy.at = '2021-08-05T10:00:00Z'");
        yes("deploy.at = '2021-08-05T12:00:00+02:00'");
        // literal not a time: plain string order
        yes("deploy.at > '2021'");
        yes("deploy.at < '3'");
    }

    #[test]
    fn in_and_not_in() {
        yes("actor.type IN ('user', 'token')");
        no("actor.type IN ('token', 'access_token')");
        yes("actor.type NOT IN ('token', 'access_token')");
        no("actor.type NOT IN ('user')");
        yes("response.status IN (404, 200, 'x', true)");
        yes("missing NOT IN ('x')");
        no("missing IN ('x')");
        yes("environment.primary IN (true)");
    }

    #[test]
    fn like_and_not_like() {
        yes("action_name LIKE 'items.%'");
        yes("action_name LIKE '%update'");
        yes("action_name LIKE 'items._pdate'");
        yes("action_name LIKE '%'");
        yes("action_name LIKE '%.%'");
        no("action_name LIKE 'items'");
        no("action_name LIKE 'ITEMS.%'");
        yes("action_name NOT LIKE 'roles.%'");
        no("action_name NOT LIKE 'items.%'");
        yes("request.path LIKE '/items/%/publish'");
        yes("note LIKE 'it''s 100\\% \\_done\\_ \\\\o/'");
        no("note LIKE 'it''s 100\\%\\_%'");
        yes("note LIKE '%\\%%'");
        yes("unicode LIKE 'h_llo w_rld'");
        no("unicode LIKE 'h__llo%'");
        // non-strings and absent fields never match LIKE; NOT LIKE is the negation
        no("response.status LIKE '2%'");
        yes("response.status NOT LIKE '2%'");
        no("missing LIKE '%'");
        yes("missing NOT LIKE '%'");
    }

    #[test]
    fn like_matcher_edge_cases() {
        let m = |p: &str, s: &str| match LikePattern::new(p) {
            Ok(pat) => pat.matches(s),
            Err(e) => panic!("{p}: {e}"),
        };
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("%", ""));
        assert!(m("%%%", "abc"));
        assert!(!m("_", ""));
        assert!(m("a%b%c", "aXXbYYc"));
        assert!(m("a%b%c", "abcbc"));
        assert!(!m("a%b%c", "aXXbYY"));
        assert!(m("%a%a%a%a%b", "aaaaaaaaaaab"));
        assert!(!m("%a%a%a%a%b", &"a".repeat(5000)));
        assert!(m("\\a\\\\", "a\\"));
        assert!(m("ü_", "üß"));
        assert!(LikePattern::new("abc\\").is_err());
    }

    #[test]
    fn is_null_and_is_not_null() {
        yes("role IS NULL");
        yes("missing IS NULL");
        yes("actor.type.deeper IS NULL");
        no("actor IS NULL");
        yes("actor IS NOT NULL");
        no("role IS NOT NULL");
        no("missing.x IS NOT NULL");
        yes("tags IS NOT NULL");
    }

    #[test]
    fn boolean_logic() {
        yes("actor.type = 'user' OR actor.type = 'token'");
        yes("actor.type = 'token' OR response.status = 200");
        no("actor.type = 'token' OR response.status = 500");
        yes("NOT actor.type = 'token'");
        no("NOT (actor.type = 'user' AND response.status = 200)");
        yes("NOT NOT actor.type = 'user'");
        yes("(actor.type = 'token' OR actor.type = 'user') AND NOT role IS NOT NULL");
        // AND binds tighter than OR
        yes("actor.type = 'user' OR actor.type = 'x' AND response.status = 500");
        no("(actor.type = 'user' OR actor.type = 'x') AND response.status = 500");
    }

    #[test]
    fn hand_built_edge_cases() {
        let ev = event();
        assert!(Filter::And(vec![]).matches(&ev));
        assert!(!Filter::Or(vec![]).matches(&ev));
        let ne_null = Filter::Compare {
            path: FieldPath::from("role"),
            op: CmpOp::Ne,
            value: Literal::Null,
        };
        assert!(ne_null.matches(&ev));
        let bad_like = Filter::Like {
            path: FieldPath::from("action_name"),
            pattern: "x\\".into(),
            negated: true,
        };
        assert!(bad_like.matches(&ev)); // NOT LIKE of a pattern that matches nothing
        assert!(bad_like.compile().is_err());
        let bad_time = Filter::Compare {
            path: FieldPath::from("occurred_at"),
            op: CmpOp::Lt,
            value: Literal::String("soon".into()),
        };
        match bad_time.compile() {
            Err(e) => {
                assert_eq!(e.column, 1);
                assert!(e.message.contains("RFC 3339"), "{e}");
            }
            Ok(_) => panic!("expected error"),
        }
        assert!(!bad_time.matches(&ev));
        let bool_order = Filter::Compare {
            path: FieldPath::from("environment.primary"),
            op: CmpOp::Ge,
            value: Literal::Bool(true),
        };
        assert!(!bool_order.matches(&ev));
        // empty path means the event itself
        let whole = Filter::IsNull {
            path: FieldPath(vec![]),
            negated: true,
        };
        assert!(whole.matches(&ev));
        assert!(!Filter::IsNull {
            path: FieldPath::from("x"),
            negated: true
        }
        .matches(&json!("not an object")));
    }
}
