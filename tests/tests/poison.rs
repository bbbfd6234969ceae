//! Nothing foreign or unreadable stops the ledger: events of other streams, unknown types in
//! the ledger's streams, payloads or actors that do not decode and schemas newer than this
//! binary are passed over explicitly by the write model and the read models (counted, with
//! their positions), commands on an unreadable stream are refused rather than guessed, and
//! a restart still starts. Catch-up never moves past an event it has not applied or passed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::{Actor, PartnerId, UserId};
use handler::HandleError;
use projections::{Runner, RunnerConfig};
use store::{EventStore, ExpectedRevision, MemoryStore, NewEvent, ReadFrom, StreamName};
use uuid::Uuid;

/// An event written straight into the store, past every rule (as another application, a
/// newer binary or a careless tool would).
fn raw(event_type: &str, schema_version: u16, actor: &str, payload: Vec<u8>) -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        event_id: id,
        event_type: event_type.into(),
        schema_version,
        recorded_at: Utc::now(),
        actor: actor.into(),
        command_id: id,
        correlation_id: id,
        causation_id: id,
        payload,
    }
}

async fn write(store: &MemoryStore, stream: &str, event: NewEvent) -> u64 {
    let stream = StreamName::new(stream.to_string()).unwrap();
    let result = store
        .append(&stream, ExpectedRevision::Any, vec![event])
        .await
        .unwrap();
    result.positions[0].0
}

const OPERATOR_ACTOR: &str = r#"{"kind":"operator"}"#;

/// Writes the poison: a foreign event, an unknown type in a fresh partner stream and in
/// `victim`'s stream, a copy of a real event with a foreign actor, and a newer schema.
/// Returns the positions of the four events the ledger cannot read.
async fn poison(store: &MemoryStore, victim: PartnerId) -> Vec<u64> {
    write(
        store,
        "billing-2026",
        raw("InvoiceRaised", 1, "billing", b"\x01\x02".to_vec()),
    )
    .await;
    let stranger = format!("partner-{}", Uuid::now_v7());
    let mut unreadable = vec![
        write(
            store,
            &stranger,
            raw("Happened", 1, OPERATOR_ACTOR, vec![0x80]),
        )
        .await,
        write(
            store,
            &format!("partner-{victim}"),
            raw("Happened", 1, OPERATOR_ACTOR, vec![0x80]),
        )
        .await,
    ];
    // A real ProviderOnboarded payload without the ledger's actor JSON.
    let first = store
        .read_all(ReadFrom::Start, store::Direction::Forwards, 1)
        .await
        .unwrap();
    let copy = raw(
        &first[0].event_type,
        first[0].schema_version,
        "kurrentdb:admin",
        first[0].payload.clone(),
    );
    unreadable.push(write(store, &format!("partner-{}", Uuid::now_v7()), copy).await);
    let newer = raw("UserAdded", 99, OPERATOR_ACTOR, vec![0x80]);
    unreadable.push(write(store, &format!("partner-{}", Uuid::now_v7()), newer).await);
    // Another program's copy of a real event, without the ledger's envelope, as the
    // KurrentDB backend hands it over.
    let unenveloped = raw(
        &first[0].event_type,
        0,
        store::UNENVELOPED_ACTOR,
        first[0].payload.clone(),
    );
    unreadable.push(write(store, &format!("partner-{}", Uuid::now_v7()), unenveloped).await);
    unreadable
}

#[tokio::test]
async fn the_write_model_passes_over_what_it_cannot_read_and_refuses_to_guess() {
    let store = Arc::new(MemoryStore::new());
    let first = handler_with_clock(store.clone(), Arc::new(handler::SystemClock)).await;
    let (partner, admin) = ready_provider(&first, "1000001").await;
    let (victim, victim_admin) = ready_provider(&first, "1000002").await;
    let unreadable = poison(&store, victim).await;

    // A second ledger process records a valid event on `partner` after the poison: the
    // first must apply it (catch-up used to skip it after a decode error).
    let second = handler_with_clock(store.clone(), Arc::new(handler::SystemClock)).await;
    let by_second = request(Actor::user(admin), add_user(partner, "Sam"));
    second.handle(by_second.clone()).await.unwrap();

    let added = first
        .handle(request(Actor::user(admin), add_user(partner, "Avery")))
        .await
        .expect("a command on a readable stream is recorded");
    assert!(!added.replayed);
    let retried = first.handle(by_second).await.unwrap();
    assert!(
        retried.replayed,
        "a retry of the second process's command is a replay"
    );

    let refused = first
        .handle(request(Actor::user(victim_admin), add_user(victim, "Hana")))
        .await
        .unwrap_err();
    match refused {
        HandleError::StreamUnreadable {
            stream, position, ..
        } => {
            assert_eq!(stream, format!("partner-{victim}"));
            assert_eq!(position, unreadable[1]);
        }
        other => panic!("expected StreamUnreadable, got {other:?}"),
    }

    let (faults, foreign) = first.faults().await.unwrap();
    assert_eq!(foreign, 1);
    assert_eq!(
        faults.iter().map(|f| f.position.0).collect::<Vec<_>>(),
        unreadable
    );
    assert!(faults[2].reason.contains("actor"), "{:?}", faults[2]);
    assert!(faults[3].newer_schema);
    assert!(
        faults[3].reason.contains("newer csp-ledger"),
        "{:?}",
        faults[3]
    );
    assert!(
        faults[4].reason.contains("no csp-ledger envelope"),
        "{:?}",
        faults[4]
    );
    assert!(
        faults
            .iter()
            .enumerate()
            .all(|(at, fault)| fault.newer_schema == (at == 3))
    );

    // A restart reads the same log to the same faults.
    let restarted = handler_with_clock(store.clone(), Arc::new(handler::SystemClock)).await;
    assert_eq!(restarted.faults().await.unwrap(), (faults, 1));
}

