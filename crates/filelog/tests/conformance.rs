//! The backend-independent conformance suite of `store`, run on the file log.

use filelog::{FileStore, FileStoreConfig};
use store::conformance::Fixture;

async fn make_fixture() -> Fixture<FileStore> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    // Small segments, so that every case also crosses segment boundaries.
    let config = FileStoreConfig {
        segment_bytes_max: 4096,
        ..FileStoreConfig::default()
    };
    let store = FileStore::open(dir.path(), config).unwrap_or_else(|e| panic!("open: {e}"));
    Fixture::new(store, dir)
}

store::conformance_tests!(make_fixture);
