//! The customer invitation aggregate (`invitation-{id}`): a partner's personalized link to
//! a customer, naming a reseller (or a provider for its own direct relationship) and
//! optionally one of the reseller's authorized providers, and its single acceptance.
//!
//! The acceptance is recorded in the invitation's stream, so the stream revision guards the
//! link's single use even when two acceptances race.

use chrono::{DateTime, Duration, Utc};

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{AcceptCustomerInvitation, InviteCustomer};
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::events::{
    AcceptedPartner, CustomerInvitationCreated, Event, ResellerRelationshipAccepted,
};
use crate::ids::{CustomerId, Email, InvitationId, PartnerId, SecretHash, TenantId};
use crate::partner::Partner;
use crate::partnership::{Partnership, transacting_in};
use crate::rejection::Rejection;
use crate::roles::Capability;
use crate::state::LedgerState;
use crate::streams;
use crate::types::{CustomerProfile, Program, RelationshipTier};

/// How long a customer invitation link works. Partner Center's links stay valid for long;
/// 30 days, as for reseller invitations, bounds what an old forwarded mail can do.
pub const CUSTOMER_INVITATION_VALIDITY: Duration = Duration::days(30);

/// The state of one customer invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerInvitation {
    /// The invitation.
    pub id: InvitationId,
    /// The partner the link is personalized to.
    pub partner_id: PartnerId,
    /// The inviting partner's tier.
    pub tier: RelationshipTier,
    /// The provider named with the reseller, if any.
    pub provider_id: Option<PartnerId>,
    /// The customer's email.
    pub customer_email: Email,
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link's end.
    pub expires_at: DateTime<Utc>,
    /// The customer that accepted, once used.
    pub accepted_by: Option<CustomerId>,
}

fn decision(state: &LedgerState, invitation: InvitationId, events: Vec<Event>) -> Decision {
    let stream = streams::invitation(invitation);
    let expected_revision = state.stream_revision(&stream);
    Decision::new(stream, expected_revision, events)
}

fn active_partnership(
    state: &LedgerState,
    provider: PartnerId,
    reseller: PartnerId,
) -> Result<u64, Rejection> {
    state
        .partnership(provider, reseller)
        .and_then(|partnership| partnership.active_since)
        .ok_or(Rejection::PartnershipNotActive { provider, reseller })
}

/// Decides drafting a customer invitation.
pub(crate) fn invite_customer(
    state: &LedgerState,
    command: &InviteCustomer,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, _) = access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::InviteCustomers,
        Need::Transacting,
    )?;
    let (tier, partnership_authorized_at) = match command.provider_id {
        Some(provider_id) => {
            if !partner.has(Program::IndirectReseller) {
                return Err(Rejection::ProgramMissing {
                    partner: partner.id,
                    program: Program::IndirectReseller,
                });
            }
            transacting_in(state, provider_id, Program::IndirectProvider)?;
            let since = active_partnership(state, provider_id, partner.id)?;
            (RelationshipTier::IndirectReseller, Some(since))
        }
        // A provider inviting on its own asks for a direct relationship.
        None if partner.has(Program::IndirectProvider) => (RelationshipTier::Direct, None),
        None => (RelationshipTier::IndirectReseller, None),
    };
    let token_hash = checks::issued_token(ctx)?;
    let invitation_id = InvitationId(ctx.new_id);
    Ok(decision(
        state,
        invitation_id,
        vec![Event::CustomerInvitationCreated(
            CustomerInvitationCreated {
                invitation_id,
                partner_id: partner.id,
                tier,
                provider_id: command.provider_id,
                partnership_authorized_at,
                customer_email: command.customer_email.clone(),
                token_hash,
                expires_at: ctx.now + CUSTOMER_INVITATION_VALIDITY,
            },
        )],
    ))
}

/// A named partner is still eligible for this customer: transacting, serving the customer's
/// country, not the customer itself, and not a provider whose partnered reseller this
/// tenant is.
fn eligible(
    state: &LedgerState,
    partner_id: PartnerId,
    program: Program,
    tier: RelationshipTier,
    tenant: TenantId,
    country: crate::ids::Country,
) -> Result<AcceptedPartner, Rejection> {
    let partner: &Partner = transacting_in(state, partner_id, program)?;
    if partner.tenant_id == tenant {
        return Err(Rejection::CustomerIsPartnerItself(partner.id));
    }
    if !partner.serves(country) {
        return Err(Rejection::CountryNotServed {
            partner: partner.id,
            country,
        });
    }
    if program == Program::IndirectProvider && reseller_partnered_with(state, partner.id, tenant) {
        return Err(Rejection::ResellerIsProviderCustomer {
            provider: partner.id,
            tenant,
        });
    }
    let standing = partner
        .standing()
        .ok_or(Rejection::PartnerNotAuthorized(partner.id))?;
    Ok(AcceptedPartner { standing, tier })
}

