//! Stream names: one stream per aggregate.
//!
//! `partner-{id}` (enrollment, profile, agreement, programs, users and roles),
//! `partnership-{provider}-{reseller}`, `invitation-{id}`, `customer-{id}`, `order-{id}`;
//! ids are the hyphenated lowercase UUIDs.

use crate::ids::{CustomerId, InvitationId, OrderId, PartnerId};

/// The stream of a partner.
pub fn partner(id: PartnerId) -> String {
    format!("partner-{id}")
}

/// The stream of a provider–reseller partnership.
pub fn partnership(provider: PartnerId, reseller: PartnerId) -> String {
    format!("partnership-{provider}-{reseller}")
}

/// The stream of a customer invitation.
pub fn invitation(id: InvitationId) -> String {
    format!("invitation-{id}")
}

/// The stream of a customer.
pub fn customer(id: CustomerId) -> String {
    format!("customer-{id}")
}

/// The stream of an order.
pub fn order(id: OrderId) -> String {
    format!("order-{id}")
}

/// Every stream name prefix, for subscribers filtering by aggregate.
pub const PREFIXES: [&str; 5] = [
    "partner-",
    "partnership-",
    "invitation-",
    "customer-",
    "order-",
];

/// Whether `stream` is one of the ledger's own (it starts with one of [`PREFIXES`]). Every
/// other stream of a shared store belongs to someone else: the write model and the read
/// models pass over its events.
pub fn is_ledger_stream(stream: &str) -> bool {
    PREFIXES.iter().any(|prefix| stream.starts_with(prefix))
}
