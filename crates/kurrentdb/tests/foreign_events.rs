//! On a real KurrentDB, which stores whatever any client appends: another program's events
//! beside and among the ledger's streams never stop the backend. Outside the namespace they
//! are not seen; inside it, an event without the ledger's envelope is handed over marked
//! (readers report it as a fault), stays out of the hash chain, and the ledger's next
//! append continues the chain from its own last event.

use chrono::Utc;
use eventstore::{AppendToStreamOptions, Client, EventData};
use kurrentdb::{KurrentStore, KurrentStoreConfig};
use store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StreamName};
use uuid::Uuid;

const REAL_URL: &str = "CSP_LEDGER_KURRENTDB_URL";

fn event(event_type: &str) -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        event_id: id,
        event_type: event_type.into(),
        schema_version: 1,
        recorded_at: Utc::now(),
        actor: r#"{"kind":"operator"}"#.into(),
        command_id: id,
        correlation_id: id,
        causation_id: id,
        payload: vec![0x80],
    }
}

#[tokio::test]
#[ignore = "needs a real KurrentDB: set CSP_LEDGER_KURRENTDB_URL"]
async fn another_programs_events_are_passed_over_and_stay_out_of_the_chain() {
    let url = std::env::var(REAL_URL).unwrap_or_else(|_| panic!("{REAL_URL} not set"));
    let namespace = format!("t{}-", Uuid::now_v7().simple());
    let config = KurrentStoreConfig {
        namespace: namespace.clone(),
        ..KurrentStoreConfig::default()
    };
    let store = KurrentStore::connect(&url, config).unwrap_or_else(|e| panic!("connect: {e}"));
    let stream = StreamName::new("partner-a").unwrap_or_else(|e| panic!("{e}"));
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("ProviderOnboarded")],
        )
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));

    // Another program writes, with the stock client and its own metadata.
    let settings = kurrentdb::backend::normalize_connection_string(&url)
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let client = Client::new(settings).unwrap_or_else(|e| panic!("{e}"));
    for stored in [
        format!("{namespace}partner-a"),
        format!("other-{namespace}"),
    ] {
        let data = EventData::json("InvoiceRaised", &serde_json::json!({"amount": 12}))
            .unwrap_or_else(|e| panic!("{e}"))
            .metadata_as_json(&serde_json::json!({"app": "billing"}))
            .unwrap_or_else(|e| panic!("{e}"));
        client
            .append_to_stream(stored, &AppendToStreamOptions::default(), data)
            .await
            .unwrap_or_else(|e| panic!("raw append: {e}"));
    }

    let seen = store
        .read_all(ReadFrom::Start, Direction::Forwards, 100)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(seen.len(), 2, "the other namespace's event is not seen");
    assert_eq!(seen[1].actor, store::UNENVELOPED_ACTOR);
    let report = store
        .verify()
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(report.damage.is_none(), "{:?}", report.damage);
    assert_eq!(report.records_intact, 1);

    // The ledger's next append continues its own chain.
    store
        .append(&stream, ExpectedRevision::Any, vec![event("UserAdded")])
        .await
        .unwrap_or_else(|e| panic!("append after: {e}"));
    let report = store
        .verify()
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(report.damage.is_none(), "{:?}", report.damage);
    assert_eq!(report.records_intact, 2);
}
