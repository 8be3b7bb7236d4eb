//! Events built to hurt their readers: nesting deeper than
//! `event::MAX_NESTING` is refused (the engine would store it, but the
//! log's consumers could not parse it back), brackets inside strings do
//! not count, and whatever is accepted parses with serde_json.

use auditlog_engine::event::{prepare_event, EventLimits, MAX_NESTING};
use auditlog_engine::{EventError, Timestamp};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp(1_767_225_600_000_000);

/// An event whose `p` field nests `levels` arrays/objects (chosen by
/// `shape`), with bracket-laden strings along the way.
fn nested_event(levels: usize, shape: &[bool]) -> String {
    let mut open = String::new();
    let mut close = String::new();
    for i in 0..levels {
        if shape.get(i).copied().unwrap_or(false) {
            open.push_str(r#"{"k[{":"]}[{","v":"#);
            close.insert(0, '}');
        } else {
            open.push_str(r#"["[[{{\"",[],"#);
            close.insert(0, ']');
        }
    }
    format!(r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"p":{open}1{close}}}"#)
}

/// The oracle: depth of a parsed value (a scalar is 0, `[]` is 1).
fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #[test]
    fn nesting_is_refused_exactly_past_the_limit(
        levels in 0usize..120,
        shape in proptest::collection::vec(any::<bool>(), 120),
    ) {
        let event = nested_event(levels, &shape);
        let depth = depth(&serde_json::from_str(&event).unwrap());
        let got = prepare_event(event.as_bytes(), NOW, &EventLimits::default());
        if depth <= MAX_NESTING {
            let e = got.unwrap();
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&e.json).is_ok());
        } else {
            prop_assert_eq!(got.unwrap_err(), EventError::TooDeep { max: MAX_NESTING });
        }
    }
}

proptest! {
    /// Top-level keys are copied into the stored form without re-escaping
    /// when the input had no escapes in them: any key, escaped or not,
    /// must come back as the same key.
    #[test]
    fn any_top_level_key_survives_into_valid_stored_json(
        key in "\\PC{0,12}|[\"\\\\\u{0}-\u{1f}a-z\u{2028}é]{0,8}",
        escape_all in any::<bool>(),
    ) {
        prop_assume!(!matches!(
            key.as_str(),
            "id" | "occurred_at" | "action_name" | "actor" | "environment"
                | "role" | "request" | "response"
        ));
        let literal = if escape_all {
            key.encode_utf16().map(|u| format!("\\u{u:04x}")).collect::<String>()
        } else {
            let quoted = serde_json::to_string(&key).unwrap();
            quoted[1..quoted.len() - 1].to_owned()
        };
        let event = format!(
            r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"{literal}":7}}"#
        );
        let e = prepare_event(event.as_bytes(), NOW, &EventLimits::default()).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        prop_assert_eq!(&stored[key.as_str()], &serde_json::json!(7));
    }
}

#[test]
fn a_hundred_thousand_brackets_are_refused_quickly_and_plainly() {
    for body in [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!(
            r#"{{"action_name":"a","actor":{{"type":"u","id":"1"}},"p":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ] {
        let err = prepare_event(body.as_bytes(), NOW, &EventLimits::default()).unwrap_err();
        assert!(matches!(err, EventError::TooDeep { .. }), "{err}");
    }
}
