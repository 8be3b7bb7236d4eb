//! Latency of the viewer's overview (`Snapshot::facets`: total, buckets,
//! top actions, actors and environments) over a generated store: 1,000,000
//! events over 30 days by default (`AUDITLOG_BENCH_EVENTS` to change).
//! Filters the indexes answer are counted from bitmaps alone; the residual
//! one decodes its candidates, within the default decode budget.

use std::time::Duration;

use auditlog_benches::bench_store;
use auditlog_engine::query::{parse_filter, FacetLimits, FacetQuery};
use auditlog_engine::testing::gen::{COMMON_ACTION, RARE_ACTOR_ID};
use auditlog_engine::{TimeRange, Timestamp};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const HOUR: i64 = 3_600_000_000;

fn facets(c: &mut Criterion) {
    let (_dir, engine, events) = bench_store().unwrap();
    let snap = engine.snapshot();
    let week = TimeRange {
        from: Timestamp::parse_rfc3339("2026-01-10T00:00:00Z"),
        to: Timestamp::parse_rfc3339("2026-01-17T00:00:00Z"),
    };
    let classes: Vec<(&str, String, TimeRange, i64)> = vec![
        ("all_days", String::new(), TimeRange::ALL, 24 * HOUR),
        ("week_hours", String::new(), week, HOUR),
        (
            "common_action",
            format!("action_name = '{COMMON_ACTION}'"),
            TimeRange::ALL,
            24 * HOUR,
        ),
        (
            "rare_actor",
            format!("actor.id = '{RARE_ACTOR_ID}'"),
            TimeRange::ALL,
            24 * HOUR,
        ),
        ("user_week", "actor.type = 'user'".into(), week, HOUR),
        (
            "residual_path",
            "request.path LIKE '/uploads/%'".into(),
            week,
            HOUR,
        ),
    ];
    let mut group = c.benchmark_group(format!("facets{}k", events / 1000));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, text, range, bucket) in classes {
        let q = FacetQuery {
            filter: (!text.is_empty()).then(|| parse_filter(&text).unwrap()),
            range,
            bucket_micros: bucket,
            top: 10,
            actor_names: true,
        };
        let f = snap.facets(&q, FacetLimits::default()).unwrap();
        eprintln!(
            "{name}: total {}, {} buckets, decoded {}, complete {}",
            f.total,
            f.buckets.len(),
            f.decoded_events,
            f.complete()
        );
        group.bench_function(BenchmarkId::new("overview", name), |b| {
            b.iter(|| snap.facets(&q, FacetLimits::default()).unwrap().total)
        });
    }
    group.finish();
}

criterion_group!(benches, facets);
criterion_main!(benches);
