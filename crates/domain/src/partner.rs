//! The partner aggregate (`partner-{id}`): enrollment, profile, verification, review,
//! agreement, deauthorization, programs, and the partner's users and roles.
//!
//! Users live in the partner's stream so that "at least one active global admin" is a rule
//! of one aggregate, guarded by one stream revision.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{
    AddResellerProgram, AddUser, AuthorizeEnrollment, ChangeTemporaryPassword, ChangeUserRoles,
    CompleteReviewStep, DeauthorizePartner, LinkMpnProfile, OnboardProvider, RecordMpnProfiles,
    RejectEnrollment, RemoveUser, RequestPrimaryContactVerification, ResetTemporaryPassword,
    ResubmitEnrollment, SignPartnerAgreement, StartEnrollment, SubmitLegalProfile,
    VerifyPrimaryContact, limits,
};
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::events::{
    EnrollmentAuthorized, EnrollmentRejected, EnrollmentResubmitted, EnrollmentReviewStepCompleted,
    EnrollmentStarted, Event, LegalProfileSubmitted, MpnProfileLinked, MpnProfilesObserved,
    PartnerAgreementSigned, PartnerDeauthorized, PartnerStanding, PrimaryContactEmailVerified,
    PrimaryContactVerificationRequested, ProviderOnboarded, ResellerProgramAdded,
    TemporaryPasswordChanged, TemporaryPasswordIssued, UserAdded, UserRemoved, UserRolesChanged,
};
use crate::ids::{Country, Email, PartnerId, PartnerNumber, SecretHash, TenantId, UserId};
use crate::rejection::Rejection;
use crate::roles::{AgentRole, Capability, Roles};
use crate::state::LedgerState;
use crate::streams;
use crate::types::{LegalProfile, MpnProfile, Program, ReviewStep, SupportDetails};

/// How long a primary-contact verification link works.
pub const VERIFICATION_VALIDITY: Duration = Duration::days(7);

/// A partner's enrollment status (SPEC §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerStatus {
    /// Enrolling; see [`Partner::pending_step`] for the sub-status.
    Pending,
    /// Authorized by the operator (or onboarded as a provider).
    Authorized,
    /// Rejected with a reason; may be fixed and resubmitted.
    Rejected,
    /// Deauthorized by the operator; may no longer transact.
    Deauthorized,
}

impl PartnerStatus {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            PartnerStatus::Pending => "pending",
            PartnerStatus::Authorized => "authorized",
            PartnerStatus::Rejected => "rejected",
            PartnerStatus::Deauthorized => "deauthorized",
        }
    }
}

/// The sub-status of a pending enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingStep {
    /// Profile, MPN link and legal details still being gathered.
    Profile,
    /// Waiting for the primary contact to verify its email.
    EmailOwnership,
    /// Under the operator's review, awaiting the decision.
    Decision,
}

/// A pending primary-contact verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The address being verified.
    pub email: Email,
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link's end.
    pub expires_at: DateTime<Utc>,
}

/// One partner user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user.
    pub id: UserId,
    /// Full name.
    pub full_name: String,
    /// Sign-in email.
    pub email: Email,
    /// Roles.
    pub roles: Roles,
    /// Whether a temporary password was issued and not yet changed.
    pub temporary_password_pending: bool,
    /// Whether the user was removed.
    pub removed: bool,
}

impl User {
    /// Whether the user is an active (not removed) global admin.
    pub fn is_active_global_admin(&self) -> bool {
        !self.removed && self.roles.is_global_admin()
    }
}

/// The state of one partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partner {
    /// The partner.
    pub id: PartnerId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The tenant's country.
    pub country: Country,
    /// Name given at the start (legal name once submitted or onboarded).
    pub name: String,
    /// Programs it takes part in.
    pub programs: BTreeSet<Program>,
    /// Enrollment status.
    pub status: PartnerStatus,
    /// The enrolling tenant admin (email, name), for a partner that enrolled.
    pub enrolling_admin: Option<(Email, String)>,
    /// MPN profiles last observed.
    pub mpn_profiles: Vec<MpnProfile>,
    /// The linked MPN ID.
    pub partner_number: Option<PartnerNumber>,
    /// The legal profile.
    pub legal_profile: Option<LegalProfile>,
    /// Support details (from the legal profile, the reseller program, or onboarding).
    pub support: Option<SupportDetails>,
    /// The pending verification of the primary contact.
    pub verification: Option<Verification>,
    /// The verified primary-contact email, if the current contact is verified.
    pub verified_email: Option<Email>,
    /// Completed review steps of the current review.
    pub review_steps: BTreeSet<ReviewStep>,
    /// Last rejection reason.
    pub rejection_reason: Option<String>,
    /// Position of the event that authorized it.
    pub authorized_at: Option<u64>,
    /// Position of the agreement signature.
    pub agreement_signed_at: Option<u64>,
    /// Position of the deauthorization.
    pub deauthorized_at: Option<u64>,
    /// Deauthorization reason.
    pub deauthorization_reason: Option<String>,
    /// Countries served (providers: those onboarded with; resellers: their own).
    pub countries_served: BTreeSet<Country>,
    /// Users, removed ones included.
    pub users: BTreeMap<UserId, User>,
}

