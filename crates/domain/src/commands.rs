//! Every command a user of the ledger can issue. The HTTP API and the `apply` command line
//! take exactly this JSON: an object tagged by `type` (snake_case), unknown fields refused.
//!
//! The actor is not part of a command: the command handler establishes it (sign-in,
//! directory claims, a link's token) and passes it in the [`crate::Context`].

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{
    Country, CustomerId, Email, GranularAdminRequestId, GranularDuration, InvitationId, OrderId,
    PartnerId, PartnerNumber, SecretHash, SubscriptionId, TenantId, UserId,
};
use crate::roles::{AdminRole, AgentRole};
use crate::types::{
    CustomerProfile, CustomerSource, LegalProfile, MpnProfile, ProductFamily, ReviewStep,
    SupportDetails,
};

/// Declares the command enum from one list of payload structs.
macro_rules! commands {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Every command. In JSON, tagged by `type` in snake_case, such as
        /// `{"type": "add_user", "partner_id": "...", ...}`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum Command {
            $( $(#[$doc])* $name($name), )*
        }

        impl Command {
            /// The command's name, as the variant name (for logs and metrics).
            pub fn name(&self) -> &'static str {
                match self { $( Command::$name(_) => stringify!($name), )* }
            }
        }

        $(
            impl From<$name> for Command {
                fn from(command: $name) -> Command {
                    Command::$name(command)
                }
            }
        )*
    };
}

commands! {
    /// See [`StartEnrollment`].
    StartEnrollment,
    /// See [`RecordMpnProfiles`].
    RecordMpnProfiles,
    /// See [`LinkMpnProfile`].
    LinkMpnProfile,
    /// See [`SubmitLegalProfile`].
    SubmitLegalProfile,
    /// See [`RequestPrimaryContactVerification`].
    RequestPrimaryContactVerification,
    /// See [`VerifyPrimaryContact`].
    VerifyPrimaryContact,
    /// See [`CompleteReviewStep`].
    CompleteReviewStep,
    /// See [`AuthorizeEnrollment`].
    AuthorizeEnrollment,
    /// See [`RejectEnrollment`].
    RejectEnrollment,
    /// See [`ResubmitEnrollment`].
    ResubmitEnrollment,
    /// See [`SignPartnerAgreement`].
    SignPartnerAgreement,
    /// See [`DeauthorizePartner`].
    DeauthorizePartner,
    /// See [`AddResellerProgram`].
    AddResellerProgram,
    /// See [`OnboardProvider`].
    OnboardProvider,
    /// See [`AddUser`].
    AddUser,
    /// See [`ResetTemporaryPassword`].
    ResetTemporaryPassword,
    /// See [`ChangeTemporaryPassword`].
    ChangeTemporaryPassword,
    /// See [`ChangeUserRoles`].
    ChangeUserRoles,
    /// See [`RemoveUser`].
    RemoveUser,
    /// See [`InviteReseller`].
    InviteReseller,
    /// See [`AuthorizeIndirectProvider`].
    AuthorizeIndirectProvider,
    /// See [`EndPartnership`].
    EndPartnership,
    /// See [`ImportExistingCustomer`].
    ImportExistingCustomer,
    /// See [`InviteCustomer`].
    InviteCustomer,
    /// See [`AcceptCustomerInvitation`].
    AcceptCustomerInvitation,
    /// See [`RemoveDelegatedAdmin`].
    RemoveDelegatedAdmin,
    /// See [`RequestGranularAdmin`].
    RequestGranularAdmin,
    /// See [`ApproveGranularAdmin`].
    ApproveGranularAdmin,
    /// See [`RevokeGranularAdmin`].
    RevokeGranularAdmin,
    /// See [`RemoveResellerRelationship`].
    RemoveResellerRelationship,
    /// See [`SubmitOrder`].
    SubmitOrder,
    /// See [`CancelSubscription`].
    CancelSubscription,
}

// ---------------------------------------------------------------- enrollment

/// A tenant's global admin (actor `tenant_admin`) starts enrolling the tenant as an indirect
/// reseller. The new partner's id is the context's fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartEnrollment {
    /// Organization name, as typed.
    pub organization_name: String,
    /// The tenant's country, as the directory reports it.
    pub tenant_country: Country,
}

/// Records the organization profiles the Partner Membership Center returned (actor
/// `system` or `operator`: these are observed facts, not claims by the enrolling user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMpnProfiles {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// Every profile found, at most 50.
    pub profiles: Vec<MpnProfile>,
}

