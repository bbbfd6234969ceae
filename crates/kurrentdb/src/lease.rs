//! The writer lease: one ledger process at a time writes to a KurrentDB namespace; any number
//! of others follow it as read replicas.
//!
//! # Why
//!
//! The ledger's rules that span aggregates (one partner per tenant, one account per email, a
//! tenant accepting one invitation, an order's evidence) are decided against the write model
//! of the whole log, and its hash chain continues from the last event of the whole log. Both
//! hold only if one process decides and appends at a time: KurrentDB guards one stream per
//! append, never the whole log.
//!
//! # The streams (inside the namespace)
//!
//! | stream | events | written with |
//! |---|---|---|
//! | [`LEASE_STREAM`] | [`TAKEN`] `{"epoch","holder","ttlMs"}`, [`RELEASED`] `{"epoch","holder","ttlMs"}` | the exact expected revision of the last lease event (or no stream), so that of two takers one wins |
//! | [`HEARTBEAT_STREAM`] | [`RENEWED`] `{"epoch","holder","ttlMs"}` | any revision: a heartbeat only shows the holder is alive |
//!
//! Payloads are JSON, custom metadata the ledger's envelope (actor `csp-ledger:writer-lease`,
//! no chain value): these events are the store's own bookkeeping, not ledger events, so
//! every reader of this crate hides them and they are outside the hash chain.
//!
//! # Taking, holding and losing the lease
//!
//! - A process takes the lease when the lease stream is empty, when its last event is a
//!   release, or when the holder's heartbeats stopped: the taker saw neither the lease stream
//!   nor the heartbeat stream move for the holder's `ttlMs`, on its own monotonic clock. A
//!   take records epoch = previous epoch + 1.
//! - The holder renews every quarter of its TTL, and considers the lease its own only until
//!   `ttl` after the *start* of its last successful renewal: a taker starts waiting only after
//!   seeing that renewal, so a holder whose clock runs at the taker's rate stops before anyone
//!   can take over. A holder that sees another take stops writing at once.
//! - A clean stop releases the lease, so the next process takes it at once.
//!
//! # Fencing: a stale writer's append never counts
//!
//! A holder that was paused (a stopped process, a long GC, a partition) may still believe it
//! holds the lease. Every ledger event it appends carries its epoch in the envelope metadata
//! (`leaseEpoch`), and the rule every reader applies is: **an event whose epoch is lower than
//! the epoch of the last take before it in `$all` is void** ([`Takes::is_void`]) — read as if
//! it were not there, and outside the chain. Events without an epoch count as epoch 0 (written
//! before leases, or by a tool), so they too are void once a lease was ever taken before them.
//! The writer itself checks, after every append, whether its events came after a newer take;
//! then its append is answered as failed, not recorded, and it stops writing.
//!
//! A server that can check the lease while it appends refuses a stale append outright instead:
//! the ledger's own KurrentDB door ([`crate::protocol`]) admits an append that carries an epoch
//! only if it is the epoch of the lease's current take, and a ledger append without one only
//! while no lease is taken; it refuses anything else with `FAILED_PRECONDITION` starting with
//! [`FENCE_REFUSAL`], and nothing is appended.

use serde::{Deserialize, Serialize};

/// The stream of takes and releases.
pub const LEASE_STREAM: &str = "csp-ledger-writer-lease";
/// The stream of the holder's heartbeats.
pub const HEARTBEAT_STREAM: &str = "csp-ledger-writer-heartbeat";
/// A process took the lease.
pub const TAKEN: &str = "WriterLeaseTaken";
/// The holder is alive.
pub const RENEWED: &str = "WriterLeaseRenewed";
/// The holder gave the lease up.
pub const RELEASED: &str = "WriterLeaseReleased";
/// The actor in the lease events' envelope.
pub const LEASE_ACTOR: &str = "csp-ledger:writer-lease";
/// How a server that fences appends begins its refusal.
pub const FENCE_REFUSAL: &str = "writer lease";

/// The payload of every lease event.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRecord {
    /// The epoch taken, renewed or released.
    pub epoch: u64,
    /// Who holds it (a name of the process, for people and for a restart of the same one).
    pub holder: String,
    /// How long the holder may go without a heartbeat before another may take over.
    #[serde(rename = "ttlMs")]
    pub ttl_ms: u64,
}

impl LeaseRecord {
    /// As JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of a string and two integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|error| format!("bad writer-lease payload: {error}"))
    }
}

/// Whether a stream (its name inside the namespace) is one of the lease's.
pub fn is_lease_stream(name: &str) -> bool {
    name == LEASE_STREAM || name == HEARTBEAT_STREAM
}