impl Partner {
    fn new(id: PartnerId, tenant_id: TenantId, country: Country, name: String) -> Self {
        Partner {
            id,
            tenant_id,
            country,
            name,
            programs: BTreeSet::new(),
            status: PartnerStatus::Pending,
            enrolling_admin: None,
            mpn_profiles: Vec::new(),
            partner_number: None,
            legal_profile: None,
            support: None,
            verification: None,
            verified_email: None,
            review_steps: BTreeSet::new(),
            rejection_reason: None,
            authorized_at: None,
            agreement_signed_at: None,
            deauthorized_at: None,
            deauthorization_reason: None,
            countries_served: BTreeSet::from([country]),
            users: BTreeMap::new(),
        }
    }

    /// The sub-status while pending, `None` otherwise.
    pub fn pending_step(&self) -> Option<PendingStep> {
        if self.status != PartnerStatus::Pending {
            return None;
        }
        Some(if self.verified_email.is_some() {
            PendingStep::Decision
        } else if self.legal_profile.is_some() && self.partner_number.is_some() {
            PendingStep::EmailOwnership
        } else {
            PendingStep::Profile
        })
    }

    /// Whether it takes part in `program`.
    pub fn has(&self, program: Program) -> bool {
        self.programs.contains(&program)
    }

    /// Whether it serves customers and resellers in `country`.
    pub fn serves(&self, country: Country) -> bool {
        self.countries_served.contains(&country)
    }

    /// Why it may transact now (authorized, agreement signed, not deauthorized), or `None`.
    pub fn standing(&self) -> Option<PartnerStanding> {
        if self.deauthorized_at.is_some() {
            return None;
        }
        Some(PartnerStanding {
            partner_id: self.id,
            authorized_at: self.authorized_at?,
            agreement_signed_at: self.agreement_signed_at?,
        })
    }

    /// How many active global admins it has.
    pub fn active_global_admins(&self) -> usize {
        self.users
            .values()
            .filter(|user| user.is_active_global_admin())
            .count()
    }

    /// Whether a global admin other than `user` could act for the partner now: active, and
    /// signed in with a password of its own (one still holding a temporary password may never
    /// sign in). The last such admin keeps its role.
    pub fn has_another_ready_global_admin(&self, user: UserId) -> bool {
        self.users.values().any(|other| {
            other.id != user && other.is_active_global_admin() && !other.temporary_password_pending
        })
    }

    /// Its enrollment is open to changes (pending or rejected).
    fn enrollment_open(&self) -> Result<(), Rejection> {
        match self.status {
            PartnerStatus::Pending | PartnerStatus::Rejected => Ok(()),
            status => Err(self.wrong_status(status)),
        }
    }

    fn wrong_status(&self, status: PartnerStatus) -> Rejection {
        Rejection::EnrollmentStatus {
            partner: self.id,
            status: status.name(),
        }
    }

    fn require_status(&self, wanted: PartnerStatus) -> Result<(), Rejection> {
        if self.status == wanted {
            Ok(())
        } else {
            Err(self.wrong_status(self.status))
        }
    }
}

// ---------------------------------------------------------------- decide

fn partner(state: &LedgerState, partner_id: PartnerId) -> Result<&Partner, Rejection> {
    state
        .partner(partner_id)
        .ok_or(Rejection::PartnerNotFound(partner_id))
}

fn decision(state: &LedgerState, partner_id: PartnerId, events: Vec<Event>) -> Decision {
    let stream = streams::partner(partner_id);
    let expected_revision = state.stream_revision(&stream);
    Decision::new(stream, expected_revision, events)
}

fn email_free(state: &LedgerState, email: &Email) -> Result<(), Rejection> {
    if state.user_by_email(email).is_some() {
        Err(Rejection::EmailTaken(email.clone()))
    } else {
        Ok(())
    }
}

