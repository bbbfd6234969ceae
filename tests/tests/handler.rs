//! The command handler over a store: idempotent command ids, conflicts decided again,
//! secrets returned once and never logged, refusals that append nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::commands::*;
use domain::{Actor, Email, PartnerNumber};
use handler::{HandleError, HandlerConfig};
use store::{
    AppendResult, Direction, EventFilter, EventStore, ExpectedRevision, MemoryStore, NewEvent,
    Position, ReadFrom, RecordedEvent, StoreError, StreamName, SubscribeFrom, Subscription,
    VerifyReport,
};
use tokio::sync::Mutex;
use uuid::Uuid;

type Race = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that lets another writer in just before the next append, to force a conflict.
struct RacingStore {
    inner: Arc<MemoryStore>,
    race: Mutex<Option<Race>>,
    /// Conflict on every append (a writer that always wins).
    always_conflict: bool,
}

#[async_trait::async_trait]
impl EventStore for RacingStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if let Some(race) = self.race.lock().await.take() {
            race.await;
        }
        if self.always_conflict {
            return Err(StoreError::WrongExpectedRevision {
                stream: stream.clone(),
                expected,
                actual: Some(999),
            });
        }
        self.inner.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, direction, limit).await
    }
    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, direction, limit).await
    }
    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.inner.stream_revision(stream).await
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }
    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription {
        self.inner.clone().subscribe_all(from, filter)
    }
    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.inner.verify().await
    }
}

#[tokio::test]
async fn a_retried_command_id_returns_the_original_outcome_and_appends_nothing() {
    let store = Arc::new(MemoryStore::new());
    let handler = handler_over(store.clone()).await;
    let first_request = request(Actor::Operator, onboard("Northwind", "1000001"));
    let first = handler.handle(first_request.clone()).await.unwrap();
    assert!(!first.replayed);
    assert!(!first.secrets.is_empty());
    let head = store.head().await.unwrap();

    let retry = handler.handle(first_request.clone()).await.unwrap();
    assert!(retry.replayed);
    assert!(retry.secrets.is_empty(), "secrets are shown once");
    assert_eq!(retry.events, first.events);
    assert_eq!(
        (retry.stream, retry.revision),
        (first.stream.clone(), first.revision)
    );
    assert_eq!(store.head().await.unwrap(), head);

    // A new handler over the same log (a restart) knows the command too.
    let restarted = handler_over(store.clone()).await;
    let retry = restarted.handle(first_request).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.events, first.events);
    assert_eq!(store.head().await.unwrap(), head);
}

