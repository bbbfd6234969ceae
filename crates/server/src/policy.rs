//! The read policy (SPEC §6.1), in one place: every query, history, event feed and page of
//! the HTTP API, and the KurrentDB door, ask this module what a caller may read.
//!
//! - **Operator and auditor keys** read everything. **Service keys** read the event feed and
//!   its pages (and so does the KurrentDB door for auditor and service keys), nothing else.
//! - **A partner user** reads, within the capabilities of its roles:
//!   - its own partner's profile and status (*view partner profile*), and its own users,
//!     their roles and their history only with *manage users*, whatever the route (a user
//!     may always read itself);
//!   - with *search and view customers*, the customers its partner is reseller of record
//!     for **now**, and on them the relationships **with its own partner** (acceptance,
//!     delegated and granular admin, orders) plus what the other side of a **current,
//!     authorized** partnership (both partners may transact) holds on those same customers;
//!     on a customer that was its own and is no longer, its own entries only;
//!   - the standing of a counterpart across such a partnership (not its legal profile or
//!     tenant), and `shared-customers` only across one;
//!   - `may-order` only for a pair naming its own partner whose other side is or was its
//!     authorized partner, about a customer that is or was its own (its own question, now
//!     or as of its past; never a probe of an unrelated partner's standing).
//!
//!   An invitation is not a relationship. An ended partnership or a removed customer
//!   relationship leaves the partner its own past events with that party (they name it) and
//!   nothing newer, nothing of anyone else's.
//! - **A customer admin** (a session opened through an invitation with a directory token, or
//!   a directory token of the tenant's global admin) reads its own tenant's customer record
//!   and every relationship on it, and nothing of the partners' internals.
//! - **An enrolling tenant admin** reads its own enrollment.
//!
//! History is filtered per reader to the events this policy lets it see, never a whole
//! foreign stream, with the log's own positions so that a reader can resume. For every
//! scoped reader, "unknown", "foreign" and "forbidden" are the same `403`, decided by a few
//! lookups in the read models whatever the size of the thing asked about, so that neither
//! the answer nor its time tells them apart.

use std::collections::BTreeSet;

use domain::{Capability, CustomerId, PartnerId, UserId};
use projections::{EventRef, Projections, View};

use crate::auth::Principal;
use projections::dispatch::{Query, Scope};

/// Something history can be asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// A partner (its stream and the events naming it).
    Partner(PartnerId),
    /// A customer.
    Customer(CustomerId),
    /// A partner user.
    User(UserId),
    /// A provider–reseller partnership.
    Partnership {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// Any other stream (invitations, orders), or a name the ledger does not know.
    OtherStream,
}

/// Whose entries an answer may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sees {
    /// Everything (operator, auditors, a customer admin on its own customer).
    All,
    /// A partner user: its own partner's entries and those of its current, authorized
    /// partners.
    Partner {
        /// The reader's own partner.
        own: PartnerId,
        /// Its current, authorized partnership counterparts.
        partners: BTreeSet<PartnerId>,
    },
}

impl Scope for Sees {
    /// Whether entries of `partner` (a reseller of record, an admin holder, a side of an
    /// ordering pair) may be shown.
    fn sees(&self, partner: PartnerId) -> bool {
        match self {
            Sees::All => true,
            Sees::Partner { own, partners } => *own == partner || partners.contains(&partner),
        }
    }

    /// Whether `partner`'s internals (legal profile, tenant) may be shown.
    fn sees_internals_of(&self, partner: PartnerId) -> bool {
        match self {
            Sees::All => true,
            Sees::Partner { own, .. } => *own == partner,
        }
    }
}

/// Which events of a history a reader sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visible {
    /// All of them.
    All,
    /// These only.
    Only(BTreeSet<EventRef>),
}

impl Visible {
    /// Whether `event` may be shown.
    pub fn shows(&self, event: EventRef) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(events) => events.contains(&event),
        }
    }
}

/// A caller as the policy sees it, judged on the read models now.
enum Reader {
    Everything,
    Feed,
    Partner { user: UserId, partner: PartnerId },
    Customer(CustomerId),
    Enrolling(PartnerId),
    Nobody,
}

fn reader(principal: &Principal, projections: &Projections) -> Reader {
    match principal {
        Principal::Operator | Principal::Auditor(_) => Reader::Everything,
        Principal::Service(_) => Reader::Feed,
        Principal::User {
            user_id,
            partner_id,
            ..
        } => Reader::Partner {
            user: *user_id,
            partner: *partner_id,
        },
        Principal::TenantAdmin { partner_id, .. } => Reader::Enrolling(*partner_id),
        Principal::Customer { .. } | Principal::Directory(_) => principal
            .customer_tenant()
            .and_then(|tenant| projections.customer_by_tenant(tenant))
            .map_or(Reader::Nobody, Reader::Customer),
    }
}

/// Whether `principal` may follow the event feed and read its pages (the HTTP feed and the
/// KurrentDB door).
pub fn may_follow_feed(principal: &Principal) -> bool {
    matches!(
        principal,
        Principal::Operator | Principal::Auditor(_) | Principal::Service(_)
    )
}

