//! C2SP tlog-tiles of hashes: tile coordinates and paths, and where tiles are kept (the
//! [`TileStore`] trait, in memory or in a directory).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::hash::{HASH_BYTES, Hash};

/// Tile height: a tile spans 8 levels of the tree (C2SP tlog-tiles fixes it).
pub const TILE_HEIGHT: u32 = 8;

/// Hashes in a full tile: 2^[`TILE_HEIGHT`].
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// The hashes of one tile, left to right: [`TILE_WIDTH`] of them in a full tile, fewer in a
/// partial one. Shared, because a tile once full never changes.
pub type Tile = Arc<[Hash]>;

/// One tile: level `level` holds the hashes of tree level `8 × level` (level 0 the leaf
/// hashes), and tile `index` of a level holds its hashes `256 × index ..` (`width` of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level (tree level / 8).
    pub level: u8,
    /// Tile index within its level.
    pub index: u64,
    /// Hashes in the tile, 1 to 256; 256 is a full tile.
    pub width: u16,
}

/// A path that is not a C2SP tlog-tiles hash tile path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0:?}")]
pub struct TilePathError(pub String);

impl TileId {
    /// Whether the tile holds all 256 hashes.
    pub fn is_full(&self) -> bool {
        usize::from(self.width) == TILE_WIDTH
    }

    /// The tile's path, `tile/<L>/<N>` or `tile/<L>/<N>.p/<W>` for a partial tile, with `<N>`
    /// in the spec's groups of three digits (`1234067` is `x001/x234/067`).
    pub fn path(&self) -> String {
        let mut path = format!("tile/{}/{}", self.level, encode_index(self.index));
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a hash tile path (as [`TileId::path`] writes it; data tiles, `tile/entries/…`,
    /// are not hash tiles and are refused). Non-canonical spellings are refused too, so that
    /// one tile has one path.
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let bad = || TilePathError(path.to_string());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let level: u8 = parse_decimal(level).ok_or_else(bad)?;
        if u32::from(level) * TILE_HEIGHT >= 64 {
            return Err(bad());
        }
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, width)) => {
                let width: u16 = parse_decimal(width).ok_or_else(bad)?;
                if width == 0 || usize::from(width) >= TILE_WIDTH {
                    return Err(bad());
                }
                (index_part, width)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (position, group) in groups.iter().enumerate() {
            let digits = if position + 1 < groups.len() {
                group.strip_prefix('x').ok_or_else(bad)?
            } else {
                group
            };
            if digits.len() != 3 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(bad());
            }
            let value: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|index| index.checked_add(value))
                .ok_or_else(bad)?;
        }
        let id = Self {
            level,
            index,
            width,
        };
        // Leading zero groups ("x000/005") would give a second path to one tile.
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }
}

fn parse_decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn encode_index(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The tiles that describe the tree of `size` leaves: every full tile and the partial tile at
/// the right end of each level, in order of level then index.
pub fn tiles_for_size(size: u64) -> Vec<TileId> {
    let mut tiles = Vec::new();
    for level in 0..(64 / TILE_HEIGHT) as u8 {
        let hashes = size >> (u32::from(level) * TILE_HEIGHT);
        if hashes == 0 {
            break;
        }
        let full = hashes / TILE_WIDTH as u64;
        for index in 0..full {
            tiles.push(TileId {
                level,
                index,
                width: TILE_WIDTH as u16,
            });
        }
        let partial = hashes % TILE_WIDTH as u64;
        if partial > 0 {
            tiles.push(TileId {
                level,
                index: full,
                width: partial as u16,
            });
        }
    }
    tiles
}

/// The bytes of a tile as C2SP tlog-tiles serves them: its hashes back to back.
pub fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Reads the bytes of a tile (as [`tile_bytes`] writes them) back into hashes. `None` when
/// the length is not 1 to 256 whole hashes.
pub fn tile_from_bytes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(HASH_BYTES)
        || bytes.len() > TILE_WIDTH * HASH_BYTES
    {
        return None;
    }
    let hashes = bytes
        .chunks_exact(HASH_BYTES)
        .map(|chunk| {
            let mut hash = [0u8; HASH_BYTES];
            hash.copy_from_slice(chunk);
            hash
        })
        .collect();
    Some(hashes)
}

