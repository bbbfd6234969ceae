//! Value structures shared by commands, events and state: profiles, contacts, tiers.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{Country, Email, PartnerNumber, TenantId};

/// The CSP programs a partner takes part in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// Indirect reseller: sells to customers through indirect providers.
    IndirectReseller,
    /// Indirect provider (distributor): onboarded by the operator, orders for resellers'
    /// customers, and may hold direct customer relationships of its own.
    IndirectProvider,
}

/// One organization profile found through the Partner Membership Center, as observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MpnProfile {
    /// The MPN ID.
    pub partner_number: PartnerNumber,
    /// The organization's name in the membership center.
    pub organization_name: String,
    /// The profile's country.
    pub country: Country,
    /// Whether the profile is active.
    pub active: bool,
}

/// A postal address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street lines, one to three.
    pub lines: Vec<String>,
    /// City.
    pub city: String,
    /// State, province or region, where the country has them.
    pub region: Option<String>,
    /// Postal code, where the country has them.
    pub postal_code: Option<String>,
    /// Country.
    pub country: Country,
}

/// A named person to contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Full name.
    pub name: String,
    /// Email, on the organization's own domain for a primary contact.
    pub email: Email,
    /// Telephone, free text as written by the partner.
    pub phone: Option<String>,
}

/// How customers reach the partner's support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportDetails {
    /// Support email.
    pub email: Email,
    /// Support telephone.
    pub phone: String,
    /// Support website, if any.
    pub website: Option<String>,
}

/// The legal business profile submitted during enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalProfile {
    /// Legal business name.
    pub legal_name: String,
    /// Registered address.
    pub address: Address,
    /// Primary contact; receives the verification mail and every status change.
    pub primary_contact: Contact,
    /// Customer support details.
    pub support: SupportDetails,
}

/// A vetting sub-step of the operator's review (SPEC §2.1.5).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStep {
    /// The primary contact owns the email address.
    EmailOwnership,
    /// The email domain belongs to the organization.
    EmailDomain,
    /// The primary contact works for the organization.
    Employment,
    /// The business is real and in good standing.
    Business,
}

impl ReviewStep {
    /// Every step; all must be completed before an enrollment is authorized.
    pub const ALL: [ReviewStep; 4] = [
        ReviewStep::EmailOwnership,
        ReviewStep::EmailDomain,
        ReviewStep::Employment,
        ReviewStep::Business,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ReviewStep::EmailOwnership => "email_ownership",
            ReviewStep::EmailDomain => "email_domain",
            ReviewStep::Employment => "employment",
            ReviewStep::Business => "business",
        }
    }
}

/// Where an existing customer relationship was served before the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSource {
    /// The Office 365 partner admin center.
    Office365PartnerAdminCenter,
    /// The Azure management portal.
    AzureManagementPortal,
}

/// The part a reseller of record plays for a customer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipTier {
    /// A provider's own direct relationship.
    Direct,
    /// An indirect reseller.
    IndirectReseller,
    /// An indirect provider named together with a reseller.
    IndirectProvider,
}

impl RelationshipTier {
    /// Every tier.
    pub const ALL: [RelationshipTier; 3] = [
        RelationshipTier::Direct,
        RelationshipTier::IndirectReseller,
        RelationshipTier::IndirectProvider,
    ];
}

/// The customer organization as its global admin describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerProfile {
    /// The customer's tenant.
    pub tenant_id: TenantId,
    /// Company name.
    pub company_name: String,
    /// Primary domain, such as `fabrikam.com`.
    pub primary_domain: String,
    /// Country.
    pub country: Country,
}

/// The family of a product, as far as the permission matrix cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductFamily {
    /// Office 365 / Microsoft 365 (managed by admin agents only).
    Office365,
    /// Azure.
    Azure,
    /// Dynamics 365.
    Dynamics365,
    /// Anything else.
    Other,
}

/// The original start of an imported relationship.
pub type StartDate = NaiveDate;
