//! The offline audit: a signed checkpoint, the log's verifier key and an export's records
//! are enough to check that the export is the log the checkpoint commits to; and a newer
//! checkpoint is checked against an older one with a consistency proof.

use crate::hash::{CompactRange, EMPTY_ROOT, Hash, leaf_hash};
use crate::note::{Checkpoint, NoteError, VerifierKey, open_checkpoint};
use crate::proof::{ProofError, verify_consistency, verify_inclusion};

/// Why an audit failed, naming the first record or proof at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The checkpoint's signature (or its body) is not valid for the key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    /// A record's leaf index is not the next one expected: the export skips, repeats or
    /// reorders records from this point.
    #[error("record {expected}: the export gives leaf index {found} here")]
    OutOfOrder {
        /// The leaf index expected (the number of records before it).
        expected: u64,
        /// The leaf index the export gives.
        found: u64,
    },
    /// The export has records past the checkpoint's tree size.
    #[error("record {index} is beyond the checkpoint's tree size {size}")]
    BeyondCheckpoint {
        /// The first record past the size.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The export ends before the checkpoint's tree size.
    #[error("the export ends at record {records}; the checkpoint covers {size}")]
    Truncated {
        /// Records in the export.
        records: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The records do not rebuild the checkpoint's root: some record's bytes differ from
    /// the log's. The root alone cannot say which; [`audit_with_proofs`] names the first
    /// record whose inclusion proof fails.
    #[error("the {size} records do not rebuild the checkpoint's root")]
    RootMismatch {
        /// The tree size.
        size: u64,
        /// The root the records give.
        computed: Hash,
    },
    /// A record's inclusion proof (from the export) does not prove it in the checkpoint.
    #[error("record {index}: {source}")]
    Record {
        /// The leaf index of the first failing record.
        index: u64,
        /// Why its proof was refused.
        #[source]
        source: ProofError,
    },
    /// A consistency proof between two checkpoints was refused.
    #[error("consistency from size {from} to size {to}: {source}")]
    Inconsistent {
        /// The older checkpoint's size.
        from: u64,
        /// The newer checkpoint's size.
        to: u64,
        /// Why the proof was refused.
        #[source]
        source: ProofError,
    },
    /// Two checkpoints of different logs.
    #[error("checkpoints of two logs: {older:?} and {newer:?}")]
    OtherLog {
        /// The older checkpoint's origin.
        older: String,
        /// The newer checkpoint's origin.
        newer: String,
    },
}

/// What an audit established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// Records checked (the checkpoint's tree size).
    pub records: u64,
}

/// Audits an export against a signed checkpoint: verifies the note with `key`, then folds
/// `records` — `(leaf_index, canonical bytes)` in log order from 0 — into the RFC 9162 root
/// and compares it with the checkpoint's. A checkpoint of size N covers the first N records:
/// an export that goes on is refused at record N ([`AuditError::BeyondCheckpoint`]), since
/// the checkpoint does not vouch for it; audit a longer export against a later checkpoint.
/// Runs in O(1) memory over the records.
pub fn audit<B: AsRef<[u8]>>(
    signed_checkpoint: &str,
    key: &VerifierKey,
    records: impl IntoIterator<Item = (u64, B)>,
) -> Result<AuditReport, AuditError> {
    let checkpoint = open_checkpoint(signed_checkpoint, key)?;
    let mut range = CompactRange::new();
    for (index, bytes) in records {
        check_next(&checkpoint, range.size(), index)?;
        range.push(leaf_hash(bytes.as_ref()));
    }
    finish(checkpoint, &range)
}

/// [`audit`] of an export whose records carry inclusion proofs in the checkpoint's tree
/// (`(leaf_index, canonical bytes, proof)`, as a receipt or an export of proofs gives them):
/// each proof is checked as its record is read, so a changed record is named by index,
/// then the root is rebuilt as [`audit`] does.
pub fn audit_with_proofs<B: AsRef<[u8]>, P: AsRef<[Hash]>>(
    signed_checkpoint: &str,
    key: &VerifierKey,
    records: impl IntoIterator<Item = (u64, B, P)>,
) -> Result<AuditReport, AuditError> {
    let checkpoint = open_checkpoint(signed_checkpoint, key)?;
    let mut range = CompactRange::new();
    for (index, bytes, proof) in records {
        check_next(&checkpoint, range.size(), index)?;
        let leaf = leaf_hash(bytes.as_ref());
        verify_inclusion(
            &leaf,
            index,
            checkpoint.size,
            proof.as_ref(),
            &checkpoint.root,
        )
        .map_err(|source| AuditError::Record { index, source })?;
        range.push(leaf);
    }
    finish(checkpoint, &range)
}

fn check_next(checkpoint: &Checkpoint, expected: u64, index: u64) -> Result<(), AuditError> {
    if index != expected {
        return Err(AuditError::OutOfOrder {
            expected,
            found: index,
        });
    }
    if index >= checkpoint.size {
        return Err(AuditError::BeyondCheckpoint {
            index,
            size: checkpoint.size,
        });
    }
    Ok(())
}

fn finish(checkpoint: Checkpoint, range: &CompactRange) -> Result<AuditReport, AuditError> {
    if range.size() < checkpoint.size {
        return Err(AuditError::Truncated {
            records: range.size(),
            size: checkpoint.size,
        });
    }
    let computed = range.root();
    if computed != checkpoint.root {
        return Err(AuditError::RootMismatch {
            size: checkpoint.size,
            computed,
        });
    }
    Ok(AuditReport {
        records: checkpoint.size,
        checkpoint,
    })
}

/// Checks that `newer` extends `older` (two checkpoints of one log, already verified) with
/// an RFC 9162 consistency proof from `older.size` to `newer.size`.
pub fn check_consistency(
    older: &Checkpoint,
    newer: &Checkpoint,
    proof: &[Hash],
) -> Result<(), AuditError> {
    if older.origin != newer.origin {
        return Err(AuditError::OtherLog {
            older: older.origin.clone(),
            newer: newer.origin.clone(),
        });
    }
    let inconsistent = |source| AuditError::Inconsistent {
        from: older.size,
        to: newer.size,
        source,
    };
    // Every tree extends the empty one; RFC 9162 has no proof for it, and needs none.
    if older.size == 0 {
        if older.root != EMPTY_ROOT {
            return Err(inconsistent(ProofError::RootMismatch));
        }
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(inconsistent(ProofError::WrongLength))
        };
    }
    verify_consistency(older.size, newer.size, proof, &older.root, &newer.root)
        .map_err(inconsistent)
}

/// [`check_consistency`] of two signed checkpoints, each verified with `key` first.
/// Returns the two checkpoints.
pub fn check_signed_consistency(
    older: &str,
    newer: &str,
    key: &VerifierKey,
    proof: &[Hash],
) -> Result<(Checkpoint, Checkpoint), AuditError> {
    let older = open_checkpoint(older, key)?;
    let newer = open_checkpoint(newer, key)?;
    check_consistency(&older, &newer, proof)?;
    Ok((older, newer))
}