/// A failure of the place tiles are kept.
#[derive(Debug, thiserror::Error)]
pub enum TileStoreError {
    /// Reading or writing failed.
    #[error("tile store: {context}")]
    Io {
        /// What was being done, and on which file.
        context: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A stored tile is not 1 to 256 whole hashes.
    #[error("tile store: {0} is not a whole number of hashes (1 to 256)")]
    Malformed(String),
}

/// Where the tree keeps its tiles. Tiles are derived data (the log rebuilds them), so a store
/// need not be durable; it must not return a tile other than the one written.
///
/// A store holds at most one version of a tile: the full one, or else the widest partial one
/// written. A tree of a smaller size reads the first hashes of a wider tile, which are the
/// same (the tree only ever appends).
pub trait TileStore: Send + Sync {
    /// The widest stored version of the tile at `level`, `index` (full or partial), or `None`
    /// when no version is stored.
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError>;

    /// Stores a version of the tile at `level`, `index`: `hashes` has 1 to 256 hashes (256 is
    /// the full tile). A store may drop narrower versions it holds.
    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError>;

    /// The upper nodes of the full tile at `level`, `index` ([`UpperNodes`]), if the store
    /// keeps them; `None` (the default): proofs compute them from the tile's hashes.
    fn read_upper_nodes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<UpperNodes>, TileStoreError> {
        let _ = (level, index);
        Ok(None)
    }

    /// Keeps the upper nodes of a full tile, which the tree computed as it appended; the
    /// default keeps nothing.
    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        let _ = (level, index, nodes);
        Ok(())
    }
}

/// Nodes a full tile implies at its levels 4 to 7 (its 16 subtrees of 16 hashes, then 8, 4
/// and 2), in that order: what an inclusion proof needs inside a tile besides at most 7
/// hashes it recomputes from the tile's row. Kept beside the tiles, so that a proof from a
/// tree reopened from its tiles need not hash a tile's 256 hashes again (not part of C2SP:
/// tooling fetches tiles only).
pub type UpperNodes = [Hash; UPPER_NODES];

/// Hashes in [`UpperNodes`]: 16 + 8 + 4 + 2.
pub const UPPER_NODES: usize = 30;

impl<S: TileStore + ?Sized> TileStore for Arc<S> {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError> {
        (**self).read_tile(level, index)
    }

    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError> {
        (**self).write_tile(level, index, hashes)
    }

    fn read_upper_nodes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<UpperNodes>, TileStoreError> {
        (**self).read_upper_nodes(level, index)
    }

    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        (**self).write_upper_nodes(level, index, nodes)
    }
}

impl<S: TileStore + ?Sized> TileStore for &S {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError> {
        (**self).read_tile(level, index)
    }

    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError> {
        (**self).write_tile(level, index, hashes)
    }

    fn read_upper_nodes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<UpperNodes>, TileStoreError> {
        (**self).read_upper_nodes(level, index)
    }

    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        (**self).write_upper_nodes(level, index, nodes)
    }
}

/// Tiles in memory: for tests, benchmarks and trees rebuilt at every start.
#[derive(Debug, Default)]
pub struct MemoryTileStore {
    tiles: RwLock<HashMap<(u8, u64), Tile>>,
    upper: RwLock<HashMap<(u8, u64), Box<UpperNodes>>>,
}

impl MemoryTileStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of tiles held (each at its widest version).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no tile is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces or removes a tile, so that tests can damage a store.
    pub fn set_tile(&self, level: u8, index: u64, hashes: Option<Vec<Hash>>) {
        let mut tiles = self.write();
        match hashes {
            Some(hashes) => tiles.insert((level, index), hashes.into()),
            None => tiles.remove(&(level, index)),
        };
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(u8, u64), Tile>> {
        // Tiles are replaced whole, so a poisoned lock still guards a consistent map.
        self.tiles
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(u8, u64), Tile>> {
        self.tiles
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TileStore for MemoryTileStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError> {
        Ok(self.read().get(&(level, index)).cloned())
    }

    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError> {
        check_width(hashes.len(), || format!("tile {level}/{index}"))?;
        let mut tiles = self.write();
        let keep = tiles
            .get(&(level, index))
            .is_some_and(|stored| stored.len() > hashes.len());
        if !keep {
            tiles.insert((level, index), hashes.into());
        }
        Ok(())
    }

    fn read_upper_nodes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<UpperNodes>, TileStoreError> {
        let upper = self
            .upper
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(upper.get(&(level, index)).map(|nodes| **nodes))
    }

    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        self.upper
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((level, index), Box::new(*nodes));
        Ok(())
    }
}

fn check_width(width: usize, what: impl FnOnce() -> String) -> Result<(), TileStoreError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TileStoreError::Malformed(what()));
    }
    Ok(())
}

