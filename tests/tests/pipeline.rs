//! The pipelined handler under concurrency and injected store failures: whatever fails, the
//! log, the write model and the answers agree afterwards.
//!
//! Many submitters race commands that depend on each other (users added to one partner's
//! stream, emails that collide, providers onboarded with partner numbers that collide,
//! retries of a command still in flight) through a store wrapper that fails some
//! appends. Then the model check: every recorded answer is in the log as answered, every
//! command is decided at most once, a failed append left nothing behind, the cross-partner
//! rules held, and the live write model equals one rebuilt from the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::{Actor, Email, Event, Rejection};
use handler::{CommandHandler, CommandRequest, HandleError, Outcome};
use store::{
    AppendResult, Direction, EventFilter, EventStore, ExpectedRevision, LogTail, MemoryStore,
    NewEvent, PendingAppend, Position, ReadFrom, RecordedEvent, StoreError, StreamName,
    SubscribeFrom, Subscription, VerifyReport,
};
use uuid::Uuid;

/// How an injected failure looks to the handler.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The append never reaches the store (a write that failed): nothing is appended.
    Refused,
    /// The append is made but its answer is lost (a connection that broke after the write).
    AnswerLost,
}

/// A store that fails every `every`-th append or submission, the others passed through.
struct FailingStore<S: ?Sized> {
    inner: Arc<S>,
    every: u64,
    failure: Failure,
    calls: AtomicU64,
}

impl<S: EventStore + ?Sized> FailingStore<S> {
    fn fails_now(&self) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed) % self.every == self.every - 1
    }
}

fn injected() -> StoreError {
    StoreError::io(
        "appending (injected)",
        std::io::Error::other("injected failure"),
    )
}

#[async_trait::async_trait]
impl<S: EventStore + ?Sized> EventStore for FailingStore<S> {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if !self.fails_now() {
            return self.inner.append(stream, expected, events).await;
        }
        if let Failure::AnswerLost = self.failure {
            let _ = self.inner.append(stream, expected, events).await;
        }
        Err(injected())
    }
    fn pipelines_appends(&self) -> bool {
        self.inner.pipelines_appends()
    }
    async fn submit(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: LogTail,
    ) -> Result<PendingAppend, StoreError> {
        if !self.fails_now() {
            return self.inner.submit(stream, expected, events, after).await;
        }
        match self.failure {
            Failure::Refused => Ok(Box::pin(std::future::ready(Err(injected())))),
            Failure::AnswerLost => {
                let pending = self.inner.submit(stream, expected, events, after).await?;
                Ok(Box::pin(async move {
                    let _ = pending.await;
                    Err(injected())
                }))
            }
        }
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

const SUBMITTERS: usize = 48;
const COMMANDS_EACH: usize = 12;
/// Fewer emails than users asked for, so that some additions must be refused as taken.
const EMAILS: usize = 200;
/// Fewer partner numbers than providers onboarded, likewise.
const NUMBERS: usize = 60;

/// The commands of one submitter: users for the shared partner (from the shared pool of
/// emails), providers of their own (from the shared pool of partner numbers), and now and
/// then the same command sent twice at once.
fn commands_of(
    submitter: usize,
    partner: domain::PartnerId,
    admin: domain::UserId,
) -> Vec<CommandRequest> {
    (0..COMMANDS_EACH)
        .map(|i| {
            let n = submitter * COMMANDS_EACH + i;
            if n.is_multiple_of(3) {
                let number = format!("{}", 2_000_000 + (n * 7) % NUMBERS);
                request(Actor::Operator, onboard(&format!("Provider {n}"), &number))
            } else {
                let mut add = add_user(partner, "someone");
                add.email =
                    Email::parse(&format!("user{}@northwind.example", (n * 13) % EMAILS)).unwrap();
                request(Actor::user(admin), add)
            }
        })
        .collect()
}

/// Every answer a submitter got, by command id.
type Answers = Vec<(CommandRequest, Result<Outcome, HandleError>)>;

async fn run_submitters<S: EventStore + ?Sized>(
    handler: Arc<CommandHandler<S>>,
    partner: domain::PartnerId,
    admin: domain::UserId,
) -> Answers {
    let tasks = (0..SUBMITTERS).map(|submitter| {
        let handler = handler.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for (i, command) in commands_of(submitter, partner, admin)
                .into_iter()
                .enumerate()
            {
                if i % 5 == 4 {
                    // A retry that arrives while the first is still in flight.
                    let (first, again) = tokio::join!(
                        handler.handle(command.clone()),
                        handler.handle(command.clone())
                    );
                    answers.push((command.clone(), first));
                    answers.push((command, again));
                } else {
                    let answer = handler.handle(command.clone()).await;
                    answers.push((command, answer));
                }
            }
            answers
        })
    });
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        all.extend(task.unwrap());
    }
    all
}

