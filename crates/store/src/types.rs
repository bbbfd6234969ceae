//! The event envelope and the vocabulary of the store interface.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// Longest stream name, in bytes. Stream names are identifiers, not documents.
pub const STREAM_NAME_BYTES_MAX: usize = 512;
/// Longest event type name, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 128;
/// Longest actor description, in bytes.
pub const ACTOR_BYTES_MAX: usize = 1024;
/// Largest payload of one event, in bytes. A relationship fact is small; a megabyte is a bug.
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Most events in one append. One command records a handful; bulk import batches stay bounded.
pub const EVENTS_PER_APPEND_MAX: usize = 10_000;
/// Most payload bytes in one append, all events together, so that a single append cannot
/// ask a backend to hold gigabytes at once.
pub const APPEND_PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The name of a stream: one per aggregate (`partner-{id}`, `customer-{id}`, …).
///
/// Valid names are 1 to [`STREAM_NAME_BYTES_MAX`] bytes of printable characters (no control
/// characters, no whitespace) and do not start with `$`, which KurrentDB reserves for its own
/// streams.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    /// Checks and wraps a stream name.
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        if name.is_empty() || name.len() > STREAM_NAME_BYTES_MAX {
            return Err(StoreError::Invalid(format!(
                "stream name must be 1 to {STREAM_NAME_BYTES_MAX} bytes, got {}",
                name.len()
            )));
        }
        if name.starts_with('$') {
            return Err(StoreError::Invalid(format!(
                "stream name {name:?} starts with '$', which is reserved for system streams"
            )));
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(StoreError::Invalid(format!(
                "stream name {name:?} contains whitespace or control characters"
            )));
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl TryFrom<&str> for StreamName {
    type Error = StoreError;
    fn try_from(name: &str) -> Result<Self, StoreError> {
        Self::new(name)
    }
}

/// A global position in the log: strictly increasing in log order.
///
/// The embedded log numbers events 0, 1, 2, … without gaps; other backends (KurrentDB) may
/// leave gaps, so callers must only rely on the order, never on density.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the writer believes about a stream before appending to it (optimistic concurrency).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist, at any revision.
    StreamExists,
    /// The stream's last event must have exactly this revision.
    Exact(u64),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(revision) => write!(f, "revision {revision}"),
        }
    }
}

/// An event to append: the envelope fields the writer chooses, and the payload bytes.
///
/// The store assigns the stream, revision and global position. The store does not know the
/// domain: `event_type`, `schema_version` and `payload` are opaque to it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewEvent {
    /// Unique id of this event (UUIDv7); the key of idempotent retries.
    pub event_id: Uuid,
    /// Past-tense name of the fact, e.g. `EnrollmentSubmitted`.
    pub event_type: String,
    /// Version of the payload's schema for this event type.
    pub schema_version: u16,
    /// When the ledger recorded the fact. The store keeps recorded-at non-decreasing in log
    /// order (an earlier time than the previous event's is raised to it), so that "as of a
    /// time" is the same as "as of a position".
    pub recorded_at: DateTime<Utc>,
    /// Who caused the event (`operator`, `user:{id}`, …).
    pub actor: String,
    /// The client-chosen id of the command that produced the event.
    pub command_id: Uuid,
    /// Groups the events of one business conversation.
    pub correlation_id: Uuid,
    /// The command or event that directly caused this one.
    pub causation_id: Uuid,
    /// The payload: MessagePack with named fields, opaque to the store.
    pub payload: Vec<u8>,
}

/// An event as recorded: the full envelope.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordedEvent {
    /// Unique id of this event (UUIDv7).
    pub event_id: Uuid,
    /// The stream the event belongs to.
    pub stream: StreamName,
    /// The event's 0-based revision within its stream.
    pub revision: u64,
    /// The event's global position in the log.
    pub position: Position,
    /// Past-tense name of the fact.
    pub event_type: String,
    /// Version of the payload's schema.
    pub schema_version: u16,
    /// When the ledger recorded the fact (UTC, non-decreasing in log order).
    pub recorded_at: DateTime<Utc>,
    /// Who caused the event.
    pub actor: String,
    /// The command that produced the event.
    pub command_id: Uuid,
    /// Groups the events of one business conversation.
    pub correlation_id: Uuid,
    /// The command or event that directly caused this one.
    pub causation_id: Uuid,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    /// Builds the recorded form of `event` once the store has placed it.
    pub fn place(
        event: NewEvent,
        stream: StreamName,
        revision: u64,
        position: Position,
        recorded_at: DateTime<Utc>,
    ) -> Self {
        Self {
            event_id: event.event_id,
            stream,
            revision,
            position,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at,
            actor: event.actor,
            command_id: event.command_id,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            payload: event.payload,
        }
    }
}

