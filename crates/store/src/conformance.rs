//! The conformance suite: one set of tests every [`EventStore`] backend must pass.
//!
//! A backend's test crate calls [`conformance_tests!`](crate::conformance_tests) with an async
//! function that makes a fresh, empty store; the macro expands to one `#[tokio::test]` per
//! case, so failures name the case. Each case is also a public function here, usable on its
//! own.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use crate::{
    Direction, EventFilter, EventStore, ExpectedRevision, LogTail, NewEvent, Position, ReadFrom,
    RecordedEvent, StoreError, StreamName, SubscribeFrom, Subscription, SubscriptionItem,
};

/// A store under test, and whatever must live as long as it (a temporary directory, a
/// server).
pub struct Fixture<S: ?Sized> {
    /// The store under test.
    pub store: Arc<S>,
    _keep_alive: Box<dyn Any + Send + Sync>,
}

impl<S: ?Sized> Fixture<S> {
    /// Wraps a store and what it needs kept alive.
    pub fn new(store: Arc<S>, keep_alive: impl Any + Send + Sync) -> Self {
        Self {
            store,
            _keep_alive: Box::new(keep_alive),
        }
    }
}

/// Expands to one test per conformance case, each on a fresh store from `$make`, an async
/// function returning a [`Fixture`]. Attributes written before `$make` go on every test: a
/// backend that needs an outside server passes `#[ignore = "needs …"]`, so that a run
/// without the server reports the tests as ignored rather than passed.
#[macro_export]
macro_rules! conformance_tests {
    ($(#[$attribute:meta])* $make:path) => {
        $crate::conformance_tests!(@cases [$(#[$attribute])*] $make;
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
            submissions_are_ordered_and_guarded_by_the_tail,
            a_refused_submission_refuses_those_queued_behind_it,
        );
        #[test]
        $(#[$attribute])*
        fn conformance_model_random_appends_and_reads() {
            $crate::conformance::model_test(|| $make());
        }
    };
    // One case at a time, so that the attributes repeat once per case.
    (@cases [$($attributes:tt)*] $make:path; $case:ident, $($rest:ident,)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attributes)*
        async fn $case() {
            $crate::conformance::$case($make().await).await;
        }
        $crate::conformance_tests!(@cases [$($attributes)*] $make; $($rest,)*);
    };
    (@cases [$($attributes:tt)*] $make:path;) => {};
}

/// How long a subscription test waits for an event before declaring it lost.
const WAIT: Duration = Duration::from_secs(10);

fn stream(name: &str) -> StreamName {
    match StreamName::new(name) {
        Ok(stream) => stream,
        Err(error) => panic!("test stream name {name:?}: {error}"),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    match Utc.timestamp_opt(1_790_000_000 + seconds, 0) {
        chrono::LocalResult::Single(time) => time,
        _ => panic!("test time out of range"),
    }
}

/// A new event with a fresh id, a type and a payload naming it.
pub fn event(event_type: &str, payload: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_string(),
        schema_version: 1,
        recorded_at: at(0),
        actor: "operator".into(),
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        payload: payload.as_bytes().to_vec(),
    }
}

fn events(count: usize, prefix: &str) -> Vec<NewEvent> {
    (0..count)
        .map(|i| event("Happened", &format!("{prefix}{i}")))
        .collect()
}

async fn append<S: EventStore + ?Sized>(
    store: &S,
    name: &str,
    expected: ExpectedRevision,
    batch: Vec<NewEvent>,
) -> crate::AppendResult {
    match store.append(&stream(name), expected, batch).await {
        Ok(result) => result,
        Err(error) => panic!("append to {name} at {expected} failed: {error}"),
    }
}

async fn read_all<S: EventStore + ?Sized>(store: &S) -> Vec<RecordedEvent> {
    match store
        .read_all(ReadFrom::Start, Direction::Forwards, usize::MAX)
        .await
    {
        Ok(events) => events,
        Err(error) => panic!("read_all failed: {error}"),
    }
}

async fn read_stream<S: EventStore + ?Sized>(
    store: &S,
    name: &str,
    from: ReadFrom,
    direction: Direction,
    limit: usize,
) -> Vec<RecordedEvent> {
    match store
        .read_stream(&stream(name), from, direction, limit)
        .await
    {
        Ok(events) => events,
        Err(error) => panic!("read_stream {name} failed: {error}"),
    }
}

fn payloads(events: &[RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect()
}

fn assert_conflict(result: Result<crate::AppendResult, StoreError>, actual: Option<u64>) {
    match result {
        Err(StoreError::WrongExpectedRevision { actual: got, .. }) => assert_eq!(got, actual),
        other => panic!("expected a wrong-expected-revision conflict, got {other:?}"),
    }
}

/// The first append with `NoStream` creates the stream at revision 0.
pub async fn append_creates_stream_at_revision_zero<S: EventStore + ?Sized>(f: Fixture<S>) {
    let result = append(&*f.store, "a-1", ExpectedRevision::NoStream, events(3, "x")).await;
    assert_eq!(result.revision, 2);
    assert_eq!(result.positions.len(), 3);
    assert!(result.positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        f.store.stream_revision(&stream("a-1")).await.ok(),
        Some(Some(2))
    );
}

/// `NoStream` on an existing stream is a conflict that names the actual revision.
pub async fn no_stream_conflicts_on_existing_stream<S: EventStore + ?Sized>(f: Fixture<S>) {
    append(&*f.store, "a-1", ExpectedRevision::NoStream, events(2, "x")).await;
    let result = f
        .store
        .append(&stream("a-1"), ExpectedRevision::NoStream, events(1, "y"))
        .await;
    assert_conflict(result, Some(1));
    assert_eq!(read_all(&*f.store).await.len(), 2);
}

/// `Exact(r)` appends when the stream is at `r` and conflicts otherwise (also on a missing
/// stream).
pub async fn exact_revision_appends_and_conflicts<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    assert_conflict(
        s.append(&stream("a-1"), ExpectedRevision::Exact(0), events(1, "x"))
            .await,
        None,
    );
    append(s, "a-1", ExpectedRevision::NoStream, events(1, "a")).await;
    let result = append(s, "a-1", ExpectedRevision::Exact(0), events(2, "b")).await;
    assert_eq!(result.revision, 2);
    assert_conflict(
        s.append(&stream("a-1"), ExpectedRevision::Exact(1), events(1, "c"))
            .await,
        Some(2),
    );
    assert_conflict(
        s.append(&stream("a-1"), ExpectedRevision::Exact(7), events(1, "c"))
            .await,
        Some(2),
    );
    let result = append(s, "a-1", ExpectedRevision::Exact(2), events(1, "d")).await;
    assert_eq!(result.revision, 3);
    assert_eq!(read_all(s).await.len(), 4);
}

/// `StreamExists` conflicts on a missing stream and appends to an existing one.
pub async fn stream_exists_requires_stream<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    assert_conflict(
        s.append(
            &stream("a-1"),
            ExpectedRevision::StreamExists,
            events(1, "x"),
        )
        .await,
        None,
    );
    append(s, "a-1", ExpectedRevision::Any, events(1, "a")).await;
    let result = append(s, "a-1", ExpectedRevision::StreamExists, events(1, "b")).await;
    assert_eq!(result.revision, 1);
}

/// `Any` appends to new and existing streams alike.
pub async fn any_always_appends<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    assert_eq!(
        append(s, "a-1", ExpectedRevision::Any, events(1, "a"))
            .await
            .revision,
        0
    );
    assert_eq!(
        append(s, "a-1", ExpectedRevision::Any, events(1, "b"))
            .await
            .revision,
        1
    );
    assert_eq!(
        append(s, "b-1", ExpectedRevision::Any, events(1, "c"))
            .await
            .revision,
        0
    );
}

/// Retrying an `Exact` append that succeeded returns the original result, appends nothing.
pub async fn retry_with_exact_revision_is_idempotent<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::NoStream, events(1, "a")).await;
    let batch = events(2, "b");
    let first = append(s, "a-1", ExpectedRevision::Exact(0), batch.clone()).await;
    append(s, "other-1", ExpectedRevision::Any, events(1, "o")).await;
    append(s, "a-1", ExpectedRevision::Exact(2), events(1, "c")).await;
    let retry = append(s, "a-1", ExpectedRevision::Exact(0), batch).await;
    assert_eq!(retry, first);
    assert_eq!(read_all(s).await.len(), 5);
}

