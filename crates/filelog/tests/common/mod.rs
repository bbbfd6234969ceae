//! Helpers shared by the file log's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use filelog::{FileStore, FileStoreConfig};
use store::{
    AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, RecordedEvent,
    StreamName,
};
use uuid::Uuid;

/// A stream name that is known to be valid.
pub fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// An event with a deterministic id derived from `n` and a payload of `payload_bytes`.
pub fn event(n: u64, payload_bytes: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::from_u128(0x1000_0000_0000_0000 + u128::from(n)),
        event_type: "Happened".into(),
        schema_version: 1,
        recorded_at: DateTime::<Utc>::from_timestamp_nanos(1_700_000_000_000_000_000 + n as i64),
        actor: "operator".into(),
        command_id: Uuid::from_u128(u128::from(n) << 64),
        correlation_id: Uuid::from_u128(7),
        causation_id: Uuid::from_u128(8),
        payload: (0..payload_bytes).map(|i| (i as u64 + n) as u8).collect(),
    }
}

/// Opens a store, panicking on failure.
pub fn open(dir: &Path, segment_bytes_max: u64) -> Arc<FileStore> {
    FileStore::open(
        dir,
        FileStoreConfig {
            segment_bytes_max,
            ..FileStoreConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Appends, panicking on failure.
pub async fn append(
    store: &FileStore,
    name: &str,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
) -> AppendResult {
    store
        .append(&stream(name), expected, events)
        .await
        .unwrap_or_else(|e| panic!("append to {name}: {e}"))
}

/// Reads the whole log forwards.
pub async fn read_all(store: &FileStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("read_all: {e}"))
}

/// Writes `count` events (over streams `s0`..`s4`, round robin) into a fresh store in `dir`
/// and returns them as read back.
pub async fn fill(dir: &Path, count: u64, segment_bytes_max: u64) -> Vec<RecordedEvent> {
    let store = open(dir, segment_bytes_max);
    for n in 0..count {
        append(
            &store,
            &format!("s{}", n % 5),
            ExpectedRevision::Any,
            vec![event(n, 20 + (n as usize % 7))],
        )
        .await;
    }
    let events = read_all(&store).await;
    store.close();
    events
}
