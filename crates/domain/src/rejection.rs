//! Why a command was refused: one variant per rule, each with a stable kebab-case rule name
//! (the RFC 9457 problem `type`) and a kind telling the HTTP layer which status fits.

use chrono::{DateTime, Utc};

use crate::ids::{
    Country, CustomerId, Email, GranularAdminRequestId, InvitationId, OrderId, PartnerId,
    PartnerNumber, SubscriptionId, TenantId, UserId,
};
use crate::roles::Capability;
use crate::types::{Program, ReviewStep};

/// Who must act on a refusal, which decides the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// The command itself is malformed or incomplete (400/422).
    Invalid,
    /// Something the command names does not exist (404).
    NotFound,
    /// The actor may not do this (403).
    Forbidden,
    /// The thing is not in a state where this makes sense, typically already done (409).
    Conflict,
    /// A business rule of the program refuses it (422).
    RuleRefused,
}

/// Why an order (or a may-order query) is refused: the first SPEC §2.5 condition that
/// failed, in the order the conditions are checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefusal {
    /// No such provider.
    #[error("provider {0} not found")]
    ProviderNotFound(PartnerId),
    /// The partner is not an indirect provider.
    #[error("partner {0} is not an indirect provider")]
    NotAProvider(PartnerId),
    /// The provider is not authorized.
    #[error("provider {0} is not authorized")]
    ProviderNotAuthorized(PartnerId),
    /// The provider was deauthorized.
    #[error("provider {0} was deauthorized")]
    ProviderDeauthorized(PartnerId),
    /// The provider has not signed the partner agreement.
    #[error("provider {0} has not signed the partner agreement")]
    ProviderAgreementNotSigned(PartnerId),
    /// No such reseller.
    #[error("reseller {0} not found")]
    ResellerNotFound(PartnerId),
    /// The partner is not in the indirect reseller program.
    #[error("partner {0} is not an indirect reseller")]
    NotAReseller(PartnerId),
    /// The reseller is not authorized.
    #[error("reseller {0} is not authorized")]
    ResellerNotAuthorized(PartnerId),
    /// The reseller was deauthorized.
    #[error("reseller {0} was deauthorized")]
    ResellerDeauthorized(PartnerId),
    /// The reseller has not signed the partner agreement.
    #[error("reseller {0} has not signed the partner agreement")]
    ResellerAgreementNotSigned(PartnerId),
    /// The provider–reseller partnership is not active.
    #[error("the partnership of provider {provider} and reseller {reseller} is not active")]
    PartnershipNotActive {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// No such customer.
    #[error("customer {0} not found")]
    CustomerNotFound(CustomerId),
    /// The reseller is not reseller of record for the customer.
    #[error("reseller {reseller} is not reseller of record for customer {customer}")]
    ResellerNotOfRecord {
        /// The reseller.
        reseller: PartnerId,
        /// The customer.
        customer: CustomerId,
    },
    /// The provider is not reseller of record for the customer.
    #[error("provider {provider} is not reseller of record for customer {customer}")]
    ProviderNotOfRecord {
        /// The provider.
        provider: PartnerId,
        /// The customer.
        customer: CustomerId,
    },
}

