//! KurrentDB for csp-ledger: a store backend on KurrentDB (EventStoreDB), and KurrentDB's own
//! client protocol served over any csp-ledger store.
//!
//! - [`KurrentStore`] implements [`store::EventStore`] on the official `eventstore` client
//!   (4.x), so the ledger can run on a KurrentDB cluster (`--store kurrentdb://…`).
//! - [`protocol::serve`] answers KurrentDB's gRPC client protocol (`Streams.Read`,
//!   `Streams.Append`, `Streams.BatchAppend`, `ServerFeatures.GetSupportedMethods`, and the
//!   persistent-subscription and projection services of a server that has none) from any
//!   [`store::EventStore`], over TLS ([`tls`]), so downstream services in any language can
//!   read and follow the ledger with KurrentDB's official clients.
//!
//! # How the ledger's envelope maps onto a KurrentDB event
//!
//! | ledger field | KurrentDB |
//! |---|---|
//! | stream | the stream of the same name (after the optional namespace prefix of [`KurrentStoreConfig::namespace`]) |
//! | revision | the stream revision (0-based, same numbers) |
//! | position | the `$all` position: commit position, which equals the prepare position for every event written by a gRPC append (see below) |
//! | event id | the event id |
//! | event type | the event type (`type` system metadata) |
//! | payload | the event data, MessagePack, content type `application/octet-stream` (the protocol server offers JSON to readers that ask: [`protocol::JsonView`]) |
//! | correlation id, causation id | custom metadata `$correlationId`, `$causationId` (KurrentDB's own names, so its `$by_correlation_id` projection works) |
//! | schema version, actor, command id, recorded at, chain value | custom metadata `schemaVersion`, `actor`, `commandId`, `recordedAt` (RFC 3339, nanoseconds), `chain` (64 hex digits) |
//!
//! The custom metadata is one JSON object; see [`envelope`].
//!
//! # Positions
//!
//! A KurrentDB `$all` position is a pair (commit, prepare). Since the gRPC protocol has no
//! explicit transactions, every event a gRPC append writes is committed at its own log
//! position, so commit == prepare; the ledger's [`store::Position`] is that one number, and
//! the ledger's API shows it as a decimal integer. Converting back is `(p, p)`, which
//! round-trips exactly. An event with commit ≠ prepare (written by a legacy TCP-client
//! transaction) cannot be addressed by one number and is reported as corrupt rather than
//! silently mis-addressed. Positions have gaps (they are byte offsets in KurrentDB's log), which
//! the store interface allows.
//!
//! # The hash chain on KurrentDB
//!
//! KurrentDB assigns an event's position when it commits the append, so the writer cannot
//! know it when it computes the chain value that travels inside the event. On this backend
//! the chained body is therefore [`store::codec::encode_body`] with the position field set
//! to 0 ([`envelope::chain_body`]); order is still protected because every value includes the
//! one before it, and revisions are included. The writer ([`KurrentStore::append`]) holds one
//! lock around reading the last chain value and appending, and the writer lease
//! ([`lease`]) makes it the only writing process of its namespace: the others are read
//! replicas that refuse commands ([`store::StoreError::NotWriter`]) until the writer's
//! heartbeats stop for its TTL, and an append carries the epoch it was made under, so a
//! writer that lost the lease while stalled cannot fork the chain (the ledger's door refuses
//! the append; on any KurrentDB, readers pass over an event made under an epoch older than
//! the last take before it).

pub mod backend;
pub mod envelope;
pub mod lease;
mod listings;
pub mod protocol;
pub mod tls;

pub use backend::{KurrentStore, KurrentStoreConfig, LeaseConfig, RetryPolicy};
pub use lease::LeaseRole;
pub use protocol::{JsonView, Principal, ProtocolAuth, ProtocolConfig, TlsIdentity};
