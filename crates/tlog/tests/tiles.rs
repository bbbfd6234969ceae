//! The tree's tiles: written at their C2SP paths, reopened without the leaves, rebuilt
//! from the leaves when missing or damaged, and checked against the leaves.

use tlog::{
    DirTileStore, MemoryTileStore, TileId, TileProblem, TileStore, TlogError, Tree, leaf_hash,
    tiles_for_size, verify_inclusion, verify_tiles,
};

fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

fn records(size: u64) -> impl Iterator<Item = Vec<u8>> {
    (0..size).map(record)
}

#[test]
fn a_flushed_tree_reopens_at_its_size_with_the_same_root_and_proofs()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut tree = Tree::new(DirTileStore::new(dir.path()));
    for i in 0..70_000 {
        tree.append(&record(i));
    }
    tree.flush()?;
    let (size, root) = (tree.size(), tree.root());
    // The files are at the spec's paths: 273 full tiles and a partial one at level 0, one
    // full tile and a partial one at level 1, one partial tile of one hash at level 2.
    assert!(dir.path().join("tile/0/272").is_file());
    assert!(dir.path().join("tile/0/273.p/112").is_file());
    assert!(dir.path().join("tile/1/000").is_file());
    assert!(dir.path().join("tile/1/001.p/17").is_file());
    assert!(dir.path().join("tile/2/000.p/1").is_file());
    let reopened = Tree::open_verified(DirTileStore::new(dir.path()), size, &root)?;
    assert_eq!(reopened.root(), root);
    for index in [0, 255, 256, 65_535, 65_536, 69_999] {
        let proof = reopened.inclusion_proof(index, size)?;
        assert_eq!(proof, tree.inclusion_proof(index, size)?);
        assert_eq!(
            verify_inclusion(&leaf_hash(&record(index)), index, size, &proof, &root),
            Ok(())
        );
    }
    // An earlier size opens from the same tiles (its partial tiles are prefixes).
    let earlier = Tree::open(DirTileStore::new(dir.path()), 1000)?;
    assert_eq!(earlier.root(), tree.root_at(1000)?);
    // Appending after reopening goes on as if nothing happened.
    let mut reopened = reopened;
    let mut straight = Tree::new(MemoryTileStore::new());
    for i in 0..70_300 {
        straight.append(&record(i));
    }
    for i in 70_000..70_300 {
        reopened.append(&record(i));
    }
    assert_eq!(reopened.root(), straight.root());
    Ok(())
}

#[test]
fn tiles_served_by_path_are_the_tiles_of_the_current_size() -> Result<(), Box<dyn std::error::Error>>
{
    let mut tree = Tree::new(MemoryTileStore::new());
    for i in 0..600 {
        tree.append(&record(i));
    }
    // Served from memory before any flush, and the same after.
    let before: Vec<_> = tiles_for_size(600)
        .into_iter()
        .map(|id| tree.tile(id))
        .collect::<Result<_, _>>()?;
    tree.flush()?;
    for (id, bytes) in tiles_for_size(600).into_iter().zip(before) {
        let bytes = bytes.unwrap_or_default();
        assert_eq!(bytes.len(), 32 * usize::from(id.width));
        assert_eq!(tree.tile(id)?, Some(bytes));
    }
    let first = tree.tile(TileId::parse("tile/0/000")?)?;
    assert_eq!(
        first.as_deref().map(|b| &b[..32]),
        Some(&leaf_hash(&record(0))[..])
    );
    // A partial tile narrower than the current one is its prefix; a wider one is not there yet.
    let narrow = TileId {
        level: 0,
        index: 2,
        width: 10,
    };
    assert_eq!(tree.tile(narrow)?.map(|b| b.len()), Some(320));
    let wide = TileId {
        level: 0,
        index: 2,
        width: 89,
    };
    assert_eq!(tree.tile(wide)?, None);
    // Coordinates no tree has are not there either, rather than a panic.
    let beyond = TileId {
        level: 9,
        index: u64::MAX,
        width: 1,
    };
    assert_eq!(tree.tile(beyond)?, None);
    Ok(())
}

#[test]
fn missing_or_damaged_tiles_are_found_and_rebuilt_from_the_leaves() -> Result<(), TlogError> {
    let store = MemoryTileStore::new();
    let mut tree = Tree::new(&store);
    for i in 0..1000 {
        tree.append(&record(i));
    }
    tree.flush()?;
    let root = tree.root();
    drop(tree);
    let check = verify_tiles(&store, records(1000))?;
    assert_eq!(
        (check.first_bad, check.root, check.tiles_checked),
        (None, root, 5)
    );

    // A flipped byte in a full tile: open does not read it, the check finds it.
    let mut damaged = store
        .read_tile(0, 1)?
        .map(|t| t.to_vec())
        .unwrap_or_default();
    damaged[7][3] ^= 1;
    store.set_tile(0, 1, Some(damaged));
    let check = verify_tiles(&store, records(1000))?;
    let bad = check.first_bad.map(|bad| (bad.id.path(), bad.problem));
    assert_eq!(
        bad,
        Some(("tile/0/001".to_string(), TileProblem::Different))
    );

    // A damaged partial tile changes the root open finds: open_verified refuses it.
    let mut right = store
        .read_tile(0, 3)?
        .map(|t| t.to_vec())
        .unwrap_or_default();
    right[0][0] ^= 1;
    store.set_tile(0, 3, Some(right));
    assert!(matches!(
        Tree::open_verified(&store, 1000, &root),
        Err(TlogError::RootMismatch { .. })
    ));

    // A missing tile: open says which.
    store.set_tile(1, 0, None);
    assert!(matches!(
        Tree::open(&store, 1000),
        Err(TlogError::TileMissing { level: 1, index: 0 })
    ));

    // Rebuilt from the leaves, every tile is right again.
    let rebuilt = Tree::rebuild(&store, records(1000))?;
    assert_eq!(rebuilt.root(), root);
    assert_eq!(verify_tiles(&store, records(1000))?.first_bad, None);
    assert_eq!(Tree::open_verified(&store, 1000, &root)?.root(), root);
    Ok(())
}