fn tenant_free(state: &LedgerState, tenant_id: TenantId) -> Result<(), Rejection> {
    if state.partner_by_tenant(tenant_id).is_some() {
        Err(Rejection::TenantAlreadyPartner(tenant_id))
    } else {
        Ok(())
    }
}

fn number_free(
    state: &LedgerState,
    number: &PartnerNumber,
    owner: Option<PartnerId>,
) -> Result<(), Rejection> {
    match state.partner_by_number(number) {
        Some(holder) if Some(holder.id) != owner => {
            Err(Rejection::PartnerNumberTaken(number.clone()))
        }
        _ => Ok(()),
    }
}

/// The enrolling partner, checked to be acted on by its own tenant's admin.
fn enrolling<'s>(
    state: &'s LedgerState,
    ctx: &Context,
    partner_id: PartnerId,
) -> Result<&'s Partner, Rejection> {
    let partner = partner(state, partner_id)?;
    access::tenant_admin(ctx, partner.tenant_id)?;
    Ok(partner)
}

/// The chosen MPN profile is observed, active and in the tenant's country.
fn check_mpn_profile<'p>(
    partner: &'p Partner,
    number: &PartnerNumber,
) -> Result<&'p MpnProfile, Rejection> {
    let profile = partner
        .mpn_profiles
        .iter()
        .find(|profile| profile.partner_number == *number)
        .ok_or_else(|| Rejection::MpnProfileNotObserved(number.clone()))?;
    if !profile.active {
        return Err(Rejection::MpnProfileInactive(number.clone()));
    }
    if profile.country != partner.country {
        return Err(Rejection::MpnCountryMismatch {
            profile: profile.country,
            tenant: partner.country,
        });
    }
    Ok(profile)
}

fn check_support(support: &SupportDetails) -> Result<(), Rejection> {
    checks::name("support.phone", &support.phone)?;
    checks::optional_text("support.website", support.website.as_deref())
}

fn check_legal_profile(partner: &Partner, profile: &LegalProfile) -> Result<(), Rejection> {
    checks::name("legal_name", &profile.legal_name)?;
    checks::count(
        "address.lines",
        profile.address.lines.len(),
        1,
        limits::ADDRESS_LINES_MAX,
    )?;
    for line in &profile.address.lines {
        checks::name("address.lines", line)?;
    }
    checks::name("address.city", &profile.address.city)?;
    checks::optional_text("address.region", profile.address.region.as_deref())?;
    checks::optional_text(
        "address.postal_code",
        profile.address.postal_code.as_deref(),
    )?;
    checks::name("primary_contact.name", &profile.primary_contact.name)?;
    checks::optional_text(
        "primary_contact.phone",
        profile.primary_contact.phone.as_deref(),
    )?;
    check_support(&profile.support)?;
    if profile.address.country != partner.country {
        return Err(Rejection::LegalAddressCountryMismatch {
            address: profile.address.country,
            tenant: partner.country,
        });
    }
    if checks::is_webmail(&profile.primary_contact.email) {
        return Err(Rejection::WebmailPrimaryContact {
            domain: profile.primary_contact.email.domain().to_owned(),
        });
    }
    Ok(())
}

/// Granting or revoking global admin, and touching a global admin, needs a global admin.
fn guard_global_admin(
    actor: &User,
    before: Option<&Roles>,
    after: Option<&Roles>,
) -> Result<(), Rejection> {
    let touches =
        before.is_some_and(Roles::is_global_admin) || after.is_some_and(Roles::is_global_admin);
    if touches && !actor.roles.is_global_admin() {
        Err(Rejection::GlobalAdminGrantRequiresGlobalAdmin)
    } else {
        Ok(())
    }
}

fn guard_sales_agent(partner: &Partner, roles: &Roles) -> Result<(), Rejection> {
    if roles.agent_role == Some(AgentRole::SalesAgent) && !partner.has(Program::IndirectProvider) {
        Err(Rejection::SalesAgentOnlyForProviders)
    } else {
        Ok(())
    }
}

/// The target user of a user-management command.
fn target_user(partner: &Partner, user_id: UserId) -> Result<&User, Rejection> {
    let user = partner
        .users
        .get(&user_id)
        .ok_or(Rejection::UserNotFound(user_id))?;
    if user.removed {
        return Err(Rejection::UserRemoved(user_id));
    }
    Ok(user)
}

