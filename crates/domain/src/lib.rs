//! The CSP indirect model: every flow of SPEC §1–§4 as commands, events and rules, as pure
//! functions.
//!
//! `decide(&state, &command, &context)` either refuses a command with a typed
//! [`Rejection`] naming the rule, or returns a [`Decision`]: the events to append to exactly
//! one stream, at the stream revision the decision was made on, and the [`Effect`]s the
//! shell must carry out (secrets to hand out, credentials to delete, sessions to end). `LedgerState::evolve`
//! applies a recorded event and cannot fail. The crate does no I/O and reads no clock or
//! randomness: time, fresh ids and token hashes come in through the [`Context`].
//!
//! Code map: [`ids`] and [`types`] hold the values; [`roles`] the permission matrix;
//! [`commands`] and [`events`] the API and the log's vocabulary; [`partner`],
//! [`partnership`], [`invitation`], [`customer`] and [`order`] one aggregate each, with its
//! decisions and evolution; [`state`] the write model that ties them together.

mod access;
pub mod checks;
pub mod commands;
pub mod context;
pub mod customer;
pub mod effects;
pub mod events;
pub mod ids;
pub mod invitation;
pub mod order;
pub mod partner;
pub mod partnership;
pub mod rejection;
pub mod roles;
pub mod samples;
pub mod state;
pub mod streams;
pub mod types;

pub use commands::Command;
pub use context::{Actor, ActorRecord, Context, Decision, EventMeta, Proof};
pub use effects::Effect;
pub use events::{
    DecodeError, EVENT_TYPES, EncodeError, Event, EventType, current_version, event_schemas,
    event_type_index,
};
pub use ids::*;
pub use order::{Evidence, may_order};
pub use rejection::{OrderRefusal, Rejection, RejectionKind};
pub use roles::{AdminRole, AgentRole, Capability, PERMISSION_MATRIX, Roles, can};
pub use samples::sample_events;
pub use state::{LedgerState, decide, replay};

/// The JSON Schema of the command JSON that the HTTP API and `apply` accept.
pub fn command_schema() -> schemars::Schema {
    schemars::schema_for!(Command)
}