impl OrderRefusal {
    /// The stable rule name.
    pub fn rule(&self) -> &'static str {
        match self {
            OrderRefusal::ProviderNotFound(_) => "provider-not-found",
            OrderRefusal::NotAProvider(_) => "not-a-provider",
            OrderRefusal::ProviderNotAuthorized(_) => "provider-not-authorized",
            OrderRefusal::ProviderDeauthorized(_) => "provider-deauthorized",
            OrderRefusal::ProviderAgreementNotSigned(_) => "provider-agreement-not-signed",
            OrderRefusal::ResellerNotFound(_) => "reseller-not-found",
            OrderRefusal::NotAReseller(_) => "not-a-reseller",
            OrderRefusal::ResellerNotAuthorized(_) => "reseller-not-authorized",
            OrderRefusal::ResellerDeauthorized(_) => "reseller-deauthorized",
            OrderRefusal::ResellerAgreementNotSigned(_) => "reseller-agreement-not-signed",
            OrderRefusal::PartnershipNotActive { .. } => "partnership-not-active",
            OrderRefusal::CustomerNotFound(_) => "customer-not-found",
            OrderRefusal::ResellerNotOfRecord { .. } => "reseller-not-of-record",
            OrderRefusal::ProviderNotOfRecord { .. } => "provider-not-of-record",
        }
    }

    /// Who must act.
    pub fn kind(&self) -> RejectionKind {
        match self {
            OrderRefusal::ProviderNotFound(_)
            | OrderRefusal::ResellerNotFound(_)
            | OrderRefusal::CustomerNotFound(_) => RejectionKind::NotFound,
            _ => RejectionKind::RuleRefused,
        }
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    // ------------------------------------------------------------ invalid
    /// A required text is blank.
    #[error("{field} is required")]
    FieldRequired {
        /// The field.
        field: &'static str,
    },
    /// A text is too long.
    #[error("{field} is longer than {max} bytes")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A text holds a control character.
    #[error("{field} holds a control character")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
    /// A country code that ISO 3166-1 does not assign.
    #[error("{field}: {country} is not an ISO 3166-1 country code")]
    CountryUnknown {
        /// The field.
        field: &'static str,
        /// The code given.
        country: Country,
    },
    /// A list or number is outside its bounds.
    #[error("{field} must be between {min} and {max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The consent box was not ticked.
    #[error("consent is required: tick the consent box to authorize the provider")]
    ConsentRequired,
    /// A command that issues a token came without the token's hash (a handler bug).
    #[error("this command issues a token, but no token hash was given")]
    SecretHashMissing,

    // ------------------------------------------------------------ not found
    /// No such partner.
    #[error("partner {0} not found")]
    PartnerNotFound(PartnerId),
    /// No partner that this command could name has this MPN ID (unknown, or not one that
    /// can be invited: the answer is the same, so numbers cannot be walked).
    #[error("no indirect reseller that can be invited has partner number {0}")]
    PartnerNumberNotFound(PartnerNumber),
    /// No such user.
    #[error("user {0} not found")]
    UserNotFound(UserId),
    /// No such customer.
    #[error("customer {0} not found")]
    CustomerNotFound(CustomerId),
    /// No such customer invitation.
    #[error("invitation {0} not found")]
    InvitationNotFound(InvitationId),
    /// The provider never invited the reseller.
    #[error("provider {provider} has not invited reseller {reseller}")]
    PartnershipInvitationNotFound {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// No such order.
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    /// No such subscription in the order.
    #[error("subscription {0} not found in the order")]
    SubscriptionNotFound(SubscriptionId),
    /// No such granular admin request for the customer.
    #[error("granular admin request {0} not found")]
    GranularAdminRequestNotFound(GranularAdminRequestId),
    /// The chosen MPN profile was not among those observed.
    #[error("mpn profile {0} was not found in the partner membership center")]
    MpnProfileNotObserved(PartnerNumber),

    // ------------------------------------------------------------ forbidden
    /// This kind of actor may not issue this command.
    #[error("a {actor} may not do this; it needs the {expected}")]
    ActorNotAllowed {
        /// The actor's kind.
        actor: &'static str,
        /// Who may.
        expected: &'static str,
    },
    /// The acting user was removed.
    #[error("user {0} was removed")]
    UserRemoved(UserId),
    /// The acting user belongs to another partner.
    #[error("user {user} does not belong to partner {partner}")]
    UserNotInPartner {
        /// The user.
        user: UserId,
        /// The partner acted on.
        partner: PartnerId,
    },
    /// The acting user still has its temporary password.
    #[error("change your temporary password first: nothing else is allowed before")]
    TemporaryPasswordNotChanged,
    /// The acting user lacks a capability of the permission matrix.
    #[error("forbidden: missing capability {0}")]
    MissingCapability(Capability),
    /// Only a global admin may do this.
    #[error("only a global admin may do this")]
    GlobalAdminRequired,
    /// Only a global admin grants or revokes global admin.
    #[error("only a global admin may grant or revoke global admin")]
    GlobalAdminGrantRequiresGlobalAdmin,
    /// The token does not match the link.
    #[error("the link's token does not match")]
    TokenMismatch,
    /// The actor's tenant is not the one acted on.
    #[error("tenant {actor} may not act for tenant {expected}")]
    TenantMismatch {
        /// The actor's tenant.
        actor: TenantId,
        /// The tenant acted on.
        expected: TenantId,
    },

    // ------------------------------------------------------------ conflict
    /// The tenant already has a partner account.
    #[error("tenant {0} already has a partner account; add the reseller program to it instead")]
    TenantAlreadyPartner(TenantId),
    /// The email is already a user's sign-in.
    #[error("email {0} is already taken")]
    EmailTaken(Email),
    /// A temporary password is changed only where the new password reaches the credential
    /// store with it (sign-in's change-password step): recorded anywhere else, the change
    /// would disagree with the credentials, and the user would be locked out.
    #[error(
        "a temporary password is changed by its user at sign-in (POST /v1/auth/change-password), which stores the new password; it cannot be recorded without one"
    )]
    PasswordChangeNeedsSignIn,
    /// Another partner already linked this MPN ID.
    #[error("partner number {0} is already linked to another partner")]
    PartnerNumberTaken(PartnerNumber),
    /// The enrollment is not in a status that allows this.
    #[error("enrollment of partner {partner} is {status}, which does not allow this")]
    EnrollmentStatus {
        /// The partner.
        partner: PartnerId,
        /// Its status.
        status: &'static str,
    },
    /// The primary contact is already verified.
    #[error("the primary contact is already verified")]
    PrimaryContactAlreadyVerified,
    /// The review step was already completed.
    #[error("review step {} is already completed", .0.name())]
    ReviewStepAlreadyCompleted(ReviewStep),
    /// The agreement was already signed.
    #[error("the partner agreement is already signed")]
    AgreementAlreadySigned,
    /// The partner already takes part in the program.
    #[error("partner {partner} is already in the {program:?} program")]
    ProgramAlreadyHeld {
        /// The partner.
        partner: PartnerId,
        /// The program.
        program: Program,
    },
    /// The user has no temporary password to change.
    #[error("there is no temporary password to change")]
    NoTemporaryPassword,
    /// The partnership is already active.
    #[error("the partnership of provider {provider} and reseller {reseller} is already active")]
    PartnershipAlreadyActive {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// The single-use link was already used.
    #[error("the invitation was already used")]
    InvitationAlreadyUsed,
    /// Every named partner already is reseller of record.
    #[error("partner {partner} is already reseller of record for this customer")]
    AlreadyResellerOfRecord {
        /// The partner.
        partner: PartnerId,
    },
    /// The partner holds no delegated admin over the customer.
    #[error("partner {0} holds no delegated admin over this customer")]
    NoDelegatedAdmin(PartnerId),
    /// The granular admin request is not pending.
    #[error("granular admin request {0} is not pending")]
    GranularAdminNotPending(GranularAdminRequestId),
    /// The granular admin request is neither pending nor active.
    #[error("granular admin request {0} is neither pending nor active")]
    GranularAdminNotActive(GranularAdminRequestId),
    /// The subscription is already cancelled.
    #[error("subscription {0} is already cancelled")]
    SubscriptionAlreadyCancelled(SubscriptionId),

    // ------------------------------------------------------------ rules
    /// The primary contact uses web-based mail.
    #[error(
        "the primary contact's email must be on the organization's own domain, not web-based mail ({domain})"
    )]
    WebmailPrimaryContact {
        /// The refused domain.
        domain: String,
    },
    /// The chosen MPN profile is inactive.
    #[error("mpn profile {0} is not active")]
    MpnProfileInactive(PartnerNumber),
    /// The chosen MPN profile is in another country than the tenant.
    #[error("mpn profile country {profile} differs from the tenant's country {tenant}")]
    MpnCountryMismatch {
        /// The profile's country.
        profile: Country,
        /// The tenant's country.
        tenant: Country,
    },
    /// The legal address is in another country than the tenant.
    #[error("the legal address country {address} differs from the tenant's country {tenant}")]
    LegalAddressCountryMismatch {
        /// The address's country.
        address: Country,
        /// The tenant's country.
        tenant: Country,
    },
    /// No MPN profile is linked yet.
    #[error("no mpn profile is linked yet")]
    MpnProfileNotLinked,
    /// No legal profile was submitted yet.
    #[error("no legal business profile was submitted yet")]
    LegalProfileMissing,
    /// No verification was requested, or the profile changed since.
    #[error("no verification of the current primary contact was requested")]
    VerificationNotRequested,
    /// The verification link expired.
    #[error("the verification link expired at {0}")]
    VerificationExpired(DateTime<Utc>),
    /// Review before the primary contact verified its email.
    #[error("the review cannot start before the primary contact's email is verified")]
    ReviewBeforeVerification,
    /// Authorization before every vetting step was completed.
    #[error("review step {} is not completed", .0.name())]
    ReviewIncomplete(ReviewStep),
    /// The partner is not authorized.
    #[error("partner {0} is not authorized")]
    PartnerNotAuthorized(PartnerId),
    /// The partner was deauthorized.
    #[error("partner {0} was deauthorized")]
    PartnerDeauthorized(PartnerId),
    /// The partner has not signed the partner agreement.
    #[error("partner {0} has not signed the partner agreement and may not transact")]
    AgreementNotSigned(PartnerId),
    /// The partner is not in the program this needs.
    #[error("partner {partner} is not in the {program:?} program")]
    ProgramMissing {
        /// The partner.
        partner: PartnerId,
        /// The program needed.
        program: Program,
    },
    /// The change would leave the partner without an active global admin who has signed in
    /// (one still holding a temporary password may never do so).
    #[error(
        "a partner must keep at least one active global admin who has signed in with a password of its own"
    )]
    LastGlobalAdmin,
    /// Sales agent is only for indirect providers.
    #[error("the sales agent role exists only for indirect providers")]
    SalesAgentOnlyForProviders,
    /// The link expired.
    #[error("the invitation expired at {0}")]
    InvitationExpired(DateTime<Utc>),
    /// A partner cannot partner with itself.
    #[error("a partner cannot partner with itself")]
    SamePartner,
    /// The provider does not serve the country.
    #[error("partner {partner} does not serve country {country}")]
    CountryNotServed {
        /// The partner.
        partner: PartnerId,
        /// The country.
        country: Country,
    },
    /// The partnership is not active.
    #[error("the partnership of provider {provider} and reseller {reseller} is not active")]
    PartnershipNotActive {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// A reseller partnered with a provider cannot also be that provider's customer.
    #[error(
        "tenant {tenant} cannot be both a reseller partnered with provider {provider} and its customer"
    )]
    ResellerIsProviderCustomer {
        /// The provider.
        provider: PartnerId,
        /// The reseller's (and customer's) tenant.
        tenant: TenantId,
    },
    /// A partner cannot be its own customer.
    #[error("partner {0} cannot be its own customer")]
    CustomerIsPartnerItself(PartnerId),
    /// The partner is not reseller of record for the customer.
    #[error("partner {partner} is not reseller of record for customer {customer}")]
    NotResellerOfRecord {
        /// The partner.
        partner: PartnerId,
        /// The customer.
        customer: CustomerId,
    },
    /// Active subscriptions through the partner block removing the relationship.
    #[error(
        "customer has {count} active subscriptions through partner {partner}; cancel them first"
    )]
    ActiveSubscriptions {
        /// The partner.
        partner: PartnerId,
        /// How many.
        count: usize,
    },
    /// The granular admin request lapsed unanswered.
    #[error("granular admin request lapsed unanswered at {0}")]
    GranularAdminRequestExpired(DateTime<Utc>),
    /// An order condition of SPEC §2.5 failed.
    #[error("order refused: {0}")]
    OrderRefused(OrderRefusal),
}

