//! RFC 9162 (RFC 6962) hashing: leaf and interior node hashes, and the compact range that
//! folds a stream of leaves into a root with O(log n) state.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Bytes in a [`Hash`].
pub const HASH_BYTES: usize = 32;

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The leaf hash of `bytes`: SHA-256(0x00 ‖ bytes).
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(bytes);
    hasher.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The roots of the perfect subtrees that make up a tree of `size` leaves, left to right (the
/// tree's right frontier, or compact range [0, size)). Appending a leaf costs one leaf push
/// and one node hash per trailing one bit of the old size: O(log n), and one on average.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// One hash per one bit of `size`, the highest bit first.
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The compact range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves folded in so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, left to right (the largest subtree first).
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Rebuilds a compact range from its subtree roots (as [`CompactRange::hashes`] gave them).
    /// Returns `None` when the number of hashes is not the number of one bits of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends a leaf hash, calling `on_node(level, index, hash)` for every interior node
    /// the append completes (level 1 is the parents of leaves), lowest first: the tree keeps
    /// its tiles from these.
    pub fn push_with(&mut self, leaf: Hash, mut on_node: impl FnMut(u32, u64, &Hash)) {
        let mut hash = leaf;
        let mut index = self.size;
        let mut level = 0u32;
        // Each trailing one bit of the old size is a perfect subtree of the same height as
        // the one being carried: they merge, as in binary addition.
        while index & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                // The hashes hold one entry per one bit of size; an empty stack here would
                // be a bug in this type, and the leaf is kept rather than lost.
                debug_assert!(false, "compact range shorter than its size's bits");
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            on_node(level, index, &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The root of the tree of [`CompactRange::size`] leaves: the subtree roots folded from the
    /// right, or [`EMPTY_ROOT`] for the empty tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return EMPTY_ROOT;
        };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let digest: Hash = Sha256::digest(b"").into();
        assert_eq!(digest, EMPTY_ROOT);
    }

    #[test]
    fn compact_range_matches_the_recursive_definition() {
        fn mth(leaves: &[Hash]) -> Hash {
            match leaves.len() {
                0 => EMPTY_ROOT,
                1 => leaves[0],
                n => {
                    // The largest power of two below n.
                    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        let mut range = CompactRange::new();
        let mut leaves = Vec::new();
        for i in 0u32..70 {
            assert_eq!(range.root(), mth(&leaves), "size {i}");
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            range.push(leaf);
        }
    }
}