/// Retrying a `NoStream` append that succeeded returns the original result.
pub async fn retry_with_no_stream_is_idempotent<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let batch = events(2, "a");
    let first = append(s, "a-1", ExpectedRevision::NoStream, batch.clone()).await;
    let retry = append(s, "a-1", ExpectedRevision::NoStream, batch).await;
    assert_eq!(retry, first);
    assert_eq!(read_all(s).await.len(), 2);
}

/// Retrying an `Any` append right after it succeeded returns the original result.
pub async fn retry_with_any_is_idempotent<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::Any, events(1, "a")).await;
    let batch = events(2, "b");
    let first = append(s, "a-1", ExpectedRevision::Any, batch.clone()).await;
    let retry = append(s, "a-1", ExpectedRevision::Any, batch).await;
    assert_eq!(retry, first);
    assert_eq!(read_all(s).await.len(), 3);
}

/// A retry whose ids only partly match what is stored there is a conflict, not a silent merge.
pub async fn partial_retry_conflicts<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let mut batch = events(2, "a");
    append(s, "a-1", ExpectedRevision::NoStream, batch.clone()).await;
    batch[1] = event("Happened", "different");
    assert_conflict(
        s.append(&stream("a-1"), ExpectedRevision::NoStream, batch)
            .await,
        Some(1),
    );
    assert_eq!(read_all(s).await.len(), 2);
}