#[test]
fn a_malformed_tile_file_is_reported_not_trusted() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let tree = Tree::rebuild(DirTileStore::new(dir.path()), records(300))?;
    let root = tree.root();
    std::fs::write(dir.path().join("tile/0/000"), b"short")?;
    let store = DirTileStore::new(dir.path());
    let check = verify_tiles(&store, records(300))?;
    assert_eq!(
        check.first_bad.map(|bad| bad.problem),
        Some(TileProblem::Malformed)
    );
    // Open reads the rightmost tiles only: a malformed one there stops it.
    std::fs::write(dir.path().join("tile/0/001.p/44"), [0u8; 33])?;
    assert!(matches!(
        Tree::open(DirTileStore::new(dir.path()), 300),
        Err(TlogError::Store(tlog::TileStoreError::Malformed(_)))
    ));
    Tree::rebuild(DirTileStore::new(dir.path()), records(300))?;
    assert_eq!(Tree::open_verified(store, 300, &root)?.root(), root);
    Ok(())
}

#[test]
fn a_deferred_store_writes_the_same_tiles_and_syncs_them_when_asked()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(DirTileStore::deferred(dir.path()));
    let mut tree = Tree::new(store.clone());
    for i in 0..1_000 {
        tree.append(&record(i));
        if i % 100 == 0 {
            tree.flush()?;
        }
    }
    tree.flush()?;
    assert!(store.unsynced_files() > 0);
    store.sync()?;
    assert_eq!(store.unsynced_files(), 0, "every file written was synced");
    // The same files as a synced store's: one version per tile, no temporary file left.
    let reopened = Tree::open_verified(DirTileStore::new(dir.path()), 1_000, &tree.root())?;
    assert_eq!(reopened.root(), tree.root());
    let check = verify_tiles(&DirTileStore::new(dir.path()), records(1_000))?;
    assert_eq!(check.first_bad, None);
    let partials: Vec<_> = std::fs::read_dir(dir.path().join("tile/0/003.p"))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    assert_eq!(partials, vec![std::ffi::OsString::from("232")]);
    Ok(())
}

/// A store that keeps tiles only, so that proofs compute every upper node from the rows.
struct TilesOnly(MemoryTileStore);

impl TileStore for TilesOnly {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<tlog::Tile>, tlog::TileStoreError> {
        self.0.read_tile(level, index)
    }

    fn write_tile(
        &self,
        level: u8,
        index: u64,
        hashes: &[tlog::Hash],
    ) -> Result<(), tlog::TileStoreError> {
        self.0.write_tile(level, index, hashes)
    }
}

#[test]
fn proofs_from_the_upper_nodes_kept_beside_the_tiles_are_the_proofs_from_the_rows()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let size = 70_000u64;
    let mut kept = Tree::new(DirTileStore::new(dir.path()));
    let mut rows_only = Tree::new(TilesOnly(MemoryTileStore::new()));
    for i in 0..size {
        kept.append(&record(i));
        rows_only.append(&record(i));
    }
    kept.flush()?;
    rows_only.flush()?;
    // One file of 30 hashes per full tile, beside the served `tile/` tree.
    assert_eq!(
        std::fs::read(dir.path().join("nodes/0/272"))?.len(),
        30 * 32
    );
    assert!(dir.path().join("nodes/1/000").is_file());
    assert!(
        !dir.path().join("nodes/0/273").exists(),
        "a partial tile has none"
    );
    // Reopened (an empty proof cache), the proofs read the kept nodes.
    let reopened = Tree::open_verified(DirTileStore::new(dir.path()), size, &kept.root())?;
    for index in (0..size)
        .step_by(97)
        .chain([255, 256, 65_535, 65_536, size - 1])
    {
        for at in [size, 65_537, index + 1]
            .into_iter()
            .filter(|at| *at > index)
        {
            let proof = reopened.inclusion_proof(index, at)?;
            assert_eq!(
                proof,
                rows_only.inclusion_proof(index, at)?,
                "leaf {index} of {at}"
            );
            assert_eq!(
                verify_inclusion(
                    &leaf_hash(&record(index)),
                    index,
                    at,
                    &proof,
                    &rows_only.root_at(at)?
                ),
                Ok(())
            );
        }
    }
    // `verify_tiles` compares the kept nodes too.
    let nodes = dir.path().join("nodes/0/100");
    let mut bytes = std::fs::read(&nodes)?;
    bytes[3] ^= 1;
    std::fs::write(&nodes, bytes)?;
    let check = verify_tiles(&DirTileStore::new(dir.path()), records(size))?;
    assert_eq!(
        check.first_bad.map(|bad| (bad.id.path(), bad.problem)),
        Some(("tile/0/100".to_string(), TileProblem::UpperNodes))
    );
    for from in [1, 300, 65_536, 69_999] {
        assert_eq!(
            reopened.consistency_proof(from, size)?,
            rows_only.consistency_proof(from, size)?
        );
    }
    Ok(())
}