/// Tiles as files under a directory, at their C2SP paths (`<dir>/tile/0/x001/234`,
/// `<dir>/tile/0/x001/235.p/17`), so that the directory can be served as it is. Each file is
/// replaced through [`atomic_file::replace`], so that a reader (or a crash) sees a whole tile
/// or none.
///
/// A store made by [`DirTileStore::deferred`] does not sync each tile as it writes it (a
/// full tile is completed every 256 records, far too often for two fsyncs each beside a
/// log that fsyncs its own appends): it remembers the files written, and
/// [`DirTileStore::sync`] makes them durable, at a clean stop. Tiles written since the last
/// sync may be lost or empty after a crash: they are derived from the log, and a tree whose
/// store was not synced at its last stop is rebuilt from it.
#[derive(Debug)]
pub struct DirTileStore {
    root: PathBuf,
    /// Files written and not synced yet; `None`: every write is synced at once.
    unsynced: Option<Mutex<BTreeSet<PathBuf>>>,
}

impl DirTileStore {
    /// A store under `root` (created when tiles are first written), each tile synced as it
    /// is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            unsynced: None,
        }
    }

    /// A store under `root` whose writes are synced only by [`DirTileStore::sync`].
    pub fn deferred(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            unsynced: Some(Mutex::new(BTreeSet::new())),
        }
    }

    /// Tile files written and not yet synced (always 0 for a store made by `new`).
    pub fn unsynced_files(&self) -> usize {
        self.unsynced.as_ref().map_or(0, |unsynced| {
            unsynced
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .len()
        })
    }

    /// Makes every tile written since the last sync durable (each file, then each
    /// directory once). Files since replaced by a wider version are skipped.
    pub fn sync(&self) -> Result<(), TileStoreError> {
        let Some(unsynced) = &self.unsynced else {
            return Ok(());
        };
        let paths = std::mem::take(
            &mut *unsynced
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let io_error = |path: &Path| {
            let context = format!("syncing {}", path.display());
            move |source| TileStoreError::Io { context, source }
        };
        let mut directories = BTreeSet::new();
        for path in &paths {
            match fs::File::open(path) {
                Ok(file) => file.sync_all().map_err(io_error(path))?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(path)(error)),
            }
            // The directories up to the root: a new tile may have made its directory.
            let mut dir = path.parent();
            while let Some(at) = dir.filter(|at| at.starts_with(&self.root)) {
                directories.insert(at.to_path_buf());
                dir = at.parent();
            }
        }
        for dir in &directories {
            match fs::File::open(dir) {
                Ok(file) => file.sync_all().map_err(io_error(dir))?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(dir)(error)),
            }
        }
        Ok(())
    }

    /// The directory the `tile/` tree is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, id: TileId) -> PathBuf {
        self.root.join(id.path())
    }

    /// `<dir>/nodes/<L>/<N>`: a full tile's upper nodes, beside (not inside) the `tile/`
    /// tree that is served as C2SP tiles.
    fn upper_file(&self, level: u8, index: u64) -> PathBuf {
        let path = TileId {
            level,
            index,
            width: TILE_WIDTH as u16,
        }
        .path();
        let relative = path.strip_prefix("tile/").unwrap_or(&path);
        self.root.join("nodes").join(relative)
    }

    fn partial_dir(&self, level: u8, index: u64) -> PathBuf {
        let full = self.file(TileId {
            level,
            index,
            width: TILE_WIDTH as u16,
        });
        let mut name = full.into_os_string();
        name.push(".p");
        PathBuf::from(name)
    }

    fn read_file(&self, path: &Path, width: usize) -> Result<Option<Tile>, TileStoreError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TileStoreError::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        match tile_from_bytes(&bytes) {
            Some(hashes) if hashes.len() == width => Ok(Some(hashes.into())),
            _ => Err(TileStoreError::Malformed(path.display().to_string())),
        }
    }

    fn widest_partial(&self, level: u8, index: u64) -> Result<Option<u16>, TileStoreError> {
        let dir = self.partial_dir(level, index);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TileStoreError::Io {
                    context: format!("listing {}", dir.display()),
                    source,
                });
            }
        };
        let mut widest = None;
        for entry in entries {
            let entry = entry.map_err(|source| TileStoreError::Io {
                context: format!("listing {}", dir.display()),
                source,
            })?;
            // Temporary files and strays have names that are not widths; they are skipped.
            let width = entry
                .file_name()
                .to_str()
                .and_then(parse_decimal::<u16>)
                .filter(|width| *width > 0 && usize::from(*width) < TILE_WIDTH);
            if width > widest {
                widest = width;
            }
        }
        Ok(widest)
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), TileStoreError> {
        let io_error = |context: String| move |source| TileStoreError::Io { context, source };
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
        let Some(unsynced) = &self.unsynced else {
            return atomic_file::replace(path, bytes, atomic_file::Access::Public)
                .map_err(io_error(format!("writing {}", path.display())));
        };
        atomic_file::replace_unsynced(path, bytes, atomic_file::Access::Public)
            .map_err(io_error(format!("writing {}", path.display())))?;
        unsynced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(path.to_path_buf());
        Ok(())
    }
}

