//! Benchmarks of the embedded store (`filelog`), each beside the raw limit it is compared
//! with, measured in the same run on the same disk; the ratios are printed.
//!
//! `cargo bench -p benches --bench store`; set `CSP_LEDGER_BENCH_LONG` to open a store of
//! 10,000,000 events instead of 1,000,000.

/// The program's allocator, so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{PAYLOAD_BYTES, event, mean, record_mean, runtime, stream};
use criterion::{Criterion, Throughput, criterion_main};
use filelog::{FileStore, FileStoreConfig};
use store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom};
use tokio::runtime::Runtime;

/// Bytes of one such event on disk (frame, header fields, names and payload), for the raw
/// loops; checked against the real log at start.
const RECORD_BYTES: usize = 40 + 101 + 12 + 11 + 8 + PAYLOAD_BYTES;
/// Events per append in `append_batch`.
const BATCH_EVENTS: usize = 1_000;
/// Concurrent writers in `append_group_commit`.
const WRITERS: usize = 64;
/// Events read by `read_all` and held by the store `open` opens.
const READ_EVENTS: u64 = 1_000_000;
/// Events per `read_all` call: a large subscriber page.
const READ_PAGE_EVENTS: usize = 10_000;

fn open(dir: &Path) -> Arc<FileStore> {
    FileStore::open(dir, FileStoreConfig::default()).unwrap_or_else(|e| panic!("open: {e}"))
}

