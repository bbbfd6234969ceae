//! What a caller may read (SPEC §6, issue 5): the operator and auditor keys read everything,
//! service keys every query; a partner user sees its own partner and the customers and
//! partners it has or had a relationship with, within the capabilities of its roles; a
//! customer's admin sees its own relationships; an enrolling tenant admin its own
//! enrollment. A "no" is the same whether the thing exists or not: callers cannot probe for
//! ids.
//!
//! Scope is judged on the read models as they are now (a relationship that ended still
//! counts: "has or had"), whatever instant the query itself asks about.

use domain::{Capability, CustomerId, PartnerId, UserId};
use projections::{Projections, View};

use crate::auth::Principal;
use crate::query::Query;

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
    /// Any other stream (invitations, orders): operator, auditors and services only.
    OtherStream,
}

/// Whether a partner has, or had, a relationship with a customer.
fn related_customer(now: &View<'_>, partner: PartnerId, customer: CustomerId) -> bool {
    !now.relationship_history(customer, partner).value.is_empty()
}

/// Whether two partners are the same or have, or had, a partnership.
fn related_partner(now: &View<'_>, partner: PartnerId, other: PartnerId) -> bool {
    partner == other
        || !now.partnership_history(partner, other).value.is_empty()
        || !now.partnership_history(other, partner).value.is_empty()
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

/// The customer a customer admin's tenant is, now.
fn customer_of(projections: &Projections, principal: &Principal) -> Option<CustomerId> {
    match principal {
        Principal::Customer { tenant_id, .. } => projections.customer_by_tenant(*tenant_id),
        _ => None,
    }
}

/// Whether `principal` may run `query`.
pub fn may_query(principal: &Principal, projections: &Projections, query: &Query) -> bool {
    use Capability::{ManageUsers, ViewCustomers, ViewPartnerProfile};
    let Ok(now) = projections.at(None) else {
        return false;
    };
    let now = &now;
    match principal {
        Principal::Operator | Principal::Auditor(_) | Principal::Service(_) => true,
        Principal::TenantAdmin { partner_id, .. } => {
            matches!(query, Query::Partner { partner } if partner == partner_id)
        }
        Principal::User {
            user_id,
            partner_id,
            ..
        } => {
            let (me, mine) = (*user_id, *partner_id);
            let can = |capability| user_can(now, me, capability);
            match *query {
                Query::ResellerOfRecord { customer }
                | Query::OrderingPairs { customer }
                | Query::AdminAccess { customer } => {
                    can(ViewCustomers) && related_customer(now, mine, customer)
                }
                Query::MayOrder {
                    provider,
                    customer,
                    reseller,
                } => {
                    can(ViewCustomers)
                        && (provider == mine || reseller == mine)
                        && related_customer(now, mine, customer)
                }
                Query::SharedCustomers { provider, reseller } => {
                    can(ViewCustomers) && (provider == mine || reseller == mine)
                }
                Query::Customers { partner } => can(ViewCustomers) && partner == mine,
                Query::Providers { reseller: partner }
                | Query::Resellers { provider: partner }
                | Query::TenantAdminAccess { reseller: partner } => {
                    can(ViewPartnerProfile) && partner == mine
                }
                Query::Partner { partner } => {
                    can(ViewPartnerProfile) && related_partner(now, mine, partner)
                }
                Query::Users { partner } => can(ManageUsers) && partner == mine,
                Query::User { user } | Query::Can { user, .. } => {
                    user == me || (can(ManageUsers) && user_of_partner(now, user, mine))
                }
            }
        }
        Principal::Customer { .. } => {
            let Some(own) = customer_of(projections, principal) else {
                return false;
            };
            match *query {
                Query::ResellerOfRecord { customer }
                | Query::OrderingPairs { customer }
                | Query::AdminAccess { customer }
                | Query::MayOrder { customer, .. } => customer == own,
                Query::Partner { partner } => related_customer(now, partner, own),
                _ => false,
            }
        }
    }
}

/// Whether `principal` may read the history of `party`.
pub fn may_read_history(principal: &Principal, projections: &Projections, party: Party) -> bool {
    use Capability::{ManageUsers, ViewCustomers, ViewPartnerProfile};
    let Ok(now) = projections.at(None) else {
        return false;
    };
    let now = &now;
    match principal {
        Principal::Operator | Principal::Auditor(_) | Principal::Service(_) => true,
        Principal::TenantAdmin { partner_id, .. } => party == Party::Partner(*partner_id),
        Principal::User {
            user_id,
            partner_id,
            ..
        } => {
            let (me, mine) = (*user_id, *partner_id);
            let can = |capability| user_can(now, me, capability);
            match party {
                Party::Partner(partner) => {
                    can(ViewPartnerProfile) && related_partner(now, mine, partner)
                }
                Party::Customer(customer) => {
                    can(ViewCustomers) && related_customer(now, mine, customer)
                }
                Party::User(user) => {
                    user == me || (can(ManageUsers) && user_of_partner(now, user, mine))
                }
                Party::Partnership { provider, reseller } => {
                    can(ViewPartnerProfile) && (provider == mine || reseller == mine)
                }
                Party::OtherStream => false,
            }
        }
        Principal::Customer { .. } => {
            matches!(party, Party::Customer(customer) if Some(customer) == customer_of(projections, principal))
        }
    }
}
