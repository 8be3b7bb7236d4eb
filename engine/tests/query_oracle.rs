//! The query executor checked against a naive full scan (the oracle).
//!
//! A random store (several segments and blocks, time windows, many exact
//! time ties, late arrivals, duplicate client ids) is queried with random
//! filters (built as ASTs, and also printed and parsed back), random time
//! ranges, both orders and small limits. Paging with `next_cursor` must
//! yield exactly what a scan of `Snapshot::events()` filtered with
//! `CompiledFilter::matches` and sorted by `(occurred_at, storage order)`
//! yields, and `count` must agree. A second property appends, seals and
//! drops between pages: the pages must still be exactly the result as of
//! the first page.

mod common;

use std::collections::HashMap;

use auditlog_engine::query::{parse_filter, CmpOp, Cursor, FieldPath, Filter, Literal, Query};
use auditlog_engine::testing::SimFs;
use auditlog_engine::{
    Engine, EngineConfig, EventId, Order, Snapshot, StoredEvent, TimeRange, Timestamp,
};
use common::open_sim;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

// ---------------------------------------------------------------------------
// The time grid: 2 days x 20 slots (7 minutes apart, so 1-hour windows are
// crossed) x 3 sub-slot offsets (0, +1 µs, +999 999 µs). Events are put on
// grid points only, so exact ties are everywhere.

const GRID: u32 = 120;
const HOUR: i64 = 3_600_000_000;
const SUBS: [i64; 3] = [0, 1, 999_999];

fn base() -> i64 {
    // 2024-03-10T00:00:00Z: in the past, so the future-skew limit never bites.
    Timestamp::parse_rfc3339("2024-03-10T00:00:00Z")
        .unwrap()
        .as_micros()
}

fn grid(k: u32) -> i64 {
    let day = i64::from(k / 60);
    let slot = i64::from((k % 60) / 3);
    let sub = SUBS[(k % 3) as usize];
    base() + day * 24 * HOUR + slot * 7 * 60_000_000 + sub
}