/// Decides an enrollment start.
pub(crate) fn start_enrollment(
    state: &LedgerState,
    command: &StartEnrollment,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let Actor::TenantAdmin {
        tenant_id,
        email,
        name,
    } = &ctx.actor
    else {
        return Err(access::not_allowed(ctx, "tenant's global admin"));
    };
    checks::name("organization_name", &command.organization_name)?;
    checks::name("name", name)?;
    checks::country("tenant_country", command.tenant_country)?;
    tenant_free(state, *tenant_id)?;
    email_free(state, email)?;
    let partner_id = PartnerId(ctx.new_id);
    Ok(decision(
        state,
        partner_id,
        vec![Event::EnrollmentStarted(EnrollmentStarted {
            partner_id,
            tenant_id: *tenant_id,
            tenant_country: command.tenant_country,
            organization_name: command.organization_name.clone(),
            enrolling_admin_email: email.clone(),
            enrolling_admin_name: name.clone(),
        })],
    ))
}

/// Decides recording observed MPN profiles.
pub(crate) fn record_mpn_profiles(
    state: &LedgerState,
    command: &RecordMpnProfiles,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    if !matches!(ctx.actor, Actor::System | Actor::Operator) {
        return Err(access::not_allowed(
            ctx,
            "system, which observes the membership center",
        ));
    }
    let partner = partner(state, command.partner_id)?;
    partner.enrollment_open()?;
    checks::count(
        "profiles",
        command.profiles.len(),
        0,
        limits::MPN_PROFILES_MAX,
    )?;
    for profile in &command.profiles {
        checks::name("organization_name", &profile.organization_name)?;
        checks::country("profiles.country", profile.country)?;
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::MpnProfilesObserved(MpnProfilesObserved {
            partner_id: partner.id,
            profiles: command.profiles.clone(),
        })],
    ))
}

/// Decides linking the chosen MPN profile.
pub(crate) fn link_mpn_profile(
    state: &LedgerState,
    command: &LinkMpnProfile,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let partner = enrolling(state, ctx, command.partner_id)?;
    partner.enrollment_open()?;
    let profile = check_mpn_profile(partner, &command.partner_number)?;
    number_free(state, &command.partner_number, Some(partner.id))?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::MpnProfileLinked(MpnProfileLinked {
            partner_id: partner.id,
            partner_number: profile.partner_number.clone(),
            country: profile.country,
        })],
    ))
}

/// Decides submitting the legal profile.
pub(crate) fn submit_legal_profile(
    state: &LedgerState,
    command: &SubmitLegalProfile,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let partner = enrolling(state, ctx, command.partner_id)?;
    partner.enrollment_open()?;
    check_legal_profile(partner, &command.profile)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::LegalProfileSubmitted(LegalProfileSubmitted {
            partner_id: partner.id,
            profile: command.profile.clone(),
        })],
    ))
}

/// Decides requesting the primary contact's verification.
pub(crate) fn request_verification(
    state: &LedgerState,
    command: &RequestPrimaryContactVerification,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let partner = partner(state, command.partner_id)?;
    if !matches!(ctx.actor, Actor::System) {
        access::tenant_admin(ctx, partner.tenant_id)?;
    }
    partner.enrollment_open()?;
    let profile = partner
        .legal_profile
        .as_ref()
        .ok_or(Rejection::LegalProfileMissing)?;
    if partner.verified_email.is_some() {
        return Err(Rejection::PrimaryContactAlreadyVerified);
    }
    let token_hash = checks::issued_token(ctx)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::PrimaryContactVerificationRequested(
            PrimaryContactVerificationRequested {
                partner_id: partner.id,
                email: profile.primary_contact.email.clone(),
                token_hash,
                expires_at: ctx.now + VERIFICATION_VALIDITY,
            },
        )],
    ))
}

/// Decides the primary contact's verification through the link.
pub(crate) fn verify_primary_contact(
    state: &LedgerState,
    command: &VerifyPrimaryContact,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let Actor::PrimaryContact { token } = ctx.actor else {
        return Err(access::not_allowed(
            ctx,
            "primary contact's verification link",
        ));
    };
    let partner = partner(state, command.partner_id)?;
    partner.enrollment_open()?;
    if partner.verified_email.is_some() {
        return Err(Rejection::PrimaryContactAlreadyVerified);
    }
    let verification = partner
        .verification
        .as_ref()
        .ok_or(Rejection::VerificationNotRequested)?;
    if verification.token_hash != token {
        return Err(Rejection::TokenMismatch);
    }
    if ctx.now >= verification.expires_at {
        return Err(Rejection::VerificationExpired(verification.expires_at));
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::PrimaryContactEmailVerified(
            PrimaryContactEmailVerified {
                partner_id: partner.id,
                email: verification.email.clone(),
            },
        )],
    ))
}