impl Rejection {
    /// The stable kebab-case rule name, used as the problem `type`.
    pub fn rule(&self) -> &'static str {
        match self {
            Rejection::FieldRequired { .. } => "field-required",
            Rejection::FieldTooLong { .. } => "field-too-long",
            Rejection::ControlCharacter { .. } => "control-character",
            Rejection::CountryUnknown { .. } => "country-unknown",
            Rejection::OutOfRange { .. } => "out-of-range",
            Rejection::ConsentRequired => "consent-required",
            Rejection::SecretHashMissing => "secret-hash-missing",
            Rejection::PartnerNotFound(_) => "partner-not-found",
            Rejection::PartnerNumberNotFound(_) => "partner-number-not-found",
            Rejection::UserNotFound(_) => "user-not-found",
            Rejection::CustomerNotFound(_) => "customer-not-found",
            Rejection::InvitationNotFound(_) => "invitation-not-found",
            Rejection::PartnershipInvitationNotFound { .. } => "partnership-invitation-not-found",
            Rejection::OrderNotFound(_) => "order-not-found",
            Rejection::SubscriptionNotFound(_) => "subscription-not-found",
            Rejection::GranularAdminRequestNotFound(_) => "granular-admin-request-not-found",
            Rejection::MpnProfileNotObserved(_) => "mpn-profile-not-observed",
            Rejection::ActorNotAllowed { .. } => "actor-not-allowed",
            Rejection::UserRemoved(_) => "user-removed",
            Rejection::UserNotInPartner { .. } => "user-not-in-partner",
            Rejection::TemporaryPasswordNotChanged => "temporary-password-not-changed",
            Rejection::MissingCapability(_) => "missing-capability",
            Rejection::GlobalAdminRequired => "global-admin-required",
            Rejection::GlobalAdminGrantRequiresGlobalAdmin => {
                "global-admin-grant-requires-global-admin"
            }
            Rejection::TokenMismatch => "token-mismatch",
            Rejection::TenantMismatch { .. } => "tenant-mismatch",
            Rejection::TenantAlreadyPartner(_) => "tenant-already-partner",
            Rejection::EmailTaken(_) => "email-taken",
            Rejection::PasswordChangeNeedsSignIn => "password-change-needs-sign-in",
            Rejection::PartnerNumberTaken(_) => "partner-number-taken",
            Rejection::EnrollmentStatus { .. } => "enrollment-status",
            Rejection::PrimaryContactAlreadyVerified => "primary-contact-already-verified",
            Rejection::ReviewStepAlreadyCompleted(_) => "review-step-already-completed",
            Rejection::AgreementAlreadySigned => "agreement-already-signed",
            Rejection::ProgramAlreadyHeld { .. } => "program-already-held",
            Rejection::NoTemporaryPassword => "no-temporary-password",
            Rejection::PartnershipAlreadyActive { .. } => "partnership-already-active",
            Rejection::InvitationAlreadyUsed => "invitation-already-used",
            Rejection::AlreadyResellerOfRecord { .. } => "already-reseller-of-record",
            Rejection::NoDelegatedAdmin(_) => "no-delegated-admin",
            Rejection::GranularAdminNotPending(_) => "granular-admin-not-pending",
            Rejection::GranularAdminNotActive(_) => "granular-admin-not-active",
            Rejection::SubscriptionAlreadyCancelled(_) => "subscription-already-cancelled",
            Rejection::WebmailPrimaryContact { .. } => "webmail-primary-contact",
            Rejection::MpnProfileInactive(_) => "mpn-profile-inactive",
            Rejection::MpnCountryMismatch { .. } => "mpn-country-mismatch",
            Rejection::LegalAddressCountryMismatch { .. } => "legal-address-country-mismatch",
            Rejection::MpnProfileNotLinked => "mpn-profile-not-linked",
            Rejection::LegalProfileMissing => "legal-profile-missing",
            Rejection::VerificationNotRequested => "verification-not-requested",
            Rejection::VerificationExpired(_) => "verification-expired",
            Rejection::ReviewBeforeVerification => "review-before-verification",
            Rejection::ReviewIncomplete(_) => "review-incomplete",
            Rejection::PartnerNotAuthorized(_) => "partner-not-authorized",
            Rejection::PartnerDeauthorized(_) => "partner-deauthorized",
            Rejection::AgreementNotSigned(_) => "agreement-not-signed",
            Rejection::ProgramMissing { .. } => "program-missing",
            Rejection::LastGlobalAdmin => "last-global-admin",
            Rejection::SalesAgentOnlyForProviders => "sales-agent-only-for-providers",
            Rejection::InvitationExpired(_) => "invitation-expired",
            Rejection::SamePartner => "same-partner",
            Rejection::CountryNotServed { .. } => "country-not-served",
            Rejection::PartnershipNotActive { .. } => "partnership-not-active",
            Rejection::ResellerIsProviderCustomer { .. } => "reseller-is-provider-customer",
            Rejection::CustomerIsPartnerItself(_) => "customer-is-partner-itself",
            Rejection::NotResellerOfRecord { .. } => "not-reseller-of-record",
            Rejection::ActiveSubscriptions { .. } => "active-subscriptions",
            Rejection::GranularAdminRequestExpired(_) => "granular-admin-request-expired",
            Rejection::OrderRefused(refusal) => refusal.rule(),
        }
    }

    /// Who must act, for the HTTP status.
    pub fn kind(&self) -> RejectionKind {
        use RejectionKind::*;
        match self {
            Rejection::FieldRequired { .. }
            | Rejection::FieldTooLong { .. }
            | Rejection::ControlCharacter { .. }
            | Rejection::CountryUnknown { .. }
            | Rejection::OutOfRange { .. }
            | Rejection::ConsentRequired
            | Rejection::SecretHashMissing => Invalid,
            Rejection::PartnerNotFound(_)
            | Rejection::PartnerNumberNotFound(_)
            | Rejection::UserNotFound(_)
            | Rejection::CustomerNotFound(_)
            | Rejection::InvitationNotFound(_)
            | Rejection::PartnershipInvitationNotFound { .. }
            | Rejection::OrderNotFound(_)
            | Rejection::SubscriptionNotFound(_)
            | Rejection::GranularAdminRequestNotFound(_)
            | Rejection::MpnProfileNotObserved(_) => NotFound,
            Rejection::ActorNotAllowed { .. }
            | Rejection::UserRemoved(_)
            | Rejection::UserNotInPartner { .. }
            | Rejection::TemporaryPasswordNotChanged
            | Rejection::MissingCapability(_)
            | Rejection::GlobalAdminRequired
            | Rejection::GlobalAdminGrantRequiresGlobalAdmin
            | Rejection::TokenMismatch
            | Rejection::TenantMismatch { .. }
            | Rejection::PasswordChangeNeedsSignIn => Forbidden,
            Rejection::TenantAlreadyPartner(_)
            | Rejection::EmailTaken(_)
            | Rejection::PartnerNumberTaken(_)
            | Rejection::EnrollmentStatus { .. }
            | Rejection::PrimaryContactAlreadyVerified
            | Rejection::ReviewStepAlreadyCompleted(_)
            | Rejection::AgreementAlreadySigned
            | Rejection::ProgramAlreadyHeld { .. }
            | Rejection::NoTemporaryPassword
            | Rejection::PartnershipAlreadyActive { .. }
            | Rejection::InvitationAlreadyUsed
            | Rejection::AlreadyResellerOfRecord { .. }
            | Rejection::NoDelegatedAdmin(_)
            | Rejection::GranularAdminNotPending(_)
            | Rejection::GranularAdminNotActive(_)
            | Rejection::SubscriptionAlreadyCancelled(_) => Conflict,
            Rejection::OrderRefused(refusal) => refusal.kind(),
            _ => RuleRefused,
        }
    }
}

impl From<OrderRefusal> for Rejection {
    fn from(refusal: OrderRefusal) -> Self {
        Rejection::OrderRefused(refusal)
    }
}
