//! Verification of inclusion and consistency proofs, step by step as RFC 9162 §2.1.3.2 and
//! §2.1.4.2 state them, and of the subtree inclusion proofs of the Merkle Tree Certificates
//! draft (an inclusion proof inside a subtree `[start, end)`).

use crate::hash::{Hash, node_hash};

/// Why a proof was refused. Every case is the prover's (or the proof's carrier's) fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index claimed.
        index: u64,
        /// The tree size claimed.
        size: u64,
    },
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("the proof has the wrong number of hashes for these sizes")]
    WrongLength,
    /// The hashes do not lead to the root (or roots) given.
    #[error("the proof does not lead to the given root")]
    RootMismatch,
    /// A consistency proof from a larger tree to a smaller one.
    #[error("size {from} is larger than size {to}")]
    SizesReversed {
        /// The older size.
        from: u64,
        /// The newer size.
        to: u64,
    },
    /// A consistency proof from the empty tree: every tree extends it, so RFC 9162 defines
    /// no proof for it, and one that claims to prove something is refused.
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmptyTree,
    /// A subtree `[start, end)` that is not a subtree of the Merkle tree (empty, or not
    /// aligned to a power of two at least its size).
    #[error("[{start}, {end}) is not a subtree")]
    NotASubtree {
        /// First leaf of the range.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
}

/// Checks that `proof` proves the leaf hash `leaf` at `index` in the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(leaf, index, size, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that an inclusion proof leads to, for a caller that compares it itself (the steps
/// of RFC 9162 §2.1.3.2 but the last comparison).
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    // 1. The leaf index must be below the tree size.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2–3.
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    // 4.
    for p in proof {
        // a. A proof longer than the path from the leaf to the root.
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        // b.
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        // c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. A proof shorter than the path ends before reaching the root.
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Checks that `proof` proves the tree of `size1` leaves with root `root1` to be a prefix of
/// the tree of `size2` leaves with root `root2` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots (RFC 9162 §2.1.4.1 gives them an empty
/// proof); a proof from size 0 is refused ([`ProofError::FromEmptyTree`]).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed {
            from: size1,
            to: size2,
        });
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // 1.
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // 2. When the old tree is a perfect tree its root is the proof's implicit first value.
    let (first, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    // 3.
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    // 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5.
    let mut fr = *first;
    let mut sr = *first;
    // 6.
    for c in rest {
        // a.
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        // b.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7.
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr == root1 && &sr == root2 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Whether `[start, end)` is a subtree of a Merkle tree in the sense of the Merkle Tree
/// Certificates draft: non-empty, and `start` a multiple of the smallest power of two that is
/// at least `end - start` (so the range is the left part of one perfect subtree).
pub fn is_subtree(start: u64, end: u64) -> bool {
    if start >= end {
        return false;
    }
    let width = (end - start).checked_next_power_of_two();
    // A width past 2^63 has no aligned start other than 0.
    width.map_or(start == 0, |width| start.is_multiple_of(width))
}

/// Checks a subtree inclusion proof: that `proof` proves `leaf` at `index` in the subtree
/// `[start, end)` whose hash is `subtree_root`. Such a subtree is hashed exactly as a tree of
/// `end - start` leaves, so this is [`verify_inclusion`] at `index - start`.
pub fn verify_subtree_inclusion(
    leaf: &Hash,
    index: u64,
    start: u64,
    end: u64,
    proof: &[Hash],
    subtree_root: &Hash,
) -> Result<(), ProofError> {
    if !is_subtree(start, end) {
        return Err(ProofError::NotASubtree { start, end });
    }
    if index < start || index >= end {
        return Err(ProofError::IndexOutOfRange { index, size: end });
    }
    verify_inclusion(leaf, index - start, end - start, proof, subtree_root)
}