/// Checks an event proposed to a lease stream: the right type for the stream and a lease
/// payload. For servers that admit the lease's events beside the ledger's.
pub fn check_event(stream: &str, event_type: &str, payload: &[u8]) -> Result<LeaseRecord, String> {
    let allowed: &[&str] = match stream {
        LEASE_STREAM => &[TAKEN, RELEASED],
        HEARTBEAT_STREAM => &[RENEWED],
        other => return Err(format!("{other:?} is not a writer-lease stream")),
    };
    if !allowed.contains(&event_type) {
        return Err(format!(
            "{stream} holds {} events, not {event_type:?}",
            allowed.join(" and ")
        ));
    }
    let record = LeaseRecord::from_bytes(payload)?;
    if record.holder.is_empty() || record.epoch == 0 {
        return Err("a writer-lease event names its holder and an epoch above 0".into());
    }
    Ok(record)
}

/// The takes of the lease in `$all` order: what [`Takes::is_void`] needs.
#[derive(Clone, Debug, Default)]
pub struct Takes {
    /// (position, epoch) of each take, ascending in both.
    takes: Vec<(u64, u64)>,
    /// The lease stream's revision read so far.
    read_up_to: Option<u64>,
}

impl Takes {
    /// Notes a take at `position` (a repeated one is ignored, so that inline and explicit
    /// reads of the lease stream may overlap).
    pub fn add(&mut self, position: u64, epoch: u64) {
        if self
            .takes
            .last()
            .is_some_and(|&(last, last_epoch)| last >= position || last_epoch >= epoch)
        {
            return;
        }
        self.takes.push((position, epoch));
    }

    /// Notes that the lease stream was read up to `revision`.
    pub fn read_to(&mut self, revision: u64) {
        self.read_up_to = Some(self.read_up_to.map_or(revision, |r| r.max(revision)));
    }

    /// The next revision of the lease stream to read.
    pub fn next_revision(&self) -> u64 {
        self.read_up_to.map_or(0, |revision| revision + 1)
    }

    /// The epoch in force at `position`: that of the last take before it, 0 if none.
    pub fn epoch_at(&self, position: u64) -> u64 {
        let before = self.takes.partition_point(|&(at, _)| at < position);
        before.checked_sub(1).map_or(0, |index| self.takes[index].1)
    }

    /// Whether an event at `position` written under `epoch` is void: a newer take came
    /// before it.
    pub fn is_void(&self, epoch: u64, position: u64) -> bool {
        epoch < self.epoch_at(position)
    }

    /// The latest epoch taken.
    pub fn latest_epoch(&self) -> u64 {
        self.takes.last().map_or(0, |&(_, epoch)| epoch)
    }
}

/// What this process is, for the lease.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LeaseRole {
    /// It holds the lease at this epoch and may append.
    Writer {
        /// The epoch it holds.
        epoch: u64,
    },
    /// Another process holds it (or nobody yet, `holder` empty); this one only reads.
    Replica {
        /// The holder last seen.
        holder: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_void_after_a_newer_take() {
        let mut takes = Takes::default();
        assert!(!takes.is_void(0, 5), "no lease yet: nothing is void");
        takes.add(10, 1);
        takes.add(40, 2);
        takes.add(40, 2);
        assert_eq!(
            takes.epoch_at(10),
            0,
            "the take itself comes after position 10's events"
        );
        assert_eq!(takes.epoch_at(11), 1);
        assert_eq!(takes.epoch_at(41), 2);
        assert!(
            takes.is_void(0, 11),
            "an event without an epoch after a take"
        );
        assert!(!takes.is_void(1, 39));
        assert!(
            takes.is_void(1, 41),
            "the old holder's event after the new take"
        );
        assert!(!takes.is_void(2, 41));
        assert_eq!(takes.latest_epoch(), 2);
    }

    #[test]
    fn lease_events_are_checked_by_stream_and_type() {
        let record = LeaseRecord {
            epoch: 3,
            holder: "host/1".into(),
            ttl_ms: 1_000,
        };
        let bytes = record.to_bytes();
        assert_eq!(check_event(LEASE_STREAM, TAKEN, &bytes), Ok(record.clone()));
        assert_eq!(check_event(HEARTBEAT_STREAM, RENEWED, &bytes), Ok(record));
        assert!(check_event(LEASE_STREAM, RENEWED, &bytes).is_err());
        assert!(check_event(HEARTBEAT_STREAM, TAKEN, &bytes).is_err());
        assert!(check_event(LEASE_STREAM, TAKEN, b"{}").is_err());
        assert!(check_event("partner-1", TAKEN, &bytes).is_err());
    }
}