#[tokio::test]
async fn the_read_models_pass_over_what_they_cannot_read() {
    let store = Arc::new(MemoryStore::new());
    let handler = handler_with_clock(store.clone(), Arc::new(handler::SystemClock)).await;
    let (partner, admin) = ready_provider(&handler, "1000001").await;
    let (victim, _) = ready_provider(&handler, "1000002").await;
    poison(&store, victim).await;
    handler
        .handle(request(Actor::user(admin), add_user(partner, "Sam")))
        .await
        .unwrap();
    let head = store.head().await.unwrap().unwrap().0;

    let runner = Runner::start(store.clone(), RunnerConfig::default())
        .await
        .unwrap();
    let handle = runner.handle();
    let projections = handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the read models reach the head past the poison");
    let users = projections
        .at(None)
        .unwrap()
        .users_of(partner)
        .value
        .unwrap();
    assert!(
        users.iter().any(|user| user.full_name == "Sam"),
        "the event after the poison applied"
    );
    drop(projections);
    let passed = handle.passed_over();
    assert_eq!(passed.foreign, 1);
    // The copy with a foreign actor reads as an event here: the read models keep the
    // actor as text. The unknown types, the newer schema and the event without the
    // ledger's envelope cannot be read.
    assert_eq!(passed.unreadable, 4);
}

#[test]
fn the_door_admits_only_the_ledgers_events() {
    let by = "kurrentdb-door";
    let partner = format!("partner-{}", Uuid::now_v7());
    let valid = domain::Event::UserRemoved(domain::events::UserRemoved {
        partner_id: PartnerId(Uuid::now_v7()),
        user_id: UserId(Uuid::now_v7()),
    });
    let payload = valid.encode().unwrap();
    let event = |event_type: &str, version: u16, actor: &str, payload: &[u8]| {
        raw(event_type, version, actor, payload.to_vec())
    };
    let refused = |stream: &str, event: NewEvent, enveloped: bool| {
        handler::admit_asserted(stream, event, enveloped, by).unwrap_err()
    };
    assert!(
        refused(
            "billing",
            event("UserRemoved", 1, OPERATOR_ACTOR, &payload),
            true
        )
        .contains("not one of the ledger's")
    );
    assert!(
        refused(
            &partner,
            event("Happened", 1, OPERATOR_ACTOR, &payload),
            true
        )
        .contains("unknown event type")
    );
    assert!(
        refused(
            &partner,
            event("UserRemoved", 2, OPERATOR_ACTOR, &payload),
            true
        )
        .contains("version")
    );
    assert!(
        refused(
            &partner,
            event("UserRemoved", 1, OPERATOR_ACTOR, &[0xc1]),
            true
        )
        .contains("UserRemoved")
    );
    assert!(
        refused(
            &partner,
            event("UserRemoved", 1, "kurrentdb:admin", &payload),
            true
        )
        .contains("actor")
    );

    // Without an envelope, the operator (who holds the store-admin key), asserted by the door.
    let admitted = handler::admit_asserted(
        &partner,
        event("UserRemoved", 1, "kurrentdb:admin", &payload),
        false,
        by,
    )
    .unwrap();
    let actor: serde_json::Value = serde_json::from_str(&admitted.actor).unwrap();
    assert_eq!(actor["kind"], "operator", "{actor}");
    assert_eq!(
        actor["proven_by"],
        serde_json::json!({"method": "asserted", "by": by}),
        "{actor}"
    );
    // With one, its actor, still only asserted.
    let user = format!(r#"{{"kind":"user","user_id":"{}"}}"#, Uuid::now_v7());
    let admitted =
        handler::admit_asserted(&partner, event("UserRemoved", 1, &user, &payload), true, by)
            .unwrap();
    let actor: serde_json::Value = serde_json::from_str(&admitted.actor).unwrap();
    assert_eq!(actor["kind"], "user", "{actor}");
    assert_eq!(
        actor["proven_by"],
        serde_json::json!({"method": "asserted", "by": by}),
        "{actor}"
    );
}