/// RFC 3339 text for `micros` (+ `extra_nanos`), at the given offset (in
/// minutes east of UTC).
fn time_text(micros: i64, extra_nanos: i64, offset_minutes: i32) -> String {
    let nanos = i128::from(micros) * 1000 + i128::from(extra_nanos);
    let off = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap()
        .to_offset(off)
        .format(&Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------------------
// Value domains, small so that filters hit.

const ACTIONS: [&str; 5] = [
    "items.create",
    "items.update",
    "items.destroy",
    "items.publish",
    "users.login",
];
const ACTOR_TYPES: [&str; 3] = ["user", "access_token", "account"];
const ACTOR_IDS: [&str; 8] = ["1", "2", "3", "4", "5", "10", "4845293", "u_1"];
const ENVS: [&str; 3] = ["main", "dev", "staging"];
const REQUEST_PATHS: [&str; 7] = [
    "/items/239408/publish",
    "/items/1/publish",
    "/api/items/1",
    "/items/2",
    "100%_done",
    "a\\b",
    "/items/é/publish",
];
const METHODS: [&str; 3] = ["GET", "PUT", "POST"];
const PAYLOAD_S: [&str; 10] = [
    "",
    "abc",
    "Abc",
    "abd",
    "é",
    "2024-03-10T00:07:00Z",
    "2024-03-10T02:07:00+02:00",
    "it's",
    "100%_done",
    "a\\b",
];

/// One random event, before its time is decided.
#[derive(Debug, Clone)]
struct Ev {
    /// Clock step: 0, 0, 0, 1, 1, 1 grid points (wrapping at the grid end).
    advance: u8,
    /// >= 12: arrives late, `(back - 11) * 9` grid points behind the clock.
    back: u8,
    /// Grid point in "chaos" stores (times in any order).
    rand_t: u8,
    /// 0: no `occurred_at` (receive time); 1-3: `+02:00`; 4-5: sub-µs digits
    /// (truncated on ingest); 6: `-05:30`; else canonical UTC.
    fmt: u8,
    action: u8,
    actor_type: u8,
    actor_id: u8,
    /// 0: absent, 1: null, 2..: `{"id": ENVS[env-2], "primary": ...}`.
    env: u8,
    /// 0: absent, 1: null, 2: {"name":"admin"}, 3: {"name":"viewer"}.
    role: u8,
    /// 0: absent, 1: null, else an object using `path`, `n`, `s`, `data`.
    request: u8,
    n: u8,
    s: u8,
    data: u8,
    path: u8,
    /// A client id from a small pool, so that duplicates happen.
    id: Option<u8>,
    /// Write `action_name` with a JSON escape.
    escape: bool,
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        (0u8..6, 0u8..16, 0u8..GRID as u8, 0u8..40),
        (0u8..5, 0u8..3, 0u8..8, 0u8..6),
        (0u8..4, 0u8..8, 0u8..17, 0u8..11, 0u8..6, 0u8..7),
        (
            proptest::option::weighted(0.1, 0u8..20),
            proptest::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (advance, back, rand_t, fmt),
                (action, actor_type, actor_id, env),
                (role, request, n, s, data, path),
                (id, escape),
            )| Ev {
                advance,
                back,
                rand_t,
                fmt,
                action,
                actor_type,
                actor_id,
                env,
                role,
                request,
                n,
                s,
                data,
                path,
                id,
                escape,
            },
        )
}

fn pool_id(i: u8) -> EventId {
    EventId::from_u128(0x0180_0000_0000_0000_0000_0000_0000_0000 + u128::from(i) * 7919)
}

impl Ev {
    fn json(&self, micros: i64) -> String {
        let mut m = serde_json::Map::new();
        if let Some(i) = self.id {
            m.insert("id".into(), json!(pool_id(i).to_string()));
        }
        let time = match self.fmt {
            0 => None,
            1..=3 => Some(time_text(micros, 0, 120)),
            4 | 5 => Some(time_text(micros, 789, 0)),
            6 => Some(time_text(micros, 0, -330)),
            _ => Some(Timestamp(micros).to_rfc3339()),
        };
        if let Some(t) = time {
            m.insert("occurred_at".into(), json!(t));
        }
        m.insert(
            "action_name".into(),
            json!(ACTIONS[usize::from(self.action) % ACTIONS.len()]),
        );
        m.insert(
            "actor".into(),
            json!({
                "type": ACTOR_TYPES[usize::from(self.actor_type) % ACTOR_TYPES.len()],
                "id": ACTOR_IDS[usize::from(self.actor_id) % ACTOR_IDS.len()],
                "name": "bob",
            }),
        );
        match self.env {
            0 => {}
            1 => {
                m.insert("environment".into(), Value::Null);
            }
            e => {
                let i = usize::from(e - 2) % ENVS.len();
                m.insert(
                    "environment".into(),
                    json!({"id": ENVS[i], "primary": i == 0}),
                );
            }
        }
        match self.role {
            0 => {}
            1 => {
                m.insert("role".into(), Value::Null);
            }
            2 => {
                m.insert("role".into(), json!({"name": "admin"}));
            }
            _ => {
                m.insert("role".into(), json!({"name": "viewer"}));
            }
        }
        match self.request {
            0 => {}
            1 => {
                m.insert("request".into(), Value::Null);
            }
            _ => {
                let mut payload = serde_json::Map::new();
                let n = match self.n {
                    0 => None,
                    1 => Some(Value::Null),
                    2 => Some(json!(-1)),
                    3 => Some(json!(0)),
                    4 => Some(json!(1.5)),
                    5 => Some(json!(2)),
                    6 => Some(json!(10)),
                    7 => Some(json!(200)),
                    8 => Some(json!("10")),
                    9 => Some(json!("abc")),
                    10 => Some(json!(true)),
                    11 => Some(json!(false)),
                    12 => Some(json!(1000.0)),
                    // Values inside arrays are not found by paths.
                    13 => Some(json!([1])),
                    14 => Some(json!([{"x": 1}, "abc"])),
                    15 => Some(json!(-0.0)),
                    _ => Some(json!({"x": 1})),
                };
                if let Some(n) = n {
                    payload.insert("n".into(), n);
                }
                if self.s > 0 {
                    let s = PAYLOAD_S[usize::from(self.s - 1) % PAYLOAD_S.len()];
                    payload.insert("s".into(), json!(s));
                    // A non-ASCII key, and one that extends another key.
                    payload.insert("ü".into(), json!(s));
                    payload.insert("s.x".into(), json!(self.s));
                }
                match self.data {
                    0 => {}
                    1 => {
                        payload.insert("data".into(), json!({"id": "855832"}));
                    }
                    2 => {
                        payload.insert("data".into(), json!({"id": "1"}));
                    }
                    3 => {
                        payload.insert("data".into(), json!({"id": ["855832"]}));
                    }
                    4 => {
                        // Rewritten below into duplicate keys: the last wins.
                        payload.insert("data".into(), json!({"id": "DUPLICATE"}));
                    }
                    _ => {
                        payload.insert("data".into(), json!({"id": 855832}));
                    }
                }
                let p = usize::from(self.path) % REQUEST_PATHS.len();
                m.insert(
                    "request".into(),
                    json!({
                        "method": METHODS[p % METHODS.len()],
                        "path": REQUEST_PATHS[p],
                        "occurred_at": "2024-03-10T00:07:00Z",
                        "payload": payload,
                    }),
                );
            }
        }
        let text = Value::Object(m)
            .to_string()
            .replace(r#""id":"DUPLICATE""#, r#""id":"855832","id":"1""#);
        if self.escape {
            // Same value, different bytes: indexes and filters see the text.
            text.replacen("\"items.", "\"it\\u0065ms.", 1)
        } else {
            text
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<Ev>),
    Seal,
}

#[derive(Debug, Clone)]
struct StoreSpec {
    /// Where the in-order clock starts on the grid.
    start: u8,
    /// Times uniformly at random instead of a drifting clock.
    chaos: bool,
    max_segment_events: u32,
    block_bytes: usize,
    steps: Vec<Step>,
}

fn store_spec() -> impl Strategy<Value = StoreSpec> {
    let step = prop_oneof![
        8 => proptest::collection::vec(ev(), 1..30).prop_map(Step::Append),
        1 => Just(Step::Seal),
    ];
    (
        0u8..60,
        proptest::bool::weighted(0.25),
        17u32..50,
        300usize..1000,
        proptest::collection::vec(step, 0..25),
    )
        .prop_map(
            |(start, chaos, max_segment_events, block_bytes, steps)| StoreSpec {
                start,
                chaos,
                max_segment_events,
                block_bytes,
                steps,
            },
        )
}

const MAX_EVENTS: usize = 300;

struct Clock {
    pos: u32,
    chaos: bool,
}

impl Clock {
    fn time_of(&mut self, e: &Ev) -> i64 {
        if self.chaos {
            return grid(u32::from(e.rand_t) % GRID);
        }
        self.pos = (self.pos + [0, 0, 0, 1, 1, 1][usize::from(e.advance) % 6]) % GRID;
        let k = if e.back >= 12 {
            self.pos.saturating_sub(u32::from(e.back - 11) * 9)
        } else {
            self.pos
        };
        grid(k)
    }
}

fn store_config(spec: &StoreSpec) -> EngineConfig {
    EngineConfig {
        block_bytes: spec.block_bytes,
        max_segment_events: spec.max_segment_events,
        window_micros: HOUR,
        ..EngineConfig::default()
    }
}

fn build(spec: &StoreSpec) -> (Engine, SimFs) {
    let fs = SimFs::new();
    let engine = open_sim(&fs, store_config(spec));
    let mut clock = Clock {
        pos: u32::from(spec.start),
        chaos: spec.chaos,
    };
    let mut total = 0;
    for step in &spec.steps {
        match step {
            Step::Seal => engine.seal().unwrap(),
            Step::Append(evs) => {
                let take = evs.len().min(MAX_EVENTS - total);
                if take == 0 {
                    continue;
                }
                let batch: Vec<String> = evs[..take]
                    .iter()
                    .map(|e| e.json(clock.time_of(e)))
                    .collect();
                engine.append_json(&batch).unwrap();
                total += take;
                // Readers extend the head's cached time order as it grows
                // (merging in late arrivals); make that happen in between.
                engine
                    .snapshot()
                    .query(&Query {
                        limit: 1,
                        ..Query::default()
                    })
                    .unwrap();
            }
        }
    }
    (engine, fs)
}

// ---------------------------------------------------------------------------
// Filters.

#[derive(Clone, Copy)]
enum L {
    S(&'static str),
    N(f64),
    B(bool),
}

/// Paths for comparisons and IN, each with the literals likely to hit it.
const PATHS: &[(&[&str], &[L])] = &[
    (
        &["action_name"],
        &[
            L::S("items.create"),
            L::S("items.update"),
            L::S("items.destroy"),
            L::S("items.publish"),
            L::S("users.login"),
            L::S("items.cr"),
            L::S("Items.Update"),
            L::S("items.q"),
            L::N(1.0),
        ],
    ),
    (
        &["actor", "type"],
        &[
            L::S("user"),
            L::S("access_token"),
            L::S("account"),
            L::S("User"),
            L::S("b"),
        ],
    ),
    (
        &["actor", "id"],
        &[
            L::S("1"),
            L::S("2"),
            L::S("3"),
            L::S("4"),
            L::S("5"),
            L::S("10"),
            L::S("4845293"),
            L::S("u_1"),
            L::S("9"),
            L::N(1.0),
            L::N(10.0),
        ],
    ),
    (
        &["environment", "id"],
        &[L::S("main"), L::S("dev"), L::S("staging"), L::S("prod")],
    ),
    (
        &["environment", "primary"],
        &[L::B(true), L::B(false), L::S("true")],
    ),
    (
        &["request", "payload", "n"],
        &[
            L::N(-1.0),
            L::N(0.0),
            L::N(1.5),
            L::N(2.0),
            L::N(10.0),
            L::N(200.0),
            L::N(1000.0),
            L::S("10"),
            L::S("abc"),
            L::B(true),
        ],
    ),
    (
        &["request", "payload", "s"],
        &[
            L::S(""),
            L::S("abc"),
            L::S("Abc"),
            L::S("abd"),
            L::S("é"),
            L::S("2024-03-10T00:07:00Z"),
            L::S("2024-03-10T00:07:00.000001Z"),
            L::S("2024-03-10T01:07:00+01:00"),
            L::S("it's"),
            L::S("100%_done"),
            L::S("a\\b"),
            L::S("b"),
        ],
    ),
    (
        &["request", "payload", "data", "id"],
        &[L::S("855832"), L::S("1"), L::N(855832.0)],
    ),
    (&["request", "payload", "ü"], &[L::S("abc"), L::S("é")]),
    (&["request", "payload", "s.x"], &[L::N(2.0), L::N(3.0)]),
    (&["request", "payload", "s", "x"], &[L::N(2.0)]),
    (&["request", "payload", "data"], &[L::S("855832")]),
    (
        &["request", "path"],
        &[
            L::S("/items/239408/publish"),
            L::S("/items/1/publish"),
            L::S("/api/items/1"),
            L::S("/items/2"),
            L::S("100%_done"),
            L::S("a\\b"),
            L::S("/items/é/publish"),
            L::S("/items/"),
        ],
    ),
    (
        &["request", "method"],
        &[L::S("GET"), L::S("PUT"), L::S("POST")],
    ),
    (
        &["request", "occurred_at"],
        &[
            L::S("2024-03-10T00:07:00Z"),
            L::S("2024-03-10T02:07:00+02:00"),
            L::S("2024-03-10T00:07:00.000001Z"),
        ],
    ),
    (&["role"], &[L::S("admin"), L::N(1.0)]),
    (&["role", "name"], &[L::S("admin"), L::S("viewer")]),
    (&["actor"], &[L::S("user")]),
    // One segment named "actor.type": not the indexed field.
    (&["actor.type"], &[L::S("user")]),
    (&["missing"], &[L::S("x"), L::N(1.0)]),
];

/// Literals from every domain, for the 30% of picks that go off-domain.
const ANY: &[L] = &[
    L::S("user"),
    L::S("items.update"),
    L::S("main"),
    L::S("1"),
    L::S("abc"),
    L::S(""),
    L::S("2024-03-10T00:07:00Z"),
    L::N(1.0),
    L::N(10.0),
    L::N(-0.5),
    L::B(true),
    L::B(false),
];

const LIKE_PATHS: &[&[&str]] = &[
    &["action_name"],
    &["actor", "type"],
    &["actor", "id"],
    &["environment", "id"],
    &["request", "path"],
    &["request", "payload", "s"],
    &["request", "payload", "n"],
    &["request", "payload", "ü"],
    &["request", "payload", "data", "id"],
    &["role", "name"],
    &["occurred_at"],
    &["missing"],
];

const PATTERNS: &[&str] = &[
    "items.%",
    "%.create",
    "items._pdate",
    "items.update",
    "/items/%/publish",
    "/api/%",
    "%",
    "",
    "_",
    "100\\%%",
    "%\\_%",
    "a\\\\b",
    "u%r",
    "%é%",
    "%:07:%",
    "2024-03-1_T00:%",
    "access\\_token",
    "%1",
    "ma_n",
    "%0Z",
];

const NULL_PATHS: &[&[&str]] = &[
    &["action_name"],
    &["actor", "type"],
    &["actor", "id"],
    &["environment", "id"],
    &["environment"],
    &["role"],
    &["role", "name"],
    &["request"],
    &["request", "payload"],
    &["request", "payload", "n"],
    &["request", "payload", "s"],
    &["request", "payload", "data", "id"],
    &["request", "payload", "ü"],
    &["occurred_at"],
    &["id"],
    &["missing"],
    &["actor.type"],
];

fn path(segments: &[&str]) -> FieldPath {
    FieldPath(segments.iter().map(|s| s.to_string()).collect())
}

fn literal(l: L, ordering: bool) -> Literal {
    match l {
        L::S(s) => Literal::String(s.into()),
        L::N(n) => Literal::Number(n),
        // `x < true` does not parse; compare with a string instead.
        L::B(_) if ordering => Literal::String("true".into()),
        L::B(b) => Literal::Bool(b),
    }
}

fn pick(p: usize, choice: u16, ordering: bool) -> Literal {
    let domain = PATHS[p].1;
    let c = usize::from(choice);
    let l = if c % 10 < 7 {
        domain[(c / 10) % domain.len()]
    } else {
        ANY[(c / 10) % ANY.len()]
    };
    literal(l, ordering)
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
    ]
}

/// An RFC 3339 literal near the grid: a grid point (or one past the end),
/// nudged by -1/0/+1 µs, written in UTC, with an offset, or with a
/// sub-microsecond part (which the time range cannot represent).
fn time_literal() -> impl Strategy<Value = String> {
    (0u32..GRID + 2, 0u8..8, -1i64..=1).prop_map(|(k, v, adj)| time_literal_text(k, v, adj))
}

fn time_literal_text(k: u32, variant: u8, adj: i64) -> String {
    let t = grid(k.min(GRID - 1)) + if k >= GRID { HOUR } else { 0 } + adj;
    match variant {
        0 => time_text(t, 0, 120),
        1 => time_text(t, 0, -330),
        2 => time_text(t, 500, 0),
        3 => time_text(t, -1, 0),
        4 => time_text(t, 1, 60),
        _ => Timestamp(t).to_rfc3339(),
    }
}

fn occurred_at() -> FieldPath {
    path(&["occurred_at"])
}

fn time_compare() -> impl Strategy<Value = Filter> {
    (op(), time_literal()).prop_map(|(op, t)| time_cmp(op, t))
}

fn time_cmp(op: CmpOp, t: String) -> Filter {
    Filter::Compare {
        path: occurred_at(),
        op,
        value: Literal::String(t),
    }
}

/// `occurred_at` conditions as a top-level AND would hold them: one
/// comparison, or a window `>=`/`>` low AND `<`/`<=` high (low <= high, so
/// it usually holds events), sometimes with one more comparison.
fn time_conditions() -> impl Strategy<Value = Vec<Filter>> {
    let window = (
        (0u32..GRID + 2, 0u8..8, -1i64..=1, any::<bool>()),
        (0u32..GRID + 2, 0u8..8, -1i64..=1, any::<bool>()),
    )
        .prop_map(|(a, b)| {
            let (lo, hi) = if a.0 <= b.0 { (a, b) } else { (b, a) };
            vec![
                time_cmp(
                    if lo.3 { CmpOp::Ge } else { CmpOp::Gt },
                    time_literal_text(lo.0, lo.1, lo.2),
                ),
                time_cmp(
                    if hi.3 { CmpOp::Lt } else { CmpOp::Le },
                    time_literal_text(hi.0, hi.1, hi.2),
                ),
            ]
        });
    (
        prop_oneof![time_compare().prop_map(|f| vec![f]), window],
        proptest::option::weighted(0.25, time_compare()),
    )
        .prop_map(|(mut v, extra)| {
            v.extend(extra);
            v
        })
}

fn leaf() -> BoxedStrategy<Filter> {
    let compare = (0..PATHS.len(), op(), any::<u16>()).prop_map(|(p, op, c)| {
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        Filter::Compare {
            path: path(PATHS[p].0),
            op,
            value: pick(p, c, ordering),
        }
    });
    let is_in = (
        0..PATHS.len(),
        proptest::collection::vec(any::<u16>(), 1..4),
        any::<bool>(),
    )
        .prop_map(|(p, cs, negated)| Filter::In {
            path: path(PATHS[p].0),
            values: cs.into_iter().map(|c| pick(p, c, false)).collect(),
            negated,
        });
    let like =
        (0..LIKE_PATHS.len(), 0..PATTERNS.len(), any::<bool>()).prop_map(|(p, pat, negated)| {
            Filter::Like {
                path: path(LIKE_PATHS[p]),
                pattern: PATTERNS[pat].into(),
                negated,
            }
        });
    let is_null = (0..NULL_PATHS.len(), any::<bool>()).prop_map(|(p, negated)| Filter::IsNull {
        path: path(NULL_PATHS[p]),
        negated,
    });
    let time_in = (
        proptest::collection::vec(time_literal(), 1..3),
        any::<bool>(),
    )
        .prop_map(|(ts, negated)| Filter::In {
            path: occurred_at(),
            values: ts.into_iter().map(Literal::String).collect(),
            negated,
        });
    prop_oneof![
        6 => compare,
        3 => is_in,
        2 => like,
        2 => is_null,
        2 => time_compare(),
        1 => time_in,
    ]
    .boxed()
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            3 => proptest::collection::vec(inner.clone(), 2..3).prop_map(Filter::And),
            3 => proptest::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            2 => inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// Filters the indexes answer exactly (no residual check at all), so the
/// executor trusts the bitmaps and the time range alone.
fn indexed_filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        4 => (0usize..4, prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)], any::<u16>()).prop_map(
            |(p, op, c)| Filter::Compare {
                path: path(PATHS[p].0),
                op,
                value: pick(p, c, false),
            }
        ),
        2 => (0usize..4, proptest::collection::vec(any::<u16>(), 1..4), any::<bool>()).prop_map(
            |(p, cs, negated)| Filter::In {
                path: path(PATHS[p].0),
                values: cs.into_iter().map(|c| pick(p, c, false)).collect(),
                negated,
            }
        ),
        1 => (0usize..4, any::<bool>()).prop_map(|(p, negated)| Filter::IsNull {
            path: path(NULL_PATHS[p]),
            negated,
        }),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            2 => proptest::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            2 => proptest::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            1 => inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// No filter, a random filter, an index-only filter, or a top-level AND
/// holding `occurred_at` comparisons (which the planner folds into the time
/// range) and maybe one of the others somewhere among them.
fn top_filter() -> impl Strategy<Value = Option<Filter>> {
    let rest = prop_oneof![filter(), indexed_filter()];
    prop_oneof![
        1 => Just(None),
        3 => filter().prop_map(Some),
        2 => indexed_filter().prop_map(Some),
        4 => (
            time_conditions(),
            proptest::option::of(rest),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut parts, f, at)| {
                if let Some(f) = f {
                    let i = at.index(parts.len() + 1);
                    parts.insert(i, f);
                }
                if parts.len() == 1 {
                    parts.pop()
                } else {
                    Some(Filter::And(parts))
                }
            }),
    ]
}

#[derive(Debug, Clone)]
struct QuerySpec {
    filter: Option<Filter>,
    /// Print the filter and run what `parse_filter` makes of the text.
    as_text: bool,
    range: TimeRange,
    order: Order,
    limit: usize,
}

fn bound() -> impl Strategy<Value = Option<Timestamp>> {
    proptest::option::weighted(0.4, (0u32..GRID, -1i64..=1))
        .prop_map(|b| b.map(|(k, adj)| Timestamp(grid(k) + adj)))
}

fn query_spec() -> impl Strategy<Value = QuerySpec> {
    (
        top_filter(),
        any::<bool>(),
        bound(),
        bound(),
        any::<bool>(),
        1usize..20,
    )
        .prop_map(|(filter, as_text, from, to, newest, limit)| QuerySpec {
            filter,
            as_text,
            range: TimeRange { from, to },
            order: if newest {
                Order::NewestFirst
            } else {
                Order::OldestFirst
            },
            limit,
        })
}

// ---------------------------------------------------------------------------
// The oracle.

struct Scanned {
    events: Vec<StoredEvent>,
    values: Vec<Value>,
    /// Index of the snapshot segment each event lives in.
    segment: Vec<usize>,
}

fn scan(snap: &Snapshot) -> Scanned {
    let events: Vec<StoredEvent> = snap.events().map(|e| e.unwrap()).collect();
    let values: Vec<Value> = events.iter().map(|e| e.value().unwrap()).collect();
    let mut segment = Vec::with_capacity(events.len());
    for (i, s) in snap.segments.iter().enumerate() {
        segment.extend(std::iter::repeat_n(i, s.event_count() as usize));
    }
    assert_eq!(
        segment.len(),
        events.len(),
        "events() disagrees with counts"
    );
    for (e, v) in events.iter().zip(&values) {
        // The stored text and the time column agree (the oracle relies on it).
        assert_eq!(
            v["occurred_at"].as_str().and_then(Timestamp::parse_rfc3339),
            Some(e.occurred_at)
        );
        assert_eq!(v["id"].as_str(), Some(e.id.to_string().as_str()));
    }
    Scanned {
        events,
        values,
        segment,
    }
}

/// Storage positions of the expected result, in result order.
fn oracle(s: &Scanned, filter: Option<&Filter>, range: TimeRange, order: Order) -> Vec<usize> {
    let compiled = filter.map(|f| f.compile().unwrap());
    let mut hits: Vec<usize> = (0..s.events.len())
        .filter(|&i| range.contains(s.events[i].occurred_at))
        .filter(|&i| compiled.as_ref().is_none_or(|c| c.matches(&s.values[i])))
        .collect();
    hits.sort_by_key(|&i| (s.events[i].occurred_at, i));
    if order == Order::NewestFirst {
        hits.reverse();
    }
    hits
}

/// The filter the query runs with: the AST itself, or (in text mode) what
/// parsing its printed form gives, which must mean the same on every event.
fn effective_filter(q: &QuerySpec, s: &Scanned) -> Result<Option<Filter>, TestCaseError> {
    let Some(f) = &q.filter else {
        return Ok(None);
    };
    if !q.as_text {
        return Ok(Some(f.clone()));
    }
    let text = f.to_string();
    let parsed = match parse_filter(&text) {
        Ok(p) => p,
        Err(e) => return Err(TestCaseError::fail(format!("{text:?} does not parse: {e}"))),
    };
    let again = parse_filter(&parsed.to_string());
    prop_assert_eq!(
        again.as_ref().ok(),
        Some(&parsed),
        "print/parse of {}",
        text
    );
    let (a, b) = (f.compile().unwrap(), parsed.compile().unwrap());
    for v in &s.values {
        prop_assert_eq!(a.matches(v), b.matches(v), "{} on {}", text, v);
    }
    Ok(Some(parsed))
}

fn describe(q: &Query) -> String {
    format!(
        "filter: {}\nrange: {:?}..{:?}\norder: {:?}, limit: {}",
        q.filter
            .as_ref()
            .map_or("(none)".to_string(), |f| f.to_string()),
        q.range.from.map(|t| t.to_rfc3339()),
        q.range.to.map(|t| t.to_rfc3339()),
        q.order,
        q.limit
    )
}

/// Pages through `query` until `next_cursor` is None. Before each page after
/// the first, `before_page(page_index, last_event_so_far)` runs and returns
/// the snapshot to query.
fn collect_pages(
    query: &Query,
    first: &Snapshot,
    expected_len: usize,
    mut before_page: impl FnMut(usize, Option<&StoredEvent>) -> Snapshot,
) -> Result<Vec<StoredEvent>, TestCaseError> {
    let mut out: Vec<StoredEvent> = Vec::new();
    let mut q = query.clone();
    let max_pages = expected_len / query.limit + 2;
    for page_no in 0.. {
        prop_assert!(
            page_no < max_pages,
            "more pages than possible\n{}",
            describe(query)
        );
        let snap = if page_no == 0 {
            first.clone()
        } else {
            before_page(page_no, out.last())
        };
        let page = match snap.query(&q) {
            Ok(p) => p,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "query failed on page {page_no}: {e}\n{}",
                    describe(query)
                )))
            }
        };
        prop_assert!(page.events.len() <= query.limit);
        prop_assert_eq!(
            page.next_cursor.is_some(),
            page.events.len() == query.limit,
            "next_cursor must be present exactly when the page is full\n{}",
            describe(query)
        );
        out.extend(page.events);
        match page.next_cursor {
            None => return Ok(out),
            Some(c) => {
                prop_assert_eq!(c.order, query.order);
                // Cursors travel as text.
                let back = Cursor::decode(&c.encode());
                prop_assert_eq!(back.as_ref().ok(), Some(&c));
                q.cursor = Some(c);
            }
        }
    }
    unreachable!()
}