/// Who may read the verifiable history (SPEC §3.1): the signed checkpoints, the verifier
/// key, inclusion and consistency proofs and the tiles. **Everyone**, without credentials.
///
/// Checkpoints and the verifier key are public by nature: an auditor who holds none of the
/// ledger's keys must be able to check them, and tooling fetches them unauthenticated. The
/// proofs and tiles reveal only hashes. A leaf hash lets whoever holds a record's exact
/// canonical bytes confirm that the record is in the log, and so could confirm a *guessed*
/// record; but a record's bytes include its event id (a UUIDv7: 32 random bits of its own
/// below a randomly seeded 42-bit counter), its command, correlation and causation ids
/// (UUIDs of the client's and the ledger's choosing) and its recorded time to the
/// nanosecond, so a record cannot be guessed whole: only a reader who was shown the record
/// (through the feed, history or an export, under the rest of this policy) can confirm it,
/// which is the point. What the tree does reveal to everyone is the number of records and
/// how it grows over time, which every checkpoint states anyway. Gating proofs would not
/// hide more (the public tiles give every leaf hash), and would keep out the auditors and
/// tools the tree is for.
pub fn may_read_tree() -> bool {
    true
}

/// Whether `principal` may run the log's verification.
pub fn may_verify(principal: &Principal) -> bool {
    principal.reads_everything()
}

/// Whether a signed-in user holds a capability now.
fn user_can(now: &View<'_>, user: UserId, capability: Capability) -> bool {
    now.user_info_of(user)
        .value
        .is_some_and(|info| info.removed.is_none() && domain::can(&info.roles, capability))
}

fn user_of_partner(now: &View<'_>, user: UserId, partner: PartnerId) -> bool {
    now.user_info_of(user)
        .value
        .is_some_and(|info| info.partner == partner)
}

fn may_transact(now: &View<'_>, partner: PartnerId) -> bool {
    now.partner_info(partner)
        .value
        .is_some_and(|info| info.may_transact)
}

/// The current, authorized partnership counterparts of `partner`: both sides may transact
/// and the partnership is active.
fn partners_now(now: &View<'_>, partner: PartnerId) -> BTreeSet<PartnerId> {
    if !may_transact(now, partner) {
        return BTreeSet::new();
    }
    let providers = now.indirect_providers(partner).value.unwrap_or_default();
    let resellers = now.indirect_resellers(partner).value.unwrap_or_default();
    providers
        .iter()
        .map(|p| p.provider)
        .chain(resellers.iter().map(|r| r.reseller))
        .filter(|other| *other != partner && may_transact(now, *other))
        .collect()
}

/// Whether two partners are or were partners: a reseller authorized the provider (an
/// invitation alone is not a partnership).
fn had_authorized_partnership(now: &View<'_>, one: PartnerId, other: PartnerId) -> bool {
    [(one, other), (other, one)]
        .iter()
        .any(|(provider, reseller)| {
            now.partnership_history(*provider, *reseller)
                .value
                .into_iter()
                .any(|event| now.event(event).event_type == "IndirectProviderAuthorized")
        })
}

/// Whether `partner` is reseller of record for `customer` now.
fn of_record_now(now: &View<'_>, partner: PartnerId, customer: CustomerId) -> bool {
    now.reseller_of_record(customer)
        .value
        .is_some_and(|records| records.iter().any(|of| of.partner == partner))
}