/// Empty batches, duplicate ids and oversized fields are refused and write nothing.
pub async fn invalid_batches_write_nothing<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let refused = |result: Result<crate::AppendResult, StoreError>| {
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "expected invalid, got {result:?}"
        )
    };
    refused(
        s.append(&stream("a-1"), ExpectedRevision::Any, vec![])
            .await,
    );
    let one = event("Happened", "x");
    refused(
        s.append(
            &stream("a-1"),
            ExpectedRevision::Any,
            vec![one.clone(), one],
        )
        .await,
    );
    let mut big = event("Happened", "x");
    big.payload = vec![0; crate::PAYLOAD_BYTES_MAX + 1];
    refused(
        s.append(&stream("a-1"), ExpectedRevision::Any, vec![big])
            .await,
    );
    let mut untyped = event("", "x");
    untyped.event_type.clear();
    refused(
        s.append(&stream("a-1"), ExpectedRevision::Any, vec![untyped])
            .await,
    );
    assert!(read_all(s).await.is_empty());
    assert_eq!(s.head().await.ok(), Some(None));
}

/// Every envelope field comes back as written.
pub async fn envelope_round_trips<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let mut written = event("EnrollmentStarted", "payload");
    written.schema_version = 3;
    written.actor = "user:0191".into();
    written.recorded_at = at(5) + chrono::Duration::nanoseconds(123_456_789);
    written.payload = (0..=255).collect();
    let result = append(
        s,
        "partner-1",
        ExpectedRevision::NoStream,
        vec![written.clone()],
    )
    .await;
    let read = read_stream(s, "partner-1", ReadFrom::Start, Direction::Forwards, 10).await;
    let expected = RecordedEvent::place(
        written,
        stream("partner-1"),
        0,
        result.positions[0],
        at(5) + chrono::Duration::nanoseconds(123_456_789),
    );
    assert_eq!(read, vec![expected.clone()]);
    assert_eq!(read_all(s).await, vec![expected]);
}

/// An event stamped earlier than the one before it is recorded at the earlier one's time.
pub async fn recorded_at_never_goes_backwards<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let mut late = event("Happened", "late");
    late.recorded_at = at(100);
    let mut early = event("Happened", "early");
    early.recorded_at = at(50);
    append(s, "a-1", ExpectedRevision::Any, vec![late]).await;
    append(s, "b-1", ExpectedRevision::Any, vec![early]).await;
    let all = read_all(s).await;
    assert_eq!(all[1].recorded_at, at(100));
}

/// Stream reads from the start, the end or a revision, both ways, honour the limit.
pub async fn read_stream_both_directions_with_limits<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    for i in 0..5 {
        append(
            s,
            "a-1",
            ExpectedRevision::Any,
            vec![event("Happened", &format!("a{i}"))],
        )
        .await;
        append(
            s,
            "b-1",
            ExpectedRevision::Any,
            vec![event("Happened", &format!("b{i}"))],
        )
        .await;
    }
    use Direction::{Backwards, Forwards};
    let cases = [
        (
            ReadFrom::Start,
            Forwards,
            10,
            vec!["a0", "a1", "a2", "a3", "a4"],
        ),
        (ReadFrom::Start, Forwards, 2, vec!["a0", "a1"]),
        (ReadFrom::At(3), Forwards, 10, vec!["a3", "a4"]),
        (ReadFrom::At(9), Forwards, 10, vec![]),
        (ReadFrom::End, Forwards, 10, vec![]),
        (
            ReadFrom::End,
            Backwards,
            10,
            vec!["a4", "a3", "a2", "a1", "a0"],
        ),
        (ReadFrom::End, Backwards, 2, vec!["a4", "a3"]),
        (ReadFrom::At(2), Backwards, 10, vec!["a2", "a1", "a0"]),
        (ReadFrom::At(99), Backwards, 1, vec!["a4"]),
        (ReadFrom::Start, Backwards, 10, vec!["a0"]),
        (ReadFrom::Start, Forwards, 0, vec![]),
    ];
    for (from, direction, limit, expected) in cases {
        let read = read_stream(s, "a-1", from, direction, limit).await;
        assert_eq!(payloads(&read), expected, "{from:?} {direction:?} {limit}");
        for event in &read {
            assert_eq!(event.stream.as_str(), "a-1");
            assert_eq!(
                event.payload,
                format!("a{}", event.revision).into_bytes(),
                "revision numbers the stream's events"
            );
        }
    }
}