/// The enrollment is under review: pending, with a verified primary contact.
fn under_review(partner: &Partner) -> Result<(), Rejection> {
    partner.require_status(PartnerStatus::Pending)?;
    if partner.verified_email.is_none() {
        return Err(Rejection::ReviewBeforeVerification);
    }
    Ok(())
}

/// Decides completing a review step.
pub(crate) fn complete_review_step(
    state: &LedgerState,
    command: &CompleteReviewStep,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    let partner = partner(state, command.partner_id)?;
    under_review(partner)?;
    if partner.review_steps.contains(&command.step) {
        return Err(Rejection::ReviewStepAlreadyCompleted(command.step));
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::EnrollmentReviewStepCompleted(
            EnrollmentReviewStepCompleted {
                partner_id: partner.id,
                step: command.step,
            },
        )],
    ))
}

/// Decides authorizing an enrollment; the enrolling admin becomes the first user.
pub(crate) fn authorize_enrollment(
    state: &LedgerState,
    command: &AuthorizeEnrollment,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    let partner = partner(state, command.partner_id)?;
    under_review(partner)?;
    if let Some(step) = ReviewStep::ALL
        .into_iter()
        .find(|step| !partner.review_steps.contains(step))
    {
        return Err(Rejection::ReviewIncomplete(step));
    }
    if partner.legal_profile.is_none() {
        return Err(Rejection::LegalProfileMissing);
    }
    // The MPN facts may have been observed again since linking: check the link still holds.
    let number = partner
        .partner_number
        .as_ref()
        .ok_or(Rejection::MpnProfileNotLinked)?;
    check_mpn_profile(partner, number)?;
    number_free(state, number, Some(partner.id))?;
    tenant_free_except(state, partner)?;
    let (email, name) = partner
        .enrolling_admin
        .clone()
        .ok_or(Rejection::EnrollmentStatus {
            partner: partner.id,
            status: "not enrolled",
        })?;
    email_free(state, &email)?;
    let user_id = UserId(ctx.new_id);
    Ok(decision(
        state,
        partner.id,
        vec![
            Event::EnrollmentAuthorized(EnrollmentAuthorized {
                partner_id: partner.id,
                first_user_id: user_id,
            }),
            // The enrolling admin signs in through its own directory: no temporary password.
            Event::UserAdded(UserAdded {
                partner_id: partner.id,
                user_id,
                full_name: name,
                email,
                agent_role: Roles::FIRST_USER.agent_role,
                admin_role: Roles::FIRST_USER.admin_role,
            }),
        ],
    ))
}

/// Another partner account may have been created for the same tenant since this enrollment
/// started (the tenant index then points elsewhere).
fn tenant_free_except(state: &LedgerState, partner: &Partner) -> Result<(), Rejection> {
    match state.partner_by_tenant(partner.tenant_id) {
        Some(other) if other.id != partner.id => {
            Err(Rejection::TenantAlreadyPartner(partner.tenant_id))
        }
        _ => Ok(()),
    }
}

/// Decides rejecting an enrollment.
pub(crate) fn reject_enrollment(
    state: &LedgerState,
    command: &RejectEnrollment,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    let partner = partner(state, command.partner_id)?;
    under_review(partner)?;
    checks::text("reason", &command.reason)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::EnrollmentRejected(EnrollmentRejected {
            partner_id: partner.id,
            reason: command.reason.clone(),
        })],
    ))
}

/// Decides resubmitting a rejected enrollment.
pub(crate) fn resubmit_enrollment(
    state: &LedgerState,
    command: &ResubmitEnrollment,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let partner = enrolling(state, ctx, command.partner_id)?;
    partner.require_status(PartnerStatus::Rejected)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::EnrollmentResubmitted(EnrollmentResubmitted {
            partner_id: partner.id,
        })],
    ))
}

/// Decides signing the partner agreement.
pub(crate) fn sign_agreement(
    state: &LedgerState,
    command: &SignPartnerAgreement,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, user) = access::global_admin(state, ctx, command.partner_id, Need::Authorized)?;
    checks::name("agreement_version", &command.agreement_version)?;
    if partner.agreement_signed_at.is_some() {
        return Err(Rejection::AgreementAlreadySigned);
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::PartnerAgreementSigned(PartnerAgreementSigned {
            partner_id: partner.id,
            signed_by: user.id,
            agreement_version: command.agreement_version.clone(),
        })],
    ))
}