/// Whether `tenant` is the tenant of a reseller actively partnered with `provider`.
pub(crate) fn reseller_partnered_with(
    state: &LedgerState,
    provider: PartnerId,
    tenant: TenantId,
) -> bool {
    state
        .partner_by_tenant(tenant)
        .and_then(|reseller| state.partnership(provider, reseller.id))
        .is_some_and(Partnership::is_active)
}

/// Decides a customer's acceptance of an invitation.
pub(crate) fn accept(
    state: &LedgerState,
    command: &AcceptCustomerInvitation,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let Actor::CustomerAdmin { tenant_id, token } = ctx.actor else {
        return Err(access::not_allowed(
            ctx,
            "customer's global admin, through the invitation link",
        ));
    };
    let invitation = state
        .invitation(command.invitation_id)
        .ok_or(Rejection::InvitationNotFound(command.invitation_id))?;
    if token != Some(invitation.token_hash) {
        return Err(Rejection::TokenMismatch);
    }
    if invitation.accepted_by.is_some() {
        return Err(Rejection::InvitationAlreadyUsed);
    }
    if ctx.now >= invitation.expires_at {
        return Err(Rejection::InvitationExpired(invitation.expires_at));
    }
    checks::name("company_name", &command.company_name)?;
    checks::name("primary_domain", &command.primary_domain)?;
    checks::country("country", command.country)?;
    let existing = state.customer_by_tenant(tenant_id);
    let (customer_id, customer) = match existing {
        Some(customer) => (customer.id, customer.profile.clone()),
        None => (
            CustomerId(ctx.new_id),
            CustomerProfile {
                tenant_id,
                company_name: command.company_name.clone(),
                primary_domain: command.primary_domain.clone(),
                country: command.country,
            },
        ),
    };
    // Every named partner is re-checked now: invitations outlive the facts they were made on.
    let inviting_program = match invitation.tier {
        RelationshipTier::Direct => Program::IndirectProvider,
        _ => Program::IndirectReseller,
    };
    let mut partners = vec![eligible(
        state,
        invitation.partner_id,
        inviting_program,
        invitation.tier,
        tenant_id,
        customer.country,
    )?];
    let mut partnership_authorized_at = None;
    if let Some(provider_id) = invitation.provider_id {
        partnership_authorized_at = Some(active_partnership(
            state,
            provider_id,
            invitation.partner_id,
        )?);
        partners.push(eligible(
            state,
            provider_id,
            Program::IndirectProvider,
            RelationshipTier::IndirectProvider,
            tenant_id,
            customer.country,
        )?);
    }
    // Accepting again is refused only when it would change nothing.
    if let Some(customer) = existing
        && partners
            .iter()
            .all(|p| customer.relationships.contains_key(&p.standing.partner_id))
    {
        return Err(Rejection::AlreadyResellerOfRecord {
            partner: invitation.partner_id,
        });
    }
    Ok(decision(
        state,
        invitation.id,
        vec![Event::ResellerRelationshipAccepted(
            ResellerRelationshipAccepted {
                invitation_id: invitation.id,
                customer_id,
                customer,
                partners,
                delegated_admin_to: invitation.partner_id,
                partnership_authorized_at,
            },
        )],
    ))
}

/// Applies an invitation-stream event (the acceptance also changes the customer).
pub(crate) fn evolve(state: &mut LedgerState, meta: &EventMeta, event: &Event) {
    match event {
        Event::CustomerInvitationCreated(e) => {
            state.invitations.insert(
                e.invitation_id,
                CustomerInvitation {
                    id: e.invitation_id,
                    partner_id: e.partner_id,
                    tier: e.tier,
                    provider_id: e.provider_id,
                    customer_email: e.customer_email.clone(),
                    token_hash: e.token_hash,
                    expires_at: e.expires_at,
                    accepted_by: None,
                },
            );
        }
        Event::ResellerRelationshipAccepted(e) => {
            if let Some(invitation) = state.invitations.get_mut(&e.invitation_id) {
                invitation.accepted_by = Some(e.customer_id);
            }
            let customer = crate::customer::known(state, e.customer_id, &e.customer);
            for accepted in &e.partners {
                customer.make_of_record(
                    accepted.standing.partner_id,
                    accepted.tier,
                    meta.global_position,
                );
            }
            customer.grant_delegated_admin(e.delegated_admin_to, meta.global_position);
        }
        _ => {}
    }
}
