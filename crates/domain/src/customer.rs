//! The customer aggregate (`customer-{id}`): imported existing relationships, delegated
//! admin removal, time-bound granular delegated admin, and removal of reseller
//! relationships. Relationships created by an acceptance are recorded in the invitation's
//! stream and folded into the customer here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{
    ApproveGranularAdmin, ImportExistingCustomer, RemoveDelegatedAdmin, RemoveResellerRelationship,
    RequestGranularAdmin, RevokeGranularAdmin, limits,
};
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::events::{
    CustomerImported, CustomerParty, DelegatedAdminRemoved, Event, GranularAdminApproved,
    GranularAdminRequested, GranularAdminRevoked, ResellerRelationshipRemoved,
};
use crate::ids::{CustomerId, GranularAdminRequestId, GranularDuration, PartnerId};
use crate::rejection::Rejection;
use crate::roles::Capability;
use crate::state::LedgerState;
use crate::streams;
use crate::types::{CustomerProfile, Program, RelationshipTier};

/// How long a granular admin request waits for an answer before it lapses.
pub const GRANULAR_REQUEST_VALIDITY: Duration = Duration::days(90);

/// One active reseller-of-record relationship.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relationship {
    /// The partner's tier.
    pub tier: RelationshipTier,
    /// Position of the event that made the partner reseller of record.
    pub since: u64,
    /// Position of the event that granted delegated admin, while it is held.
    pub delegated_admin_since: Option<u64>,
}

/// Where a granular admin request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GranularStatus {
    /// Waiting for the customer; lapses at the request's expiry.
    Pending,
    /// Approved: access from `starts_at` until `ends_at`, when it expires by itself.
    Approved {
        /// Access starts.
        starts_at: DateTime<Utc>,
        /// Access ends.
        ends_at: DateTime<Utc>,
    },
    /// Revoked, or ended with the relationship.
    Revoked,
}

/// One granular admin request and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranularAdmin {
    /// The requesting partner.
    pub partner_id: PartnerId,
    /// Directory roles.
    pub roles: Vec<String>,
    /// Access duration once approved.
    pub duration: GranularDuration,
    /// The request lapses at this instant if unanswered.
    pub request_expires_at: DateTime<Utc>,
    /// Its status.
    pub status: GranularStatus,
}

impl GranularAdmin {
    /// Whether access is granted at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status, GranularStatus::Approved { starts_at, ends_at } if starts_at <= now && now < ends_at)
    }

    /// Whether the request still waits for an answer at `now`.
    pub fn is_pending_at(&self, now: DateTime<Utc>) -> bool {
        self.status == GranularStatus::Pending && now < self.request_expires_at
    }
}

/// The state of one customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The customer.
    pub id: CustomerId,
    /// The organization, as first recorded.
    pub profile: CustomerProfile,
    /// Active reseller-of-record relationships by partner.
    pub relationships: BTreeMap<PartnerId, Relationship>,
    /// Granular admin requests.
    pub granular: BTreeMap<GranularAdminRequestId, GranularAdmin>,
}

impl Customer {
    /// Makes `partner` reseller of record (keeping the earlier start if it already is).
    pub(crate) fn make_of_record(
        &mut self,
        partner: PartnerId,
        tier: RelationshipTier,
        position: u64,
    ) {
        self.relationships.entry(partner).or_insert(Relationship {
            tier,
            since: position,
            delegated_admin_since: None,
        });
    }

    /// Grants `partner` delegated admin (keeping the earlier grant if it holds it).
    pub(crate) fn grant_delegated_admin(&mut self, partner: PartnerId, position: u64) {
        if let Some(relationship) = self.relationships.get_mut(&partner) {
            relationship.delegated_admin_since.get_or_insert(position);
        }
    }
}

/// The customer for `profile`'s tenant, created with `customer_id` if unknown.
pub(crate) fn known<'s>(
    state: &'s mut LedgerState,
    customer_id: CustomerId,
    profile: &CustomerProfile,
) -> &'s mut Customer {
    state
        .customer_by_tenant
        .entry(profile.tenant_id)
        .or_insert(customer_id);
    state
        .customers
        .entry(customer_id)
        .or_insert_with(|| Customer {
            id: customer_id,
            profile: profile.clone(),
            relationships: BTreeMap::new(),
            granular: BTreeMap::new(),
        })
}

fn decision(state: &LedgerState, customer: CustomerId, events: Vec<Event>) -> Decision {
    let stream = streams::customer(customer);
    let expected_revision = state.stream_revision(&stream);
    Decision::new(stream, expected_revision, events)
}

fn customer(state: &LedgerState, customer_id: CustomerId) -> Result<&Customer, Rejection> {
    state
        .customer(customer_id)
        .ok_or(Rejection::CustomerNotFound(customer_id))
}

fn relationship(customer: &Customer, partner: PartnerId) -> Result<&Relationship, Rejection> {
    customer
        .relationships
        .get(&partner)
        .ok_or(Rejection::NotResellerOfRecord {
            partner,
            customer: customer.id,
        })
}

