//! The incremental Merkle tree: appends in O(log n), keeps its hashes as tiles in a
//! [`TileStore`], answers roots and proofs for its current size and every earlier one, and is
//! rebuilt from (or checked against) the leaves.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::hash::{CompactRange, EMPTY_ROOT, Hash, leaf_hash, node_hash};
use crate::tile::{
    TILE_HEIGHT, TILE_WIDTH, Tile, TileId, TileStore, TileStoreError, UPPER_NODES, UpperNodes,
    tile_bytes,
};

/// Tile levels a tree of up to 2^64 leaves has.
const TILE_LEVELS: usize = (64 / TILE_HEIGHT) as usize;

/// Full tiles the tree keeps unwritten before [`Tree::rebuild`] and [`verify_tiles`] write
/// them out (each is 8 KiB).
const UNWRITTEN_TILES_MAX: usize = 64;

/// The lowest level inside a tile whose nodes the proof cache keeps (levels 4 to 7: 16, 8, 4
/// and 2 nodes). Nodes below it cost at most 7 hashes to recompute from the tile's row.
const CACHED_SUBLEVEL_MIN: u32 = 4;

/// Nodes cached per full tile: 16 + 8 + 4 + 2.
const CACHED_NODES: usize = UPPER_NODES;

/// Where each of levels 4 to 7 of a tile starts in its [`UpperNodes`].
const UPPER_BASE: [usize; 4] = [0, 16, 24, 28];

/// Why the tree could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// The tile store failed.
    #[error(transparent)]
    Store(#[from] TileStoreError),
    /// A tile the tree needs is not in the store: rebuild the tree from the log.
    #[error("tile {level}/{index} is missing from the tile store")]
    TileMissing {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
    },
    /// A stored tile has fewer hashes than the tree needs: rebuild the tree from the log.
    #[error("tile {level}/{index} holds {width} hashes, {needed} are needed")]
    TileShort {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// Hashes stored.
        width: usize,
        /// Hashes needed.
        needed: usize,
    },
    /// The tree opened from the store does not have the root expected of it (a damaged
    /// tile): rebuild the tree from the log.
    #[error("the stored tiles give tree size {size} a root other than the expected one")]
    RootMismatch {
        /// The tree size opened.
        size: u64,
    },
    /// A proof or root asked for a size the tree has not reached.
    #[error("tree size {asked} is beyond the tree's {size} leaves")]
    BeyondTree {
        /// The size asked for.
        asked: u64,
        /// The tree's size.
        size: u64,
    },
    /// An inclusion proof for a leaf at or past the tree size asked for.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    LeafOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
    },
    /// A consistency proof from size 0 or to a smaller size asked for.
    #[error("no consistency proof from size {from} to size {to}")]
    BadConsistencyRange {
        /// The older size.
        from: u64,
        /// The newer size.
        to: u64,
    },
}

/// Nodes at levels 4 to 7 of full tiles, so that a proof recomputes at most 7 hashes per
/// tile level instead of up to 255. Bounded: when full, it is emptied and refilled.
#[derive(Debug)]
struct ProofCache {
    nodes: HashMap<(u8, u64), Box<[Hash; CACHED_NODES]>>,
    tiles_max: usize,
}

/// Settings of a [`Tree`].
#[derive(Clone, Copy, Debug)]
pub struct TreeConfig {
    /// Full tiles whose upper nodes (levels 4–7 of the tile, 960 bytes a tile) the proof
    /// cache keeps. A tree of 10,000,000 leaves has 39,063 full tiles at level 0.
    pub proof_cache_tiles_max: usize,
}

impl Default for TreeConfig {
    fn default() -> Self {
        Self {
            proof_cache_tiles_max: 1 << 16,
        }
    }
}

