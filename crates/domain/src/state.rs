//! The write model: every aggregate's state, the indexes that global rules need, and each
//! stream's last revision. `decide` reads it; `evolve` is the only thing that changes it.

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::Command;
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::customer::{self, Customer};
use crate::events::Event;
use crate::ids::{
    CustomerId, Email, InvitationId, OrderId, PartnerId, PartnerNumber, SubscriptionId, TenantId,
    UserId,
};
use crate::invitation::{self, CustomerInvitation};
use crate::order::{self, Order};
use crate::partner::{self, Partner, User};
use crate::partnership::{self, Partnership};
use crate::rejection::Rejection;

/// Every aggregate's state and the indexes of the global rules. Built only by [`evolve`]
/// from the log, so replaying the same events always gives an equal value.
///
/// [`evolve`]: LedgerState::evolve
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerState {
    pub(crate) partners: BTreeMap<PartnerId, Partner>,
    pub(crate) partnerships: BTreeMap<(PartnerId, PartnerId), Partnership>,
    pub(crate) invitations: BTreeMap<InvitationId, CustomerInvitation>,
    pub(crate) customers: BTreeMap<CustomerId, Customer>,
    pub(crate) orders: BTreeMap<OrderId, Order>,
    pub(crate) partner_by_tenant: BTreeMap<TenantId, PartnerId>,
    pub(crate) partner_by_number: BTreeMap<PartnerNumber, PartnerId>,
    pub(crate) user_by_email: BTreeMap<Email, UserId>,
    pub(crate) partner_of_user: BTreeMap<UserId, PartnerId>,
    pub(crate) customer_by_tenant: BTreeMap<TenantId, CustomerId>,
    pub(crate) orders_by_customer: BTreeMap<CustomerId, BTreeSet<OrderId>>,
    pub(crate) order_of_subscription: BTreeMap<SubscriptionId, OrderId>,
    pub(crate) stream_revisions: BTreeMap<String, u64>,
    pub(crate) last_position: Option<u64>,
}

impl LedgerState {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one recorded event. Cannot fail: the event is a fact already decided. An
    /// event naming an aggregate that does not exist changes nothing but the revisions.
    pub fn evolve(&mut self, meta: &EventMeta, event: &Event) {
        match event {
            Event::EnrollmentStarted(_)
            | Event::MpnProfilesObserved(_)
            | Event::MpnProfileLinked(_)
            | Event::LegalProfileSubmitted(_)
            | Event::PrimaryContactVerificationRequested(_)
            | Event::PrimaryContactEmailVerified(_)
            | Event::EnrollmentReviewStepCompleted(_)
            | Event::EnrollmentAuthorized(_)
            | Event::EnrollmentRejected(_)
            | Event::EnrollmentResubmitted(_)
            | Event::PartnerAgreementSigned(_)
            | Event::PartnerDeauthorized(_)
            | Event::ResellerProgramAdded(_)
            | Event::ProviderOnboarded(_)
            | Event::UserAdded(_)
            | Event::TemporaryPasswordIssued(_)
            | Event::TemporaryPasswordChanged(_)
            | Event::UserRolesChanged(_)
            | Event::UserRemoved(_) => partner::evolve(self, meta, event),
            Event::IndirectResellerInvited(_)
            | Event::IndirectProviderAuthorized(_)
            | Event::PartnershipEnded(_) => partnership::evolve(self, meta, event),
            Event::CustomerInvitationCreated(_) | Event::ResellerRelationshipAccepted(_) => {
                invitation::evolve(self, meta, event)
            }
            Event::CustomerImported(_)
            | Event::DelegatedAdminRemoved(_)
            | Event::GranularAdminRequested(_)
            | Event::GranularAdminApproved(_)
            | Event::GranularAdminRevoked(_)
            | Event::ResellerRelationshipRemoved(_) => customer::evolve(self, meta, event),
            Event::OrderSubmitted(_) | Event::SubscriptionCancelled(_) => {
                order::evolve(self, meta, event)
            }
        }
        self.stream_revisions
            .insert(meta.stream.clone(), meta.stream_revision);
        self.last_position = Some(meta.global_position);
    }

    /// A partner.
    pub fn partner(&self, id: PartnerId) -> Option<&Partner> {
        self.partners.get(&id)
    }

    /// Every partner, by id.
    pub fn partners(&self) -> impl Iterator<Item = &Partner> {
        self.partners.values()
    }

    /// The partner account of a tenant (enrolling or enrolled).
    pub fn partner_by_tenant(&self, tenant: TenantId) -> Option<&Partner> {
        self.partner_by_tenant
            .get(&tenant)
            .and_then(|id| self.partners.get(id))
    }

    /// The partner that linked an MPN ID.
    pub fn partner_by_number(&self, number: &PartnerNumber) -> Option<&Partner> {
        self.partner_by_number
            .get(number)
            .and_then(|id| self.partners.get(id))
    }

    /// A user and its partner.
    pub fn user(&self, id: UserId) -> Option<(&Partner, &User)> {
        let partner = self.partners.get(self.partner_of_user.get(&id)?)?;
        Some((partner, partner.users.get(&id)?))
    }

    /// The user who holds a sign-in email (removed users keep theirs).
    pub fn user_by_email(&self, email: &Email) -> Option<(&Partner, &User)> {
        self.user(*self.user_by_email.get(email)?)
    }

    /// The partner of the acting user, if the actor is a known partner user.
    pub fn partner_of_user(&self, actor: &Actor) -> Option<PartnerId> {
        match actor {
            Actor::User { user_id } => self.partner_of_user.get(user_id).copied(),
            _ => None,
        }
    }