fn check_same(
    got: &[StoredEvent],
    expected: &[usize],
    s: &Scanned,
    query: &Query,
) -> Result<(), TestCaseError> {
    let pos: HashMap<EventId, usize> = s
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id, i))
        .collect();
    let got_pos: Vec<Option<usize>> = got.iter().map(|e| pos.get(&e.id).copied()).collect();
    let want: Vec<Option<usize>> = expected.iter().map(|&i| Some(i)).collect();
    let show = |v: &[Option<usize>]| -> Vec<String> {
        v.iter()
            .map(|p| match p {
                Some(i) => format!("#{i}@{}", s.events[*i].occurred_at),
                None => "(not in snapshot)".into(),
            })
            .collect()
    };
    prop_assert!(
        got_pos == want,
        "paged results differ from the full scan\n{}\n got:  {:?}\n want: {:?}",
        describe(query),
        show(&got_pos),
        show(&want)
    );
    for (g, &i) in got.iter().zip(expected) {
        prop_assert_eq!(g, &s.events[i], "event bytes differ");
    }
    Ok(())
}

fn make_query(q: &QuerySpec, filter: Option<Filter>) -> Query {
    Query {
        filter,
        range: q.range,
        order: q.order,
        limit: q.limit,
        cursor: None,
    }
}