/// An RFC 9162 Merkle tree over a log, kept as C2SP tlog-tiles in a [`TileStore`].
///
/// Appending only touches memory: the compact range (the roots of the perfect subtrees,
/// for the root in O(log n)) and the rightmost tile of each level. Full tiles wait in
/// memory until [`Tree::flush`] writes them with the rightmost partial tiles; call it at
/// least as often as checkpoints are published. Proofs read tiles from memory and the store.
#[derive(Debug)]
pub struct Tree<S> {
    store: S,
    size: u64,
    range: CompactRange,
    /// The hashes of the rightmost, incomplete tile of each level (`(size >> 8L) % 256`).
    rows: Vec<Vec<Hash>>,
    /// Full tiles completed by appends and not yet written to the store.
    unwritten: BTreeMap<(u8, u64), Tile>,
    /// The upper nodes of the rightmost tile of each level, filled as appends complete them.
    upper: Vec<UpperNodes>,
    /// The upper nodes of full tiles completed and not yet written to the store.
    unwritten_upper: BTreeMap<(u8, u64), Box<UpperNodes>>,
    /// The size at which the partial tiles were last written.
    flushed_size: u64,
    cache: Mutex<ProofCache>,
}

impl<S: TileStore> Tree<S> {
    /// An empty tree whose tiles go to `store` (which should hold no tiles of another log).
    pub fn new(store: S) -> Self {
        Self::with_config(store, TreeConfig::default())
    }

    /// An empty tree with settings.
    pub fn with_config(store: S, config: TreeConfig) -> Self {
        Self {
            store,
            size: 0,
            range: CompactRange::new(),
            rows: vec![Vec::new(); TILE_LEVELS],
            unwritten: BTreeMap::new(),
            upper: vec![[[0u8; 32]; UPPER_NODES]; TILE_LEVELS],
            unwritten_upper: BTreeMap::new(),
            flushed_size: 0,
            cache: Mutex::new(ProofCache {
                nodes: HashMap::new(),
                tiles_max: config.proof_cache_tiles_max,
            }),
        }
    }

    /// Opens the tree of `size` leaves from the tiles in `store` (as [`Tree::flush`] left
    /// them for that size or a later one). Reads the rightmost tile of each level and the
    /// O(log n) nodes of the compact range; nothing else is checked, so compare
    /// [`Tree::root`] with the last signed checkpoint, or use [`Tree::open_verified`]. On
    /// [`TlogError::TileMissing`], [`TlogError::TileShort`] or a malformed tile, rebuild with
    /// [`Tree::rebuild`].
    pub fn open(store: S, size: u64) -> Result<Self, TlogError> {
        Self::open_with_config(store, size, TreeConfig::default())
    }

    /// [`Tree::open`] with settings.
    pub fn open_with_config(store: S, size: u64, config: TreeConfig) -> Result<Self, TlogError> {
        let mut tree = Self::with_config(store, config);
        tree.size = size;
        tree.flushed_size = size;
        for level in 0..TILE_LEVELS {
            let hashes = size >> (level as u32 * TILE_HEIGHT);
            let width = (hashes % TILE_WIDTH as u64) as usize;
            if width == 0 {
                continue;
            }
            let index = hashes / TILE_WIDTH as u64;
            let level = level as u8;
            let tile = tree
                .store
                .read_tile(level, index)?
                .ok_or(TlogError::TileMissing { level, index })?;
            if tile.len() < width {
                return Err(TlogError::TileShort {
                    level,
                    index,
                    width: tile.len(),
                    needed: width,
                });
            }
            tree.rows[usize::from(level)] = tile[..width].to_vec();
        }
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for height in (0..64u32).rev() {
            if size >> height & 1 == 1 {
                hashes.push(tree.node(height, start >> height)?);
                start += 1 << height;
            }
        }
        // One hash per one bit of size, by construction of the loop above.
        tree.range = CompactRange::from_parts(size, hashes).unwrap_or_default();
        debug_assert_eq!(tree.range.size(), size);
        Ok(tree)
    }

    /// [`Tree::open`], then checks that the tree has the root `root` (the last signed
    /// checkpoint's), so that a damaged tile on the right frontier is found at start.
    pub fn open_verified(store: S, size: u64, root: &Hash) -> Result<Self, TlogError> {
        let tree = Self::open(store, size)?;
        if &tree.root() != root {
            return Err(TlogError::RootMismatch { size });
        }
        Ok(tree)
    }

