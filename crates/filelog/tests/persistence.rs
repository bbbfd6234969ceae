//! Persistence, segment roll-over and the writer lock.

mod common;

use common::{append, event, fill, open, read_all, stream};
use filelog::{FileStore, FileStoreConfig, verify_dir};
use store::{Direction, EventStore, ExpectedRevision, ReadFrom, StoreError};

/// Held by the tests that check a lock is released and by the test that starts child
/// processes: a child started while a lock file is open shares its open file description
/// (and so its `flock`) until it executes its program, which would make the release look
/// late.
static PROCESS_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[tokio::test]
async fn everything_survives_a_reopen_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let written = fill(dir.path(), 50, 64 * 1024 * 1024).await;
    assert_eq!(written.len(), 50);
    let store = open(dir.path(), 64 * 1024 * 1024);
    assert_eq!(read_all(&store).await, written);
    let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.damage, None);
    assert_eq!(report.records_intact, 50);
    // The next append continues the same stream revisions and positions.
    let result = append(
        &store,
        "s0",
        ExpectedRevision::Exact(9),
        vec![event(1000, 5)],
    )
    .await;
    assert_eq!(result.revision, 10);
    assert_eq!(result.positions[0].0, 50);
    // A retry of an append made before the reopen is still recognized.
    let retry = store
        .append(
            &stream("s0"),
            ExpectedRevision::NoStream,
            vec![event(0, 20)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(retry.positions[0].0, 0);
    drop(store);
    let offline = verify_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(offline.damage, None);
    assert_eq!(offline.records_intact, 51);
}

#[tokio::test]
async fn tiny_segments_roll_over_and_read_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Each record is about 200 bytes: a few per segment, and one batch spans segments.
    let store = open(dir.path(), 700);
    let batch: Vec<_> = (0..20).map(|n| event(n, 60)).collect();
    append(&store, "big", ExpectedRevision::NoStream, batch).await;
    for n in 20..40 {
        append(&store, "small", ExpectedRevision::Any, vec![event(n, 60)]).await;
    }
    // A record larger than a segment gets one of its own.
    append(&store, "huge", ExpectedRevision::Any, vec![event(99, 2000)]).await;
    append(&store, "small", ExpectedRevision::Any, vec![event(100, 10)]).await;
    let before = read_all(&store).await;
    assert_eq!(before.len(), 42);
    drop(store);
    let segments = std::fs::read_dir(dir.path().join("log"))
        .unwrap_or_else(|e| panic!("{e}"))
        .count();
    assert!(segments > 10, "only {segments} segments");
    let store = open(dir.path(), 700);
    assert_eq!(read_all(&store).await, before);
    let backwards = store
        .read_stream(&stream("small"), ReadFrom::End, Direction::Backwards, 5)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let revisions: Vec<u64> = backwards.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, vec![20, 19, 18, 17, 16]);
    let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.damage, report.records_intact), (None, 42));
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_locked() {
    let _serial = PROCESS_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(dir.path(), 4096);
    match FileStore::open(dir.path(), FileStoreConfig::default()) {
        Err(StoreError::Locked(path)) => assert_eq!(path, dir.path()),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("expected Locked, the second open succeeded"),
    }
    // Offline verification does not need the lock.
    assert!(verify_dir(dir.path()).is_ok());
    store.close();
    // Closing releases the lock.
    if let Err(error) = FileStore::open(dir.path(), FileStoreConfig::default()) {
        panic!("reopen after close: {error}");
    }
}

/// Run by `a_second_process_is_locked_out` in a child process (with `--ignored`): try to open
/// the directory and report the outcome on stdout. Run alone, it fails.
#[test]
#[ignore = "the child process of a_second_process_is_locked_out, which runs it"]
fn lock_probe_child() {
    let dir = std::env::var("FILELOG_LOCK_PROBE_DIR").unwrap_or_else(|_| {
        panic!("run by a_second_process_is_locked_out, which names the directory")
    });
    match FileStore::open(&dir, FileStoreConfig::default()) {
        Err(StoreError::Locked(_)) => println!("PROBE locked"),
        Err(other) => println!("PROBE error {other}"),
        Ok(_) => println!("PROBE opened"),
    }
}

#[tokio::test]
async fn a_second_process_is_locked_out() {
    let _serial = PROCESS_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let probe = || {
        let output =
            std::process::Command::new(std::env::current_exe().unwrap_or_else(|e| panic!("{e}")))
                .args([
                    "--exact",
                    "lock_probe_child",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("FILELOG_LOCK_PROBE_DIR", dir.path())
                .output()
                .unwrap_or_else(|e| panic!("spawning the probe: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        stdout
            .lines()
            .find_map(|line| {
                line.split_once("PROBE ")
                    .map(|(_, outcome)| outcome.to_string())
            })
            .unwrap_or_else(|| panic!("probe printed no outcome: {stdout}"))
    };
    let store = open(dir.path(), 4096);
    assert_eq!(probe(), "locked");
    store.close();
    assert_eq!(probe(), "opened");
}

#[tokio::test]
async fn closed_store_refuses_appends_but_reads() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(dir.path(), 4096);
    append(&store, "a", ExpectedRevision::Any, vec![event(1, 3)]).await;
    store.close();
    let refused = store
        .append(&stream("a"), ExpectedRevision::Any, vec![event(2, 3)])
        .await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    assert_eq!(read_all(&store).await.len(), 1);
}
