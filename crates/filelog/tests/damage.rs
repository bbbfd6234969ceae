//! Damage tests: a torn tail is cut off at open, and any other damage is reported at the
//! record that holds it, by `verify()`, by `verify_dir` and by open.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{append, event, open, read_all};
use filelog::{FileStore, FileStoreConfig, verify_dir};
use store::{EventStore, ExpectedRevision, StoreError};

/// Bytes of a segment header (see the crate documentation).
const HEADER_BYTES: u64 = 64;
/// Room for about three of the test's records per segment.
const SEGMENT_BYTES_MAX: u64 = 600;

/// Where a record lies on disk.
#[derive(Clone, Debug)]
struct Span {
    position: u64,
    file: PathBuf,
    start: u64,
    end: u64,
}

fn segment_lengths(dir: &Path) -> BTreeMap<PathBuf, u64> {
    std::fs::read_dir(dir.join("log"))
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{e}"));
            let len = entry.metadata().unwrap_or_else(|e| panic!("{e}")).len();
            (entry.path(), len)
        })
        .collect()
}

/// Writes `count` records one append at a time, and learns where each one landed from how
/// the segment files grew.
async fn build(dir: &Path, count: u64) -> Vec<Span> {
    let store = open(dir, SEGMENT_BYTES_MAX);
    let mut spans = Vec::new();
    for n in 0..count {
        let before = segment_lengths(dir);
        let result = append(
            &store,
            &format!("s{}", n % 2),
            ExpectedRevision::Any,
            vec![event(n, 30)],
        )
        .await;
        let after = segment_lengths(dir);
        let (file, end) = after
            .iter()
            .find(|(file, len)| before.get(*file) != Some(len))
            .map(|(file, len)| (file.clone(), *len))
            .unwrap_or_else(|| panic!("no segment grew"));
        let start = before.get(&file).copied().unwrap_or(HEADER_BYTES);
        spans.push(Span {
            position: result.positions[0].0,
            file,
            start,
            end,
        });
    }
    store.close();
    spans
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("log")).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from.join("log")).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(entry.path(), to.join("log").join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn flip(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{e}"));
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(file, bytes).unwrap_or_else(|e| panic!("{e}"));
}

/// The position a flipped byte must be reported at: the record holding it, or the first
/// record of the segment whose header holds it.
fn holder(spans: &[Span], file: &Path, offset: u64) -> u64 {
    spans
        .iter()
        .filter(|span| span.file == file)
        .find(|span| offset < span.end && (offset >= span.start || span.start == HEADER_BYTES))
        .map(|span| span.position)
        .unwrap_or_else(|| panic!("no record holds byte {offset} of {}", file.display()))
}

#[tokio::test]
async fn cutting_the_last_record_anywhere_recovers_to_the_record_before() {
    let original = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Seven records: the last one is the only record of the last segment, so cutting into
    // that segment's header is covered too.
    let spans = build(original.path(), 7).await;
    let last = spans
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no records"));
    assert_eq!(
        last.start, HEADER_BYTES,
        "the last record should open its segment"
    );
    let expected = {
        let store = open(original.path(), SEGMENT_BYTES_MAX);
        let events = read_all(&store).await;
        store.close();
        events
    };
    for cut in 0..last.end {
        let copy = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        copy_dir(original.path(), copy.path());
        let file = copy
            .path()
            .join("log")
            .join(last.file.file_name().unwrap_or_default());
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{e}"));
        handle.set_len(cut).unwrap_or_else(|e| panic!("{e}"));
        drop(handle);
        let store = open(copy.path(), SEGMENT_BYTES_MAX);
        let events = read_all(&store).await;
        assert_eq!(events, expected[..expected.len() - 1], "cut at byte {cut}");
        // The store writes on from there, and the chain verifies.
        append(&store, "after", ExpectedRevision::Any, vec![event(100, 30)]).await;
        let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (report.damage, report.records_intact),
            (None, 7),
            "cut at byte {cut}"
        );
    }
}