/// The enrolling tenant admin chooses one observed profile to link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkMpnProfile {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// The chosen profile's MPN ID.
    pub partner_number: PartnerNumber,
}

/// The enrolling tenant admin submits (or fixes) the legal business profile, primary
/// contact and support details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitLegalProfile {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// The profile.
    pub profile: LegalProfile,
}

/// Asks for a verification mail to the primary contact (actor `tenant_admin` or `system`).
/// The handler generates the link's token and passes its hash in the context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPrimaryContactVerification {
    /// The enrolling partner.
    pub partner_id: PartnerId,
}

/// The primary contact opened the verification link (actor `primary_contact` with the
/// link token's hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPrimaryContact {
    /// The enrolling partner.
    pub partner_id: PartnerId,
}

/// The operator completes one vetting sub-step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteReviewStep {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// The step.
    pub step: ReviewStep,
}

/// The operator authorizes the enrollment; the enrolling admin becomes the first user, with
/// the context's fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeEnrollment {
    /// The enrolling partner.
    pub partner_id: PartnerId,
}

/// The operator rejects the enrollment with a reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectEnrollment {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// Why, for the primary contact.
    pub reason: String,
}

/// The enrolling tenant admin resubmits a rejected enrollment after fixing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResubmitEnrollment {
    /// The enrolling partner.
    pub partner_id: PartnerId,
}

/// A global admin signs the partner agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignPartnerAgreement {
    /// The partner.
    pub partner_id: PartnerId,
    /// The agreement version shown to the signer.
    pub agreement_version: String,
}

/// The operator deauthorizes a partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeauthorizePartner {
    /// The partner.
    pub partner_id: PartnerId,
    /// Why.
    pub reason: String,
}

/// A global admin of an already-enrolled CSP partner adds the indirect reseller program,
/// giving only its customer-support contact details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddResellerProgram {
    /// The partner.
    pub partner_id: PartnerId,
    /// Support details.
    pub support: SupportDetails,
}

/// A new user's name and email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Full name.
    pub full_name: String,
    /// Sign-in email, unique across the ledger.
    pub email: Email,
}

/// The operator onboards an indirect provider with the countries it serves, creating the
/// provider (the context's fresh id) and its first global admin (derived id 1), who gets a
/// temporary password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardProvider {
    /// The provider's tenant.
    pub tenant_id: TenantId,
    /// The tenant's country.
    pub tenant_country: Country,
    /// Its MPN ID.
    pub partner_number: PartnerNumber,
    /// Legal name.
    pub legal_name: String,
    /// Countries served (its own is always added), at most 250.
    pub countries_served: Vec<Country>,
    /// Support details.
    pub support: SupportDetails,
    /// Its first global admin.
    pub first_admin: NewUser,
}

// ---------------------------------------------------------------- users

/// Adds a user to a partner (needs *manage users*; granting global admin needs a global
/// admin). The new user's id is the context's fresh id; the handler creates the temporary
/// password and returns it once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    /// The partner.
    pub partner_id: PartnerId,
    /// Full name.
    pub full_name: String,
    /// Sign-in email, unique across the ledger.
    pub email: Email,
    /// Agent role.
    pub agent_role: Option<AgentRole>,
    /// Admin role.
    pub admin_role: Option<AdminRole>,
}

/// Issues a new temporary password to a user who lost theirs (needs *manage users*; a
/// global admin's needs a global admin, or a user management admin could take it over).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetTemporaryPassword {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
}

/// The acting user replaces its temporary password (the handler stores the new one in the
/// credential store; the command carries no password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTemporaryPassword {
    /// The acting user's partner.
    pub partner_id: PartnerId,
}

/// Replaces a user's roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUserRoles {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
    /// New agent role.
    pub agent_role: Option<AgentRole>,
    /// New admin role.
    pub admin_role: Option<AdminRole>,
}

/// Removes a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveUser {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
}

// ---------------------------------------------------------------- partnerships

/// A provider user invites a reseller, by partner number, to partner (30-day single-use
/// link; the handler passes the token's hash in the context).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteReseller {
    /// The inviting provider.
    pub provider_id: PartnerId,
    /// The reseller's MPN ID.
    pub reseller_partner_number: PartnerNumber,
}

/// The reseller's global admin opens the link, ticks the consent box and authorizes the
/// provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeIndirectProvider {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// SHA-256 of the link's token (the handler hashes the token it was given).
    pub token_hash: SecretHash,
    /// The consent box: must be ticked.
    pub consent: bool,
}

/// A global admin of either side ends an active partnership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndPartnership {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// Why, if said.
    pub reason: Option<String>,
}