fn raw_file(dir: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn print_ratio(what: &str, ours: &str, raw: &str, target: &str) {
    if let (Some(ours_s), Some(raw_s)) = (mean(ours), mean(raw)) {
        eprintln!(
            "store/{ours}: {:.1} µs per iteration vs store/{raw} {:.1} µs: {:.2}× ({what}; target {target})",
            ours_s * 1e6,
            raw_s * 1e6,
            ours_s / raw_s
        );
    }
}

fn store_benches(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));

    // One writer, one event per append, vs a write + fdatasync loop of the same bytes.
    group.throughput(Throughput::Elements(1));
    {
        let dir = common::temp_dir("store-bench-");
        let file = raw_file(dir.path());
        let record = vec![0x5a_u8; RECORD_BYTES];
        let mut offset = 0u64;
        group.bench_function("raw_fdatasync", |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    file.write_all_at(&record, offset)
                        .unwrap_or_else(|e| panic!("{e}"));
                    file.sync_data().unwrap_or_else(|e| panic!("{e}"));
                    offset += RECORD_BYTES as u64;
                }
                let elapsed = start.elapsed();
                record_mean("raw_fdatasync", iterations, elapsed);
                elapsed
            })
        });
    }
    {
        let dir = common::temp_dir("store-bench-");
        let store = open(dir.path());
        let mut n = 0u64;
        group.bench_function("append_single", |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        n += 1;
                        store
                            .append(&stream(n), ExpectedRevision::Any, vec![event(n)])
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                    let elapsed = start.elapsed();
                    record_mean("append_single", iterations, elapsed);
                    elapsed
                })
            })
        });
        let segment = std::fs::read_dir(dir.path().join("log"))
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(|entry| entry.ok())
            .and_then(|entry| entry.metadata().ok())
            .map_or(0, |m| m.len());
        let per_record = (segment.saturating_sub(64)) as f64 / n.max(1) as f64;
        eprintln!(
            "store: {per_record:.0} bytes per record on disk; raw loops write {RECORD_BYTES}"
        );
    }
    print_ratio(
        "latency of one durable append",
        "append_single",
        "raw_fdatasync",
        "≤ 1.5×",
    );

    // 64 concurrent writers, one event per append: group commit.
    {
        let dir = common::temp_dir("store-bench-");
        let store = open(dir.path());
        group.bench_function("append_group_commit", |b| {
            b.iter_custom(|iterations| {
                let per_writer = iterations.div_ceil(WRITERS as u64);
                runtime.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..WRITERS as u64)
                        .map(|writer| {
                            let store = Arc::clone(&store);
                            tokio::spawn(async move {
                                for i in 0..per_writer {
                                    store
                                        .append(
                                            &stream(writer),
                                            ExpectedRevision::Any,
                                            vec![event(i)],
                                        )
                                        .await
                                        .unwrap_or_else(|e| panic!("{e}"));
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap_or_else(|e| panic!("{e}"));
                    }
                    let elapsed = start.elapsed();
                    record_mean("append_group_commit", per_writer * WRITERS as u64, elapsed);
                    // Report the time of the `iterations` events criterion asked for.
                    elapsed.mul_f64(iterations as f64 / (per_writer * WRITERS as u64) as f64)
                })
            })
        });
    }
    if let Some(mean) = mean("append_group_commit") {
        eprintln!(
            "store/append_group_commit: {:.0} events/s durable with {WRITERS} writers (target ≥ 250,000)",
            1.0 / mean
        );
    }

    // Batches of 1,000 events vs sequential write + fdatasync of the same bytes.
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    {
        let dir = common::temp_dir("store-bench-");
        let file = raw_file(dir.path());
        let bytes = vec![0x5a_u8; RECORD_BYTES * BATCH_EVENTS];
        let mut offset = 0u64;
        group.bench_function("raw_sequential", |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    file.write_all_at(&bytes, offset)
                        .unwrap_or_else(|e| panic!("{e}"));
                    file.sync_data().unwrap_or_else(|e| panic!("{e}"));
                    offset += bytes.len() as u64;
                }
                let elapsed = start.elapsed();
                record_mean("raw_sequential", iterations, elapsed);
                elapsed
            })
        });
    }
    {
        let dir = common::temp_dir("store-bench-");
        let store = open(dir.path());
        let mut n = 0u64;
        group.bench_function("append_batch", |b| {
            b.iter_custom(|iterations| {
                let batches: Vec<Vec<NewEvent>> = (0..iterations)
                    .map(|_| (0..BATCH_EVENTS as u64).map(|i| event(n + i)).collect())
                    .collect();
                runtime.block_on(async {
                    let start = Instant::now();
                    for batch in batches {
                        n += 1;
                        store
                            .append(&stream(n), ExpectedRevision::Any, batch)
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                    let elapsed = start.elapsed();
                    record_mean("append_batch", iterations, elapsed);
                    elapsed
                })
            })
        });
    }
    if let (Some(ours), Some(raw)) = (mean("append_batch"), mean("raw_sequential")) {
        eprintln!(
            "store/append_batch: {:.0} events/s durable (target ≥ 1,000,000); {:.0}% of raw sequential write+fdatasync bandwidth (target ≥ 50%)",
            BATCH_EVENTS as f64 / ours,
            100.0 * raw / ours
        );
    }

    // Reading and opening a store of 1,000,000 events.
    let dir = common::temp_dir("store-bench-");
    let events = if std::env::var_os("CSP_LEDGER_BENCH_LONG").is_some() {
        10 * READ_EVENTS
    } else {
        READ_EVENTS
    };
    let started = Instant::now();
    fill(&runtime, dir.path(), events);
    eprintln!(
        "store: wrote {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    {
        let store = open(dir.path());
        group.throughput(Throughput::Elements(READ_EVENTS));
        group.bench_function("read_all", |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        let mut from = 0u64;
                        while from < READ_EVENTS {
                            let page = store
                                .read_all(ReadFrom::At(from), Direction::Forwards, READ_PAGE_EVENTS)
                                .await
                                .unwrap_or_else(|e| panic!("{e}"));
                            assert_eq!(page.len(), READ_PAGE_EVENTS);
                            from += page.len() as u64;
                        }
                    }
                    let elapsed = start.elapsed();
                    record_mean("read_all", iterations, elapsed);
                    elapsed
                })
            })
        });
    }
    if let Some(mean) = mean("read_all") {
        eprintln!(
            "store/read_all: {:.0} events/s (target ≥ 3,000,000)",
            READ_EVENTS as f64 / mean
        );
    }
    group.throughput(Throughput::Elements(events));
    group.bench_function("open", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                let store = open(dir.path());
                elapsed += start.elapsed();
                drop(store);
            }
            record_mean("open", iterations, elapsed);
            elapsed
        })
    });
    if let Some(mean) = mean("open") {
        eprintln!(
            "store/open: {:.0} ms for {events} events (target ≤ 200 ms)",
            mean * 1e3
        );
    }
    group.finish();
}

/// Writes `events` events in batches of 1,000 over 1,000 streams.
fn fill(runtime: &Runtime, dir: &Path, events: u64) {
    let store = open(dir);
    runtime.block_on(async {
        let mut n = 0u64;
        while n < events {
            let batch = (n..n + BATCH_EVENTS as u64).map(event).collect();
            store
                .append(
                    &stream(n / BATCH_EVENTS as u64),
                    ExpectedRevision::Any,
                    batch,
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            n += BATCH_EVENTS as u64;
        }
    });
    store.close();
}

// `criterion_group!` makes an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::store_benches);
}
criterion_main!(group::benches);