#[tokio::test]
async fn cutting_a_record_in_the_middle_of_a_segment_recovers_to_the_record_before() {
    let original = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Six records: the last segment holds records 3, 4 and 5.
    let spans = build(original.path(), 6).await;
    let last = spans
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no records"));
    assert!(last.start > HEADER_BYTES);
    for cut in last.start..last.end {
        let copy = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        copy_dir(original.path(), copy.path());
        let file = copy
            .path()
            .join("log")
            .join(last.file.file_name().unwrap_or_default());
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{e}"));
        handle.set_len(cut).unwrap_or_else(|e| panic!("{e}"));
        drop(handle);
        // Offline verification reports the torn record without repairing it.
        let offline = verify_dir(copy.path()).unwrap_or_else(|e| panic!("{e}"));
        if cut > last.start {
            assert_eq!(
                offline.damage.map(|d| d.position),
                Some(Some(5)),
                "cut at byte {cut}"
            );
        }
        let store = open(copy.path(), SEGMENT_BYTES_MAX);
        assert_eq!(read_all(&store).await.len(), 5, "cut at byte {cut}");
        drop(store);
        assert_eq!(
            std::fs::metadata(&file).map(|m| m.len()).ok(),
            Some(last.start),
            "the torn bytes are cut off"
        );
    }
}

#[tokio::test]
async fn any_flipped_byte_before_the_tail_is_reported_at_its_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spans = build(dir.path(), 6).await;
    let tail = spans
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no records"));
    let files: Vec<PathBuf> = segment_lengths(dir.path()).into_keys().collect();
    assert!(files.len() >= 2);
    let mut checked = 0;
    for file in &files {
        let len = std::fs::metadata(file)
            .map(|m| m.len())
            .unwrap_or_else(|e| panic!("{e}"));
        for offset in 0..len {
            if *file == tail.file && offset >= tail.start {
                continue;
            }
            let position = holder(&spans, file, offset);
            flip(file, offset);
            let offline = verify_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let damage = offline.damage.unwrap_or_else(|| {
                panic!(
                    "byte {offset} of {}: verify_dir found nothing",
                    file.display()
                )
            });
            assert_eq!(
                damage.position,
                Some(position),
                "verify_dir, byte {offset} of {}: {damage}",
                file.display()
            );
            assert_eq!(offline.records_intact, position);
            match FileStore::open(
                dir.path(),
                FileStoreConfig {
                    segment_bytes_max: SEGMENT_BYTES_MAX,
                    ..FileStoreConfig::default()
                },
            ) {
                Err(StoreError::Corrupt(damage)) => {
                    assert_eq!(
                        damage.position,
                        Some(position),
                        "open, byte {offset} of {}: {damage}",
                        file.display()
                    );
                    assert_eq!(damage.file.as_deref(), Some(file.as_path()));
                }
                Err(other) => panic!("open, byte {offset}: expected Corrupt, got {other}"),
                Ok(_) => panic!(
                    "open, byte {offset} of {}: damage not found",
                    file.display()
                ),
            }
            flip(file, offset);
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} bytes checked");
}

#[tokio::test]
async fn verify_on_an_open_store_reports_damage_made_after_open() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spans = build(dir.path(), 6).await;
    let store = open(dir.path(), SEGMENT_BYTES_MAX);
    for span in &spans {
        // Every byte of every record, the tail included: an acknowledged record is never a
        // torn write while the store is open.
        for offset in span.start..span.end {
            flip(&span.file, offset);
            let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
            let damage = report
                .damage
                .unwrap_or_else(|| panic!("byte {offset}: nothing found"));
            assert_eq!(
                damage.position,
                Some(span.position),
                "byte {offset}: {damage}"
            );
            flip(&span.file, offset);
        }
    }
    // Reads check the CRC too.
    flip(&spans[2].file, spans[2].start + 50);
    let read = store
        .read_all(store::ReadFrom::Start, store::Direction::Forwards, 10)
        .await;
    match read {
        Err(StoreError::Corrupt(damage)) => assert_eq!(damage.position, Some(2)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flipped_byte_in_the_tail_record_is_cut_off_like_a_torn_write() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spans = build(dir.path(), 6).await;
    let tail = spans
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no records"));
    flip(&tail.file, tail.start + 20);
    let offline = verify_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        offline.damage.map(|d| d.position),
        Some(Some(tail.position))
    );
    let store = open(dir.path(), SEGMENT_BYTES_MAX);
    assert_eq!(read_all(&store).await.len() as u64, tail.position);
}