// ---------------------------------------------------------------- customers

/// The operator imports an existing customer a reseller served through another portal.
/// If the tenant is not yet a known customer, it gets the context's fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportExistingCustomer {
    /// The reseller.
    pub reseller_id: PartnerId,
    /// The customer organization.
    pub customer: CustomerProfile,
    /// Where the relationship was served.
    pub source: CustomerSource,
    /// When it originally started.
    pub original_start: NaiveDate,
    /// Whether the reseller held delegated admin there.
    pub delegated_admin: bool,
}

/// A partner user drafts a customer invitation: reseller-only, naming one of the reseller's
/// authorized providers too, or a provider's own direct invitation. The invitation's id is
/// the context's fresh id; the handler passes the token's hash in the context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteCustomer {
    /// The inviting partner.
    pub partner_id: PartnerId,
    /// The customer's email.
    pub customer_email: Email,
    /// One of the reseller's authorized providers, to authorize both in one acceptance.
    pub provider_id: Option<PartnerId>,
}

/// The customer's global admin accepts an invitation through its link (actor
/// `customer_admin` with the link token's hash). A tenant not yet known as a customer gets
/// the context's fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptCustomerInvitation {
    /// The invitation.
    pub invitation_id: InvitationId,
    /// Company name.
    pub company_name: String,
    /// Primary domain.
    pub primary_domain: String,
    /// Country.
    pub country: Country,
}

/// The customer removes a partner's delegated admin, keeping the relationship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveDelegatedAdmin {
    /// The customer.
    pub customer_id: CustomerId,
    /// The partner.
    pub partner_id: PartnerId,
}

/// A partner user asks the customer for time-bound granular delegated admin. The request's
/// id is the context's fresh id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestGranularAdmin {
    /// The customer.
    pub customer_id: CustomerId,
    /// The requesting partner.
    pub partner_id: PartnerId,
    /// Directory roles, 1 to 32 (such as `Helpdesk Administrator`).
    pub roles: Vec<String>,
    /// How long access lasts once approved, P1D to P2Y.
    pub duration: GranularDuration,
}

/// The customer approves a pending granular admin request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveGranularAdmin {
    /// The customer.
    pub customer_id: CustomerId,
    /// The request.
    pub request_id: GranularAdminRequestId,
}

/// The customer, or the requesting partner, revokes a pending request or active grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeGranularAdmin {
    /// The customer.
    pub customer_id: CustomerId,
    /// The request.
    pub request_id: GranularAdminRequestId,
}

/// The customer, or a global admin of the partner, removes a reseller relationship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveResellerRelationship {
    /// The customer.
    pub customer_id: CustomerId,
    /// The partner removed as reseller of record.
    pub partner_id: PartnerId,
}

// ---------------------------------------------------------------- orders

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The catalog offer.
    pub offer_id: String,
    /// Its product family.
    pub product_family: ProductFamily,
    /// Licenses or units, 1 to 100 000.
    pub quantity: u32,
}

/// A provider user submits an order for a customer citing the reseller of record. The
/// order's id is the context's fresh id; line `i` creates the subscription with derived id
/// `i + 1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitOrder {
    /// The provider.
    pub provider_id: PartnerId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The reseller of record cited.
    pub reseller_id: PartnerId,
    /// One to 100 lines.
    pub lines: Vec<OrderLine>,
}

/// A user of the provider, or of the line's reseller of record, cancels a subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    /// The order that created it.
    pub order_id: OrderId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// Limits on what one command may carry: every list and text is bounded.
pub mod limits {
    /// Longest name (organization, person, company), in bytes.
    pub const NAME_LENGTH_MAX: usize = 200;
    /// Longest free text (reasons, addresses, offers), in bytes.
    pub const TEXT_LENGTH_MAX: usize = 2000;
    /// Most MPN profiles observed at once.
    pub const MPN_PROFILES_MAX: usize = 50;
    /// Most countries a provider serves.
    pub const COUNTRIES_MAX: usize = 250;
    /// Most lines in one order.
    pub const ORDER_LINES_MAX: usize = 100;
    /// Largest quantity on one line.
    pub const QUANTITY_MAX: u32 = 100_000;
    /// Most directory roles in one granular admin request.
    pub const GRANULAR_ROLES_MAX: usize = 32;
    /// Most street lines in an address.
    pub const ADDRESS_LINES_MAX: usize = 3;
    /// Most users one partner may have (removed ones included, as they keep their email).
    pub const USERS_PER_PARTNER_MAX: usize = 10_000;
}
