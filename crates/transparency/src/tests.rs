//! The follower and publisher over the in-memory store: checkpoints verify, proofs by
//! position verify, the tree reopens from its tiles and is rebuilt when they are damaged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use store::{EventStore, ExpectedRevision, MemoryStore, NewEvent, StreamName};

use super::*;

/// Long enough never to fire in a test: each test publishes by hand.
const NEVER: Duration = Duration::from_secs(3600);
/// A bound on waiting for the follower, so that a broken follower fails the test.
const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &Path) -> TransparencyConfig {
    TransparencyConfig {
        directory: dir.join("tlog"),
        key: KeySource::Generated {
            name: "ledger.test/csp".into(),
        },
        origin: None,
        publish_interval: NEVER,
    }
}

async fn append(store: &MemoryStore, count: usize) {
    let stream = StreamName::new("partner-1").unwrap();
    for _ in 0..count {
        let event = NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "Happened".into(),
            schema_version: 1,
            recorded_at: chrono::Utc::now(),
            actor: "operator".into(),
            command_id: uuid::Uuid::now_v7(),
            correlation_id: uuid::Uuid::nil(),
            causation_id: uuid::Uuid::nil(),
            payload: vec![1, 2, 3],
        };
        store
            .append(&stream, ExpectedRevision::Any, vec![event])
            .await
            .unwrap();
    }
}

/// Publishes once the follower has every record of the store.
async fn publish_all(transparency: &Transparency, records: u64) -> Arc<Published> {
    for _ in 0..3000 {
        if transparency.size() == records
            && transparency.shared.caught_up.load(Ordering::Acquire)
            && let Some(published) = transparency.publish().await.unwrap()
        {
            return published;
        }
        if transparency.latest().is_some_and(|p| p.size == records) {
            return transparency.latest().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the follower did not reach {records} records");
}

#[tokio::test]
async fn checkpoints_and_proofs_by_position_verify_and_every_checkpoint_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    append(&store, 5).await;
    let transparency = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    let key = tlog::VerifierKey::parse(&transparency.verifier_key()).unwrap();
    let first = publish_all(&transparency, 5).await;
    append(&store, 300).await;
    let second = publish_all(&transparency, 305).await;

    let older = tlog::open_checkpoint(&first.note, &key).unwrap();
    let newer = tlog::open_checkpoint(&second.note, &key).unwrap();
    let consistency = transparency.consistency_proof(5, 305).unwrap();
    tlog::check_consistency(&older, &newer, &consistency.proof).unwrap();

    let events = store
        .read_all(store::ReadFrom::Start, store::Direction::Forwards, 1000)
        .await
        .unwrap();
    for event in [&events[0], &events[4], &events[300]] {
        let proof = transparency.inclusion_proof(event.position.0, 305).unwrap();
        assert_eq!(proof.leaf_hash, tlog::leaf_hash(&record_bytes(event)));
        tlog::verify_inclusion(
            &proof.leaf_hash,
            proof.leaf_index,
            305,
            &proof.proof,
            &newer.root,
        )
        .unwrap();
        let again = InclusionProof::from_json(&proof.to_json()).unwrap();
        assert_eq!(again, proof);
    }
    assert!(matches!(
        transparency.inclusion_proof(9999, 305),
        Err(ProofError::UnknownPosition(9999))
    ));
    assert!(matches!(
        transparency.inclusion_proof(events[300].position.0, 5),
        Err(ProofError::NotInTree { .. })
    ));
    assert!(matches!(
        transparency.consistency_proof(0, 5),
        Err(ProofError::BadRange { .. })
    ));
    assert!(matches!(
        transparency.consistency_proof(5, 306),
        Err(ProofError::BeyondTree { .. })
    ));
    let kept = kept::read(&Layout::new(dir.path().join("tlog")).checkpoints()).unwrap();
    assert_eq!(
        kept.iter().map(|p| p.size).collect::<Vec<_>>(),
        vec![5, 305]
    );
    assert_eq!(
        kept::read_last(&Layout::new(dir.path().join("tlog")).checkpoints()).unwrap(),
        Some((*second).clone())
    );
    assert_eq!(kept[0], *first);
}

#[tokio::test]
async fn the_tree_reopens_from_its_tiles_and_is_rebuilt_when_a_tile_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    append(&store, 600).await;
    let first = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    let published = publish_all(&first, 600).await;
    let verifier = first.verifier_key();
    first.close().await.unwrap();
    drop(first);

    // Reopened: the same key, the tree at the checkpoint's size from its tiles.
    let reopened = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    assert_eq!(reopened.verifier_key(), verifier);
    assert_eq!(reopened.size(), 600, "reopened from the tiles, not rebuilt");
    let (tree, latest) = offline::tree(&Layout::new(dir.path().join("tlog"))).unwrap();
    assert_eq!(latest, *published);
    assert_eq!(tree.root(), published.root);
    reopened.close().await.unwrap();
    drop(reopened);

    // A flipped byte in the rightmost partial tile: reopening fails, the tree is rebuilt
    // from the log and gives the signed root again.
    let tile = dir.path().join("tlog/tile/0/002.p/88");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&tile, bytes).unwrap();
    assert!(offline::tree(&Layout::new(dir.path().join("tlog"))).is_err());
    let rebuilt = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    assert_eq!(rebuilt.size(), 0, "rebuilt from the log");
    for _ in 0..3000 {
        if rebuilt.size() == 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rebuilt.size(), 600);
    append(&store, 1).await;
    let next = publish_all(&rebuilt, 601).await;
    let proof = rebuilt.consistency_proof(600, 601).unwrap();
    let key = tlog::VerifierKey::parse(&verifier).unwrap();
    tlog::check_signed_consistency(&published.note, &next.note, &key, &proof.proof).unwrap();
}