/// Decides deauthorizing a partner.
pub(crate) fn deauthorize(
    state: &LedgerState,
    command: &DeauthorizePartner,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    let partner = partner(state, command.partner_id)?;
    partner.require_status(PartnerStatus::Authorized)?;
    checks::text("reason", &command.reason)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::PartnerDeauthorized(PartnerDeauthorized {
            partner_id: partner.id,
            reason: command.reason.clone(),
        })],
    ))
}

/// Decides adding the reseller program to an enrolled partner.
pub(crate) fn add_reseller_program(
    state: &LedgerState,
    command: &AddResellerProgram,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, _) = access::global_admin(state, ctx, command.partner_id, Need::Authorized)?;
    if partner.has(Program::IndirectReseller) {
        return Err(Rejection::ProgramAlreadyHeld {
            partner: partner.id,
            program: Program::IndirectReseller,
        });
    }
    check_support(&command.support)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::ResellerProgramAdded(ResellerProgramAdded {
            partner_id: partner.id,
            support: command.support.clone(),
        })],
    ))
}

/// Decides onboarding a provider with its first global admin.
pub(crate) fn onboard_provider(
    state: &LedgerState,
    command: &OnboardProvider,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    access::operator(ctx)?;
    checks::name("legal_name", &command.legal_name)?;
    checks::name("first_admin.full_name", &command.first_admin.full_name)?;
    checks::count(
        "countries_served",
        command.countries_served.len(),
        0,
        limits::COUNTRIES_MAX,
    )?;
    checks::country("tenant_country", command.tenant_country)?;
    for country in &command.countries_served {
        checks::country("countries_served", *country)?;
    }
    check_support(&command.support)?;
    tenant_free(state, command.tenant_id)?;
    number_free(state, &command.partner_number, None)?;
    email_free(state, &command.first_admin.email)?;
    let partner_id = PartnerId(ctx.new_id);
    let user_id = UserId(ctx.derived_id(1));
    let countries: BTreeSet<Country> = command
        .countries_served
        .iter()
        .copied()
        .chain([command.tenant_country])
        .collect();
    Ok(decision(
        state,
        partner_id,
        vec![
            Event::ProviderOnboarded(ProviderOnboarded {
                partner_id,
                tenant_id: command.tenant_id,
                partner_number: command.partner_number.clone(),
                legal_name: command.legal_name.clone(),
                country: command.tenant_country,
                countries_served: countries.into_iter().collect(),
                support: command.support.clone(),
            }),
            Event::UserAdded(UserAdded {
                partner_id,
                user_id,
                full_name: command.first_admin.full_name.clone(),
                email: command.first_admin.email.clone(),
                agent_role: Roles::FIRST_USER.agent_role,
                admin_role: Roles::FIRST_USER.admin_role,
            }),
            Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
                partner_id,
                user_id,
            }),
        ],
    ))
}

/// Decides adding a user.
pub(crate) fn add_user(
    state: &LedgerState,
    command: &AddUser,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, actor) = access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::ManageUsers,
        Need::Authorized,
    )?;
    let roles = Roles {
        agent_role: command.agent_role,
        admin_role: command.admin_role,
    };
    guard_global_admin(actor, None, Some(&roles))?;
    guard_sales_agent(partner, &roles)?;
    checks::name("full_name", &command.full_name)?;
    checks::count(
        "users",
        partner.users.len() + 1,
        1,
        limits::USERS_PER_PARTNER_MAX,
    )?;
    email_free(state, &command.email)?;
    let user_id = UserId(ctx.new_id);
    Ok(decision(
        state,
        partner.id,
        vec![
            Event::UserAdded(UserAdded {
                partner_id: partner.id,
                user_id,
                full_name: command.full_name.clone(),
                email: command.email.clone(),
                agent_role: command.agent_role,
                admin_role: command.admin_role,
            }),
            Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
                partner_id: partner.id,
                user_id,
            }),
        ],
    ))
}

/// Decides issuing a new temporary password to a user.
pub(crate) fn reset_password(
    state: &LedgerState,
    command: &ResetTemporaryPassword,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, actor) = access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::ManageUsers,
        Need::Authorized,
    )?;
    let target = target_user(partner, command.user_id)?;
    // Resetting a global admin's password hands over its account: only a global admin may.
    guard_global_admin(actor, Some(&target.roles), None)?;
    Ok(decision(
        state,
        partner.id,
        vec![Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
            partner_id: partner.id,
            user_id: target.id,
        })],
    ))
}