/// Decides importing an existing customer of a reseller.
pub(crate) fn import(
    state: &LedgerState,
    command: &ImportExistingCustomer,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    let reseller = state
        .partner(command.reseller_id)
        .ok_or(Rejection::PartnerNotFound(command.reseller_id))?;
    if !reseller.has(Program::IndirectReseller) {
        return Err(Rejection::ProgramMissing {
            partner: reseller.id,
            program: Program::IndirectReseller,
        });
    }
    // Existing customers appear when the enrollment is authorized; the agreement is not
    // needed, as these relationships predate the ledger.
    access::standing(reseller, Need::Authorized)?;
    let reseller_authorized_at = reseller
        .authorized_at
        .ok_or(Rejection::PartnerNotAuthorized(reseller.id))?;
    checks::name("company_name", &command.customer.company_name)?;
    checks::name("primary_domain", &command.customer.primary_domain)?;
    checks::country("customer.country", command.customer.country)?;
    if reseller.tenant_id == command.customer.tenant_id {
        return Err(Rejection::CustomerIsPartnerItself(reseller.id));
    }
    let (customer_id, profile) = match state.customer_by_tenant(command.customer.tenant_id) {
        Some(existing) => {
            if existing.relationships.contains_key(&reseller.id) {
                return Err(Rejection::AlreadyResellerOfRecord {
                    partner: reseller.id,
                });
            }
            (existing.id, existing.profile.clone())
        }
        None => (CustomerId(ctx.new_id), command.customer.clone()),
    };
    Ok(decision(
        state,
        customer_id,
        vec![Event::CustomerImported(CustomerImported {
            customer_id,
            customer: profile,
            reseller_id: reseller.id,
            reseller_authorized_at,
            source: command.source,
            original_start: command.original_start,
            delegated_admin: command.delegated_admin,
        })],
    ))
}

/// Decides a customer's removal of a partner's delegated admin.
pub(crate) fn remove_delegated_admin(
    state: &LedgerState,
    command: &RemoveDelegatedAdmin,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let customer = customer(state, command.customer_id)?;
    access::customer_admin(ctx, customer.profile.tenant_id)?;
    let relationship = relationship(customer, command.partner_id)?;
    if relationship.delegated_admin_since.is_none() {
        return Err(Rejection::NoDelegatedAdmin(command.partner_id));
    }
    Ok(decision(
        state,
        customer.id,
        vec![Event::DelegatedAdminRemoved(DelegatedAdminRemoved {
            customer_id: customer.id,
            partner_id: command.partner_id,
        })],
    ))
}

/// Decides a partner's request for granular delegated admin.
pub(crate) fn request_granular(
    state: &LedgerState,
    command: &RequestGranularAdmin,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::AdministerDelegatedAdmin,
        Need::Transacting,
    )?;
    let customer = customer(state, command.customer_id)?;
    relationship(customer, command.partner_id)?;
    checks::count("roles", command.roles.len(), 1, limits::GRANULAR_ROLES_MAX)?;
    for role in &command.roles {
        checks::name("roles", role)?;
    }
    let roles: BTreeSet<String> = command
        .roles
        .iter()
        .map(|role| role.trim().to_owned())
        .collect();
    let request_id = GranularAdminRequestId(ctx.new_id);
    Ok(decision(
        state,
        customer.id,
        vec![Event::GranularAdminRequested(GranularAdminRequested {
            customer_id: customer.id,
            request_id,
            partner_id: command.partner_id,
            roles: roles.into_iter().collect(),
            duration: command.duration,
            request_expires_at: ctx.now + GRANULAR_REQUEST_VALIDITY,
        })],
    ))
}

fn granular(
    customer: &Customer,
    request_id: GranularAdminRequestId,
) -> Result<&GranularAdmin, Rejection> {
    customer
        .granular
        .get(&request_id)
        .ok_or(Rejection::GranularAdminRequestNotFound(request_id))
}

/// Decides the customer's approval of a granular admin request.
pub(crate) fn approve_granular(
    state: &LedgerState,
    command: &ApproveGranularAdmin,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let customer = customer(state, command.customer_id)?;
    access::customer_admin(ctx, customer.profile.tenant_id)?;
    let request = granular(customer, command.request_id)?;
    if request.status != GranularStatus::Pending {
        return Err(Rejection::GranularAdminNotPending(command.request_id));
    }
    if ctx.now >= request.request_expires_at {
        return Err(Rejection::GranularAdminRequestExpired(
            request.request_expires_at,
        ));
    }
    Ok(decision(
        state,
        customer.id,
        vec![Event::GranularAdminApproved(GranularAdminApproved {
            customer_id: customer.id,
            request_id: command.request_id,
            starts_at: ctx.now,
            ends_at: ctx.now + Duration::days(i64::from(request.duration.days())),
        })],
    ))
}

