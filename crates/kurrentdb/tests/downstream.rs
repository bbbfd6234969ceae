//! A downstream service follows the ledger through csp-ledger's KurrentDB endpoint with the
//! official Rust client: every event once, in order, across a reconnect; and the endpoint's
//! doors are shut to those without the right key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use eventstore::{
    Client, EventData, RetryOptions, StreamPosition, SubscribeToAllOptions, SubscriptionEvent,
};
use kurrentdb::{KurrentStore, KurrentStoreConfig};
use store::{
    Direction, EventFilter, EventStore, ExpectedRevision, MemoryStore, ReadFrom, StreamName,
    SubscribeFrom, SubscriptionItem,
};

use common::{ADMIN, Endpoint, READER};

const EVENTS: usize = 300;
const WAIT: Duration = Duration::from_secs(20);

fn client(url: &str) -> Client {
    let settings = url.parse().unwrap_or_else(|e| panic!("settings: {e}"));
    Client::new(settings).unwrap_or_else(|e| panic!("client: {e}"))
}

/// Appends `EVENTS` events to the store, a few at a time, like commands arriving.
fn spawn_writer(store: Arc<MemoryStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..EVENTS {
            let stream =
                StreamName::new(format!("partner-{}", i % 7)).unwrap_or_else(|e| panic!("{e}"));
            let event = store::conformance::event("Happened", &format!("e{i}"));
            if let Err(error) = store
                .append(&stream, ExpectedRevision::Any, vec![event])
                .await
            {
                panic!("append: {error}");
            }
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
}

async fn all_ids(store: &MemoryStore) -> Vec<uuid::Uuid> {
    store
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("read_all: {e}"))
        .into_iter()
        .map(|event| event.event_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_follows_all_across_a_reconnect() {
    let store = Arc::new(MemoryStore::new());
    let endpoint = Endpoint::start(store.clone()).await;
    let address = endpoint.address;
    let reader = client(&endpoint.url(READER));
    let options = SubscribeToAllOptions::default()
        .position(StreamPosition::Start)
        .retry_options(
            RetryOptions::default()
                .retry_forever()
                .retry_delay(Duration::from_millis(100)),
        );
    let mut subscription = reader.subscribe_to_all(&options).await;
    let writer = spawn_writer(store.clone());

    let mut received = Vec::new();
    let mut endpoint = Some(endpoint);
    while received.len() < EVENTS {
        let item = tokio::time::timeout(WAIT, subscription.next_subscription_event())
            .await
            .unwrap_or_else(|_| panic!("nothing within {WAIT:?} after {} events", received.len()))
            .unwrap_or_else(|e| panic!("subscription: {e}"));
        if let SubscriptionEvent::EventAppeared(resolved) = item {
            let event = resolved.get_original_event();
            received.push((event.id, event.position.commit));
            if received.len() == EVENTS / 3 {
                // The connection drops mid-stream: the server goes away and comes back.
                if let Some(running) = endpoint.take() {
                    running.stop().await;
                }
                endpoint = Some(Endpoint::start_at(store.clone(), address).await);
            }
        }
    }
    writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
    let ids: Vec<uuid::Uuid> = received.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, all_ids(&store).await, "every event once, in log order");
    assert!(received.windows(2).all(|w| w[0].1 < w[1].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kurrent_store_subscription_resumes_across_a_reconnect() {
    let store = Arc::new(MemoryStore::new());
    let endpoint = Endpoint::start(store.clone()).await;
    let address = endpoint.address;
    let backend = KurrentStore::connect(&endpoint.url(READER), KurrentStoreConfig::default())
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut subscription = backend.subscribe_all(SubscribeFrom::Start, EventFilter::all());
    let writer = spawn_writer(store.clone());
    let mut received = Vec::new();
    let mut endpoint = Some(endpoint);
    while received.len() < EVENTS {
        let item = tokio::time::timeout(WAIT, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("nothing within {WAIT:?} after {} events", received.len()))
            .unwrap_or_else(|| panic!("subscription ended"))
            .unwrap_or_else(|e| panic!("subscription: {e}"));
        if let SubscriptionItem::Event(event) = item {
            received.push(event.event_id);
            if received.len() == EVENTS / 2 {
                if let Some(running) = endpoint.take() {
                    running.stop().await;
                }
                endpoint = Some(Endpoint::start_at(store.clone(), address).await);
            }
        }
    }
    writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
    assert_eq!(received, all_ids(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_cannot_append_and_strangers_cannot_read() {
    let store = Arc::new(MemoryStore::new());
    let endpoint = Endpoint::start(store.clone()).await;
    let event = || EventData::binary("Happened", vec![1, 2, 3].into());

    let reader = client(&endpoint.url(READER));
    let refused = reader
        .append_to_stream("partner-1", &Default::default(), event())
        .await;
    assert!(
        matches!(refused, Err(eventstore::Error::AccessDenied)),
        "{refused:?}"
    );

    let stranger = client(&endpoint.url(("mallory", "guess")));
    let refused = stranger.read_all(&Default::default()).await;
    let refused = match refused {
        Ok(mut read) => read.next().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(
        matches!(refused, Err(eventstore::Error::AccessDenied)),
        "{refused:?}"
    );

    let admin = client(&endpoint.url(ADMIN));
    let written = admin
        .append_to_stream("partner-1", &Default::default(), event())
        .await;
    assert!(written.is_ok(), "{written:?}");
    let unimplemented = admin.delete_stream("partner-1", &Default::default()).await;
    assert!(
        matches!(unimplemented, Err(eventstore::Error::UnsupportedFeature)),
        "{unimplemented:?}"
    );
    assert_eq!(all_ids(&store).await.len(), 1);
}
