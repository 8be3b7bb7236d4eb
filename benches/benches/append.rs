//! Append throughput, from NDJSON bytes to storage, for batch sizes 1, 100
//! and 1000 under each sync policy. Reported as events/s (criterion's
//! throughput); MB/s follows from the ~900-byte average event, and the
//! `auditlog-load append` tool prints both plus disk use and memory.

use std::time::Duration;

use auditlog_benches::{ingest_ndjson, ndjson_batches};
use auditlog_engine::{Engine, EngineConfig, SyncPolicy};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn append(c: &mut Criterion) {
    let policies = [
        ("batch", SyncPolicy::EveryBatch),
        (
            "interval10ms",
            SyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("none", SyncPolicy::Never),
    ];
    for batch in [1usize, 100, 1000] {
        let data = ndjson_batches(7, 64, batch);
        let mut group = c.benchmark_group(format!("append/batch{batch}"));
        group.throughput(Throughput::Elements(batch as u64));
        group.sample_size(if batch == 1000 { 20 } else { 50 });
        group.measurement_time(Duration::from_secs(5));
        for (name, sync) in policies {
            let dir = tempfile::tempdir().unwrap();
            let (engine, _) = Engine::open(
                dir.path(),
                EngineConfig {
                    sync,
                    ..EngineConfig::default()
                },
            )
            .unwrap();
            let mut i = 0usize;
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    i += 1;
                    ingest_ndjson(&engine, &data[i % data.len()]).unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, append);
criterion_main!(benches);
