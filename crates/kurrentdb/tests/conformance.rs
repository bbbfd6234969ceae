//! The store conformance suite on the KurrentDB backend: against csp-ledger's own KurrentDB
//! endpoint (over an in-memory store) in every run, and against a real KurrentDB when
//! `CSP_LEDGER_KURRENTDB_URL` is set.

mod common;

use std::sync::Arc;

use kurrentdb::{KurrentStore, KurrentStoreConfig};
use store::MemoryStore;
use store::conformance::Fixture;

use common::{ADMIN, Endpoint};

/// The backend, talking to csp-ledger's endpoint, which serves a fresh in-memory store.
async fn through_endpoint() -> Fixture<KurrentStore> {
    let endpoint = Endpoint::start(Arc::new(MemoryStore::new())).await;
    let store = KurrentStore::connect(&endpoint.url(ADMIN), KurrentStoreConfig::default())
        .unwrap_or_else(|e| panic!("connect: {e}"));
    Fixture::new(store, endpoint)
}

store::conformance_tests!(through_endpoint);

/// The environment variable naming a real KurrentDB (a connection string).
const REAL_URL: &str = "CSP_LEDGER_KURRENTDB_URL";

/// The backend on a real KurrentDB, each fixture in a namespace of its own so that runs do
/// not see each other's events.
async fn real_server() -> Fixture<KurrentStore> {
    let url = std::env::var(REAL_URL).unwrap_or_else(|_| panic!("{REAL_URL} not set"));
    let config = KurrentStoreConfig {
        namespace: format!("t{}-", uuid::Uuid::now_v7().simple()),
        ..KurrentStoreConfig::default()
    };
    let store = KurrentStore::connect(&url, config).unwrap_or_else(|e| panic!("connect: {e}"));
    Fixture::new(store, ())
}

/// The same suite, on a real KurrentDB.
mod real_kurrentdb {
    use super::*;

    store::conformance_tests!(
        #[ignore = "needs a real KurrentDB: set CSP_LEDGER_KURRENTDB_URL"]
        real_server
    );
}