/// Reads of the whole log from the start, the end or a position, both ways, honour the limit.
pub async fn read_all_both_directions_with_limits<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    for i in 0..6 {
        let name = if i % 2 == 0 { "a-1" } else { "b-1" };
        append(
            s,
            name,
            ExpectedRevision::Any,
            vec![event("Happened", &format!("e{i}"))],
        )
        .await;
    }
    let all = read_all(s).await;
    assert_eq!(payloads(&all), ["e0", "e1", "e2", "e3", "e4", "e5"]);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let p = |i: usize| all[i].position.0;
    use Direction::{Backwards, Forwards};
    let cases = [
        (ReadFrom::Start, Forwards, 4, vec!["e0", "e1", "e2", "e3"]),
        (ReadFrom::At(p(2)), Forwards, 2, vec!["e2", "e3"]),
        (ReadFrom::At(p(5) + 1), Forwards, 2, vec![]),
        (ReadFrom::End, Forwards, 2, vec![]),
        (ReadFrom::End, Backwards, 3, vec!["e5", "e4", "e3"]),
        (ReadFrom::At(p(1)), Backwards, 10, vec!["e1", "e0"]),
        (ReadFrom::At(p(5) + 100), Backwards, 1, vec!["e5"]),
    ];
    for (from, direction, limit, expected) in cases {
        let read = match s.read_all(from, direction, limit).await {
            Ok(read) => read,
            Err(error) => panic!("read_all failed: {error}"),
        };
        assert_eq!(payloads(&read), expected, "{from:?} {direction:?} {limit}");
    }
}

/// A stream that was never written reads as empty and has no revision.
pub async fn missing_stream_reads_empty<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::Any, events(1, "a")).await;
    for direction in [Direction::Forwards, Direction::Backwards] {
        assert!(
            read_stream(s, "nope-1", ReadFrom::Start, direction, 10)
                .await
                .is_empty()
        );
        assert!(
            read_stream(s, "nope-1", ReadFrom::End, direction, 10)
                .await
                .is_empty()
        );
    }
    assert_eq!(s.stream_revision(&stream("nope-1")).await.ok(), Some(None));
}

/// `head` is empty on an empty log and then the last appended position.
pub async fn head_follows_appends<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    assert_eq!(s.head().await.ok(), Some(None));
    let first = append(s, "a-1", ExpectedRevision::Any, events(2, "a")).await;
    assert_eq!(s.head().await.ok(), Some(first.positions.last().copied()));
    let second = append(s, "b-1", ExpectedRevision::Any, events(1, "b")).await;
    assert_eq!(s.head().await.ok(), Some(second.positions.last().copied()));
}

/// Of many writers racing at the same expected revision, exactly one wins.
pub async fn concurrent_appends_at_same_revision_one_wins<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = f.store.clone();
    append(&*s, "a-1", ExpectedRevision::NoStream, events(1, "a")).await;
    let racers = (0..16).map(|i| {
        let s = s.clone();
        async move {
            s.append(
                &stream("a-1"),
                ExpectedRevision::Exact(0),
                vec![event("Happened", &format!("r{i}"))],
            )
            .await
        }
    });
    let results = futures::future::join_all(racers).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_conflict(result, Some(1));
    }
}

async fn next_item(sub: &mut Subscription) -> SubscriptionItem {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        Ok(Some(Err(error))) => panic!("subscription failed: {error}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no subscription item within {WAIT:?}"),
    }
}

async fn next_payload(sub: &mut Subscription) -> String {
    match next_item(sub).await {
        SubscriptionItem::Event(event) => String::from_utf8_lossy(&event.payload).into_owned(),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Checks that no further event arrives (the one-time caught-up marker may).
async fn assert_quiet(sub: &mut Subscription) {
    loop {
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Err(_) => return,
            Ok(Some(Ok(SubscriptionItem::CaughtUp { .. }))) => continue,
            Ok(item) => panic!("expected nothing more, got {item:?}"),
        }
    }
}

/// A subscription from the start delivers the past, says it caught up, then delivers new
/// events as they are appended.
pub async fn subscription_catches_up_then_goes_live<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::Any, events(3, "old")).await;
    let mut sub = f
        .store
        .clone()
        .subscribe_all(SubscribeFrom::Start, EventFilter::all());
    for i in 0..3 {
        assert_eq!(next_payload(&mut sub).await, format!("old{i}"));
    }
    let head = s.head().await.ok().flatten();
    assert_eq!(
        next_item(&mut sub).await,
        SubscriptionItem::CaughtUp { head }
    );
    append(s, "b-1", ExpectedRevision::Any, events(2, "new")).await;
    assert_eq!(next_payload(&mut sub).await, "new0");
    assert_eq!(next_payload(&mut sub).await, "new1");
    assert_quiet(&mut sub).await;
}