    /// Builds the tree of `leaves` (each record's canonical bytes, in log order) from
    /// nothing, writing every tile to `store` (overwriting what it holds).
    pub fn rebuild<B: AsRef<[u8]>>(
        store: S,
        leaves: impl IntoIterator<Item = B>,
    ) -> Result<Self, TlogError> {
        let mut tree = Self::new(store);
        for leaf in leaves {
            tree.append(leaf.as_ref());
            if tree.unwritten.len() >= UNWRITTEN_TILES_MAX {
                tree.write_full_tiles()?;
            }
        }
        tree.flush()?;
        Ok(tree)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree at its current size (O(log n) hashes).
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// The store the tiles are written to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Appends a record: `bytes` are its canonical bytes, hashed as an RFC 9162 leaf.
    /// Returns the leaf index (the record's log position when every record is appended).
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(bytes))
    }

    /// Appends a leaf by its leaf hash (SHA-256(0x00 ‖ bytes)), for a caller that hashed it
    /// already. Returns the leaf index.
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size;
        let Self {
            range,
            rows,
            unwritten,
            upper,
            unwritten_upper,
            ..
        } = self;
        push_row(rows, unwritten, 0, index, leaf);
        range.push_with(leaf, |level, node_index, hash| {
            let sublevel = level % TILE_HEIGHT;
            let tile_level = (level / TILE_HEIGHT) as usize;
            if sublevel == 0 {
                push_row(rows, unwritten, tile_level as u8, node_index, *hash);
            } else if sublevel >= CACHED_SUBLEVEL_MIN && tile_level < TILE_LEVELS {
                // The upper nodes of a tile come free as the appends complete them; the last
                // is the second node of its level 7, after which the tile's are all known.
                let per_tile = 1u64 << (TILE_HEIGHT - sublevel);
                let offset = (node_index % per_tile) as usize;
                let nodes = &mut upper[tile_level];
                nodes[UPPER_BASE[(sublevel - CACHED_SUBLEVEL_MIN) as usize] + offset] = *hash;
                if sublevel == TILE_HEIGHT - 1 && offset == 1 {
                    unwritten_upper
                        .insert((tile_level as u8, node_index / per_tile), Box::new(*nodes));
                }
            }
        });
        self.size += 1;
        index
    }

    /// Full tiles completed and not yet written to the store.
    pub fn unwritten_tiles(&self) -> usize {
        self.unwritten.len()
    }

    /// Writes the full tiles completed since the last flush and the rightmost partial tile
    /// of each level, so that [`Tree::open`] at this size finds them. A failed write leaves
    /// the unwritten tiles in memory for the next flush.
    pub fn flush(&mut self) -> Result<(), TlogError> {
        self.write_full_tiles()?;
        if self.flushed_size != self.size {
            for (level, row) in self.rows.iter().enumerate() {
                if row.is_empty() {
                    continue;
                }
                let index = (self.size >> (level as u32 * TILE_HEIGHT)) / TILE_WIDTH as u64;
                self.store.write_tile(level as u8, index, row)?;
            }
            self.flushed_size = self.size;
        }
        Ok(())
    }

    fn write_full_tiles(&mut self) -> Result<(), TlogError> {
        while let Some((&(level, index), tile)) = self.unwritten.first_key_value() {
            self.store.write_tile(level, index, tile)?;
            self.unwritten.remove(&(level, index));
        }
        while let Some((&(level, index), nodes)) = self.unwritten_upper.first_key_value() {
            self.store.write_upper_nodes(level, index, nodes)?;
            self.unwritten_upper.remove(&(level, index));
        }
        Ok(())
    }

    /// The root of the tree at an earlier (or the current) size.
    pub fn root_at(&self, size: u64) -> Result<Hash, TlogError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(EMPTY_ROOT);
        }
        if size == self.size {
            return Ok(self.root());
        }
        self.range_hash(0, size)
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, TlogError> {
        if index >= self.size {
            return Err(TlogError::LeafOutOfRange {
                index,
                size: self.size,
            });
        }
        self.node(0, index)
    }

    /// The RFC 9162 inclusion proof (audit path, leaf to root) of leaf `index` in the tree
    /// of `size` leaves (the current size or an earlier one).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TlogError::LeafOutOfRange { index, size });
        }
        // PATH(m, D[lo:hi]) of RFC 9162 §2.1.3.1, unrolled from the root down; the siblings
        // are collected top-down and reversed into the RFC's leaf-to-root order.
        let mut proof = Vec::with_capacity(64);
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > 1 {
            let k = largest_power_of_two_below(hi - lo);
            if index < lo + k {
                proof.push(self.range_hash(lo + k, hi)?);
                hi = lo + k;
            } else {
                proof.push(self.range_hash(lo, lo + k)?);
                lo += k;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The RFC 9162 consistency proof from the tree of `from` leaves to the tree of `to`
    /// leaves, `0 < from <= to <= size` (empty when `from == to`).
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(to)?;
        if from == 0 || from > to {
            return Err(TlogError::BadConsistencyRange { from, to });
        }
        // SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1, unrolled like the inclusion path.
        let mut proof = Vec::with_capacity(64);
        let (mut lo, mut hi, mut m) = (0u64, to, from);
        let mut whole_old_tree = true;
        loop {
            if m == hi - lo {
                if !whole_old_tree {
                    proof.push(self.range_hash(lo, hi)?);
                }
                break;
            }
            let k = largest_power_of_two_below(hi - lo);
            if m <= k {
                proof.push(self.range_hash(lo + k, hi)?);
                hi = lo + k;
            } else {
                proof.push(self.range_hash(lo, lo + k)?);
                lo += k;
                m -= k;
                whole_old_tree = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The bytes of tile `id` as the tree of the current size has it (C2SP tlog-tiles, for
    /// serving `tile/…` paths), or `None` when the tree has fewer than `id.width` hashes at
    /// that place yet. Unflushed tiles are served from memory.
    pub fn tile(&self, id: TileId) -> Result<Option<Vec<u8>>, TlogError> {
        let width = usize::from(id.width);
        if usize::from(id.level) >= TILE_LEVELS || width == 0 || width > TILE_WIDTH {
            return Ok(None);
        }
        let hashes = self.size >> (u32::from(id.level) * TILE_HEIGHT);
        let available = hashes.saturating_sub(id.index.saturating_mul(TILE_WIDTH as u64));
        if available < width as u64 {
            return Ok(None);
        }
        self.with_row(id.level, id.index, width, |row| tile_bytes(&row[..width]))
            .map(Some)
    }

    fn check_size(&self, size: u64) -> Result<(), TlogError> {
        if size > self.size {
            return Err(TlogError::BeyondTree {
                asked: size,
                size: self.size,
            });
        }
        Ok(())
    }

    /// MTH(D[lo:hi]) for a range that RFC 9162's recursion produces: `lo` a multiple of the
    /// largest power of two below `hi - lo`, every leaf already in the tree.
    fn range_hash(&self, lo: u64, hi: u64) -> Result<Hash, TlogError> {
        let width = hi - lo;
        if width.is_power_of_two() {
            let height = width.trailing_zeros();
            return self.node(height, lo >> height);
        }
        let k = largest_power_of_two_below(width);
        let height = k.trailing_zeros();
        let left = self.node(height, lo >> height)?;
        let right = self.range_hash(lo + k, hi)?;
        Ok(node_hash(&left, &right))
    }

    /// The hash of the perfect subtree of height `height` (leaves `index × 2^height ..`),
    /// which must be complete in the tree.
    fn node(&self, height: u32, index: u64) -> Result<Hash, TlogError> {
        // The right frontier of the current size is the compact range: proofs at the current
        // size meet it on every right border, where the tiles are partial and uncached (up to
        // 127 hashes a node).
        if height < 64 && (self.size >> height) & 1 == 1 && index == (self.size >> height) - 1 {
            let position = if height == 63 {
                0
            } else {
                (self.size >> (height + 1)).count_ones() as usize
            };
            if let Some(hash) = self.range.hashes().get(position) {
                return Ok(*hash);
            }
        }
        let level = (height / TILE_HEIGHT) as u8;
        let sublevel = height % TILE_HEIGHT;
        let first = index << sublevel;
        let tile = first / TILE_WIDTH as u64;
        let offset = (first % TILE_WIDTH as u64) as usize;
        let count = 1usize << sublevel;
        let tile_full =
            ((self.size >> (u32::from(level) * TILE_HEIGHT)) / TILE_WIDTH as u64) > tile;
        if sublevel >= CACHED_SUBLEVEL_MIN && tile_full {
            return self.cached_node(level, tile, sublevel, offset >> sublevel);
        }
        self.with_row(level, tile, offset + count, |row| {
            perfect_hash(&row[offset..offset + count])
        })
    }

    fn cached_node(
        &self,
        level: u8,
        tile: u64,
        sublevel: u32,
        position: usize,
    ) -> Result<Hash, TlogError> {
        // Offsets of levels 4, 5, 6, 7 in the cached array.
        let base = match sublevel {
            4 => 0,
            5 => 16,
            6 => 24,
            _ => 28,
        };
        {
            let cache = self.lock_cache();
            if let Some(nodes) = cache.nodes.get(&(level, tile)) {
                return Ok(nodes[base + position]);
            }
        }
        // Kept by the store (or not yet written to it) since the appends computed them; a
        // store that has none, or cannot read them, leaves them to be computed again.
        let kept = match self.unwritten_upper.get(&(level, tile)) {
            Some(nodes) => Some(Box::new(**nodes)),
            None => self
                .store
                .read_upper_nodes(level, tile)
                .ok()
                .flatten()
                .map(Box::new),
        };
        let nodes = match kept {
            Some(nodes) => nodes,
            None => self.with_row(level, tile, TILE_WIDTH, |row| {
                let mut nodes = Box::new([[0u8; 32]; CACHED_NODES]);
                for (slot, chunk) in nodes[..16].iter_mut().zip(row.chunks_exact(16)) {
                    *slot = perfect_hash(chunk);
                }
                let (mut from, mut to) = (0usize, 16usize);
                for width in [8usize, 4, 2] {
                    for i in 0..width {
                        nodes[to + i] = node_hash(&nodes[from + 2 * i], &nodes[from + 2 * i + 1]);
                    }
                    from = to;
                    to += width;
                }
                nodes
            })?,
        };
        let hash = nodes[base + position];
        let mut cache = self.lock_cache();
        if cache.nodes.len() >= cache.tiles_max {
            cache.nodes.clear();
        }
        if cache.tiles_max > 0 {
            cache.nodes.insert((level, tile), nodes);
        }
        Ok(hash)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ProofCache> {
        // Entries are inserted whole, so a poisoned lock still guards a consistent cache.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `f` with at least `needed` hashes of tile `level`/`tile`: the in-memory row of
    /// the rightmost tile, a full tile not yet written, or the store's.
    fn with_row<R>(
        &self,
        level: u8,
        tile: u64,
        needed: usize,
        f: impl FnOnce(&[Hash]) -> R,
    ) -> Result<R, TlogError> {
        let short = |row: &[Hash]| TlogError::TileShort {
            level,
            index: tile,
            width: row.len(),
            needed,
        };
        let rightmost = (self.size >> (u32::from(level) * TILE_HEIGHT)) / TILE_WIDTH as u64;
        if tile == rightmost {
            let row = &self.rows[usize::from(level)];
            if row.len() < needed {
                return Err(short(row));
            }
            return Ok(f(row));
        }
        if let Some(row) = self.unwritten.get(&(level, tile)) {
            return Ok(f(row));
        }
        let row = self
            .store
            .read_tile(level, tile)?
            .ok_or(TlogError::TileMissing { level, index: tile })?;
        if row.len() < needed {
            return Err(short(&row));
        }
        Ok(f(&row))
    }
}

fn push_row(
    rows: &mut [Vec<Hash>],
    unwritten: &mut BTreeMap<(u8, u64), Tile>,
    level: u8,
    index: u64,
    hash: Hash,
) {
    let row = &mut rows[usize::from(level)];
    debug_assert_eq!(row.len() as u64, index % TILE_WIDTH as u64);
    row.push(hash);
    if row.len() == TILE_WIDTH {
        let tile: Tile = std::mem::take(row).into();
        unwritten.insert((level, index / TILE_WIDTH as u64), tile);
    }
}

/// The root of a perfect subtree from its bottom row (a power-of-two number of hashes).
fn perfect_hash(row: &[Hash]) -> Hash {
    match row {
        [] => EMPTY_ROOT,
        [one] => *one,
        _ => {
            let half = row.len() / 2;
            node_hash(&perfect_hash(&row[..half]), &perfect_hash(&row[half..]))
        }
    }
}

/// The largest power of two strictly below `n` (`n >= 2`): RFC 9162's split point `k`.
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The outcome of [`verify_tiles`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileCheck {
    /// Leaves read.
    pub size: u64,
    /// The root the leaves give.
    pub root: Hash,
    /// Tiles compared.
    pub tiles_checked: u64,
    /// The first tile (in the order they complete) that is missing, malformed or different
    /// from what the leaves give; `None` when every tile matches.
    pub first_bad: Option<BadTile>,
}

/// A stored tile that does not match the leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTile {
    /// The tile, at the width the leaves give it.
    pub id: TileId,
    /// What is wrong with it.
    pub problem: TileProblem,
}

/// What is wrong with a stored tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileProblem {
    /// Not stored, or stored with fewer hashes than the leaves give.
    Missing,
    /// Not a whole number of hashes.
    Malformed,
    /// Hashes other than those the leaves give.
    Different,
    /// The upper nodes kept beside the full tile (`nodes/…`) are malformed or other than
    /// the leaves give (missing ones are computed from the tile, so they are no problem).
    UpperNodes,
}

/// Checks the tiles in `store` against `leaves` (the log's records in order, canonical
/// bytes): every full tile and the rightmost partial tiles of the tree the leaves make must
/// be stored with the same hashes (a wider stored partial tile is compared on its prefix).
/// Reports the first bad tile; repair with [`Tree::rebuild`].
pub fn verify_tiles<S: TileStore, B: AsRef<[u8]>>(
    store: &S,
    leaves: impl IntoIterator<Item = B>,
) -> Result<TileCheck, TlogError> {
    let compare = CompareStore {
        inner: store,
        checked: Mutex::new((0, None)),
    };
    let mut tree = Tree::with_config(
        compare,
        TreeConfig {
            proof_cache_tiles_max: 0,
        },
    );
    for leaf in leaves {
        tree.append(leaf.as_ref());
        if tree.unwritten.len() >= UNWRITTEN_TILES_MAX {
            tree.write_full_tiles()?;
        }
    }
    tree.flush()?;
    let size = tree.size();
    let root = tree.root();
    let checked = tree
        .store
        .checked
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(TileCheck {
        size,
        root,
        tiles_checked: checked.0,
        first_bad: checked.1,
    })
}

/// A store that compares what the tree would write with what `inner` holds.
struct CompareStore<'a, S> {
    inner: &'a S,
    checked: Mutex<(u64, Option<BadTile>)>,
}

impl<S: TileStore> TileStore for CompareStore<'_, S> {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError> {
        self.inner.read_tile(level, index)
    }

    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError> {
        let id = TileId {
            level,
            index,
            width: hashes.len() as u16,
        };
        let problem = match self.inner.read_tile(level, index) {
            Err(TileStoreError::Malformed(_)) => Some(TileProblem::Malformed),
            Err(error) => return Err(error),
            Ok(None) => Some(TileProblem::Missing),
            Ok(Some(stored)) if stored.len() < hashes.len() => Some(TileProblem::Missing),
            Ok(Some(stored)) if &stored[..hashes.len()] != hashes => Some(TileProblem::Different),
            Ok(Some(_)) => None,
        };
        self.note(id, problem, true);
        Ok(())
    }

    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        let problem = match self.inner.read_upper_nodes(level, index) {
            Err(TileStoreError::Malformed(_)) => Some(TileProblem::UpperNodes),
            Err(error) => return Err(error),
            Ok(Some(stored)) if &stored != nodes => Some(TileProblem::UpperNodes),
            Ok(_) => None,
        };
        let id = TileId {
            level,
            index,
            width: TILE_WIDTH as u16,
        };
        // Counted with their tile: `tiles_checked` counts tiles.
        self.note(id, problem, false);
        Ok(())
    }
}

impl<S> CompareStore<'_, S> {
    /// Keeps the first problem found, and counts the tile compared when `tile`.
    fn note(&self, id: TileId, problem: Option<TileProblem>, tile: bool) {
        let mut checked = self
            .checked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        checked.0 += u64::from(tile);
        if checked.1.is_none() {
            checked.1 = problem.map(|problem| BadTile { id, problem });
        }
    }
}
