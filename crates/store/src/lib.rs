//! The event store interface of csp-ledger.
//!
//! Every backend — the in-memory one here, the embedded file log (`filelog`) and KurrentDB —
//! implements [`EventStore`]: append with optimistic concurrency and idempotent retries, read a
//! stream or the whole log in both directions, subscribe (catch-up then live), and verify the
//! hash chain. The store does not know the domain: it keeps the envelope's header fields and
//! the payload bytes.
//!
//! The `conformance` feature exposes the test suite every backend must pass.

mod append;
pub mod codec;
mod error;
mod memory;
mod subscription;
mod types;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;

pub use append::{AppendPlan, monotonic_recorded_at, plan_append};

/// The actor a backend gives an event that another program put among the ledger's streams
/// without the ledger's envelope (on KurrentDB, custom metadata that is not csp-ledger's):
/// it is at its position in the log, but it is none of the ledger's records, so it carries
/// no chain value, and readers report it as a fault instead of decoding it.
pub const UNENVELOPED_ACTOR: &str = "(not written by csp-ledger: no csp-ledger envelope)";
pub use error::{Damage, StoreError};
pub use memory::MemoryStore;
pub use subscription::{SUBSCRIPTION_PAGE_EVENTS, Subscription, SubscriptionItem, catch_up};
pub use types::{
    ACTOR_BYTES_MAX, APPEND_PAYLOAD_BYTES_MAX, AppendResult, Direction, EVENT_TYPE_BYTES_MAX,
    EVENTS_PER_APPEND_MAX, EventFilter, ExpectedRevision, LogTail, NewEvent, PAYLOAD_BYTES_MAX,
    PendingAppend, Position, ReadFrom, RecordedEvent, STREAM_NAME_BYTES_MAX, StreamName,
    SubscribeFrom, validate_batch,
};

/// The result of checking every record and the whole hash chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifyReport {
    /// Records checked and found intact (all of them when `damage` is `None`).
    pub records_intact: u64,
    /// The last intact record's position.
    pub last_position: Option<Position>,
    /// The chain value after the last intact record.
    pub chain: codec::ChainValue,
    /// The first damage found, if any.
    pub damage: Option<Damage>,
}

/// An event store backend.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if the stream is at `expected`.
    ///
    /// Returns only once the events are durable (for durable backends). On a wrong revision
    /// the error is [`StoreError::WrongExpectedRevision`] with the actual revision. Appending
    /// events whose ids were already appended to that stream at that place returns the
    /// original result and appends nothing.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Whether this backend pipelines appends ([`EventStore::submit`]). Such a backend
    /// numbers positions 0, 1, 2, … without gaps, so that a writer can tell the positions
    /// of its queued appends before they are made.
    fn pipelines_appends(&self) -> bool {
        false
    }

    /// Queues an append behind every append submitted or made before it, to be made only if
    /// the log then ends with `after`; otherwise it is refused with
    /// [`StoreError::TailMoved`] and nothing is appended. Returns once the append is queued;
    /// the [`PendingAppend`] resolves when it is durable (or refused).
    ///
    /// A writer can therefore decide its next append as if this one had succeeded, naming
    /// this one's last event as the next one's `after`: if this one fails, the log does not
    /// end as the next one expects, and it is refused too. Backends that do not pipeline
    /// ([`EventStore::pipelines_appends`] is false) refuse every submission.
    async fn submit(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: LogTail,
    ) -> Result<PendingAppend, StoreError> {
        let _ = (stream, expected, events, after);
        Err(StoreError::Invalid(
            "this backend does not pipeline appends".to_string(),
        ))
    }

    /// Reads up to `limit` events of `stream` from a revision (inclusive) in `direction`.
    /// A stream that does not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `limit` events of the whole log from a global position (inclusive) in
    /// `direction`.
    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last stream revision of `stream` (`None`: no such stream).
    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError>;

    /// The position of the last event in the log (`None`: empty log).
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// Subscribes to the whole log from `from`, catch-up then live, delivering only events
    /// that pass `filter`.
    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription;

    /// Checks every record and the whole hash chain; reports the first damage.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;
}
