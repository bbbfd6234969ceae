//! The store conformance suite on the KurrentDB backend: against csp-ledger's own KurrentDB
//! endpoint (over an in-memory store) in every run, and against a real KurrentDB when
//! `CSP_LEDGER_KURRENTDB_URL` is set.

mod common;

use std::sync::Arc;

use kurrentdb::{KurrentStore, KurrentStoreConfig};
use store::MemoryStore;
use store::conformance::{self, Fixture};

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

macro_rules! run_cases {
    ($($case:ident),* $(,)?) => {
        $(
            eprintln!("real KurrentDB: {}", stringify!($case));
            conformance::$case(real_server().await).await;
        )*
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_real_kurrentdb() {
    if std::env::var_os(REAL_URL).is_none() {
        eprintln!(
            "skipped: {REAL_URL} not set (the conformance suite ran against csp-ledger's own endpoint only)"
        );
        return;
    }
    run_cases!(
        append_creates_stream_at_revision_zero,
        no_stream_conflicts_on_existing_stream,
        exact_revision_appends_and_conflicts,
        stream_exists_requires_stream,
        any_always_appends,
        retry_with_exact_revision_is_idempotent,
        retry_with_no_stream_is_idempotent,
        retry_with_any_is_idempotent,
        partial_retry_conflicts,
        invalid_batches_write_nothing,
        envelope_round_trips,
        recorded_at_never_goes_backwards,
        read_stream_both_directions_with_limits,
        read_all_both_directions_with_limits,
        missing_stream_reads_empty,
        head_follows_appends,
        concurrent_appends_at_same_revision_one_wins,
        subscription_catches_up_then_goes_live,
        subscription_from_end_sees_only_new_events,
        subscription_resumes_after_position,
        subscription_filters_by_type_and_prefix,
        subscription_under_concurrent_writers_has_no_gap_or_duplicate,
        verify_intact_log,
    );
}

#[test]
fn model_test_on_a_real_kurrentdb() {
    if std::env::var_os(REAL_URL).is_none() {
        eprintln!("skipped: {REAL_URL} not set");
        return;
    }
    conformance::model_test(real_server);
}
