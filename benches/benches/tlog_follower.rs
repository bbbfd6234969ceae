//! What keeping the Merkle tree costs batched durable appends to the file log (issue 21:
//! at most 5%): the same appends of 1,000-event batches, side by side in one run, to a store
//! alone and to a store whose tree follower (`transparency`) runs beside it and publishes
//! checkpoints every 1,000 ms as `serve` does. With the follower, an iteration ends only
//! once the tree holds every event appended, so the follower cannot hide its work by
//! falling behind.
//!
//! `cargo bench -p benches --bench tlog_follower`.

/// The program's allocator, so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{event, mean, record_mean, stream};
use criterion::{Criterion, Throughput, criterion_main};
use filelog::{FileStore, FileStoreConfig};
use store::{EventStore, ExpectedRevision, NewEvent};
use transparency::{KeySource, Transparency, TransparencyConfig};

/// Events per append.
const BATCH_EVENTS: usize = 1_000;

fn follower(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let mut group = c.benchmark_group("tlog_follower");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for with_tree in [false, true] {
        let dir = common::temp_dir("tlog-follower-bench-");
        let store = FileStore::open(dir.path(), FileStoreConfig::default())
            .unwrap_or_else(|e| panic!("open: {e}"));
        let tree = with_tree.then(|| {
            runtime
                .block_on(Transparency::start(
                    store.clone() as Arc<dyn EventStore>,
                    TransparencyConfig {
                        directory: dir.path().join("tlog"),
                        key: KeySource::Generated {
                            name: "bench.example/csp".into(),
                        },
                        origin: None,
                        publish_interval: Duration::from_millis(1000),
                    },
                ))
                .unwrap_or_else(|e| panic!("tree: {e}"))
        });
        let name = if with_tree {
            "append_batch_with_tree"
        } else {
            "append_batch_without_tree"
        };
        let mut n = 0u64;
        group.bench_function(name, |b| {
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
                    if let Some(tree) = &tree {
                        let total = n * BATCH_EVENTS as u64;
                        while tree.size() < total {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                    }
                    let elapsed = start.elapsed();
                    record_mean(name, iterations, elapsed);
                    elapsed
                })
            })
        });
        drop(tree);
        store.close();
    }
    group.finish();
    if let (Some(without), Some(with)) = (
        mean("append_batch_without_tree"),
        mean("append_batch_with_tree"),
    ) {
        eprintln!(
            "tlog_follower (criterion's last samples): {:.0} events/s durable without the tree, {:.0} events/s with it",
            BATCH_EVENTS as f64 / without,
            BATCH_EVENTS as f64 / with,
        );
    }
    paired(&runtime);
}

/// How often the follower publishes (flushing tiles): 1,000 ms as `serve`'s default, or
/// `CSP_LEDGER_BENCH_PUBLISH_MS`, to see what the tiles' writing costs apart.
fn publish_interval() -> Duration {
    let ms = std::env::var("CSP_LEDGER_BENCH_PUBLISH_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms)
}

/// Rounds of the paired comparison, and batches per round.
const PAIRED_ROUNDS: usize = 15;
const PAIRED_BATCHES: u64 = 200;

/// The two stores side by side, in alternating rounds (the order swapped every round), so
/// that what else the machine does (fsync latency, other builds) weighs on both alike; the
/// medians of the rounds are compared.
fn paired(runtime: &tokio::runtime::Runtime) {
    let plain_dir = common::temp_dir("tlog-follower-bench-");
    let tree_dir = common::temp_dir("tlog-follower-bench-");
    let open = |dir: &std::path::Path| {
        FileStore::open(dir, FileStoreConfig::default()).unwrap_or_else(|e| panic!("open: {e}"))
    };
    let plain = open(plain_dir.path());
    let with_tree = open(tree_dir.path());
    let tree = runtime
        .block_on(Transparency::start(
            with_tree.clone() as Arc<dyn EventStore>,
            TransparencyConfig {
                directory: tree_dir.path().join("tlog"),
                key: KeySource::Generated {
                    name: "bench.example/csp".into(),
                },
                origin: None,
                publish_interval: publish_interval(),
            },
        ))
        .unwrap_or_else(|e| panic!("tree: {e}"));
    let mut n = 0u64;
    let mut round = |store: &Arc<FileStore>, tree: Option<&Transparency>| -> f64 {
        let batches: Vec<Vec<NewEvent>> = (0..PAIRED_BATCHES)
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
            if let Some(tree) = tree {
                let total = store.head().await.ok().flatten().map_or(0, |p| p.0 + 1);
                while tree.size() < total {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
            (PAIRED_BATCHES * BATCH_EVENTS as u64) as f64 / start.elapsed().as_secs_f64()
        })
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for r in 0..PAIRED_ROUNDS {
        if r % 2 == 0 {
            without.push(round(&plain, None));
            with.push(round(&with_tree, Some(&tree)));
        } else {
            with.push(round(&with_tree, Some(&tree)));
            without.push(round(&plain, None));
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (without, with) = (median(&mut without), median(&mut with));
    eprintln!(
        "tlog_follower paired ({PAIRED_ROUNDS} alternating rounds of {PAIRED_BATCHES} batches of {BATCH_EVENTS}, medians): {without:.0} events/s durable without the tree, {with:.0} events/s with it (tree caught up): the tree costs {:.1}% (target ≤ 5%)",
        100.0 * (without - with) / without
    );
    drop(tree);
    plain.close();
    with_tree.close();
}

// `criterion_group!` makes an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::follower);
}
criterion_main!(group::benches);