/// A subscription from the end delivers only what is appended afterwards.
pub async fn subscription_from_end_sees_only_new_events<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::Any, events(3, "old")).await;
    let mut sub = f
        .store
        .clone()
        .subscribe_all(SubscribeFrom::End, EventFilter::all());
    assert!(matches!(
        next_item(&mut sub).await,
        SubscriptionItem::CaughtUp { .. }
    ));
    append(s, "a-1", ExpectedRevision::Any, events(1, "new")).await;
    assert_eq!(next_payload(&mut sub).await, "new0");
}

/// Resuming after the last processed position continues without gap or duplicate.
pub async fn subscription_resumes_after_position<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    append(s, "a-1", ExpectedRevision::Any, events(5, "e")).await;
    let mut first = f
        .store
        .clone()
        .subscribe_all(SubscribeFrom::Start, EventFilter::all());
    let mut last = None;
    for _ in 0..3 {
        if let SubscriptionItem::Event(event) = next_item(&mut first).await {
            last = Some(event.position);
        }
    }
    drop(first);
    let Some(last) = last else {
        panic!("no event before the disconnect")
    };
    append(s, "a-1", ExpectedRevision::Any, events(2, "f")).await;
    let mut resumed = f
        .store
        .clone()
        .subscribe_all(SubscribeFrom::After(last), EventFilter::all());
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_payload(&mut resumed).await);
    }
    assert_eq!(seen, ["e3", "e4", "f0", "f1"]);
}

/// Filters by event type and by stream prefix, in catch-up and live alike.
pub async fn subscription_filters_by_type_and_prefix<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let typed = |t: &str, p: &str| vec![event(t, p)];
    append(
        s,
        "partner-1",
        ExpectedRevision::Any,
        typed("Enrolled", "p1"),
    )
    .await;
    append(
        s,
        "customer-1",
        ExpectedRevision::Any,
        typed("Accepted", "c1"),
    )
    .await;
    append(s, "partner-2", ExpectedRevision::Any, typed("Signed", "p2")).await;
    let by_prefix = EventFilter {
        event_types: vec![],
        stream_prefixes: vec!["partner-".into()],
    };
    let by_type = EventFilter {
        event_types: vec!["Accepted".into(), "Signed".into()],
        stream_prefixes: vec![],
    };
    let both = EventFilter {
        event_types: vec!["Signed".into()],
        stream_prefixes: vec!["partner-".into()],
    };
    let mut subs = [by_prefix, by_type, both]
        .map(|filter| f.store.clone().subscribe_all(SubscribeFrom::Start, filter));
    append(s, "partner-3", ExpectedRevision::Any, typed("Signed", "p3")).await;
    append(
        s,
        "customer-2",
        ExpectedRevision::Any,
        typed("Accepted", "c2"),
    )
    .await;
    let expected: [&[&str]; 3] = [
        &["p1", "p2", "p3"],
        &["c1", "p2", "p3", "c2"],
        &["p2", "p3"],
    ];
    for (sub, expected) in subs.iter_mut().zip(expected) {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            if let SubscriptionItem::Event(event) = next_item(sub).await {
                seen.push(String::from_utf8_lossy(&event.payload).into_owned());
            }
        }
        assert_eq!(seen, expected);
        assert_quiet(sub).await;
    }
}

/// Writers appending while a subscriber catches up: every event arrives once, in order.
pub async fn subscription_under_concurrent_writers_has_no_gap_or_duplicate<
    S: EventStore + ?Sized,
>(
    f: Fixture<S>,
) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 100;
    append(&*f.store, "seed-1", ExpectedRevision::Any, events(50, "s")).await;
    let mut sub = f
        .store
        .clone()
        .subscribe_all(SubscribeFrom::Start, EventFilter::all());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = f.store.clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    let name = format!("w{w}-1");
                    let batch = vec![event("Happened", &format!("w{w}-{i}"))];
                    if let Err(error) = s.append(&stream(&name), ExpectedRevision::Any, batch).await
                    {
                        panic!("writer append failed: {error}");
                    }
                }
            })
        })
        .collect();
    let mut received = Vec::new();
    while received.len() < 50 + WRITERS * PER_WRITER {
        if let SubscriptionItem::Event(event) = next_item(&mut sub).await {
            received.push(event);
        }
    }
    for writer in writers {
        if let Err(error) = writer.await {
            panic!("writer task: {error}");
        }
    }
    assert_quiet(&mut sub).await;
    assert_eq!(received, read_all(&*f.store).await);
    let positions: Vec<Position> = received.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

