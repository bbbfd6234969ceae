//! The append rules every backend shares: expected-revision checks, idempotent retries and
//! the monotonic recorded-at clock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ExpectedRevision, NewEvent, StoreError, StreamName};

/// What to do with an append, decided from the stream's current state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AppendPlan {
    /// Append the events; the first gets this revision.
    Append {
        /// Revision of the first new event.
        first_revision: u64,
    },
    /// The same events were already appended at these revisions: return the original result.
    AlreadyAppended {
        /// Revision of the first of the earlier-appended events.
        first_revision: u64,
    },
}

/// Decides how to append `events` to `stream`, whose last revision is `current`.
///
/// `event_id_at(revision)` returns the id of the stream's event at that revision (backends
/// keep event ids in their stream index, so this never reads the log).
///
/// Idempotency: when the events' ids are exactly the ids already stored at the place the
/// writer expected to append (right after the expected revision; or, for `Any` and
/// `StreamExists`, at the end of the stream), the append already happened and is not
/// repeated. Any other mismatch is a conflict.
pub fn plan_append(
    stream: &StreamName,
    current: Option<u64>,
    expected: ExpectedRevision,
    events: &[NewEvent],
    event_id_at: impl Fn(u64) -> Option<Uuid>,
) -> Result<AppendPlan, StoreError> {
    let count = events.len() as u64;
    let next = current.map_or(0, |revision| revision + 1);
    let matches_at = |first: u64| -> bool {
        first + count <= next
            && events
                .iter()
                .zip(first..)
                .all(|(event, revision)| event_id_at(revision) == Some(event.event_id))
    };
    let conflict = || StoreError::WrongExpectedRevision {
        stream: stream.clone(),
        expected,
        actual: current,
    };
    match expected {
        ExpectedRevision::Exact(revision) => {
            if current == Some(revision) {
                Ok(AppendPlan::Append {
                    first_revision: next,
                })
            } else if revision < next && matches_at(revision + 1) {
                Ok(AppendPlan::AlreadyAppended {
                    first_revision: revision + 1,
                })
            } else {
                Err(conflict())
            }
        }
        ExpectedRevision::NoStream => {
            if current.is_none() {
                Ok(AppendPlan::Append { first_revision: 0 })
            } else if matches_at(0) {
                Ok(AppendPlan::AlreadyAppended { first_revision: 0 })
            } else {
                Err(conflict())
            }
        }
        ExpectedRevision::Any | ExpectedRevision::StreamExists => {
            if expected == ExpectedRevision::StreamExists && current.is_none() {
                return Err(conflict());
            }
            if count <= next && matches_at(next - count) {
                Ok(AppendPlan::AlreadyAppended {
                    first_revision: next - count,
                })
            } else {
                Ok(AppendPlan::Append {
                    first_revision: next,
                })
            }
        }
    }
}

/// Keeps recorded-at non-decreasing in log order: an event stamped earlier than the previous
/// one (clocks step backwards) is recorded at the previous one's time.
pub fn monotonic_recorded_at(
    requested: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match previous {
        Some(previous) if previous > requested => previous,
        _ => requested,
    }
}
