//! A log opened read-only beside its writer: it takes no lock, changes nothing, refuses
//! appends, and (following) sees every record the writer appends, in order, across segment
//! rollovers, with nothing skipped and nothing doubled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{append, event, fill, open, read_all, stream};
use filelog::FileStore;
use proptest::prelude::*;
use store::{
    EventFilter, EventStore, ExpectedRevision, Position, StoreError, SubscribeFrom,
    SubscriptionItem,
};

const FOLLOW: Duration = Duration::from_millis(2);

/// Waits (bounded) until `reader` holds `len` records.
async fn until_len(reader: &FileStore, len: u64) {
    let wanted = len.checked_sub(1).map(Position);
    for _ in 0..5000 {
        if reader.head().await.unwrap() == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "the follower never reached {len} records (it holds {:?})",
        reader.head().await.unwrap()
    );
}

#[tokio::test]
async fn a_reader_beside_the_writer_follows_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path(), 40, 600).await;
    let writer = open(dir.path(), 600);
    // Opened beside the writer, which holds the lock: no lock is taken, nothing refused.
    let reader = FileStore::open_read_only(dir.path(), Some(FOLLOW)).unwrap();
    assert_eq!(read_all(&reader).await, before);
    let mut feed =
        std::sync::Arc::clone(&reader).subscribe_all(SubscribeFrom::Start, EventFilter::default());

    // The writer goes on, over many small segments; the reader sees each record.
    for n in 40..200u64 {
        let events = (0..(n % 3 + 1)).map(|k| event(n * 10 + k, 30)).collect();
        append(
            &writer,
            &format!("s{}", n % 5),
            ExpectedRevision::Any,
            events,
        )
        .await;
    }
    let written = read_all(&writer).await;
    until_len(&reader, written.len() as u64).await;
    assert_eq!(read_all(&reader).await, written);
    for name in ["s0", "s3"] {
        assert_eq!(
            reader.stream_revision(&stream(name)).await.unwrap(),
            writer.stream_revision(&stream(name)).await.unwrap()
        );
    }
    let mut fed = Vec::new();
    while fed.len() < written.len() {
        if let SubscriptionItem::Event(event) = feed.next().await.unwrap().unwrap() {
            fed.push(event);
        }
    }
    assert_eq!(fed, written, "the feed has every record once, in order");

    // Appends are refused, and the reader changed nothing the writer relies on.
    let refused = reader
        .append(&stream("s0"), ExpectedRevision::Any, vec![event(9_999, 4)])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotWriter(reason)) if reason.contains("read-only")),
        "{refused:?}"
    );
    assert!(reader.verify().await.unwrap().damage.is_none());
    reader.close();
    writer.close();
    drop(writer);
    let reopened = open(dir.path(), 600);
    assert_eq!(read_all(&reopened).await, written);
}

#[tokio::test]
async fn an_incomplete_last_record_is_left_for_the_writer_and_read_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 12, 1 << 20).await;
    // What a crash mid-write leaves: the start of a frame at the end of the last segment.
    let segment = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .max()
        .unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(file);

    let reader = FileStore::open_read_only(dir.path(), Some(FOLLOW)).unwrap();
    assert_eq!(
        read_all(&reader).await,
        written,
        "the torn bytes are not read"
    );
    // The writer's open cuts them off, and its next records are followed from there.
    let writer = open(dir.path(), 1 << 20);
    append(
        &writer,
        "s9",
        ExpectedRevision::NoStream,
        vec![event(500, 9)],
    )
    .await;
    until_len(&reader, 13).await;
    assert_eq!(read_all(&reader).await, read_all(&writer).await);
}

#[tokio::test]
async fn damage_in_the_middle_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 12, 1 << 20).await;
    let segment = dir.path().join("log").join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[64 + 20] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let opened = FileStore::open_read_only(dir.path(), None);
    assert!(
        matches!(&opened, Err(StoreError::Corrupt(damage)) if damage.position == Some(0)),
        "{:?}",
        opened.err()
    );
}

#[tokio::test]
async fn a_directory_without_a_log_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let opened = FileStore::open_read_only(&missing, None);
    assert!(matches!(opened, Err(StoreError::Invalid(_))));
    assert!(!missing.exists());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the batch sizes and the segment size, the follower's log is at every moment
    /// a prefix of the writer's, and catches up with all of it.
    #[test]
    fn the_follower_holds_a_prefix_of_the_log_and_catches_up(
        batches in proptest::collection::vec(1usize..6, 1..40),
        segment_bytes_max in 200u64..4000,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let writer = open(dir.path(), segment_bytes_max);
            let reader = FileStore::open_read_only(dir.path(), Some(FOLLOW)).unwrap();
            let mut n = 0u64;
            for (at, size) in batches.iter().enumerate() {
                let events = (0..*size).map(|_| { n += 1; event(n, (n % 90) as usize) }).collect();
                append(&writer, &format!("s{}", at % 4), ExpectedRevision::Any, events).await;
                let seen = read_all(&reader).await;
                let written = read_all(&writer).await;
                assert!(seen.len() <= written.len());
                assert_eq!(&written[..seen.len()], &seen[..]);
            }
            let written = read_all(&writer).await;
            until_len(&reader, written.len() as u64).await;
            assert_eq!(read_all(&reader).await, written);
        });
    }
}