/// What `principal` sees of `query`'s answer; `None`: the query is refused (the same `403`
/// whether what it names exists or not).
pub fn query_scope(
    principal: &Principal,
    projections: &Projections,
    query: &Query,
) -> Option<Sees> {
    use Capability::{ManageUsers, ViewCustomers, ViewPartnerProfile};
    let now = projections.at(None).ok()?;
    let now = &now;
    match reader(principal, projections) {
        Reader::Everything => Some(Sees::All),
        Reader::Feed | Reader::Nobody => None,
        Reader::Enrolling(own) => {
            matches!(query, Query::Partner { partner } if *partner == own).then_some(Sees::All)
        }
        Reader::Customer(own) => match *query {
            Query::ResellerOfRecord { customer }
            | Query::OrderingPairs { customer }
            | Query::AdminAccess { customer } => (customer == own).then_some(Sees::All),
            // Only about partners that are or were its own: any other id would make the
            // answer a probe of that partner's standing.
            Query::MayOrder {
                provider,
                customer,
                reseller,
            } => (customer == own
                && !now.relationship_history(own, provider).value.is_empty()
                && !now.relationship_history(own, reseller).value.is_empty())
            .then_some(Sees::All),
            _ => None,
        },
        Reader::Partner { user, partner: own } => {
            let can = |capability| user_can(now, user, capability);
            let mut partners = partners_now(now, own);
            let allowed = match *query {
                Query::ResellerOfRecord { customer }
                | Query::OrderingPairs { customer }
                | Query::AdminAccess { customer } => {
                    // A customer that was the partner's and is no longer leaves it its own
                    // entries (as of its past), nothing of its partners'.
                    if !of_record_now(now, own, customer) {
                        partners.clear();
                    }
                    can(ViewCustomers) && !now.relationship_history(customer, own).value.is_empty()
                }
                Query::MayOrder {
                    provider,
                    customer,
                    reseller,
                } => {
                    // The partner's own question, now or about its past: the counterpart
                    // is or was its authorized partner, and the customer is or was its own.
                    // Anyone else in the counterpart's place would make the answer a probe
                    // of that partner's standing.
                    let counterpart = if provider == own { reseller } else { provider };
                    can(ViewCustomers)
                        && (provider == own || reseller == own)
                        && had_authorized_partnership(now, own, counterpart)
                        && !now.relationship_history(customer, own).value.is_empty()
                }
                Query::SharedCustomers { provider, reseller } => {
                    let counterpart = if provider == own { reseller } else { provider };
                    can(ViewCustomers)
                        && (provider == own || reseller == own)
                        && partners.contains(&counterpart)
                }
                Query::Customers { partner } => can(ViewCustomers) && partner == own,
                Query::Providers { reseller: partner }
                | Query::Resellers { provider: partner }
                | Query::TenantAdminAccess { reseller: partner } => {
                    can(ViewPartnerProfile) && partner == own
                }
                Query::Partner { partner } => {
                    can(ViewPartnerProfile) && (partner == own || partners.contains(&partner))
                }
                Query::Users { partner } => can(ManageUsers) && partner == own,
                Query::User { user: other } | Query::Can { user: other, .. } => {
                    other == user || (can(ManageUsers) && user_of_partner(now, other, own))
                }
            };
            allowed.then_some(Sees::Partner { own, partners })
        }
    }
}

/// The event types that describe a partner's users (emails, names, roles, credentials):
/// shown to a partner's users only with *manage users*.
const USER_EVENT_TYPES: [&str; 5] = [
    "UserAdded",
    "UserRolesChanged",
    "UserRemoved",
    "TemporaryPasswordIssued",
    "TemporaryPasswordChanged",
];

/// Which events of `party`'s history `principal` sees; `None`: none (the same `403` whether
/// the party exists or not).
pub fn history_scope(
    principal: &Principal,
    projections: &Projections,
    party: Party,
) -> Option<Visible> {
    use Capability::{ManageUsers, ViewCustomers, ViewPartnerProfile};
    let now = projections.at(None).ok()?;
    let now = &now;
    match reader(principal, projections) {
        Reader::Everything => Some(Visible::All),
        Reader::Feed | Reader::Nobody => None,
        Reader::Enrolling(own) => (party == Party::Partner(own))
            .then(|| Visible::Only(now.partner_history(own).value.into_iter().collect())),
        Reader::Customer(own) => match party {
            Party::Customer(customer) if customer == own => Some(Visible::All),
            Party::OtherStream => Some(Visible::Only(
                now.customer_history(own).value.into_iter().collect(),
            )),
            _ => None,
        },
        Reader::Partner { user, partner: own } => {
            let can = |capability| user_can(now, user, capability);
            // The gate: a few lookups, the same whether the party exists or not.
            let gate = match party {
                Party::Partner(partner) if partner == own => true,
                Party::Partner(partner) => {
                    !now.partnership_history(own, partner).value.is_empty()
                        || !now.partnership_history(partner, own).value.is_empty()
                }
                Party::Customer(customer) => {
                    can(ViewCustomers) && !now.relationship_history(customer, own).value.is_empty()
                }
                Party::User(other) if other == user => return Some(Visible::All),
                Party::User(other) => {
                    return (can(ManageUsers) && user_of_partner(now, other, own))
                        .then_some(Visible::All);
                }
                Party::Partnership { provider, reseller } => provider == own || reseller == own,
                Party::OtherStream => true,
            };
            if !gate {
                return None;
            }
            let mut visible = BTreeSet::new();
            let (profile, customers, users) = (
                can(ViewPartnerProfile),
                can(ViewCustomers),
                can(ManageUsers),
            );
            for event in now.partner_history(own).value {
                let info = now.event(event);
                let is_user_event = USER_EVENT_TYPES.contains(&info.event_type);
                let is_partner_event =
                    info.stream.starts_with("partner-") || info.stream.starts_with("partnership-");
                let shown = if is_user_event {
                    users
                } else if is_partner_event {
                    profile || customers
                } else {
                    customers
                };
                if shown {
                    visible.insert(event);
                }
            }
            visible.extend(now.user_history(user).value);
            if customers {
                let partners = partners_now(now, own);
                let mine = now.customers_of(own).value.unwrap_or_default();
                for (customer, _) in mine {
                    for record in now.reseller_of_record(customer).value.unwrap_or_default() {
                        if partners.contains(&record.partner) {
                            visible
                                .extend(now.relationship_history(customer, record.partner).value);
                        }
                    }
                }
            }
            Some(Visible::Only(visible))
        }
    }
}
