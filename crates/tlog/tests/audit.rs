//! The offline audit: an export against a signed checkpoint, and checkpoints against each
//! other with consistency proofs.

use tlog::{
    AuditError, Checkpoint, KeyKind, MemoryTileStore, SigningKey, Tree, audit, audit_with_proofs,
    check_signed_consistency,
};

const NAME: &str = "ledger.example.com/csp";

fn record(i: u64) -> Vec<u8> {
    format!("record {i} canonical bytes").into_bytes()
}

struct Log {
    key: SigningKey,
    tree: Tree<MemoryTileStore>,
}

impl Log {
    fn new(size: u64) -> Result<Self, Box<dyn std::error::Error>> {
        let key = SigningKey::from_seed(NAME, KeyKind::Ed25519, &[5; 32])?;
        let mut tree = Tree::new(MemoryTileStore::new());
        for i in 0..size {
            tree.append(&record(i));
        }
        Ok(Self { key, tree })
    }

    fn checkpoint(&self, size: u64) -> Result<String, Box<dyn std::error::Error>> {
        let root = self.tree.root_at(size)?;
        Ok(self
            .key
            .sign_checkpoint(&Checkpoint::new(NAME, size, root))?)
    }
}

fn export(size: u64) -> Vec<(u64, Vec<u8>)> {
    (0..size).map(|i| (i, record(i))).collect()
}

#[test]
fn an_intact_export_passes() -> Result<(), Box<dyn std::error::Error>> {
    let log = Log::new(1000)?;
    let report = audit(&log.checkpoint(1000)?, &log.key.verifier(), export(1000))?;
    assert_eq!(report.records, 1000);
    // A checkpoint of an earlier size covers the first records of the export.
    let report = audit(&log.checkpoint(600)?, &log.key.verifier(), export(600))?;
    assert_eq!(report.checkpoint.size, 600);
    Ok(())
}

#[test]
fn the_first_failing_record_is_named() -> Result<(), Box<dyn std::error::Error>> {
    let log = Log::new(1000)?;
    let note = log.checkpoint(1000)?;
    let key = log.key.verifier();

    let mut skipped = export(1000);
    skipped.remove(417);
    assert!(matches!(
        audit(&note, &key, skipped),
        Err(AuditError::OutOfOrder {
            expected: 417,
            found: 418
        })
    ));
    assert!(matches!(
        audit(&note, &key, export(999)),
        Err(AuditError::Truncated {
            records: 999,
            size: 1000
        })
    ));
    assert!(matches!(
        audit(&note, &key, export(1001)),
        Err(AuditError::BeyondCheckpoint {
            index: 1000,
            size: 1000
        })
    ));
    // A flipped byte in a record: the root says the export is wrong...
    let mut flipped = export(1000);
    flipped[417].1[3] ^= 1;
    assert!(matches!(
        audit(&note, &key, flipped.clone()),
        Err(AuditError::RootMismatch { .. })
    ));
    // ...and with the records' inclusion proofs the audit names the record.
    let with_proofs = flipped
        .into_iter()
        .map(|(i, bytes)| Ok((i, bytes, log.tree.inclusion_proof(i, 1000)?)))
        .collect::<Result<Vec<_>, tlog::TlogError>>()?;
    assert!(matches!(
        audit_with_proofs(&note, &key, with_proofs),
        Err(AuditError::Record { index: 417, .. })
    ));
    // A flipped byte in the checkpoint.
    let forged = note.replacen("1000", "1001", 1);
    assert!(matches!(
        audit(&forged, &key, export(1000)),
        Err(AuditError::Checkpoint(_))
    ));
    Ok(())
}

#[test]
fn a_newer_checkpoint_is_checked_against_an_older_one() -> Result<(), Box<dyn std::error::Error>> {
    let log = Log::new(1000)?;
    let key = log.key.verifier();
    let (older, newer) = (log.checkpoint(377)?, log.checkpoint(1000)?);
    let proof = log.tree.consistency_proof(377, 1000)?;
    let (old, new) = check_signed_consistency(&older, &newer, &key, &proof)?;
    assert_eq!((old.size, new.size), (377, 1000));

    // A forked log: same size, other history.
    let mut fork = Tree::new(MemoryTileStore::new());
    for i in 0..1000 {
        fork.append(&record(if i == 100 { 5000 } else { i }));
    }
    let forked = log
        .key
        .sign_checkpoint(&Checkpoint::new(NAME, 1000, fork.root()))?;
    let fork_proof = fork.consistency_proof(377, 1000)?;
    assert!(matches!(
        check_signed_consistency(&older, &forked, &key, &fork_proof),
        Err(AuditError::Inconsistent {
            from: 377,
            to: 1000,
            ..
        })
    ));
    let mut changed = proof.clone();
    changed[0][0] ^= 1;
    assert!(check_signed_consistency(&older, &newer, &key, &changed).is_err());
    // The empty tree is extended by every tree, with an empty proof.
    let empty = log.checkpoint(0)?;
    assert!(check_signed_consistency(&empty, &newer, &key, &[]).is_ok());
    Ok(())
}
