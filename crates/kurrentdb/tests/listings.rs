//! What a client lists or inspects routinely answers as on a KurrentDB without any
//! persistent subscription or projection, through the official Rust client: empty lists,
//! "not found" for one by name, and credentials needed all the same.

mod common;

use std::sync::Arc;

use eventstore::{
    Client, GenericProjectionOptions, GetPersistentSubscriptionInfoOptions,
    ListPersistentSubscriptionsOptions, ProjectionClient,
};
use futures::TryStreamExt as _;
use store::MemoryStore;

use common::{Endpoint, READER};

fn settings(url: &str) -> eventstore::ClientSettings {
    url.parse().unwrap_or_else(|e| panic!("settings: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_subscriptions_and_projections_are_listed_empty() {
    let endpoint = Endpoint::start(Arc::new(MemoryStore::new())).await;
    let client = Client::new(settings(&endpoint.url(READER))).unwrap_or_else(|e| panic!("{e}"));
    let options = ListPersistentSubscriptionsOptions::default();
    let all = client
        .list_all_persistent_subscriptions(&options)
        .await
        .unwrap_or_else(|e| panic!("list all: {e}"));
    assert!(all.is_empty());
    let of_stream = client
        .list_persistent_subscriptions_for_stream("partner-1", &options)
        .await
        .unwrap_or_else(|e| panic!("list for a stream: {e}"));
    assert!(of_stream.is_empty());
    let info = client
        .get_persistent_subscription_info(
            "partner-1",
            "billing",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await;
    assert!(
        matches!(info, Err(eventstore::Error::ResourceNotFound)),
        "{info:?}"
    );

    let projections = ProjectionClient::new(settings(&endpoint.url(READER)));
    let listed: Vec<_> = projections
        .list(&GenericProjectionOptions::default())
        .await
        .unwrap_or_else(|e| panic!("list projections: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("list projections: {e}"));
    assert!(listed.is_empty());
    let status = projections
        .get_status("$by_category", &GenericProjectionOptions::default())
        .await;
    assert!(
        matches!(status, Err(eventstore::Error::ResourceNotFound)),
        "{status:?}"
    );

    let stranger = Client::new(settings(&endpoint.url(("auditor", "not-a-key"))))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stranger
            .list_all_persistent_subscriptions(&options)
            .await
            .is_err(),
        "listing needs credentials"
    );
}