#[tokio::test]
async fn a_lost_race_is_decided_again_against_fresh_state() {
    let inner = Arc::new(MemoryStore::new());
    let racing = Arc::new(RacingStore {
        inner: inner.clone(),
        race: Mutex::new(None),
        always_conflict: false,
    });
    let handler = handler_over(racing.clone()).await;
    let (partner, admin) = ready_provider(&handler, "1000001").await;

    // Another writer adds Bob to the same partner stream just before our append.
    let rival = Arc::new(handler_over(inner.clone()).await);
    let bob = request(Actor::user(admin), add_user(partner, "Bob"));
    let rival_for_race = rival.clone();
    *racing.race.lock().await = Some(Box::pin(async move {
        rival_for_race.handle(bob).await.unwrap();
    }));

    let alice = handler
        .handle(request(Actor::user(admin), add_user(partner, "Alice")))
        .await
        .unwrap();
    let types: Vec<_> = inner
        .read_stream(
            &StreamName::new(alice.stream.clone()).unwrap(),
            ReadFrom::Start,
            Direction::Forwards,
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    let added = types.iter().filter(|t| *t == "UserAdded").count();
    assert_eq!(
        added, 3,
        "first admin, Bob (the rival) and Alice: {types:?}"
    );
    let ((bob_known, alice_known), _) = handler
        .read_state(|state| {
            (
                state
                    .user_by_email(&Email::parse("bob@northwind.example").unwrap())
                    .is_some(),
                state
                    .user_by_email(&Email::parse("alice@northwind.example").unwrap())
                    .is_some(),
            )
        })
        .await
        .unwrap();
    assert!(bob_known && alice_known);
}

#[tokio::test]
async fn a_writer_that_always_loses_gives_up_with_contention() {
    let inner = Arc::new(MemoryStore::new());
    let racing = Arc::new(RacingStore {
        inner: inner.clone(),
        race: Mutex::new(None),
        always_conflict: true,
    });
    let handler = handler_over(racing).await;
    let result = handler
        .handle(request(Actor::Operator, onboard("Northwind", "1000001")))
        .await;
    assert!(
        matches!(result, Err(HandleError::Contention { attempts, .. }) if attempts == HandlerConfig::default().conflict_retries_max + 1),
        "{result:?}"
    );
    assert_eq!(inner.head().await.unwrap(), None);
}

#[tokio::test]
async fn secrets_are_returned_once_and_never_reach_the_log() {
    let store = Arc::new(MemoryStore::new());
    let handler = handler_over(store.clone()).await;
    let onboarded = handler
        .handle(request(Actor::Operator, onboard("Northwind", "1000001")))
        .await
        .unwrap();
    let partner = partner_of(&onboarded);
    let (admin, temporary) = temporary_password(&onboarded);
    handler
        .change_temporary_password(
            Uuid::now_v7(),
            admin,
            partner,
            &temporary,
            "a fine new password",
        )
        .await
        .unwrap();
    let invited = handler
        .handle(request(
            Actor::user(admin),
            InviteReseller {
                provider_id: partner,
                reseller_partner_number: PartnerNumber::parse("4000001").unwrap(),
            },
        ))
        .await;
    // The reseller does not exist: refused, nothing recorded, nothing leaked.
    assert!(
        matches!(invited, Err(HandleError::Rejected(_))),
        "{invited:?}"
    );
    let added = handler
        .handle(request(Actor::user(admin), add_user(partner, "Sam")))
        .await
        .unwrap();
    let (_, sam_password) = temporary_password(&added);

    let mut secrets = vec![temporary, sam_password, "a fine new password".to_string()];
    secrets.retain(|s| !s.is_empty());
    for event in store
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
        .unwrap()
    {
        let mut bytes = event.payload.clone();
        bytes.extend_from_slice(event.actor.as_bytes());
        for secret in &secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret",
                event.event_type
            );
        }
    }
}

#[tokio::test]
async fn a_temporary_password_change_checks_the_current_password() {
    let store = Arc::new(MemoryStore::new());
    let handler = handler_over(store.clone()).await;
    let onboarded = handler
        .handle(request(Actor::Operator, onboard("Northwind", "1000001")))
        .await
        .unwrap();
    let partner = partner_of(&onboarded);
    let (admin, temporary) = temporary_password(&onboarded);
    let head = store.head().await.unwrap();

    let wrong = handler
        .change_temporary_password(
            Uuid::now_v7(),
            admin,
            partner,
            "guess",
            "a fine new password",
        )
        .await;
    assert!(
        matches!(wrong, Err(HandleError::Credentials(_))),
        "{wrong:?}"
    );
    assert_eq!(store.head().await.unwrap(), head);

    // Before the change, the user may do nothing else.
    let early = handler
        .handle(request(Actor::user(admin), add_user(partner, "Sam")))
        .await;
    match early {
        Err(HandleError::Rejected(rejection)) => {
            assert_eq!(rejection.rule(), "temporary-password-not-changed")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), head);

    let changed = handler
        .change_temporary_password(
            Uuid::now_v7(),
            admin,
            partner,
            &temporary,
            "a fine new password",
        )
        .await
        .unwrap();
    assert_eq!(changed.events[0].event_type, "TemporaryPasswordChanged");
    let verified = handler
        .credentials()
        .verify(&admin.to_string(), "a fine new password")
        .unwrap();
    assert!(!verified.temporary);
    handler
        .handle(request(Actor::user(admin), add_user(partner, "Sam")))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_removed_users_password_stops_working() {
    let store = Arc::new(MemoryStore::new());
    let handler = handler_over(store.clone()).await;
    let (partner, admin) = ready_provider(&handler, "1000001").await;
    let added = handler
        .handle(request(Actor::user(admin), add_user(partner, "Sam")))
        .await
        .unwrap();
    let (sam, password) = temporary_password(&added);
    assert!(
        handler
            .credentials()
            .verify(&sam.to_string(), &password)
            .is_ok()
    );
    handler
        .handle(request(
            Actor::user(admin),
            RemoveUser {
                partner_id: partner,
                user_id: sam,
            },
        ))
        .await
        .unwrap();
    assert!(!handler.credentials().contains(&sam.to_string()));
}