/// Pages `q` through a fixed snapshot and counts it; both against the oracle.
fn check_query(snap: &Snapshot, s: &Scanned, q: &QuerySpec) -> Result<(), TestCaseError> {
    let filter = effective_filter(q, s)?;
    let query = make_query(q, filter);
    let expected = oracle(s, query.filter.as_ref(), query.range, query.order);
    let got = collect_pages(&query, snap, expected.len(), |_, _| snap.clone())?;
    check_same(&got, &expected, s, &query)?;
    let count = snap.count(query.filter.as_ref(), query.range);
    prop_assert_eq!(
        count.as_ref().ok(),
        Some(&(expected.len() as u64)),
        "count differs from the full scan\n{}",
        describe(&query)
    );
    // The count may have built value indexes of the filter's paths; pages
    // now answer from them and must give the same events.
    let got = collect_pages(&query, snap, expected.len(), |_, _| snap.clone())?;
    check_same(&got, &expected, s, &query)?;
    Ok(())
}

/// 64 cases by default; `PROPTEST_CASES=5000` for a longer hunt.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(64),
        // Only this file may be written by these tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn queries_match_a_full_scan(
        store in store_spec(),
        queries in proptest::collection::vec(query_spec(), 1..8),
    ) {
        let (engine, _fs) = build(&store);
        let snap = engine.snapshot();
        let s = scan(&snap);
        for q in &queries {
            check_query(&snap, &s, q)?;
        }
    }

    #[test]
    fn paging_is_stable_while_appending(
        store in store_spec(),
        q in query_spec(),
        later in proptest::collection::vec(proptest::collection::vec(ev(), 1..12), 2..6),
        ties in 0usize..4,
        drop_irrelevant in any::<bool>(),
        seal_every_page in any::<bool>(),
        reopen in any::<bool>(),
    ) {
        let (engine, fs) = build(&store);
        // In an Option so that a restart can drop it before reopening.
        let mut engine = Some(engine);
        fn eng(e: &Option<Engine>) -> &Engine {
            e.as_ref().unwrap()
        }
        let snap0 = eng(&engine).snapshot();
        let s0 = scan(&snap0);
        let filter = effective_filter(&q, &s0)?;
        let query = make_query(&q, filter);
        let expected = oracle(&s0, query.filter.as_ref(), query.range, query.order);

        // Retention that touches no segment holding a result: everything
        // older than the oldest "newest event" of those segments.
        let cutoff = if drop_irrelevant {
            expected
                .iter()
                .map(|&i| snap0.segments[s0.segment[i]].time_bounds().1)
                .min()
                .unwrap_or(Timestamp(0))
        } else {
            Timestamp(0)
        };

        let mut dropped = 0;
        let mut chaos = Clock { pos: 0, chaos: true };
        let mut later = later.into_iter();
        let got = collect_pages(&query, &snap0, expected.len(), |page, last| {
            let mut batch: Vec<String> = later
                .next()
                .unwrap_or_default()
                .iter()
                .map(|e| e.json(chaos.time_of(e)))
                .collect();
            if page == 1 {
                // Events tied with the cursor's time: they would sort right
                // next to it, on either side.
                if let Some(last) = last {
                    for e in batch.clone().iter().take(ties) {
                        let mut v: Value = serde_json::from_str(e).unwrap();
                        v["occurred_at"] = json!(last.occurred_at.to_rfc3339());
                        batch.push(v.to_string());
                    }
                }
                if !batch.is_empty() {
                    eng(&engine).append_json(&batch).unwrap();
                }
                // The head the cursor was made on becomes sealed.
                eng(&engine).seal().unwrap();
                let report = eng(&engine).drop_before(cutoff).unwrap();
                if !drop_irrelevant {
                    assert_eq!(report.segments, 0);
                }
                dropped += report.segments;
                let more: Vec<String> = later
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| e.json(chaos.time_of(e)))
                    .collect();
                if !more.is_empty() {
                    eng(&engine).append_json(&more).unwrap();
                }
            } else {
                if !batch.is_empty() {
                    eng(&engine).append_json(&batch).unwrap();
                }
                if seal_every_page {
                    eng(&engine).seal().unwrap();
                }
                if reopen && page == 2 {
                    // A restart between pages (the head is recovered).
                    drop(engine.take());
                    engine = Some(open_sim(&fs, store_config(&store)));
                }
            }
            eng(&engine).snapshot()
        })?;
        check_same(&got, &expected, &s0, &query)?;

        // The first snapshot is unaffected by what happened since, drops
        // included: its open files stay readable after they are unlinked.
        let count = snap0.count(query.filter.as_ref(), query.range);
        prop_assert_eq!(count.as_ref().ok(), Some(&(expected.len() as u64)));

        // And a fresh query sees the store as it is now.
        let snap = eng(&engine).snapshot();
        let s = scan(&snap);
        check_query(&snap, &s, &q)?;
    }
}