/// The model check: the log, the write model and the answers agree.
async fn check<S: EventStore + ?Sized>(
    inner: Arc<S>,
    handler: &CommandHandler<S>,
    answers: &Answers,
    failure: Failure,
) {
    let log = inner
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
        .unwrap();
    let report = inner.verify().await.unwrap();
    assert!(report.damage.is_none(), "{report:?}");
    // Each command decided at most once: its events are one run of one stream.
    let mut by_command: HashMap<Uuid, Vec<&RecordedEvent>> = HashMap::new();
    for event in &log {
        by_command.entry(event.command_id).or_default().push(event);
    }
    for (command_id, events) in &by_command {
        let stream = &events[0].stream;
        assert!(
            events.iter().all(|e| &e.stream == stream),
            "{command_id} in two streams"
        );
        for pair in events.windows(2) {
            assert_eq!(
                pair[1].revision,
                pair[0].revision + 1,
                "{command_id} decided twice"
            );
        }
    }
    // A command sent twice at once may fail once and be recorded by its twin.
    let recorded_ids: HashSet<Uuid> = answers
        .iter()
        .filter(|(_, answer)| answer.is_ok())
        .map(|(request, _)| request.command_id)
        .collect();
    let mut recorded = 0;
    let mut refused_by_rule = 0;
    let mut failed = 0;
    for (request, answer) in answers {
        let in_log = by_command.get(&request.command_id);
        match answer {
            Ok(outcome) => {
                recorded += 1;
                let in_log =
                    in_log.unwrap_or_else(|| panic!("answered {outcome:?}, not in the log"));
                let positions: Vec<Position> = in_log.iter().map(|e| e.position).collect();
                let answered: Vec<Position> = outcome.events.iter().map(|e| e.position).collect();
                assert_eq!(positions, answered, "{}", request.command_id);
            }
            Err(HandleError::Rejected(_)) => {
                refused_by_rule += 1;
                // A refusal of a command whose twin was recorded would contradict the log.
                assert!(
                    in_log.is_none() || recorded_ids.contains(&request.command_id),
                    "refused, yet in the log: {request:?}"
                );
            }
            Err(HandleError::Store(StoreError::Io { .. })) => {
                failed += 1;
                if let Failure::Refused = failure {
                    assert!(
                        in_log.is_none() || recorded_ids.contains(&request.command_id),
                        "a refused append left events: {request:?}"
                    );
                }
            }
            Err(other) => panic!("unexpected answer {other}"),
        }
    }
    assert!(
        recorded > 0 && refused_by_rule > 0 && failed > 0,
        "{recorded} {refused_by_rule} {failed}"
    );
    // The rules across partners held: one user per email, one partner per number.
    let mut emails = HashSet::new();
    let mut numbers = HashSet::new();
    for event in &log {
        let (_, decoded) = handler::decode(event).unwrap();
        match decoded {
            Event::UserAdded(added) => assert!(emails.insert(added.email.to_string())),
            Event::ProviderOnboarded(onboarded) => {
                assert!(numbers.insert(onboarded.partner_number.to_string()))
            }
            _ => {}
        }
    }
    // Every email refused as taken is some user's in the log.
    for (_, answer) in answers {
        if let Err(HandleError::Rejected(Rejection::EmailTaken(email))) = answer {
            assert!(
                emails.contains(&email.to_string()),
                "{email} refused but free"
            );
        }
    }
    // The live write model is the log's.
    let (live, _) = handler.read_state(|state| state.clone()).await.unwrap();
    let rebuilt = handler_over(inner.clone()).await;
    let (from_log, _) = rebuilt.read_state(|state| state.clone()).await.unwrap();
    assert!(live == from_log, "the write model differs from the log's");
}

async fn scenario<S: EventStore + ?Sized>(
    inner: Arc<S>,
    every: u64,
    failure: Failure,
) -> (Answers, CommandHandler<S>) {
    let setup = handler_over(inner.clone()).await;
    let (partner, admin) = ready_provider(&setup, "1000001").await;
    drop(setup);
    let failing = Arc::new(FailingStore {
        inner: inner.clone(),
        every,
        failure,
        calls: AtomicU64::new(0),
    });
    let handler = Arc::new(handler_over(failing).await);
    assert!(handler.store().pipelines_appends());
    let answers = run_submitters(handler.clone(), partner, admin).await;
    // The handler's own model check, over the store without the failures.
    let (live, _) = handler.read_state(|state| state.clone()).await.unwrap();
    let plain = handler_over(inner.clone()).await;
    check(inner, &plain, &answers, failure).await;
    let (from_log, _) = plain.read_state(|state| state.clone()).await.unwrap();
    assert!(
        live == from_log,
        "the failing handler's model differs from the log's"
    );
    (answers, plain)
}

fn file_store() -> (tempfile::TempDir, Arc<filelog::FileStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = filelog::FileStore::open(dir.path(), filelog::FileStoreConfig::default()).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_appends_on_the_file_log_leave_nothing_behind_and_the_model_agrees() {
    // A few rounds: the races this looks for are a matter of timing.
    for every in [17, 13, 29, 7] {
        let (_dir, store) = file_store();
        scenario(store, every, Failure::Refused).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_answers_on_the_file_log_are_found_in_the_log_on_retry() {
    let (_dir, store) = file_store();
    let (answers, handler) = scenario(store.clone(), 23, Failure::AnswerLost).await;
    let log = store
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
        .unwrap();
    let in_log: HashSet<Uuid> = log.iter().map(|event| event.command_id).collect();
    let mut found = 0;
    for (request, answer) in &answers {
        if !matches!(answer, Err(HandleError::Store(_))) || !in_log.contains(&request.command_id) {
            continue;
        }
        // The append was made though its answer was lost: the retry gets it back and
        // appends nothing.
        let head = store.head().await.unwrap();
        let retry = handler.handle(request.clone()).await.unwrap();
        assert!(retry.replayed, "{request:?}");
        assert_eq!(store.head().await.unwrap(), head);
        found += 1;
    }
    assert!(found > 0, "no append had its answer lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_appends_on_the_memory_store_leave_nothing_behind_and_the_model_agrees() {
    scenario(Arc::new(MemoryStore::new()), 11, Failure::Refused).await;
}
