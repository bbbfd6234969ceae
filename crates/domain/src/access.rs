//! Who may act: the checks every command makes on its actor before its own rules.
//!
//! A partner-user command checks, in this order: the actor is a partner user, the user
//! exists, is not removed, belongs to the partner acted for, has changed its temporary
//! password; the partner is authorized and not deauthorized; the user holds the capability
//! by the permission matrix; and, for transacting commands, the partner signed the
//! agreement. Access is checked before the command's own rules so that an actor who may not
//! act learns nothing about the state.

use crate::context::{Actor, Context};
use crate::ids::{PartnerId, TenantId};
use crate::partner::{Partner, User};
use crate::rejection::Rejection;
use crate::roles::{Capability, can};
use crate::state::LedgerState;

/// How far a partner must have come for a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Authorized and not deauthorized: enough to manage itself.
    Authorized,
    /// Also signed the partner agreement: needed to transact (partnerships, customer
    /// relationships, orders).
    Transacting,
}

/// The command must come from the operator.
pub(crate) fn operator(ctx: &Context) -> Result<(), Rejection> {
    match ctx.actor {
        Actor::Operator => Ok(()),
        _ => Err(not_allowed(ctx, "operator")),
    }
}

/// The refusal for an actor of the wrong kind.
pub(crate) fn not_allowed(ctx: &Context, expected: &'static str) -> Rejection {
    Rejection::ActorNotAllowed {
        actor: ctx.actor.kind(),
        expected,
    }
}

/// The acting partner user, checked down to its temporary password, and its partner.
pub(crate) fn signed_in<'s>(
    state: &'s LedgerState,
    ctx: &Context,
    partner_id: PartnerId,
) -> Result<(&'s Partner, &'s User), Rejection> {
    let Actor::User { user_id } = ctx.actor else {
        return Err(not_allowed(ctx, "partner user"));
    };
    let (partner, user) = state
        .user(user_id)
        .ok_or(Rejection::UserNotFound(user_id))?;
    if user.removed {
        return Err(Rejection::UserRemoved(user_id));
    }
    if partner.id != partner_id {
        return Err(Rejection::UserNotInPartner {
            user: user_id,
            partner: partner_id,
        });
    }
    if user.temporary_password_pending {
        return Err(Rejection::TemporaryPasswordNotChanged);
    }
    Ok((partner, user))
}

/// The partner's standing is enough for `need`.
pub(crate) fn standing(partner: &Partner, need: Need) -> Result<(), Rejection> {
    if partner.deauthorized_at.is_some() {
        return Err(Rejection::PartnerDeauthorized(partner.id));
    }
    if partner.authorized_at.is_none() {
        return Err(Rejection::PartnerNotAuthorized(partner.id));
    }
    if need == Need::Transacting && partner.agreement_signed_at.is_none() {
        return Err(Rejection::AgreementNotSigned(partner.id));
    }
    Ok(())
}

/// The acting user may use `capability` for `partner_id`, whose standing meets `need`.
pub(crate) fn partner_user<'s>(
    state: &'s LedgerState,
    ctx: &Context,
    partner_id: PartnerId,
    capability: Capability,
    need: Need,
) -> Result<(&'s Partner, &'s User), Rejection> {
    let (partner, user) = signed_in(state, ctx, partner_id)?;
    if partner.deauthorized_at.is_some() {
        return Err(Rejection::PartnerDeauthorized(partner.id));
    }
    if partner.authorized_at.is_none() {
        return Err(Rejection::PartnerNotAuthorized(partner.id));
    }
    if !can(&user.roles, capability) {
        return Err(Rejection::MissingCapability(capability));
    }
    standing(partner, need)?;
    Ok((partner, user))
}

/// The acting user is a global admin of `partner_id`, whose standing meets `need`.
pub(crate) fn global_admin<'s>(
    state: &'s LedgerState,
    ctx: &Context,
    partner_id: PartnerId,
    need: Need,
) -> Result<(&'s Partner, &'s User), Rejection> {
    let (partner, user) = signed_in(state, ctx, partner_id)?;
    if partner.deauthorized_at.is_some() {
        return Err(Rejection::PartnerDeauthorized(partner.id));
    }
    if partner.authorized_at.is_none() {
        return Err(Rejection::PartnerNotAuthorized(partner.id));
    }
    if !user.roles.is_global_admin() {
        return Err(Rejection::GlobalAdminRequired);
    }
    standing(partner, need)?;
    Ok((partner, user))
}

/// The acting tenant admin administers `tenant_id` (the enrolling tenant).
pub(crate) fn tenant_admin(ctx: &Context, tenant_id: TenantId) -> Result<(), Rejection> {
    match &ctx.actor {
        Actor::TenantAdmin {
            tenant_id: actor, ..
        } if *actor == tenant_id => Ok(()),
        Actor::TenantAdmin {
            tenant_id: actor, ..
        } => Err(Rejection::TenantMismatch {
            actor: *actor,
            expected: tenant_id,
        }),
        _ => Err(not_allowed(ctx, "enrolling tenant's global admin")),
    }
}

/// The acting customer admin administers `tenant_id`.
pub(crate) fn customer_admin(ctx: &Context, tenant_id: TenantId) -> Result<(), Rejection> {
    match &ctx.actor {
        Actor::CustomerAdmin {
            tenant_id: actor, ..
        } if *actor == tenant_id => Ok(()),
        Actor::CustomerAdmin {
            tenant_id: actor, ..
        } => Err(Rejection::TenantMismatch {
            actor: *actor,
            expected: tenant_id,
        }),
        _ => Err(not_allowed(ctx, "customer's global admin")),
    }
}