/// A random event from a seeded generator (for stores too big to shrink).
fn seeded_ev(rng: &mut fastrand::Rng) -> Ev {
    Ev {
        advance: rng.u8(0..6),
        back: rng.u8(0..16),
        rand_t: rng.u8(0..GRID as u8),
        fmt: rng.u8(1..40),
        action: rng.u8(0..5),
        actor_type: rng.u8(0..3),
        actor_id: rng.u8(0..8),
        env: rng.u8(0..6),
        role: rng.u8(0..4),
        request: rng.u8(0..8),
        n: rng.u8(0..17),
        s: rng.u8(0..11),
        data: rng.u8(0..6),
        path: rng.u8(0..7),
        id: None,
        escape: rng.u8(0..10) == 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64) / 10, ..config() })]

    /// Segments of thousands of events: the executor walks its time order
    /// in chunks of 1024 positions and its block cache fills up.
    #[test]
    fn large_segments_match_a_full_scan(
        seed in any::<u64>(),
        queries in proptest::collection::vec(query_spec(), 4..8),
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let fs = SimFs::new();
        let engine = open_sim(&fs, EngineConfig {
            block_bytes: 400,
            max_segment_events: 2500,
            ..EngineConfig::default()
        });
        for batch in 0..30u32 {
            let evs: Vec<String> = (0..100u32)
                .map(|i| {
                    let e = seeded_ev(&mut rng);
                    // Mostly in time order (25 events per grid point), a
                    // quarter of them late.
                    let k = (batch * 100 + i) / 25;
                    let k = if rng.u8(0..4) == 0 { k.saturating_sub(rng.u32(0..30)) } else { k };
                    e.json(grid(k))
                })
                .collect();
            engine.append_json(&evs).unwrap();
            if batch == 20 {
                engine.seal().unwrap();
            }
        }
        let snap = engine.snapshot();
        let s = scan(&snap);
        prop_assert_eq!(s.events.len(), 3000);
        for q in &queries {
            let q = QuerySpec { limit: q.limit * 23, ..q.clone() };
            check_query(&snap, &s, &q)?;
        }
    }
}

