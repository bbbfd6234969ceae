//! The read models of csp-ledger (SPEC §5), rebuilt from the log alone and kept live.
//!
//! - **What**: reseller of record per customer; order rights (may-order with its
//!   explanation, the pairs that may order, user-level may-order); the directory (indirect
//!   providers and resellers, shared customers, a partner's customers, status, profile and
//!   agreement); users, roles, capabilities and `can`; admin access (delegated and granular
//!   delegated admin over a customer's tenant, providers' admin access to a reseller's
//!   tenant); and the history of any party, relationship or stream.
//! - **When**: every query answers at any instant of history ([`AsOf`] a position or a
//!   time). Facts are kept as intervals of validity (module `timeline`), so an as-of answer is a
//!   binary search, not a replay.
//! - **Why**: answers carry the events that make them true ([`EventRef`], resolved by
//!   [`View::event`]); a "no" names the first failing condition and the event that made it
//!   fail.
//! - **How fresh**: every [`Answer`] states the position it was computed at;
//!   [`ProjectionsHandle::wait_for`] waits for "at least as fresh as p".
//! - **How fast**: the most numerous events are read through views of only the fields
//!   kept (module `input`), stopping at the last one; names live in one text; histories are
//!   threaded through one arena; may-order reads a dense array of partners' standings and a
//!   table of customers' record summaries (both derived, never serialized) and goes to the
//!   full histories only for views older than the latest change or for busier customers.
//! - **By name**: [`dispatch`] parses a query from its name and parameters, answers it and
//!   renders it to JSON with its explanation, for the HTTP API and the command line alike.
//! - **Operation**: deterministic (the same log gives equal state and the same checkpoint
//!   bytes); [`checkpoint`]s with a format version and checksum; [`rebuild`] with
//!   [`Progress`]; a live [`Runner`] following the store's subscription.
//!
//! The read models never depend on the domain's write model (`LedgerState`): they use the
//! domain's events and value types only. They never append to the log.
//!
//! ```text
//! let view = projections.at(Some(AsOf::Position(1234)))?;
//! let answer = view.may_order(provider, customer, reseller);
//! match answer.value {
//!     Ok(right) => for event in right.events() { println!("{:?}", view.event(event)) },
//!     Err(denial) => println!("{} (failed by {:?})", denial.refusal, denial.failed_by.map(|e| view.event(e))),
//! }
//! ```

mod cache;
pub mod checkpoint;
pub mod dispatch;
mod idtable;
mod input;
mod intern;
mod model;
mod query;
mod runner;
mod timeline;

pub use model::{Agreement, ApplyError, Envelope, PartnerStatus, PendingStep, Projections};
pub use query::{
    ActivePartnership, Answer, AsOf, CapabilityCheck, CustomerInfo, DelegatedAdmin, EventInfo,
    EventRef, GranularAdmin, GranularState, OfRecord, OrderDenial, OrderRight, OrderingPair,
    PartnerInfo, QueryError, SharedCustomer, Standing, UserInfo, UserOrderDenial, UserOrderRight,
    View, tier_name,
};
pub use runner::{
    PassedOver, Progress, ProjectionsHandle, REBUILD_PAGE_EVENTS, Runner, RunnerConfig,
    RunnerError, WaitError, catch_up, rebuild, resume,
};
