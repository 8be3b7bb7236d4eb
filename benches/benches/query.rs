//! Query latency by class over a generated store: the first page of 100,
//! newest first, and the count, for each filter below. 1,000,000 events over
//! 30 days by default; `AUDITLOG_BENCH_EVENTS=10000000` for the 10M run.
//! Filters are parsed and planned outside the timed loop (parsing is
//! measured on its own, as `parse`).

use std::time::Duration;

use auditlog_benches::bench_store;
use auditlog_engine::query::exec::Prepared;
use auditlog_engine::query::parse_filter;
use auditlog_engine::testing::gen::{COMMON_ACTION, RARE_ACTOR_ID};
use auditlog_engine::{Order, TimeRange, Timestamp};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn classes() -> Vec<(&'static str, String, TimeRange)> {
    let day = TimeRange {
        from: Timestamp::parse_rfc3339("2026-01-15T00:00:00Z"),
        to: Timestamp::parse_rfc3339("2026-01-16T00:00:00Z"),
    };
    vec![
        ("rare_actor", format!("actor.id = '{RARE_ACTOR_ID}'"), TimeRange::ALL),
        ("common_action", format!("action_name = '{COMMON_ACTION}'"), TimeRange::ALL),
        ("two_field_and", "actor.type = 'user' AND action_name = 'items.create'".into(), TimeRange::ALL),
        ("or_in", "action_name IN ('items.create', 'items.destroy') OR actor.type = 'system'".into(), TimeRange::ALL),
        ("one_day", String::new(), day),
        ("payload_path", "request.payload.data.relationships.item_type.data.id = '855832'".into(), TimeRange::ALL),
        ("indexed_and_payload", "action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'".into(), TimeRange::ALL),
        ("negation", "NOT (actor.type = 'user') AND action_name != 'items.update'".into(), TimeRange::ALL),
        ("like_prefix", "request.path LIKE '/uploads/%'".into(), TimeRange::ALL),
    ]
}

fn query(c: &mut Criterion) {
    let (_dir, engine, events) = bench_store().unwrap();
    let snap = engine.snapshot();
    let mut group = c.benchmark_group(format!("query{}k", events / 1000));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (name, text, range) in classes() {
        let filter = (!text.is_empty()).then(|| parse_filter(&text).unwrap());
        let prepared = Prepared::new(filter.as_ref(), range).unwrap();
        // The first count is cold for this filter (and builds the value
        // indexes of its non-indexed paths): timed once, outside criterion.
        let started = std::time::Instant::now();
        let count = prepared.count(&snap).unwrap();
        eprintln!(
            "{name}: {count} matching events (first count {:.1} ms)",
            started.elapsed().as_secs_f64() * 1e3
        );
        group.bench_function(BenchmarkId::new("page100", name), |b| {
            b.iter(|| {
                prepared
                    .page(&snap, Order::NewestFirst, 100, None)
                    .unwrap()
                    .events
                    .len()
            })
        });
        group.bench_function(BenchmarkId::new("count", name), |b| {
            b.iter(|| prepared.count(&snap).unwrap())
        });
    }
    group.bench_function("parse", |b| {
        b.iter(|| parse_filter("actor.type = 'user' AND actor.id = '4845293'").unwrap())
    });
    group.finish();
}

criterion_group!(benches, query);
criterion_main!(benches);
