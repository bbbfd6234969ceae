//! The partnership aggregate (`partnership-{provider}-{reseller}`): the provider's
//! invitation with its 30-day single-use link, the reseller's authorization, and its end.

use chrono::{DateTime, Duration, Utc};

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{AuthorizeIndirectProvider, EndPartnership, InviteReseller};
use crate::context::{Context, Decision, EventMeta};
use crate::events::{
    Event, IndirectProviderAuthorized, IndirectResellerInvited, PartnershipEnded, PartnershipSide,
};
use crate::ids::{PartnerId, SecretHash};
use crate::partner::Partner;
use crate::rejection::Rejection;
use crate::roles::Capability;
use crate::state::LedgerState;
use crate::streams;
use crate::types::Program;

/// How long a reseller invitation link works.
pub const RESELLER_INVITATION_VALIDITY: Duration = Duration::days(30);

/// The provider's open invitation to the reseller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResellerInvitation {
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link's end.
    pub expires_at: DateTime<Utc>,
    /// Position of the invitation event.
    pub invited_at: u64,
    /// Whether the link was used.
    pub used: bool,
}

/// The state of one provider–reseller pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partnership {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// The latest invitation.
    pub invitation: Option<ResellerInvitation>,
    /// Position of the authorization that made it active, while it is active.
    pub active_since: Option<u64>,
    /// Position of the last end, if it ended.
    pub ended_at: Option<u64>,
}

impl Partnership {
    /// Whether the partnership is active.
    pub fn is_active(&self) -> bool {
        self.active_since.is_some()
    }
}

fn decision(
    state: &LedgerState,
    provider: PartnerId,
    reseller: PartnerId,
    events: Vec<Event>,
) -> Decision {
    let stream = streams::partnership(provider, reseller);
    let expected_revision = state.stream_revision(&stream);
    Decision::new(stream, expected_revision, events)
}

/// The partner as a transacting member of `program`.
pub(crate) fn transacting_in(
    state: &LedgerState,
    partner_id: PartnerId,
    program: Program,
) -> Result<&Partner, Rejection> {
    let partner = state
        .partner(partner_id)
        .ok_or(Rejection::PartnerNotFound(partner_id))?;
    if !partner.has(program) {
        return Err(Rejection::ProgramMissing {
            partner: partner_id,
            program,
        });
    }
    access::standing(partner, Need::Transacting)?;
    Ok(partner)
}

/// Decides a provider's invitation of a reseller.
pub(crate) fn invite_reseller(
    state: &LedgerState,
    command: &InviteReseller,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (provider, _) = access::partner_user(
        state,
        ctx,
        command.provider_id,
        Capability::InviteCustomers,
        Need::Transacting,
    )?;
    if !provider.has(Program::IndirectProvider) {
        return Err(Rejection::ProgramMissing {
            partner: provider.id,
            program: Program::IndirectProvider,
        });
    }
    // An unknown number, the provider's own and a partner outside the reseller program are
    // refused alike, so that a provider cannot walk partner numbers to learn who is who.
    let reseller = state
        .partner_by_number(&command.reseller_partner_number)
        .filter(|reseller| reseller.id != provider.id && reseller.has(Program::IndirectReseller))
        .ok_or_else(|| Rejection::PartnerNumberNotFound(command.reseller_partner_number.clone()))?;
    if state
        .partnership(provider.id, reseller.id)
        .is_some_and(Partnership::is_active)
    {
        return Err(Rejection::PartnershipAlreadyActive {
            provider: provider.id,
            reseller: reseller.id,
        });
    }
    let token_hash = checks::issued_token(ctx)?;
    Ok(decision(
        state,
        provider.id,
        reseller.id,
        vec![Event::IndirectResellerInvited(IndirectResellerInvited {
            provider_id: provider.id,
            reseller_id: reseller.id,
            reseller_partner_number: command.reseller_partner_number.clone(),
            token_hash,
            expires_at: ctx.now + RESELLER_INVITATION_VALIDITY,
        })],
    ))
}

/// The tenant of `reseller` is a customer of `provider` (the provider is reseller of
/// record for a customer with that tenant).
pub(crate) fn tenant_is_customer_of(
    state: &LedgerState,
    provider: PartnerId,
    tenant: crate::ids::TenantId,
) -> bool {
    state
        .customer_by_tenant(tenant)
        .is_some_and(|customer| customer.relationships.contains_key(&provider))
}