/// Decides a user's change of its temporary password: the one command allowed before it.
pub(crate) fn change_password(
    state: &LedgerState,
    command: &ChangeTemporaryPassword,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let Actor::User { user_id } = ctx.actor else {
        return Err(access::not_allowed(ctx, "partner user"));
    };
    let (partner, user) = state
        .user(user_id)
        .ok_or(Rejection::UserNotFound(user_id))?;
    if user.removed {
        return Err(Rejection::UserRemoved(user_id));
    }
    if partner.id != command.partner_id {
        return Err(Rejection::UserNotInPartner {
            user: user_id,
            partner: command.partner_id,
        });
    }
    if !user.temporary_password_pending {
        return Err(Rejection::NoTemporaryPassword);
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::TemporaryPasswordChanged(TemporaryPasswordChanged {
            partner_id: partner.id,
            user_id,
        })],
    ))
}

/// Decides changing a user's roles.
pub(crate) fn change_roles(
    state: &LedgerState,
    command: &ChangeUserRoles,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, actor) = access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::ManageUsers,
        Need::Authorized,
    )?;
    let target = target_user(partner, command.user_id)?;
    let roles = Roles {
        agent_role: command.agent_role,
        admin_role: command.admin_role,
    };
    // Keeping global admin as it is needs no global admin; granting or revoking it does.
    if target.roles.is_global_admin() != roles.is_global_admin() {
        guard_global_admin(actor, Some(&target.roles), Some(&roles))?;
    }
    guard_sales_agent(partner, &roles)?;
    if target.roles.is_global_admin()
        && !roles.is_global_admin()
        && !partner.has_another_ready_global_admin(target.id)
    {
        return Err(Rejection::LastGlobalAdmin);
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::UserRolesChanged(UserRolesChanged {
            partner_id: partner.id,
            user_id: target.id,
            agent_role: roles.agent_role,
            admin_role: roles.admin_role,
        })],
    ))
}

/// Decides removing a user.
pub(crate) fn remove_user(
    state: &LedgerState,
    command: &RemoveUser,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    let (partner, actor) = access::partner_user(
        state,
        ctx,
        command.partner_id,
        Capability::ManageUsers,
        Need::Authorized,
    )?;
    let target = target_user(partner, command.user_id)?;
    guard_global_admin(actor, Some(&target.roles), None)?;
    if target.roles.is_global_admin() && !partner.has_another_ready_global_admin(target.id) {
        return Err(Rejection::LastGlobalAdmin);
    }
    Ok(decision(
        state,
        partner.id,
        vec![Event::UserRemoved(UserRemoved {
            partner_id: partner.id,
            user_id: target.id,
        })],
    ))
}

// ---------------------------------------------------------------- evolve

