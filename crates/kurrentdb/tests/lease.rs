//! The writer lease between processes on one KurrentDB (here csp-ledger's own endpoint over
//! an in-memory store, which fences appends as the lease says): one writer at a time, a
//! replica refused, a silent holder taken over, a stale writer's append refused, and the
//! lease's own events kept out of what readers see and out of the chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kurrentdb::envelope::EnvelopeMetadata;
use kurrentdb::{KurrentStore, KurrentStoreConfig, LeaseConfig, LeaseRole};
use store::{
    Direction, EventStore, ExpectedRevision, MemoryStore, NewEvent, ReadFrom, StoreError,
    StreamName,
};
use uuid::Uuid;

use common::{ADMIN, Endpoint};

// Long enough for a debug build on a busy machine to finish a step within it.
const TTL: Duration = Duration::from_millis(1_500);

fn leased(endpoint: &Endpoint, holder: &str) -> Arc<KurrentStore> {
    KurrentStore::connect(
        &endpoint.url(ADMIN),
        KurrentStoreConfig {
            lease: Some(LeaseConfig {
                holder: holder.into(),
                ttl: TTL,
            }),
            ..KurrentStoreConfig::default()
        },
    )
    .unwrap()
}

fn event(text: &str) -> NewEvent {
    let id = Uuid::now_v7();
    NewEvent {
        event_id: id,
        event_type: "Noted".into(),
        schema_version: 1,
        recorded_at: Utc::now(),
        actor: r#"{"kind":"operator"}"#.into(),
        command_id: id,
        correlation_id: id,
        causation_id: id,
        payload: text.as_bytes().to_vec(),
    }
}

fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

/// Tries to take the lease until it is taken (a bounded number of steps).
async fn take_over(store: &KurrentStore) -> u64 {
    for _ in 0..200 {
        if let LeaseRole::Writer { epoch } = store.try_take_lease().await.unwrap() {
            return epoch;
        }
        tokio::time::sleep(TTL / 6).await;
    }
    panic!("never took the lease over");
}

#[tokio::test]
async fn one_writer_at_a_time_and_a_stale_writer_never_counts() {
    let endpoint = Endpoint::start(Arc::new(MemoryStore::new())).await;
    let a = leased(&endpoint, "a");
    let b = leased(&endpoint, "b");

    assert_eq!(
        a.try_take_lease().await.unwrap(),
        LeaseRole::Writer { epoch: 1 }
    );
    assert_eq!(
        b.try_take_lease().await.unwrap(),
        LeaseRole::Replica {
            holder: Some("a".into())
        }
    );
    a.append(
        &stream("partner-1"),
        ExpectedRevision::NoStream,
        vec![event("a1")],
    )
    .await
    .unwrap();
    let refused = b
        .append(
            &stream("partner-2"),
            ExpectedRevision::NoStream,
            vec![event("b1")],
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotWriter(message)) if message.contains("read replica") && message.contains("held by a")),
        "{refused:?}"
    );

    // While a renews, b cannot take over.
    for _ in 0..4 {
        a.renew_lease().await.unwrap();
        assert!(matches!(
            b.try_take_lease().await.unwrap(),
            LeaseRole::Replica { .. }
        ));
        tokio::time::sleep(TTL / 4).await;
    }

    // a goes silent (a stopped process): b takes over after a's TTL.
    assert_eq!(take_over(&b).await, 2);
    b.append(
        &stream("partner-2"),
        ExpectedRevision::NoStream,
        vec![event("b1")],
    )
    .await
    .unwrap();
    // a's own clock ran out too, and its renewal sees the newer take.
    assert!(matches!(
        a.renew_lease().await.unwrap(),
        LeaseRole::Replica { .. }
    ));
    assert!(
        a.append(
            &stream("partner-1"),
            ExpectedRevision::Exact(0),
            vec![event("a2")]
        )
        .await
        .is_err()
    );

    // A writer that still believes in epoch 1 (paused between its check and its send) is
    // refused by the server, and nothing is appended.
    let client = eventstore::Client::new(endpoint.url(ADMIN).parse().unwrap()).unwrap();
    let stale = event("stale");
    let mut metadata = EnvelopeMetadata::of(
        &store::RecordedEvent::place(
            stale.clone(),
            stream("partner-1"),
            1,
            store::Position(0),
            Utc::now(),
        ),
        None,
    );
    metadata.lease_epoch = Some(1);
    let data = eventstore::EventData::binary("Noted", b"stale".to_vec().into())
        .id(stale.event_id)
        .metadata(metadata.to_bytes().into());
    let refused = client
        .append_to_stream(
            "partner-1",
            &eventstore::AppendToStreamOptions::default(),
            data,
        )
        .await;
    assert!(
        matches!(&refused, Err(eventstore::Error::Grpc { code: tonic::Code::FailedPrecondition, message }) if message.contains("writer lease")),
        "{refused:?}"
    );

    // A reader sees the ledger's events only: no lease bookkeeping, nothing stale, an
    // intact chain.
    let reader =
        KurrentStore::connect(&endpoint.url(ADMIN), KurrentStoreConfig::default()).unwrap();
    let all = reader
        .read_all(ReadFrom::Start, Direction::Forwards, 100)
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = all.iter().map(|e| e.payload.as_slice()).collect();
    assert_eq!(payloads, vec![b"a1".as_slice(), b"b1".as_slice()]);
    let report = reader.verify().await.unwrap();
    assert!(report.damage.is_none(), "{report:?}");
    assert_eq!(report.records_intact, 2);

    // A clean stop releases: the next process takes the lease at once.
    b.release_lease().await.unwrap();
    let c = leased(&endpoint, "c");
    assert_eq!(
        c.try_take_lease().await.unwrap(),
        LeaseRole::Writer { epoch: 3 }
    );
    c.append(
        &stream("partner-3"),
        ExpectedRevision::NoStream,
        vec![event("c1")],
    )
    .await
    .unwrap();
}