/// Decides the reseller's authorization of a provider.
pub(crate) fn authorize_provider(
    state: &LedgerState,
    command: &AuthorizeIndirectProvider,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (reseller, _) = access::partner_user(
        state,
        ctx,
        command.reseller_id,
        Capability::AuthorizeIndirectProvider,
        Need::Transacting,
    )?;
    if !command.consent {
        return Err(Rejection::ConsentRequired);
    }
    let partnership = state
        .partnership(command.provider_id, command.reseller_id)
        .ok_or(Rejection::PartnershipInvitationNotFound {
            provider: command.provider_id,
            reseller: command.reseller_id,
        })?;
    if partnership.is_active() {
        return Err(Rejection::PartnershipAlreadyActive {
            provider: command.provider_id,
            reseller: command.reseller_id,
        });
    }
    let invitation =
        partnership
            .invitation
            .as_ref()
            .ok_or(Rejection::PartnershipInvitationNotFound {
                provider: command.provider_id,
                reseller: command.reseller_id,
            })?;
    if invitation.token_hash != command.token_hash {
        return Err(Rejection::TokenMismatch);
    }
    if invitation.used {
        return Err(Rejection::InvitationAlreadyUsed);
    }
    if ctx.now >= invitation.expires_at {
        return Err(Rejection::InvitationExpired(invitation.expires_at));
    }
    let reseller = transacting_in(state, reseller.id, Program::IndirectReseller)?;
    let provider = transacting_in(state, command.provider_id, Program::IndirectProvider)?;
    if !provider.serves(reseller.country) {
        return Err(Rejection::CountryNotServed {
            partner: provider.id,
            country: reseller.country,
        });
    }
    if tenant_is_customer_of(state, provider.id, reseller.tenant_id) {
        return Err(Rejection::ResellerIsProviderCustomer {
            provider: provider.id,
            tenant: reseller.tenant_id,
        });
    }
    let (Some(provider_standing), Some(reseller_standing)) =
        (provider.standing(), reseller.standing())
    else {
        // `transacting_in` checked both standings just above.
        return Err(Rejection::PartnerNotAuthorized(provider.id));
    };
    Ok(decision(
        state,
        provider.id,
        reseller.id,
        vec![Event::IndirectProviderAuthorized(
            IndirectProviderAuthorized {
                provider_id: provider.id,
                reseller_id: reseller.id,
                invitation_at: invitation.invited_at,
                provider: provider_standing,
                reseller: reseller_standing,
                country: reseller.country,
            },
        )],
    ))
}

/// Decides ending a partnership, by a global admin of either side.
pub(crate) fn end_partnership(
    state: &LedgerState,
    command: &EndPartnership,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    checks::optional_text("reason", command.reason.as_deref())?;
    // Whichever side the acting user belongs to is the side that ends it.
    let side = match state.partner_of_user(&ctx.actor) {
        Some(partner) if partner == command.provider_id => PartnershipSide::Provider,
        _ => PartnershipSide::Reseller,
    };
    let acting_for = match side {
        PartnershipSide::Provider => command.provider_id,
        PartnershipSide::Reseller => command.reseller_id,
    };
    access::partner_user(
        state,
        ctx,
        acting_for,
        Capability::AuthorizeIndirectProvider,
        Need::Authorized,
    )?;
    let active = state
        .partnership(command.provider_id, command.reseller_id)
        .is_some_and(Partnership::is_active);
    if !active {
        return Err(Rejection::PartnershipNotActive {
            provider: command.provider_id,
            reseller: command.reseller_id,
        });
    }
    Ok(decision(
        state,
        command.provider_id,
        command.reseller_id,
        vec![Event::PartnershipEnded(PartnershipEnded {
            provider_id: command.provider_id,
            reseller_id: command.reseller_id,
            ended_by: side,
            reason: command.reason.clone(),
        })],
    ))
}

/// Applies a partnership-stream event.
pub(crate) fn evolve(state: &mut LedgerState, meta: &EventMeta, event: &Event) {
    match event {
        Event::IndirectResellerInvited(e) => {
            let partnership = state
                .partnerships
                .entry((e.provider_id, e.reseller_id))
                .or_insert_with(|| Partnership {
                    provider_id: e.provider_id,
                    reseller_id: e.reseller_id,
                    invitation: None,
                    active_since: None,
                    ended_at: None,
                });
            partnership.invitation = Some(ResellerInvitation {
                token_hash: e.token_hash,
                expires_at: e.expires_at,
                invited_at: meta.global_position,
                used: false,
            });
        }
        Event::IndirectProviderAuthorized(e) => {
            if let Some(partnership) = state.partnerships.get_mut(&(e.provider_id, e.reseller_id)) {
                partnership.active_since = Some(meta.global_position);
                if let Some(invitation) = partnership.invitation.as_mut() {
                    invitation.used = true;
                }
            }
        }
        Event::PartnershipEnded(e) => {
            if let Some(partnership) = state.partnerships.get_mut(&(e.provider_id, e.reseller_id)) {
                partnership.active_since = None;
                partnership.ended_at = Some(meta.global_position);
            }
        }
        _ => {}
    }
}