/// The outcome of a successful append (or of a retry of one that had already succeeded).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppendResult {
    /// The stream's revision after the append: the revision of its last event.
    pub revision: u64,
    /// The global positions of the appended events, in order.
    pub positions: Vec<Position>,
}

/// What the log ends with, as a pipelined writer expects it when its append's turn comes
/// ([`EventStore::submit`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogTail {
    /// The log is empty.
    Empty,
    /// The log's last record is this one.
    Last {
        /// Its position.
        position: Position,
        /// Its event id, so that another record at the same position does not pass.
        event_id: Uuid,
    },
}

impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("an empty log"),
            Self::Last { position, event_id } => {
                write!(f, "event {event_id} at position {}", position.0)
            }
        }
    }
}

/// An append queued in log order ([`EventStore::submit`]): resolves once it is durable, or
/// refused.
pub type PendingAppend = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<AppendResult, crate::StoreError>> + Send>,
>;

/// Where a read starts. `At` is a stream revision for stream reads and a global position for
/// reads of the whole log; it is inclusive in both directions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadFrom {
    /// The first event.
    Start,
    /// The last event (for backward reads; a forward read from the end returns nothing).
    End,
    /// The event at this revision or position (inclusive).
    At(u64),
}

/// The direction of a read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// Where a subscription starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SubscribeFrom {
    /// From the first event of the log.
    Start,
    /// Only events appended after the subscription was made.
    End,
    /// From the event after this position (exclusive): how a subscriber resumes from the last
    /// position it processed, without a gap or a duplicate.
    After(Position),
}

/// Which events a subscription delivers. An empty list means "no restriction" on that field.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct EventFilter {
    /// Deliver only events of these types.
    pub event_types: Vec<String>,
    /// Deliver only events of streams whose names start with one of these prefixes.
    pub stream_prefixes: Vec<String>,
}

impl EventFilter {
    /// A filter that lets everything through.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let type_ok = self.event_types.is_empty() || self.event_types.contains(&event.event_type);
        let stream_ok = self.stream_prefixes.is_empty()
            || self
                .stream_prefixes
                .iter()
                .any(|prefix| event.stream.as_str().starts_with(prefix.as_str()));
        type_ok && stream_ok
    }
}

/// Checks a batch before it is appended: size limits and unique event ids.
pub fn validate_batch(events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > EVENTS_PER_APPEND_MAX {
        return Err(StoreError::Invalid(format!(
            "an append holds at most {EVENTS_PER_APPEND_MAX} events, got {}",
            events.len()
        )));
    }
    let payload_bytes: usize = events.iter().map(|event| event.payload.len()).sum();
    if payload_bytes > APPEND_PAYLOAD_BYTES_MAX {
        return Err(StoreError::Invalid(format!(
            "an append holds at most {APPEND_PAYLOAD_BYTES_MAX} payload bytes, got {payload_bytes}"
        )));
    }
    for (index, event) in events.iter().enumerate() {
        check_len("event type", &event.event_type, EVENT_TYPE_BYTES_MAX)?;
        if event.event_type.is_empty() {
            return Err(StoreError::Invalid("event type must not be empty".into()));
        }
        check_len("actor", &event.actor, ACTOR_BYTES_MAX)?;
        if event.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(StoreError::Invalid(format!(
                "payload of {} bytes exceeds the limit of {PAYLOAD_BYTES_MAX}",
                event.payload.len()
            )));
        }
        if events[..index].iter().any(|e| e.event_id == event.event_id) {
            return Err(StoreError::Invalid(format!(
                "event id {} appears twice in one append",
                event.event_id
            )));
        }
        if event.recorded_at.timestamp_nanos_opt().is_none() {
            return Err(StoreError::Invalid(format!(
                "recorded-at {} is outside the representable range",
                event.recorded_at
            )));
        }
    }
    Ok(())
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(StoreError::Invalid(format!(
            "{what} of {} bytes exceeds the limit of {max}",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload_bytes: usize) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Happened".into(),
            schema_version: 1,
            recorded_at: Utc::now(),
            actor: "operator".into(),
            command_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            causation_id: Uuid::nil(),
            payload: vec![0; payload_bytes],
        }
    }

    #[test]
    fn one_append_is_bounded_in_payload_bytes_too() {
        let per_event = PAYLOAD_BYTES_MAX;
        let fits = APPEND_PAYLOAD_BYTES_MAX / per_event;
        let batch: Vec<NewEvent> = (0..fits).map(|_| event(per_event)).collect();
        assert!(validate_batch(&batch).is_ok());
        let batch: Vec<NewEvent> = (0..=fits).map(|_| event(per_event)).collect();
        assert!(matches!(
            validate_batch(&batch),
            Err(StoreError::Invalid(_))
        ));
    }
}
