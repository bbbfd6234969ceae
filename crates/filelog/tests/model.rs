//! A proptest model test: random appends (right, wrong and unchecked expected revisions,
//! retries of earlier appends), reads and reopens, compared with `store::MemoryStore` as the
//! reference: the same results and the same errors.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::stream;
use filelog::{FileStore, FileStoreConfig};
use proptest::prelude::*;
use store::{Direction, EventStore, ExpectedRevision, MemoryStore, NewEvent, ReadFrom};
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Step {
    Append {
        stream: u8,
        count: u8,
        expected: Expected,
        clock_back: bool,
    },
    Retry {
        earlier: u8,
    },
    ReadStream {
        stream: u8,
        from: From,
        backwards: bool,
        limit: u8,
    },
    ReadAll {
        from: From,
        backwards: bool,
        limit: u8,
    },
    Reopen,
    Verify,
}

#[derive(Clone, Copy, Debug)]
enum Expected {
    Right,
    Exact(u8),
    NoStream,
    StreamExists,
    Any,
}

#[derive(Clone, Copy, Debug)]
enum From {
    Start,
    End,
    At(u8),
}

fn step() -> impl Strategy<Value = Step> {
    let expected = prop_oneof![
        3 => Just(Expected::Right),
        2 => (0u8..8).prop_map(Expected::Exact),
        1 => Just(Expected::NoStream),
        1 => Just(Expected::StreamExists),
        2 => Just(Expected::Any),
    ];
    let from = prop_oneof![
        Just(From::Start),
        Just(From::End),
        (0u8..30).prop_map(From::At)
    ];
    prop_oneof![
        6 => (0u8..4, 1u8..5, expected, any::<bool>()).prop_map(|(stream, count, expected, clock_back)| Step::Append { stream, count, expected, clock_back }),
        2 => any::<u8>().prop_map(|earlier| Step::Retry { earlier }),
        2 => (0u8..4, from.clone(), any::<bool>(), 0u8..8).prop_map(|(stream, from, backwards, limit)| Step::ReadStream { stream, from, backwards, limit }),
        2 => (from, any::<bool>(), 0u8..10).prop_map(|(from, backwards, limit)| Step::ReadAll { from, backwards, limit }),
        1 => Just(Step::Reopen),
        1 => Just(Step::Verify),
    ]
}

fn read_from(from: From) -> ReadFrom {
    match from {
        From::Start => ReadFrom::Start,
        From::End => ReadFrom::End,
        From::At(at) => ReadFrom::At(u64::from(at)),
    }
}

fn direction(backwards: bool) -> Direction {
    if backwards {
        Direction::Backwards
    } else {
        Direction::Forwards
    }
}

fn open(dir: &std::path::Path) -> Arc<FileStore> {
    // Tiny segments, so that appends and reads cross segment boundaries all the time.
    FileStore::open(
        dir,
        FileStoreConfig {
            segment_bytes_max: 512,
            ..FileStoreConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("open: {e}"))
}

/// Results are compared through their debug form: `StoreError` is not `PartialEq`.
fn same<T: std::fmt::Debug>(what: &str, file: T, memory: T) {
    let (file, memory) = (format!("{file:?}"), format!("{memory:?}"));
    assert_eq!(file, memory, "{what}: file log vs memory");
}

async fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut file = open(dir.path());
    let memory = MemoryStore::new();
    let mut sent: Vec<(u8, ExpectedRevision, Vec<NewEvent>)> = Vec::new();
    let mut counter = 0u64;
    let mut clock = 1_700_000_000_000_000_000i64;
    for step in steps {
        match step {
            Step::Append {
                stream: s,
                count,
                expected,
                clock_back,
            } => {
                let name = stream(&format!("m{s}"));
                let current = memory
                    .stream_revision(&name)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let expected = match expected {
                    Expected::Right => {
                        current.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
                    }
                    Expected::Exact(r) => ExpectedRevision::Exact(u64::from(r)),
                    Expected::NoStream => ExpectedRevision::NoStream,
                    Expected::StreamExists => ExpectedRevision::StreamExists,
                    Expected::Any => ExpectedRevision::Any,
                };
                // Clocks step backwards sometimes; both stores must keep recorded-at monotonic.
                clock += if clock_back { -5_000 } else { 1_000 };
                let batch: Vec<NewEvent> = (0..count)
                    .map(|_| {
                        counter += 1;
                        let mut event = common::event(counter, (counter % 50) as usize);
                        event.event_id = Uuid::from_u128(u128::from(counter));
                        event.recorded_at = DateTime::<Utc>::from_timestamp_nanos(clock);
                        event
                    })
                    .collect();
                let from_file = file.append(&name, expected, batch.clone()).await;
                let from_memory = memory.append(&name, expected, batch.clone()).await;
                same("append", from_file, from_memory);
                sent.push((s, expected, batch));
            }
            Step::Retry { earlier } => {
                if sent.is_empty() {
                    continue;
                }
                let (s, expected, batch) = sent[usize::from(earlier) % sent.len()].clone();
                let name = stream(&format!("m{s}"));
                let from_file = file.append(&name, expected, batch.clone()).await;
                let from_memory = memory.append(&name, expected, batch).await;
                same("retry", from_file, from_memory);
            }
            Step::ReadStream {
                stream: s,
                from,
                backwards,
                limit,
            } => {
                let name = stream(&format!("m{s}"));
                let args = (read_from(from), direction(backwards), usize::from(limit));
                same(
                    "read_stream",
                    file.read_stream(&name, args.0, args.1, args.2).await,
                    memory.read_stream(&name, args.0, args.1, args.2).await,
                );
            }
            Step::ReadAll {
                from,
                backwards,
                limit,
            } => {
                let args = (read_from(from), direction(backwards), usize::from(limit));
                same(
                    "read_all",
                    file.read_all(args.0, args.1, args.2).await,
                    memory.read_all(args.0, args.1, args.2).await,
                );
            }
            Step::Reopen => {
                file.close();
                drop(file);
                file = open(dir.path());
            }
            Step::Verify => {
                let file_report = file.verify().await.unwrap_or_else(|e| panic!("{e}"));
                let memory_report = memory.verify().await.unwrap_or_else(|e| panic!("{e}"));
                // The same events give the same chain, whatever the backend.
                same("verify", file_report, memory_report);
            }
        }
        same("head", file.head().await, memory.head().await);
        for s in 0..4 {
            let name = stream(&format!("m{s}"));
            same(
                "stream_revision",
                file.stream_revision(&name).await,
                memory.stream_revision(&name).await,
            );
        }
    }
    same(
        "everything",
        file.read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
            .await,
        memory
            .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
            .await,
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn file_log_behaves_like_the_memory_store(steps in proptest::collection::vec(step(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(run(steps));
    }
}