fn tail_of(batch: &[NewEvent], first_position: u64) -> LogTail {
    match batch.last() {
        Some(last) => LogTail::Last {
            position: Position(first_position + batch.len() as u64 - 1),
            event_id: last.event_id,
        },
        None => panic!("a test batch is never empty"),
    }
}

/// A pipelining backend makes submitted appends in submission order, each only if the log
/// ends as its writer expected, without the writer waiting for the one before; a backend
/// that does not pipeline refuses submissions and says so.
pub async fn submissions_are_ordered_and_guarded_by_the_tail<S: EventStore + ?Sized>(
    f: Fixture<S>,
) {
    let s = &*f.store;
    if !s.pipelines_appends() {
        let refused = s
            .submit(
                &stream("a-1"),
                ExpectedRevision::Any,
                events(1, "a"),
                LogTail::Empty,
            )
            .await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))));
        assert_eq!(read_all(s).await.len(), 0);
        return;
    }
    let first = events(2, "a");
    let first_tail = tail_of(&first, 0);
    let second = events(1, "b");
    let second_tail = tail_of(&second, 2);
    // Both queued before either is awaited: the second is decided on the first's success.
    let pending_first = s
        .submit(
            &stream("a-1"),
            ExpectedRevision::NoStream,
            first,
            LogTail::Empty,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    let pending_second = s
        .submit(
            &stream("a-1"),
            ExpectedRevision::Exact(1),
            second,
            first_tail,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    let (first, second) = futures::join!(pending_first, pending_second);
    let first = first.unwrap_or_else(|error| panic!("first: {error}"));
    let second = second.unwrap_or_else(|error| panic!("second: {error}"));
    assert_eq!(first.positions, vec![Position(0), Position(1)]);
    assert_eq!(second.positions, vec![Position(2)]);
    // A stale tail (the log moved on) is refused and writes nothing.
    let stale = s
        .submit(
            &stream("b-1"),
            ExpectedRevision::Any,
            events(1, "c"),
            first_tail,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    match stale.await {
        Err(StoreError::TailMoved { expected, actual }) => {
            assert_eq!(expected, first_tail);
            assert_eq!(actual, second_tail);
        }
        other => panic!("a stale tail must be refused, got {other:?}"),
    }
    // So is the right position with another event there.
    let impostor = LogTail::Last {
        position: Position(2),
        event_id: Uuid::now_v7(),
    };
    let pending = s
        .submit(
            &stream("b-1"),
            ExpectedRevision::Any,
            events(1, "d"),
            impostor,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    assert!(matches!(pending.await, Err(StoreError::TailMoved { .. })));
    // A plain append is not guarded, and moves the tail for the next submission.
    let plain = append(s, "c-1", ExpectedRevision::Any, events(1, "e")).await;
    assert_eq!(plain.positions, vec![Position(3)]);
    let pending = s
        .submit(
            &stream("c-1"),
            ExpectedRevision::Exact(0),
            events(1, "f"),
            second_tail,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    assert!(matches!(pending.await, Err(StoreError::TailMoved { .. })));
    assert_eq!(read_all(s).await.len(), 4);
}

/// When a queued submission is refused, every submission queued behind it on the
/// assumption that it succeeds is refused too, even one whose stream revision still fits:
/// the log never holds a decision made on an append that did not happen.
pub async fn a_refused_submission_refuses_those_queued_behind_it<S: EventStore + ?Sized>(
    f: Fixture<S>,
) {
    let s = &*f.store;
    if !s.pipelines_appends() {
        let refused = s
            .submit(
                &stream("a-1"),
                ExpectedRevision::Any,
                events(1, "a"),
                LogTail::Empty,
            )
            .await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))));
        return;
    }
    append(s, "a-1", ExpectedRevision::NoStream, events(1, "a")).await;
    // Decided as if the log were empty: refused by its tail.
    let doomed = events(1, "b");
    let doomed_tail = tail_of(&doomed, 0);
    let pending_doomed = s
        .submit(
            &stream("b-1"),
            ExpectedRevision::NoStream,
            doomed,
            LogTail::Empty,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    // Decided on the doomed one: its stream revision would fit, its tail does not.
    let pending_behind = s
        .submit(
            &stream("c-1"),
            ExpectedRevision::NoStream,
            events(1, "c"),
            doomed_tail,
        )
        .await
        .unwrap_or_else(|error| panic!("submit: {error}"));
    let (doomed, behind) = futures::join!(pending_doomed, pending_behind);
    assert!(matches!(doomed, Err(StoreError::TailMoved { .. })));
    assert!(matches!(behind, Err(StoreError::TailMoved { .. })));
    assert_eq!(read_all(s).await.len(), 1);
}

/// An intact log verifies, counting every record.
pub async fn verify_intact_log<S: EventStore + ?Sized>(f: Fixture<S>) {
    let s = &*f.store;
    let empty = match s.verify().await {
        Ok(report) => report,
        Err(error) => panic!("verify failed: {error}"),
    };
    assert_eq!(empty.records_intact, 0);
    append(s, "a-1", ExpectedRevision::Any, events(7, "a")).await;
    append(s, "b-1", ExpectedRevision::Any, events(3, "b")).await;
    let report = match s.verify().await {
        Ok(report) => report,
        Err(error) => panic!("verify failed: {error}"),
    };
    assert_eq!(report.damage, None);
    assert_eq!(report.records_intact, 10);
    assert_eq!(report.last_position, s.head().await.ok().flatten());
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Step {
    /// Append `count` new events to stream `stream` with an expected revision derived from
    /// the model (right, wrong or unchecked).
    Append {
        stream: u8,
        count: u8,
        expectation: Expectation,
    },
    /// Re-send the batch of an earlier append with its original expected revision.
    Retry { earlier: u8 },
    /// Read a stream.
    ReadStream {
        stream: u8,
        from: u8,
        backwards: bool,
        limit: u8,
    },
    /// Read the whole log.
    ReadAll {
        from: u8,
        backwards: bool,
        limit: u8,
    },
}

#[derive(Clone, Copy, Debug)]
enum Expectation {
    Right,
    WrongBy(u8),
    NoStream,
    StreamExists,
    Any,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let expectation = prop_oneof![
        4 => Just(Expectation::Right),
        1 => (1u8..3).prop_map(Expectation::WrongBy),
        1 => Just(Expectation::NoStream),
        1 => Just(Expectation::StreamExists),
        2 => Just(Expectation::Any),
    ];
    prop_oneof![
        5 => (0u8..4, 1u8..4, expectation).prop_map(|(stream, count, expectation)| Step::Append { stream, count, expectation }),
        1 => any::<u8>().prop_map(|earlier| Step::Retry { earlier }),
        2 => (0u8..4, 0u8..8, any::<bool>(), 0u8..6).prop_map(|(stream, from, backwards, limit)| Step::ReadStream { stream, from, backwards, limit }),
        2 => (0u8..24, any::<bool>(), 0u8..8).prop_map(|(from, backwards, limit)| Step::ReadAll { from, backwards, limit }),
    ]
}

/// The reference model: a list of (stream, event id, payload), nothing else.
#[derive(Default)]
struct Model {
    log: Vec<(String, Uuid, Vec<u8>)>,
}

impl Model {
    fn revision(&self, stream: &str) -> Option<u64> {
        let count = self.log.iter().filter(|(s, ..)| s == stream).count() as u64;
        count.checked_sub(1)
    }

    fn stream_ids(&self, stream: &str) -> Vec<Uuid> {
        self.log
            .iter()
            .filter(|(s, ..)| s == stream)
            .map(|(_, id, _)| *id)
            .collect()
    }

    /// Applies the append rules of the store interface, written out plainly.
    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        batch: &[NewEvent],
    ) -> Result<u64, Option<u64>> {
        let current = self.revision(stream);
        let ids = self.stream_ids(stream);
        let new_ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        let stored_at = |first: usize| ids.get(first..first + new_ids.len()) == Some(&new_ids[..]);
        let next = ids.len();
        let retried = match expected {
            ExpectedRevision::Exact(r) if current != Some(r) => {
                if stored_at(r as usize + 1) {
                    return Ok(r + new_ids.len() as u64);
                }
                return Err(current);
            }
            ExpectedRevision::NoStream if current.is_some() => {
                if stored_at(0) {
                    return Ok(new_ids.len() as u64 - 1);
                }
                return Err(current);
            }
            ExpectedRevision::StreamExists if current.is_none() => return Err(None),
            ExpectedRevision::Any | ExpectedRevision::StreamExists => {
                next >= new_ids.len() && stored_at(next - new_ids.len())
            }
            _ => false,
        };
        if retried {
            return Ok(next as u64 - 1);
        }
        for event in batch {
            self.log
                .push((stream.to_string(), event.event_id, event.payload.clone()));
        }
        Ok(self.revision(stream).unwrap_or_default())
    }
}

/// Random sequences of appends (right, wrong and unchecked expected revisions, retries of
/// earlier appends) and reads, each compared with a plain reference model.
pub fn model_test<S, F, Fut>(make: F)
where
    S: EventStore + ?Sized,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Fixture<S>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("tokio runtime: {error}"),
    };
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step_strategy(), 1..40))| {
        runtime.block_on(async {
            let fixture = make().await;
            let store = &*fixture.store;
            let mut model = Model::default();
            let mut sent: Vec<(String, ExpectedRevision, Vec<NewEvent>)> = Vec::new();
            let mut counter = 0u32;
            for step in steps {
                match step {
                    Step::Append { stream: s, count, expectation } => {
                        let name = format!("s{s}-x");
                        let current = model.revision(&name);
                        let expected = match expectation {
                            Expectation::Right => current.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact),
                            Expectation::WrongBy(by) => ExpectedRevision::Exact(current.map_or(u64::from(by) - 1, |c| c + u64::from(by))),
                            Expectation::NoStream => ExpectedRevision::NoStream,
                            Expectation::StreamExists => ExpectedRevision::StreamExists,
                            Expectation::Any => ExpectedRevision::Any,
                        };
                        let batch: Vec<NewEvent> = (0..count).map(|_| { counter += 1; event("Happened", &format!("m{counter}")) }).collect();
                        check_append(store, &mut model, &name, expected, &batch).await;
                        sent.push((name, expected, batch));
                    }
                    Step::Retry { earlier } => {
                        if sent.is_empty() { continue; }
                        let (name, expected, batch) = sent[usize::from(earlier) % sent.len()].clone();
                        check_append(store, &mut model, &name, expected, &batch).await;
                    }
                    Step::ReadStream { stream: s, from, backwards, limit } => {
                        let name = format!("s{s}-x");
                        let direction = if backwards { Direction::Backwards } else { Direction::Forwards };
                        let got = read_stream(store, &name, ReadFrom::At(u64::from(from)), direction, usize::from(limit)).await;
                        let all: Vec<&Vec<u8>> = model.log.iter().filter(|(n, ..)| *n == name).map(|(_, _, p)| p).collect();
                        let want = model_slice(&all, usize::from(from), backwards, usize::from(limit));
                        let got: Vec<&Vec<u8>> = got.iter().map(|e| &e.payload).collect();
                        assert_eq!(got, want, "read_stream {name} from {from} backwards={backwards} limit={limit}");
                    }
                    Step::ReadAll { from, backwards, limit } => {
                        let direction = if backwards { Direction::Backwards } else { Direction::Forwards };
                        let everything = read_all(store).await;
                        assert_eq!(everything.len(), model.log.len());
                        // Positions may have gaps on some backends: translate the model's index to the store's position.
                        let index = usize::from(from);
                        let from_position = everything.get(index).map_or(u64::MAX - 1, |e| e.position.0);
                        let got = match store.read_all(ReadFrom::At(from_position), direction, usize::from(limit)).await {
                            Ok(got) => got,
                            Err(error) => panic!("read_all: {error}"),
                        };
                        let all: Vec<&Vec<u8>> = model.log.iter().map(|(_, _, p)| p).collect();
                        let want = if index >= all.len() && backwards {
                            model_slice(&all, all.len(), backwards, usize::from(limit))
                        } else {
                            model_slice(&all, index, backwards, usize::from(limit))
                        };
                        let got: Vec<&Vec<u8>> = got.iter().map(|e| &e.payload).collect();
                        assert_eq!(got, want, "read_all from #{from} backwards={backwards} limit={limit}");
                    }
                }
            }
        });
    });
}

fn model_slice<'a>(
    all: &[&'a Vec<u8>],
    from: usize,
    backwards: bool,
    limit: usize,
) -> Vec<&'a Vec<u8>> {
    if backwards {
        let end = from.saturating_add(1).min(all.len());
        all[..end].iter().rev().take(limit).copied().collect()
    } else {
        all.iter().skip(from).take(limit).copied().collect()
    }
}

async fn check_append<S: EventStore + ?Sized>(
    store: &S,
    model: &mut Model,
    name: &str,
    expected: ExpectedRevision,
    batch: &[NewEvent],
) {
    let want = model.append(name, expected, batch);
    let got = store.append(&stream(name), expected, batch.to_vec()).await;
    match (want, got) {
        (Ok(revision), Ok(result)) => {
            assert_eq!(result.revision, revision, "append to {name} at {expected}");
            assert_eq!(result.positions.len(), batch.len());
        }
        (Err(actual), Err(StoreError::WrongExpectedRevision { actual: got, .. })) => {
            assert_eq!(got, actual, "conflict on {name} at {expected}");
        }
        (want, got) => {
            panic!("append to {name} at {expected}: model says {want:?}, store says {got:?}")
        }
    }
}
