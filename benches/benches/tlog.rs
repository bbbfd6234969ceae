//! Benchmarks of the verifiable history (`tlog`), against the issue 21 targets: an inclusion
//! proof at 10,000,000 leaves (≤ 20 µs, ≤ 24 hashes), a consistency proof (≤ 50 µs), a
//! checkpoint signature (≤ 100 µs), the audit of 1,000,000 records (≥ 1,000,000 records/s),
//! and what keeping the tree costs per append beside hashing the record alone.
//!
//! `cargo bench -p benches --bench tlog`. The 10,000,000-leaf tree (memory tiles) is built
//! once per run, on first use, and only by the proof benchmarks.

/// The program's allocator, so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use tlog::{
    Checkpoint, CompactRange, KeyKind, MemoryTileStore, SigningKey, Tree, audit, leaf_hash,
    verify_consistency, verify_inclusion,
};

/// Leaves of the tree the proofs are taken from.
const PROOF_TREE_LEAVES: u64 = 10_000_000;
/// Records the audit reads.
const AUDIT_RECORDS: u64 = 1_000_000;
/// Bytes of a benchmark record: about an event's canonical encoding with a 200-byte payload.
const RECORD_BYTES: usize = 333;
/// Records per iteration of the append benchmarks.
const APPEND_RECORDS: u64 = 100_000;

const NAME: &str = "ledger.example.com/csp";

fn record(i: u64, buffer: &mut [u8; RECORD_BYTES]) -> &[u8] {
    buffer[..8].copy_from_slice(&i.to_be_bytes());
    &buffer[..]
}

/// A fixed pseudo-random sequence (SplitMix64), so runs compare.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn proof_tree() -> &'static Tree<MemoryTileStore> {
    static TREE: OnceLock<Tree<MemoryTileStore>> = OnceLock::new();
    TREE.get_or_init(|| {
        let started = Instant::now();
        let mut tree = Tree::new(MemoryTileStore::new());
        let mut buffer = [7u8; RECORD_BYTES];
        for i in 0..PROOF_TREE_LEAVES {
            tree.append(record(i, &mut buffer));
            if tree.unwritten_tiles() >= 1024 {
                // The memory store takes the full tiles; the tree keeps only its right edge.
                if let Err(error) = tree.flush() {
                    panic!("memory tiles: {error}");
                }
            }
        }
        if let Err(error) = tree.flush() {
            panic!("memory tiles: {error}");
        }
        eprintln!(
            "built a tree of {PROOF_TREE_LEAVES} leaves ({RECORD_BYTES}-byte records) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        tree
    })
}

fn proofs(c: &mut Criterion) {
    let tree = proof_tree();
    let size = tree.size();
    let root = tree.root();
    // Cold proofs first: leaves of level-0 tiles no proof has touched, so the upper nodes of
    // their tiles are not in the proof cache yet and come from the tile store, as for a tree
    // reopened from its tiles (later proofs of the same tiles are warm).
    let cold_proofs = 2_000u64;
    let started = Instant::now();
    for n in 0..cold_proofs {
        let index = (n * 19 % (size / 256)) * 256 + n % 256;
        black_box(tree.inclusion_proof(index, size).unwrap_or_default());
    }
    eprintln!(
        "cold inclusion proof (tile not cached) at {size} leaves: {:.2} µs mean of {cold_proofs}",
        started.elapsed().as_secs_f64() * 1e6 / cold_proofs as f64
    );
    let mut longest = 0;
    let mut state = 1u64;
    // Every proof of a sample verifies, and none is longer than the target.
    for _ in 0..10_000 {
        let index = next_random(&mut state) % size;
        let proof = tree.inclusion_proof(index, size).unwrap_or_default();
        let mut buffer = [7u8; RECORD_BYTES];
        let leaf = leaf_hash(record(index, &mut buffer));
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        longest = longest.max(proof.len());
    }
    eprintln!("longest inclusion proof of 10,000 at {size} leaves: {longest} hashes (target ≤ 24)");

    let mut group = c.benchmark_group("tlog_proofs");
    group.measurement_time(Duration::from_secs(5));
    let mut state = 2u64;
    group.bench_function("inclusion_proof_10m_random", |b| {
        b.iter(|| tree.inclusion_proof(next_random(&mut state) % size, size))
    });
    let mut state = 3u64;
    group.bench_function("consistency_proof_10m_random", |b| {
        b.iter(|| tree.consistency_proof(1 + next_random(&mut state) % (size - 1), size))
    });
    let index = size / 3;
    let proof = tree.inclusion_proof(index, size).unwrap_or_default();
    let mut buffer = [7u8; RECORD_BYTES];
    let leaf = leaf_hash(record(index, &mut buffer));
    group.bench_function("verify_inclusion_10m", |b| {
        b.iter(|| verify_inclusion(black_box(&leaf), index, size, &proof, &root))
    });
    let from = size / 3 + 17;
    let old_root = tree.root_at(from).unwrap_or_default();
    let consistency = tree.consistency_proof(from, size).unwrap_or_default();
    group.bench_function("verify_consistency_10m", |b| {
        b.iter(|| verify_consistency(from, size, black_box(&consistency), &old_root, &root))
    });
    group.finish();
}

