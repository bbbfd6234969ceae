//! Properties of the tree's proofs: for random sizes, every leaf's inclusion proof and every
//! smaller size's consistency proof verify, and any changed hash, index or size is refused.
//!
//! A changed size is checked with the root of that size: a checkpoint binds the size to its
//! root, and a proof for size n can hash to the root of n under the shape of another size
//! (leaf 0 of 3 and of 4 hash alike), which proves nothing false.

use proptest::prelude::*;
use tlog::{CompactRange, MemoryTileStore, Tree, leaf_hash, verify_consistency, verify_inclusion};

fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

fn tree_of(size: u64) -> Tree<MemoryTileStore> {
    let mut tree = Tree::new(MemoryTileStore::new());
    for i in 0..size {
        tree.append(&record(i));
    }
    tree
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_inclusion_proof_verifies_and_any_change_is_refused(
        size in 1u64..700,
        flush_at in 0u64..700,
        pick in any::<prop::sample::Index>(),
        byte in 0usize..32,
    ) {
        let mut tree = Tree::new(MemoryTileStore::new());
        for i in 0..=size {
            tree.append(&record(i));
            // Proofs must not depend on which tiles were written yet.
            if i == flush_at {
                tree.flush().map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        let root_of = |size| tree.root_at(size).map_err(|e| TestCaseError::fail(e.to_string()));
        let root = root_of(size)?;
        let (root_larger, root_smaller) = (root_of(size + 1)?, root_of(size - 1)?);
        for index in 0..size {
            let leaf = leaf_hash(&record(index));
            let proof = tree.inclusion_proof(index, size).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(proof.len() <= 64);
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
            // Another index or size with the same proof is refused.
            prop_assert!(verify_inclusion(&leaf, index + 1, size, &proof, &root).is_err());
            if index > 0 {
                prop_assert!(verify_inclusion(&leaf, index - 1, size, &proof, &root).is_err());
            }
            prop_assert!(verify_inclusion(&leaf, index, size + 1, &proof, &root_larger).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size - 1, &proof, &root_smaller).is_err());
            // Another leaf, root, or any changed proof hash is refused.
            let mut other = leaf;
            other[byte] ^= 1;
            prop_assert!(verify_inclusion(&other, index, size, &proof, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &other).is_err());
            if !proof.is_empty() {
                let mut changed = proof.clone();
                let at = pick.index(changed.len());
                changed[at][byte] ^= 0x80;
                prop_assert!(verify_inclusion(&leaf, index, size, &changed, &root).is_err());
                let mut shorter = proof.clone();
                shorter.pop();
                prop_assert!(verify_inclusion(&leaf, index, size, &shorter, &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_change_is_refused(
        size in 1u64..700,
        pick in any::<prop::sample::Index>(),
        byte in 0usize..32,
    ) {
        let tree = tree_of(size + 1);
        let root_of = |size| tree.root_at(size).map_err(|e| TestCaseError::fail(e.to_string()));
        let (root, root_larger, root_smaller) = (root_of(size)?, root_of(size + 1)?, root_of(size - 1)?);
        let mut range = CompactRange::new();
        for from in 1..=size {
            range.push(leaf_hash(&record(from - 1)));
            let old_root = tree.root_at(from).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(old_root, range.root());
            let proof = tree.consistency_proof(from, size).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(verify_consistency(from, size, &proof, &old_root, &root), Ok(()));
            if from < size {
                let next_root = root_of(from + 1)?;
                prop_assert!(verify_consistency(from + 1, size, &proof, &next_root, &root).is_err());
                prop_assert!(verify_consistency(from, size - 1, &proof, &old_root, &root_smaller).is_err());
                let mut changed = proof.clone();
                let at = pick.index(changed.len());
                changed[at][byte] ^= 0x80;
                prop_assert!(verify_consistency(from, size, &changed, &old_root, &root).is_err());
                let mut shorter = proof.clone();
                shorter.pop();
                prop_assert!(verify_consistency(from, size, &shorter, &old_root, &root).is_err());
            }
            if from > 1 {
                let previous_root = root_of(from - 1)?;
                prop_assert!(verify_consistency(from - 1, size, &proof, &previous_root, &root).is_err());
            }
            prop_assert!(verify_consistency(from, size + 1, &proof, &old_root, &root_larger).is_err());
            let mut other = old_root;
            other[byte] ^= 1;
            prop_assert!(verify_consistency(from, size, &proof, &other, &root).is_err());
            prop_assert!(verify_consistency(from, size, &proof, &old_root, &other).is_err());
        }
    }
}