impl TileStore for DirTileStore {
    fn read_upper_nodes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<UpperNodes>, TileStoreError> {
        let path = self.upper_file(level, index);
        match self.read_file(&path, UPPER_NODES)? {
            Some(hashes) => {
                let mut nodes = [[0u8; HASH_BYTES]; UPPER_NODES];
                nodes.copy_from_slice(&hashes);
                Ok(Some(nodes))
            }
            None => Ok(None),
        }
    }

    fn write_upper_nodes(
        &self,
        level: u8,
        index: u64,
        nodes: &UpperNodes,
    ) -> Result<(), TileStoreError> {
        self.write_file(&self.upper_file(level, index), &tile_bytes(nodes))
    }

    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Tile>, TileStoreError> {
        let full = TileId {
            level,
            index,
            width: TILE_WIDTH as u16,
        };
        if let Some(tile) = self.read_file(&self.file(full), TILE_WIDTH)? {
            return Ok(Some(tile));
        }
        match self.widest_partial(level, index)? {
            Some(width) => {
                let id = TileId {
                    level,
                    index,
                    width,
                };
                self.read_file(&self.file(id), usize::from(width))
            }
            None => Ok(None),
        }
    }

    fn write_tile(&self, level: u8, index: u64, hashes: &[Hash]) -> Result<(), TileStoreError> {
        check_width(hashes.len(), || format!("tile {level}/{index}"))?;
        let id = TileId {
            level,
            index,
            width: hashes.len() as u16,
        };
        self.write_file(&self.file(id), &tile_bytes(hashes))?;
        // Narrower versions are prefixes of this one: drop them so that the directory holds
        // one version per tile. Failing to is harmless (the widest version is read).
        if id.is_full() {
            let _ = fs::remove_dir_all(self.partial_dir(level, index));
        } else if let Ok(entries) = fs::read_dir(self.partial_dir(level, index)) {
            for entry in entries.flatten() {
                let narrower = entry
                    .file_name()
                    .to_str()
                    .and_then(parse_decimal::<u16>)
                    .is_some_and(|width| width < id.width);
                if narrower {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        let id = |level, index, width| TileId {
            level,
            index,
            width,
        };
        assert_eq!(id(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(id(1, 5, 256).path(), "tile/1/005");
        assert_eq!(id(0, 1234067, 8).path(), "tile/0/x001/x234/067.p/8");
        assert_eq!(id(2, 1000, 1).path(), "tile/2/x001/000.p/1");
        for path in [
            "tile/0/x001/x234/067",
            "tile/1/005",
            "tile/0/x001/x234/067.p/8",
            "tile/3/000.p/255",
        ] {
            assert_eq!(TileId::parse(path).map(|id| id.path()).as_deref(), Ok(path));
        }
        for path in [
            "tile/0/5",
            "tile/0/x000/005",
            "tile/00/005",
            "tile/0/005.p/0",
            "tile/0/005.p/256",
            "tile/0/005.p/08",
            "tile/entries/005",
            "tile/8/000",
            "tile/0/001/002",
            "tile/0/x001/x234/067/",
        ] {
            assert!(TileId::parse(path).is_err(), "{path}");
        }
    }

    #[test]
    fn tiles_for_size_lists_full_then_partial_per_level() {
        // 65539 leaf hashes: 256 full tiles and one of 3 at level 0, one full tile of 256
        // level-8 hashes at level 1, and at level 2 a partial tile of one level-16 hash.
        let tiles = tiles_for_size(256 * 256 + 3);
        assert_eq!(tiles.len(), 256 + 1 + 1 + 1);
        assert_eq!(tiles[256].width, 3);
        assert_eq!(tiles[257].level, 1);
        assert!(tiles[257].is_full());
        assert_eq!((tiles[258].level, tiles[258].width), (2, 1));
        assert!(tiles_for_size(0).is_empty());
    }
}