fn checkpoints(c: &mut Criterion) {
    let key = match SigningKey::from_seed(NAME, KeyKind::Ed25519, &[3; 32]) {
        Ok(key) => key,
        Err(error) => panic!("key: {error}"),
    };
    let checkpoint = Checkpoint::new(NAME, PROOF_TREE_LEAVES, [9; 32]);
    let mut group = c.benchmark_group("tlog_checkpoint");
    group.bench_function("sign_checkpoint", |b| {
        b.iter(|| key.sign_checkpoint(black_box(&checkpoint)))
    });
    let note = key.sign_checkpoint(&checkpoint).unwrap_or_default();
    let verifier = key.verifier();
    group.bench_function("open_checkpoint", |b| {
        b.iter(|| tlog::open_checkpoint(black_box(&note), &verifier))
    });
    group.finish();
}

fn audit_throughput(c: &mut Criterion) {
    let key = match SigningKey::from_seed(NAME, KeyKind::Ed25519, &[3; 32]) {
        Ok(key) => key,
        Err(error) => panic!("key: {error}"),
    };
    // The export in memory, one buffer: the audit's own work is measured, not reading a file.
    let mut export = vec![7u8; RECORD_BYTES * AUDIT_RECORDS as usize];
    let mut range = CompactRange::new();
    for (i, chunk) in export.chunks_exact_mut(RECORD_BYTES).enumerate() {
        chunk[..8].copy_from_slice(&(i as u64).to_be_bytes());
        range.push(leaf_hash(chunk));
    }
    let note = key
        .sign_checkpoint(&Checkpoint::new(NAME, AUDIT_RECORDS, range.root()))
        .unwrap_or_default();
    let verifier = key.verifier();
    let mut group = c.benchmark_group("tlog_audit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(AUDIT_RECORDS));
    group.bench_function("audit_1m_records", |b| {
        b.iter(|| {
            let records = export
                .chunks_exact(RECORD_BYTES)
                .enumerate()
                .map(|(i, bytes)| (i as u64, bytes));
            match audit(&note, &verifier, records) {
                Ok(report) => report.records,
                Err(error) => panic!("audit: {error}"),
            }
        })
    });
    group.finish();
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("tlog_append");
    group.throughput(Throughput::Elements(APPEND_RECORDS));
    group.sample_size(20);
    // The floor: hashing each record as a leaf, nothing kept.
    group.bench_function("leaf_hash_only", |b| {
        let mut buffer = [7u8; RECORD_BYTES];
        b.iter(|| {
            let mut last = [0u8; 32];
            for i in 0..APPEND_RECORDS {
                last = leaf_hash(record(i, &mut buffer));
            }
            last
        })
    });
    // The tree: leaf hash, compact range, tile rows (memory only; flush is separate).
    group.bench_function("tree_append", |b| {
        let mut buffer = [7u8; RECORD_BYTES];
        b.iter_batched(
            || Tree::new(MemoryTileStore::new()),
            |mut tree| {
                for i in 0..APPEND_RECORDS {
                    tree.append(record(i, &mut buffer));
                }
                tree
            },
            BatchSize::LargeInput,
        )
    });
    // The tree and writing its tiles to memory at the end, as a checkpoint would.
    group.bench_function("tree_append_and_flush", |b| {
        let mut buffer = [7u8; RECORD_BYTES];
        b.iter_batched(
            || Tree::new(MemoryTileStore::new()),
            |mut tree| {
                for i in 0..APPEND_RECORDS {
                    tree.append(record(i, &mut buffer));
                }
                if let Err(error) = tree.flush() {
                    panic!("memory tiles: {error}");
                }
                tree
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

// `criterion_group!` makes an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(
        benches,
        super::appends,
        super::checkpoints,
        super::audit_throughput,
        super::proofs
    );
}
criterion_main!(group::benches);