/// Decides revoking a pending request or an active grant, by the customer or the partner.
pub(crate) fn revoke_granular(
    state: &LedgerState,
    command: &RevokeGranularAdmin,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let customer = customer(state, command.customer_id)?;
    let request = granular(customer, command.request_id)?;
    let revoked_by = party(
        state,
        ctx,
        customer,
        request.partner_id,
        Capability::AdministerDelegatedAdmin,
    )?;
    if !request.is_pending_at(ctx.now) && !request.is_active_at(ctx.now) {
        return Err(Rejection::GranularAdminNotActive(command.request_id));
    }
    Ok(decision(
        state,
        customer.id,
        vec![Event::GranularAdminRevoked(GranularAdminRevoked {
            customer_id: customer.id,
            request_id: command.request_id,
            revoked_by,
        })],
    ))
}

/// The acting party on a customer: its admin, or a user of `partner` with `capability`.
fn party(
    state: &LedgerState,
    ctx: &Context,
    customer: &Customer,
    partner: PartnerId,
    capability: Capability,
) -> Result<CustomerParty, Rejection> {
    match ctx.actor {
        Actor::CustomerAdmin { .. } => {
            access::customer_admin(ctx, customer.profile.tenant_id)?;
            Ok(CustomerParty::Customer)
        }
        _ => {
            access::partner_user(state, ctx, partner, capability, Need::Authorized)?;
            Ok(CustomerParty::Partner {
                partner_id: partner,
            })
        }
    }
}

/// How many active subscriptions the customer has through `partner`, as the provider that
/// ordered them or as the reseller of record on their lines.
pub fn active_subscriptions_through(
    state: &LedgerState,
    customer: CustomerId,
    partner: PartnerId,
) -> usize {
    state
        .orders_of_customer(customer)
        .flat_map(|order| {
            let provider = order.provider_id;
            order.subscriptions.values().filter(move |s| {
                !s.cancelled && (s.partner_on_record == partner || provider == partner)
            })
        })
        .count()
}

/// Decides removing a reseller relationship.
pub(crate) fn remove_relationship(
    state: &LedgerState,
    command: &RemoveResellerRelationship,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let customer = customer(state, command.customer_id)?;
    let removed_by = party(
        state,
        ctx,
        customer,
        command.partner_id,
        Capability::RemoveResellerRelationship,
    )?;
    let relationship = relationship(customer, command.partner_id)?;
    let count = active_subscriptions_through(state, customer.id, command.partner_id);
    if count > 0 {
        return Err(Rejection::ActiveSubscriptions {
            partner: command.partner_id,
            count,
        });
    }
    let granular_admin_ended = customer
        .granular
        .iter()
        .filter(|(_, g)| {
            g.partner_id == command.partner_id
                && (g.is_pending_at(ctx.now) || g.is_active_at(ctx.now))
        })
        .map(|(id, _)| *id)
        .collect();
    Ok(decision(
        state,
        customer.id,
        vec![Event::ResellerRelationshipRemoved(
            ResellerRelationshipRemoved {
                customer_id: customer.id,
                partner_id: command.partner_id,
                removed_by,
                delegated_admin_ended: relationship.delegated_admin_since.is_some(),
                granular_admin_ended,
            },
        )],
    ))
}

/// Applies a customer-stream event.
pub(crate) fn evolve(state: &mut LedgerState, meta: &EventMeta, event: &Event) {
    match event {
        Event::CustomerImported(e) => {
            let customer = known(state, e.customer_id, &e.customer);
            customer.make_of_record(
                e.reseller_id,
                RelationshipTier::IndirectReseller,
                meta.global_position,
            );
            if e.delegated_admin {
                customer.grant_delegated_admin(e.reseller_id, meta.global_position);
            }
        }
        Event::DelegatedAdminRemoved(e) => with_customer(state, e.customer_id, |c| {
            if let Some(relationship) = c.relationships.get_mut(&e.partner_id) {
                relationship.delegated_admin_since = None;
            }
        }),
        Event::GranularAdminRequested(e) => with_customer(state, e.customer_id, |c| {
            c.granular.insert(
                e.request_id,
                GranularAdmin {
                    partner_id: e.partner_id,
                    roles: e.roles.clone(),
                    duration: e.duration,
                    request_expires_at: e.request_expires_at,
                    status: GranularStatus::Pending,
                },
            );
        }),
        Event::GranularAdminApproved(e) => with_customer(state, e.customer_id, |c| {
            if let Some(request) = c.granular.get_mut(&e.request_id) {
                request.status = GranularStatus::Approved {
                    starts_at: e.starts_at,
                    ends_at: e.ends_at,
                };
            }
        }),
        Event::GranularAdminRevoked(e) => with_customer(state, e.customer_id, |c| {
            if let Some(request) = c.granular.get_mut(&e.request_id) {
                request.status = GranularStatus::Revoked;
            }
        }),
        Event::ResellerRelationshipRemoved(e) => with_customer(state, e.customer_id, |c| {
            c.relationships.remove(&e.partner_id);
            for id in &e.granular_admin_ended {
                if let Some(request) = c.granular.get_mut(id) {
                    request.status = GranularStatus::Revoked;
                }
            }
        }),
        _ => {}
    }
}

fn with_customer(
    state: &mut LedgerState,
    customer_id: CustomerId,
    change: impl FnOnce(&mut Customer),
) {
    if let Some(customer) = state.customers.get_mut(&customer_id) {
        change(customer);
    }
}