    /// A provider–reseller partnership.
    pub fn partnership(&self, provider: PartnerId, reseller: PartnerId) -> Option<&Partnership> {
        self.partnerships.get(&(provider, reseller))
    }

    /// Every partnership, by (provider, reseller).
    pub fn partnerships(&self) -> impl Iterator<Item = &Partnership> {
        self.partnerships.values()
    }

    /// A customer invitation.
    pub fn invitation(&self, id: InvitationId) -> Option<&CustomerInvitation> {
        self.invitations.get(&id)
    }

    /// A customer.
    pub fn customer(&self, id: CustomerId) -> Option<&Customer> {
        self.customers.get(&id)
    }

    /// Every customer, by id.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.values()
    }

    /// The customer of a tenant.
    pub fn customer_by_tenant(&self, tenant: TenantId) -> Option<&Customer> {
        self.customer_by_tenant
            .get(&tenant)
            .and_then(|id| self.customers.get(id))
    }

    /// An order.
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// Every order, by id.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// The orders of a customer.
    pub fn orders_of_customer(&self, customer: CustomerId) -> impl Iterator<Item = &Order> {
        self.orders_by_customer
            .get(&customer)
            .into_iter()
            .flatten()
            .filter_map(|id| self.orders.get(id))
    }

    /// The order that created a subscription.
    pub fn order_of_subscription(&self, subscription: SubscriptionId) -> Option<&Order> {
        self.orders
            .get(self.order_of_subscription.get(&subscription)?)
    }

    /// A stream's last revision, `None` if it has no event yet.
    pub fn stream_revision(&self, stream: &str) -> Option<u64> {
        self.stream_revisions.get(stream).copied()
    }

    /// The global position of the last event applied.
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }
}

/// Decides a command against the current state: the events to append to one stream, or the
/// first rule that refuses it. Pure: the same state, command and context give the same
/// answer.
pub fn decide(
    state: &LedgerState,
    command: &Command,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let decision = decide_unchecked(state, command, ctx)?;
    // Every decision appends at least one and at most a few events to exactly one stream.
    debug_assert!(!decision.events.is_empty() && decision.events.len() <= Decision::EVENTS_MAX);
    Ok(decision)
}

fn decide_unchecked(
    state: &LedgerState,
    command: &Command,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    use crate::{customer as c, invitation as i, order as o, partner as p, partnership as s};
    match command {
        Command::StartEnrollment(x) => p::start_enrollment(state, x, ctx),
        Command::RecordMpnProfiles(x) => p::record_mpn_profiles(state, x, ctx),
        Command::LinkMpnProfile(x) => p::link_mpn_profile(state, x, ctx),
        Command::SubmitLegalProfile(x) => p::submit_legal_profile(state, x, ctx),
        Command::RequestPrimaryContactVerification(x) => p::request_verification(state, x, ctx),
        Command::VerifyPrimaryContact(x) => p::verify_primary_contact(state, x, ctx),
        Command::CompleteReviewStep(x) => p::complete_review_step(state, x, ctx),
        Command::AuthorizeEnrollment(x) => p::authorize_enrollment(state, x, ctx),
        Command::RejectEnrollment(x) => p::reject_enrollment(state, x, ctx),
        Command::ResubmitEnrollment(x) => p::resubmit_enrollment(state, x, ctx),
        Command::SignPartnerAgreement(x) => p::sign_agreement(state, x, ctx),
        Command::DeauthorizePartner(x) => p::deauthorize(state, x, ctx),
        Command::AddResellerProgram(x) => p::add_reseller_program(state, x, ctx),
        Command::OnboardProvider(x) => p::onboard_provider(state, x, ctx),
        Command::AddUser(x) => p::add_user(state, x, ctx),
        Command::ResetTemporaryPassword(x) => p::reset_password(state, x, ctx),
        Command::ChangeTemporaryPassword(x) => p::change_password(state, x, ctx),
        Command::ChangeUserRoles(x) => p::change_roles(state, x, ctx),
        Command::RemoveUser(x) => p::remove_user(state, x, ctx),
        Command::InviteReseller(x) => s::invite_reseller(state, x, ctx),
        Command::AuthorizeIndirectProvider(x) => s::authorize_provider(state, x, ctx),
        Command::EndPartnership(x) => s::end_partnership(state, x, ctx),
        Command::ImportExistingCustomer(x) => c::import(state, x, ctx),
        Command::InviteCustomer(x) => i::invite_customer(state, x, ctx),
        Command::AcceptCustomerInvitation(x) => i::accept(state, x, ctx),
        Command::RemoveDelegatedAdmin(x) => c::remove_delegated_admin(state, x, ctx),
        Command::RequestGranularAdmin(x) => c::request_granular(state, x, ctx),
        Command::ApproveGranularAdmin(x) => c::approve_granular(state, x, ctx),
        Command::RevokeGranularAdmin(x) => c::revoke_granular(state, x, ctx),
        Command::RemoveResellerRelationship(x) => c::remove_relationship(state, x, ctx),
        Command::SubmitOrder(x) => o::submit(state, x, ctx),
        Command::CancelSubscription(x) => o::cancel(state, x, ctx),
    }
}

/// Rebuilds the state from recorded events, in log order.
pub fn replay<'e>(events: impl IntoIterator<Item = (&'e EventMeta, &'e Event)>) -> LedgerState {
    let mut state = LedgerState::new();
    for (meta, event) in events {
        state.evolve(meta, event);
    }
    state
}
