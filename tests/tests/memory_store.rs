//! The store conformance suite on the in-memory backend.

use std::sync::Arc;

use store::MemoryStore;
use store::conformance::Fixture;

async fn memory_store() -> Fixture<MemoryStore> {
    Fixture::new(Arc::new(MemoryStore::new()), ())
}

store::conformance_tests!(memory_store);
