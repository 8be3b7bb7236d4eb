//! What one event costs in each step every durable append must take, on
//! one core: validating it into canonical JSON, hashing it into the chain's
//! leaf, and compressing it into blocks with the store's dictionary. The
//! sum bounds from below the CPU per event of the whole ingest path, and so
//! its events/s on this machine's cores (docs/PERFORMANCE.md, "Session 4").
//! Each figure is for a batch of 1000 events (criterion's throughput is in
//! events).

use auditlog_benches::ndjson_batches;
use auditlog_engine::event::{ndjson_lines, prepare_event, EventLimits, IndexKeys, PreparedEvent};
use auditlog_engine::index::BatchKeys;
use auditlog_engine::integrity::chain::leaf_hash;
use auditlog_engine::segment::block::encode_blocks;
use auditlog_engine::segment::dict::Dictionary;
use auditlog_engine::{BlockCodec, EngineConfig, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn prepare(body: &[u8]) -> Vec<PreparedEvent> {
    let limits = EventLimits::default();
    ndjson_lines(body)
        .map(|(_, line)| prepare_event(line, Timestamp::now(), &limits).unwrap())
        .collect()
}

fn ingest_steps(c: &mut Criterion) {
    let cfg = EngineConfig::default();
    let batches = ndjson_batches(7, 24, 1000);
    // The dictionary is trained as the engine trains its first one: on
    // about 2 MiB of samples spread over the first 20,000 events.
    let training: Vec<Vec<u8>> = batches
        .iter()
        .take(20)
        .flat_map(|b| prepare(b))
        .step_by(8)
        .map(|e| e.json)
        .collect();
    let dict = Dictionary::train(&training).expect("enough samples for a dictionary");
    let measured = &batches[20..];
    let prepared: Vec<Vec<PreparedEvent>> = measured.iter().map(|b| prepare(b)).collect();

    let mut group = c.benchmark_group("ingest_steps");
    group.throughput(Throughput::Elements(1000));
    let mut i = 0usize;
    group.bench_function("prepare", |b| {
        b.iter(|| {
            i += 1;
            prepare(&measured[i % measured.len()])
        })
    });
    group.bench_function("leaf_hash", |b| {
        b.iter(|| {
            i += 1;
            prepared[i % prepared.len()]
                .iter()
                .map(|e| leaf_hash(&e.json))
                .collect::<Vec<_>>()
        })
    });
    let codecs = [
        ("compress_lz4", BlockCodec::Lz4),
        ("compress_level3", BlockCodec::Zstd { level: 3 }),
        ("compress_level1", BlockCodec::Zstd { level: 1 }),
    ];
    for (name, codec) in codecs {
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                encode_blocks(
                    &prepared[i % prepared.len()],
                    cfg.block_bytes,
                    codec,
                    Some(&dict),
                )
                .unwrap()
            })
        });
    }
    // Not one of the floor's three steps: grouping the batch's index keys
    // by value, which appenders do before the commit (Session 5).
    group.bench_function("group_index_keys", |b| {
        b.iter(|| {
            i += 1;
            let keys: Vec<&IndexKeys> = prepared[i % prepared.len()]
                .iter()
                .map(|e| &e.keys)
                .collect();
            BatchKeys::group(&keys)
        })
    });
    group.finish();
}

criterion_group!(benches, ingest_steps);
criterion_main!(benches);