#[tokio::test]
async fn leaf_indexes_wait_for_the_follower() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let transparency = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    append(&store, 3).await;
    assert_eq!(transparency.leaf_index_waiting(2, WAIT).await, Some(2));
    assert_eq!(transparency.leaf_index(0), Some(0));
}

#[tokio::test]
async fn a_tree_whose_tiles_were_not_synced_at_its_last_stop_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    append(&store, 300).await;
    let first = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    let published = publish_all(&first, 300).await;
    first.close().await.unwrap();
    drop(first);
    // Synced at 300; then more records and a checkpoint, and no clean stop (a crash).
    let second = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    assert_eq!(second.size(), 300, "reopened from the synced tiles");
    append(&store, 10).await;
    let later = publish_all(&second, 310).await;
    drop(second);
    let third = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    assert_eq!(
        third.size(),
        300,
        "reopened at the synced state, not at the later checkpoint"
    );
    append(&store, 1).await;
    let last = publish_all(&third, 311).await;
    let key = tlog::VerifierKey::parse(&third.verifier_key()).unwrap();
    for older in [&published, &later] {
        let proof = third.consistency_proof(older.size, 311).unwrap();
        tlog::check_signed_consistency(&older.note, &last.note, &key, &proof.proof).unwrap();
    }
    // Without the synced state the tiles are not trusted: the tree is rebuilt.
    drop(third);
    std::fs::remove_file(Layout::new(dir.path().join("tlog")).synced()).unwrap();
    let fourth = Transparency::start(store.clone(), config(dir.path()))
        .await
        .unwrap();
    assert_eq!(fourth.size(), 0, "rebuilt from the log");
}

#[tokio::test]
async fn an_origin_no_checkpoint_can_carry_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut bad = config(dir.path());
    bad.origin = Some("two\nlines".into());
    let error = Transparency::start(store.clone(), bad).await.unwrap_err();
    assert!(matches!(error, TransparencyError::Key(_)), "{error}");
    let mut bad = config(dir.path());
    bad.origin = Some(String::new());
    assert!(Transparency::start(store, bad).await.is_err());
}

#[tokio::test]
async fn a_log_that_no_longer_gives_the_signed_root_is_not_signed_again() {
    let dir = tempfile::tempdir().unwrap();
    let signed = Arc::new(MemoryStore::new());
    append(&signed, 20).await;
    let first = Transparency::start(signed, config(dir.path()))
        .await
        .unwrap();
    publish_all(&first, 20).await;
    first.close().await.unwrap();
    drop(first);
    // Another log of the same length in the same data directory, its tiles not trusted.
    std::fs::remove_file(Layout::new(dir.path().join("tlog")).synced()).unwrap();
    let other = Arc::new(MemoryStore::new());
    append(&other, 21).await;
    let forked = Transparency::start(other, config(dir.path()))
        .await
        .unwrap();
    for _ in 0..3000 {
        if forked.size() == 21 && forked.shared.caught_up.load(Ordering::Acquire) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        forked.publish().await,
        Err(TransparencyError::Forked { size: 20 })
    ));
    assert_eq!(
        forked.latest().map(|p| p.size),
        Some(20),
        "nothing new signed"
    );
}

#[test]
fn the_last_kept_checkpoint_is_read_from_the_end_of_the_file_and_a_torn_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.jsonl");
    assert_eq!(kept::read_last(&path).unwrap(), None);
    let published = |size: u64| Published {
        size,
        root: [size as u8; 32],
        last_position: size.checked_sub(1),
        note: format!("note {size}\n{}", "x".repeat(5000)),
    };
    for size in 1..=5 {
        kept::append(&path, &published(size)).unwrap();
    }
    assert_eq!(kept::read_last(&path).unwrap(), Some(published(5)));
    // A line cut short by a crash is not a checkpoint.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, b"{\"size\":6,\"ro"))
        .unwrap();
    assert_eq!(kept::read_last(&path).unwrap(), Some(published(5)));
    assert_eq!(kept::read(&path).unwrap().len(), 5);
}