/// Applies a partner-stream event.
pub(crate) fn evolve(state: &mut LedgerState, meta: &EventMeta, event: &Event) {
    match event {
        Event::EnrollmentStarted(e) => {
            let mut partner = Partner::new(
                e.partner_id,
                e.tenant_id,
                e.tenant_country,
                e.organization_name.clone(),
            );
            partner.programs.insert(Program::IndirectReseller);
            partner.enrolling_admin = Some((
                e.enrolling_admin_email.clone(),
                e.enrolling_admin_name.clone(),
            ));
            state
                .partner_by_tenant
                .entry(e.tenant_id)
                .or_insert(e.partner_id);
            state.partners.insert(e.partner_id, partner);
        }
        Event::ProviderOnboarded(e) => {
            let mut partner =
                Partner::new(e.partner_id, e.tenant_id, e.country, e.legal_name.clone());
            partner.programs.insert(Program::IndirectProvider);
            partner.status = PartnerStatus::Authorized;
            partner.authorized_at = Some(meta.global_position);
            partner.partner_number = Some(e.partner_number.clone());
            partner.support = Some(e.support.clone());
            partner
                .countries_served
                .extend(e.countries_served.iter().copied());
            state.partner_by_tenant.insert(e.tenant_id, e.partner_id);
            state
                .partner_by_number
                .insert(e.partner_number.clone(), e.partner_id);
            state.partners.insert(e.partner_id, partner);
        }
        Event::MpnProfilesObserved(e) => {
            with_partner(state, e.partner_id, |p| p.mpn_profiles = e.profiles.clone())
        }
        Event::MpnProfileLinked(e) => {
            let previous = state
                .partners
                .get(&e.partner_id)
                .and_then(|p| p.partner_number.clone());
            // Relinking frees the number linked before.
            if let Some(previous) = previous
                && state.partner_by_number.get(&previous) == Some(&e.partner_id)
            {
                state.partner_by_number.remove(&previous);
            }
            state
                .partner_by_number
                .insert(e.partner_number.clone(), e.partner_id);
            with_partner(state, e.partner_id, |p| {
                p.partner_number = Some(e.partner_number.clone())
            });
        }
        Event::LegalProfileSubmitted(e) => with_partner(state, e.partner_id, |p| {
            let contact = &e.profile.primary_contact.email;
            // A new primary contact must be verified again, and a pending link to the old
            // address no longer counts.
            if p.verified_email.as_ref() != Some(contact) {
                p.verified_email = None;
            }
            if p.verification.as_ref().is_some_and(|v| v.email != *contact) {
                p.verification = None;
            }
            p.name = e.profile.legal_name.clone();
            p.support = Some(e.profile.support.clone());
            p.legal_profile = Some(e.profile.clone());
        }),
        Event::PrimaryContactVerificationRequested(e) => with_partner(state, e.partner_id, |p| {
            p.verification = Some(Verification {
                email: e.email.clone(),
                token_hash: e.token_hash,
                expires_at: e.expires_at,
            });
        }),
        Event::PrimaryContactEmailVerified(e) => with_partner(state, e.partner_id, |p| {
            p.verification = None;
            p.verified_email = Some(e.email.clone());
        }),
        Event::EnrollmentReviewStepCompleted(e) => with_partner(state, e.partner_id, |p| {
            p.review_steps.insert(e.step);
        }),
        Event::EnrollmentAuthorized(e) => with_partner(state, e.partner_id, |p| {
            p.status = PartnerStatus::Authorized;
            p.authorized_at = Some(meta.global_position);
            p.rejection_reason = None;
        }),
        Event::EnrollmentRejected(e) => with_partner(state, e.partner_id, |p| {
            p.status = PartnerStatus::Rejected;
            p.rejection_reason = Some(e.reason.clone());
        }),
        Event::EnrollmentResubmitted(e) => with_partner(state, e.partner_id, |p| {
            p.status = PartnerStatus::Pending;
            p.review_steps.clear();
        }),
        Event::PartnerAgreementSigned(e) => with_partner(state, e.partner_id, |p| {
            p.agreement_signed_at = Some(meta.global_position);
        }),
        Event::PartnerDeauthorized(e) => with_partner(state, e.partner_id, |p| {
            p.status = PartnerStatus::Deauthorized;
            p.deauthorized_at = Some(meta.global_position);
            p.deauthorization_reason = Some(e.reason.clone());
        }),
        Event::ResellerProgramAdded(e) => with_partner(state, e.partner_id, |p| {
            p.programs.insert(Program::IndirectReseller);
            p.support = Some(e.support.clone());
        }),
        Event::UserAdded(e) => {
            state.user_by_email.insert(e.email.clone(), e.user_id);
            state.partner_of_user.insert(e.user_id, e.partner_id);
            with_partner(state, e.partner_id, |p| {
                p.users.insert(
                    e.user_id,
                    User {
                        id: e.user_id,
                        full_name: e.full_name.clone(),
                        email: e.email.clone(),
                        roles: Roles {
                            agent_role: e.agent_role,
                            admin_role: e.admin_role,
                        },
                        temporary_password_pending: false,
                        removed: false,
                    },
                );
            });
        }
        Event::TemporaryPasswordIssued(e) => with_user(state, e.partner_id, e.user_id, |u| {
            u.temporary_password_pending = true
        }),
        Event::TemporaryPasswordChanged(e) => with_user(state, e.partner_id, e.user_id, |u| {
            u.temporary_password_pending = false
        }),
        Event::UserRolesChanged(e) => with_user(state, e.partner_id, e.user_id, |u| {
            u.roles = Roles {
                agent_role: e.agent_role,
                admin_role: e.admin_role,
            };
        }),
        Event::UserRemoved(e) => with_user(state, e.partner_id, e.user_id, |u| u.removed = true),
        _ => {}
    }
}

fn with_partner(state: &mut LedgerState, partner_id: PartnerId, change: impl FnOnce(&mut Partner)) {
    if let Some(partner) = state.partners.get_mut(&partner_id) {
        change(partner);
    }
}

fn with_user(
    state: &mut LedgerState,
    partner_id: PartnerId,
    user_id: UserId,
    change: impl FnOnce(&mut User),
) {
    if let Some(user) = state
        .partners
        .get_mut(&partner_id)
        .and_then(|p| p.users.get_mut(&user_id))
    {
        change(user);
    }
}