// ---------------------------------------------------------------------------
// Examples with known answers.

fn ulid(n: u8) -> String {
    pool_id(n).to_string()
}

/// Six events in two segments (the second one the head), with a late
/// arrival and a time tie.
fn small_store() -> (Engine, Vec<EventId>) {
    let fs = SimFs::new();
    let engine = open_sim(
        &fs,
        EngineConfig {
            block_bytes: 300,
            ..EngineConfig::default()
        },
    );
    let e = |n: u8, t: &str, action: &str, typ: &str, id: &str, extra: Value| {
        let mut v = json!({
            "id": ulid(n),
            "occurred_at": t,
            "action_name": action,
            "actor": {"type": typ, "id": id},
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    let item_type = |id: Value| json!({"request": {"path": "/items/1", "payload": {"data": {"relationships": {"item_type": {"data": {"id": id}}}}}}});
    let first = [
        e(
            1,
            "2024-05-01T10:00:00Z",
            "items.update",
            "user",
            "4845293",
            json!({"request": {"path": "/items/239408/publish", "method": "PUT"}}),
        ),
        e(
            2,
            "2024-05-01T10:01:00Z",
            "items.create",
            "user",
            "4845293",
            item_type(json!("855832")),
        ),
        e(
            3,
            "2024-05-01T12:01:00+02:00",
            "items.create",
            "access_token",
            "4845293",
            item_type(json!("1")),
        ),
    ];
    let second = [
        e(
            4,
            "2024-05-01T09:59:00Z",
            "items.update",
            "user",
            "77",
            json!({"request": {"path": "/items/239408/publish"}}),
        ),
        e(
            5,
            "2024-05-01T10:02:00Z",
            "items.create",
            "user",
            "1",
            item_type(json!(855832)),
        ),
        e(
            6,
            "2024-05-01T10:03:00Z",
            "items.destroy",
            "account",
            "4845293",
            json!({"environment": {"id": "dev"}, "request": {"path": "/items/239408/publish/x"}}),
        ),
    ];
    engine.append_json(&first).unwrap();
    engine.seal().unwrap();
    engine.append_json(&second).unwrap();
    let ids = (0..=6).map(pool_id).collect();
    (engine, ids)
}

fn run_all(snap: &Snapshot, filter: &Filter, order: Order, limit: usize) -> Vec<EventId> {
    let mut q = Query {
        filter: Some(filter.clone()),
        range: TimeRange::ALL,
        order,
        limit,
        cursor: None,
    };
    let mut out = Vec::new();
    for _ in 0..20 {
        let page = snap.query(&q).unwrap();
        out.extend(page.events.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
    panic!("paging did not end");
}

#[test]
fn the_five_required_filters_on_a_small_store() {
    let (engine, id) = small_store();
    let snap = engine.snapshot();
    assert_eq!(snap.segments.len(), 2);
    let cases: [(&str, Vec<EventId>); 5] = [
        ("action_name = 'items.update'", vec![id[4], id[1]]),
        ("actor.type = 'user'", vec![id[4], id[1], id[2], id[5]]),
        (
            "actor.type = 'user' AND actor.id = '4845293'",
            vec![id[1], id[2]],
        ),
        ("request.path = '/items/239408/publish'", vec![id[4], id[1]]),
        (
            "action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'",
            vec![id[2]],
        ),
    ];
    for (text, oldest_first) in cases {
        let f = parse_filter(text).unwrap();
        let newest_first: Vec<EventId> = oldest_first.iter().rev().copied().collect();
        for limit in [1, 2, 3, 100] {
            assert_eq!(
                run_all(&snap, &f, Order::OldestFirst, limit),
                oldest_first,
                "{text}, limit {limit}"
            );
            assert_eq!(
                run_all(&snap, &f, Order::NewestFirst, limit),
                newest_first,
                "{text}, limit {limit}"
            );
        }
        assert_eq!(
            snap.count(Some(&f), TimeRange::ALL).unwrap(),
            oldest_first.len() as u64,
            "{text}"
        );
    }
    // Indexed fields hold strings: a number never equals them, whatever the
    // bitmaps hold under its text.
    for (text, want) in [
        ("actor.id = 1", vec![]),
        ("actor.id IN (1, '77')", vec![id[4]]),
        (
            "actor.id != 1",
            vec![id[4], id[1], id[2], id[3], id[5], id[6]],
        ),
        (
            "environment.id = 'main' AND action_name = 'items.destroy'",
            vec![],
        ),
        ("environment.id = 'dev'", vec![id[6]]),
    ] {
        let f = parse_filter(text).unwrap();
        assert_eq!(run_all(&snap, &f, Order::OldestFirst, 2), want, "{text}");
        assert_eq!(
            snap.count(Some(&f), TimeRange::ALL).unwrap(),
            want.len() as u64
        );
    }
    // Ties keep storage order: 2 and 3 both happened at 10:01 UTC.
    let f = parse_filter("occurred_at = '2024-05-01T10:01:00Z'").unwrap();
    assert_eq!(
        run_all(&snap, &f, Order::OldestFirst, 1),
        vec![id[2], id[3]]
    );
    assert_eq!(
        run_all(&snap, &f, Order::NewestFirst, 1),
        vec![id[3], id[2]]
    );
}

fn a_cursor(order: Order) -> (Snapshot, Cursor) {
    let (engine, _) = small_store();
    let snap = engine.snapshot();
    let page = snap
        .query(&Query {
            order,
            limit: 2,
            ..Query::default()
        })
        .unwrap();
    (snap, page.next_cursor.unwrap())
}

#[test]
fn cursor_decode_rejects_garbage() {
    let (_, c) = a_cursor(Order::NewestFirst);
    let text = c.encode();
    assert_eq!(text.len(), 76);
    assert_eq!(Cursor::decode(&text).unwrap(), c);
    let garbage = [
        String::new(),
        "00".into(),
        "zz".repeat(38),
        "g".repeat(76),
        "é".repeat(38),
        " ".repeat(76),
        format!("{text}00"),
        text[..74].to_string(),
        format!("-{}", &text[1..]),
    ];
    for g in &garbage {
        assert!(Cursor::decode(g).is_err(), "accepted {g:?}");
    }
    // Every single changed hex digit is caught by the checksum.
    for (i, ch) in text.char_indices() {
        for d in "0123456789abcdef".chars().filter(|d| *d != ch) {
            let mut t = text.clone();
            t.replace_range(i..i + 1, &d.to_string());
            assert!(Cursor::decode(&t).is_err(), "accepted {t} (digit {i})");
        }
    }
    // A well-formed checksum does not make unknown versions or orders valid.
    let bytes: Vec<u8> = (0..38)
        .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    for (at, value) in [(0usize, 2u8), (0, 0), (1, 2), (1, 255)] {
        let mut b = bytes[..34].to_vec();
        b[at] = value;
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let t: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert!(Cursor::decode(&t).is_err(), "accepted byte {at} = {value}");
    }
}

#[test]
fn cursor_is_tied_to_its_order() {
    for (made_with, used_with) in [
        (Order::NewestFirst, Order::OldestFirst),
        (Order::OldestFirst, Order::NewestFirst),
    ] {
        let (snap, c) = a_cursor(made_with);
        let q = Query {
            order: used_with,
            limit: 2,
            cursor: Some(c),
            ..Query::default()
        };
        assert!(
            snap.query(&q).is_err(),
            "{made_with:?} cursor used with {used_with:?}"
        );
        let q = Query {
            order: made_with,
            ..q
        };
        let page = snap.query(&q).unwrap();
        assert_eq!(page.events.len(), 2);
    }
}