#[tokio::test]
async fn a_missing_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spans = build(dir.path(), 9).await;
    let files: Vec<PathBuf> = segment_lengths(dir.path()).into_keys().collect();
    assert!(files.len() >= 3);
    std::fs::remove_file(&files[1]).unwrap_or_else(|e| panic!("{e}"));
    let first_missing = spans
        .iter()
        .find(|span| span.file == files[1])
        .map(|span| span.position);
    match FileStore::open(dir.path(), FileStoreConfig::default()) {
        Err(StoreError::Corrupt(damage)) => assert_eq!(damage.position, first_missing),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a missing segment went unnoticed"),
    }
}

#[tokio::test]
async fn segments_larger_than_a_read_chunk_recover_and_report_damage_exactly() {
    // Opening reads segments 4 MiB at a time: records straddle the chunk boundaries here.
    const COUNT: u64 = 6_000;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(dir.path(), 64 * 1024 * 1024);
    for batch in 0..(COUNT / 1_000) {
        let events = (0..1_000).map(|i| event(batch * 1_000 + i, 900)).collect();
        append(&store, "stream-a", ExpectedRevision::Any, events).await;
    }
    let expected = read_all(&store).await;
    store.close();
    drop(store);
    let files: Vec<PathBuf> = segment_lengths(dir.path()).into_keys().collect();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    let len = std::fs::metadata(file)
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("{e}"));
    // Every record has the same size, so a byte's record is a division away.
    let record = (len - HEADER_BYTES) / COUNT;
    assert_eq!(HEADER_BYTES + record * COUNT, len);
    let chunk = 4 * 1024 * 1024;
    for offset in [
        chunk - 9,
        chunk - 1,
        chunk,
        chunk + 1,
        chunk + 37,
        2 * chunk / 3,
        len - record - 1,
    ] {
        let position = (offset - HEADER_BYTES) / record;
        flip(file, offset);
        let offline = verify_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            offline.damage.map(|d| d.position),
            Some(Some(position)),
            "verify_dir, byte {offset}"
        );
        match FileStore::open(dir.path(), FileStoreConfig::default()) {
            Err(StoreError::Corrupt(damage)) => assert_eq!(
                damage.position,
                Some(position),
                "open, byte {offset}: {damage}"
            ),
            Err(other) => panic!("open, byte {offset}: expected Corrupt, got {other}"),
            Ok(_) => panic!("open, byte {offset}: damage not found"),
        }
        flip(file, offset);
    }
    let store = open(dir.path(), 64 * 1024 * 1024);
    assert_eq!(read_all(&store).await, expected);
    store.close();
    drop(store);
    // A cut anywhere (here across a chunk boundary) recovers to the last whole record.
    for cut in [len - 1, len - record + 1, chunk + 5] {
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .unwrap_or_else(|e| panic!("{e}"));
        handle.set_len(cut).unwrap_or_else(|e| panic!("{e}"));
        drop(handle);
        let whole = (cut - HEADER_BYTES) / record;
        let store = open(dir.path(), 64 * 1024 * 1024);
        assert_eq!(
            read_all(&store).await,
            expected[..whole as usize],
            "cut at {cut}"
        );
        store.close();
    }
}
