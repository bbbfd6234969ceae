//! Every fact the ledger records, their encoding (MessagePack of the payload, named fields),
//! their versions and the upcasting hook.
//!
//! Encoding: `rmp_serde::to_vec_named` of the payload struct, so every struct is a map keyed
//! by field name. Ids are UUIDs, which `uuid` writes as 16-byte binary in MessagePack (a
//! non-human-readable format) and as hyphenated text in JSON; times are RFC 3339 text;
//! token hashes are 64 lowercase hexadecimal characters; enums are their snake_case names.
//!
//! Events never carry a password, a password hash or a raw token: only SHA-256 hashes of
//! tokens. Decisions that depend on other aggregates record the global positions of the
//! events that made each checked fact true, so an auditor can see why they were allowed.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use crate::ids::{
    Country, CustomerId, Email, GranularAdminRequestId, GranularDuration, InvitationId, OrderId,
    PartnerId, PartnerNumber, SecretHash, SubscriptionId, TenantId, UserId,
};
use crate::roles::{AdminRole, AgentRole};
use crate::types::{
    CustomerProfile, CustomerSource, LegalProfile, MpnProfile, ProductFamily, RelationshipTier,
    ReviewStep, StartDate, SupportDetails,
};

// ---------------------------------------------------------------- evidence

/// Why a partner could transact at decision time: the positions of the events that
/// authorized it and recorded its agreement (it was not deauthorized at that time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerStanding {
    /// The partner.
    pub partner_id: PartnerId,
    /// Position of the event that authorized it (enrollment authorized or provider onboarded).
    pub authorized_at: u64,
    /// Position of the partner agreement signature.
    pub agreement_signed_at: u64,
}

/// Why a provider may order for a customer citing a reseller, at decision time (SPEC §2.5):
/// the positions of the events that made each condition true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderEvidence {
    /// The provider's standing.
    pub provider: PartnerStanding,
    /// The reseller's standing.
    pub reseller: PartnerStanding,
    /// Position of the event that made the partnership active.
    pub partnership_authorized_at: u64,
    /// Position of the event that made the reseller reseller of record for the customer.
    pub reseller_of_record_at: u64,
    /// Position of the event that made the provider reseller of record for the customer.
    pub provider_of_record_at: u64,
}

// ---------------------------------------------------------------- partner stream

/// A tenant's global admin started enrolling the tenant as an indirect reseller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentStarted {
    /// The new partner.
    pub partner_id: PartnerId,
    /// Its work-account tenant.
    pub tenant_id: TenantId,
    /// The tenant's country.
    pub tenant_country: Country,
    /// Organization name as typed at the start (the legal name comes with the profile).
    pub organization_name: String,
    /// The enrolling global admin's sign-in email; becomes the first user on authorization.
    pub enrolling_admin_email: Email,
    /// The enrolling global admin's name.
    pub enrolling_admin_name: String,
}

/// Organization profiles found through the Partner Membership Center, as observed facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MpnProfilesObserved {
    /// The enrolling partner.
    pub partner_id: PartnerId,
    /// Every profile found; replaces earlier observations.
    pub profiles: Vec<MpnProfile>,
}

/// The chosen MPN profile (active, same country as the tenant) was linked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MpnProfileLinked {
    /// The partner.
    pub partner_id: PartnerId,
    /// The linked MPN ID; unique across the ledger.
    pub partner_number: PartnerNumber,
    /// The profile's country, equal to the tenant's.
    pub country: Country,
}

/// The legal business profile, primary contact and support details were submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LegalProfileSubmitted {
    /// The partner.
    pub partner_id: PartnerId,
    /// The profile.
    pub profile: LegalProfile,
}

/// A verification mail to the primary contact was requested (a notifier sends it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PrimaryContactVerificationRequested {
    /// The partner.
    pub partner_id: PartnerId,
    /// The address being verified.
    pub email: Email,
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link stops working at this instant (7 days after the request).
    pub expires_at: DateTime<Utc>,
}

/// The primary contact opened the verification link: the email is verified and review
/// can start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PrimaryContactEmailVerified {
    /// The partner.
    pub partner_id: PartnerId,
    /// The verified address.
    pub email: Email,
}

/// The operator completed one vetting sub-step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentReviewStepCompleted {
    /// The partner.
    pub partner_id: PartnerId,
    /// The step.
    pub step: ReviewStep,
}

/// The operator authorized the enrollment. The enrolling admin becomes the first user in a
/// `UserAdded` event of the same decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentAuthorized {
    /// The partner.
    pub partner_id: PartnerId,
    /// Its first user, the enrolling global admin.
    pub first_user_id: UserId,
}

/// The operator rejected the enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentRejected {
    /// The partner.
    pub partner_id: PartnerId,
    /// Why, for the primary contact.
    pub reason: String,
}

/// A rejected enrollment was fixed and resubmitted; it returns to review from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentResubmitted {
    /// The partner.
    pub partner_id: PartnerId,
}

/// A global admin signed the partner agreement; the partner may now transact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerAgreementSigned {
    /// The partner.
    pub partner_id: PartnerId,
    /// The signing global admin.
    pub signed_by: UserId,
    /// The agreement's version as shown to the signer.
    pub agreement_version: String,
}

/// The operator deauthorized the partner: it may no longer transact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerDeauthorized {
    /// The partner.
    pub partner_id: PartnerId,
    /// Why.
    pub reason: String,
}

/// An already-enrolled CSP partner added the indirect reseller program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResellerProgramAdded {
    /// The partner.
    pub partner_id: PartnerId,
    /// Its customer-support contact details for the reseller program.
    pub support: SupportDetails,
}

/// The operator onboarded an indirect provider: authorized at once, listed as an official
/// provider in the countries it serves. Its first user follows in `UserAdded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderOnboarded {
    /// The provider.
    pub partner_id: PartnerId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its MPN ID.
    pub partner_number: PartnerNumber,
    /// Legal name.
    pub legal_name: String,
    /// Country of its headquarters tenant.
    pub country: Country,
    /// Countries it serves, sorted, including its own.
    pub countries_served: Vec<Country>,
    /// Customer support details.
    pub support: SupportDetails,
}

/// A user was added to a partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserAdded {
    /// The partner.
    pub partner_id: PartnerId,
    /// The new user.
    pub user_id: UserId,
    /// Full name.
    pub full_name: String,
    /// Sign-in email, unique across the ledger.
    pub email: Email,
    /// Agent role.
    pub agent_role: Option<AgentRole>,
    /// Admin role.
    pub admin_role: Option<AdminRole>,
}

/// A temporary password was issued to the user (the credential store holds it, hashed; the
/// log holds only this fact). The user must change it before doing anything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemporaryPasswordIssued {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
}

/// The user replaced the temporary password with one of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemporaryPasswordChanged {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
}

/// A user's roles were replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRolesChanged {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
    /// New agent role.
    pub agent_role: Option<AgentRole>,
    /// New admin role.
    pub admin_role: Option<AdminRole>,
}

/// A user was removed; the email stays taken, so the history keeps one meaning per address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRemoved {
    /// The partner.
    pub partner_id: PartnerId,
    /// The user.
    pub user_id: UserId,
}

// ---------------------------------------------------------------- partnership stream

/// A provider invited a reseller to partner; the personalized link is single-use and
/// expires after 30 days. A new invitation replaces any earlier unused one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IndirectResellerInvited {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// The reseller's MPN ID, as the provider typed it.
    pub reseller_partner_number: PartnerNumber,
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link stops working at this instant.
    pub expires_at: DateTime<Utc>,
}

/// The reseller's global admin consented and authorized the provider: the partnership is
/// active. Records what was checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IndirectProviderAuthorized {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// Position of the invitation whose link was used.
    pub invitation_at: u64,
    /// The provider's standing at that time.
    pub provider: PartnerStanding,
    /// The reseller's standing at that time.
    pub reseller: PartnerStanding,
    /// The reseller's country, which the provider serves.
    pub country: Country,
}

/// Which side of a partnership acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartnershipSide {
    /// The provider.
    Provider,
    /// The reseller.
    Reseller,
}

/// One side ended the partnership. Customers stay; the provider loses order rights through
/// the reseller and admin access to the reseller's tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PartnershipEnded {
    /// The provider.
    pub provider_id: PartnerId,
    /// The reseller.
    pub reseller_id: PartnerId,
    /// The side that ended it.
    pub ended_by: PartnershipSide,
    /// Why, if said.
    pub reason: Option<String>,
}

// ---------------------------------------------------------------- customer stream

/// The operator imported an existing customer of a reseller, served before through another
/// portal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerImported {
    /// The customer (new, or the one already known for the tenant).
    pub customer_id: CustomerId,
    /// The customer organization.
    pub customer: CustomerProfile,
    /// The partner that becomes reseller of record.
    pub reseller_id: PartnerId,
    /// Position of the event that authorized the reseller.
    pub reseller_authorized_at: u64,
    /// Where the relationship was served before.
    pub source: CustomerSource,
    /// When the relationship originally started.
    pub original_start: StartDate,
    /// Whether the reseller held delegated admin there, and keeps it.
    pub delegated_admin: bool,
}

/// The customer removed a partner's delegated admin; the reseller relationship stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DelegatedAdminRemoved {
    /// The customer.
    pub customer_id: CustomerId,
    /// The partner that loses delegated admin.
    pub partner_id: PartnerId,
}

/// A partner asked the customer for time-bound granular delegated admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GranularAdminRequested {
    /// The customer.
    pub customer_id: CustomerId,
    /// The request.
    pub request_id: GranularAdminRequestId,
    /// The requesting partner.
    pub partner_id: PartnerId,
    /// Directory roles asked for, sorted and without duplicates.
    pub roles: Vec<String>,
    /// How long access lasts once approved.
    pub duration: GranularDuration,
    /// The request lapses, unanswered, at this instant (90 days after it was made).
    pub request_expires_at: DateTime<Utc>,
}

/// The customer approved a granular admin request; access lasts until `ends_at` and then
/// expires by itself (no event: expiry is read from this time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GranularAdminApproved {
    /// The customer.
    pub customer_id: CustomerId,
    /// The request.
    pub request_id: GranularAdminRequestId,
    /// Access starts.
    pub starts_at: DateTime<Utc>,
    /// Access ends.
    pub ends_at: DateTime<Utc>,
}

/// Who revoked or removed something on a customer: the customer or a partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "party", rename_all = "snake_case")]
pub enum CustomerParty {
    /// The customer's global admin.
    Customer,
    /// A partner.
    Partner {
        /// The partner.
        partner_id: PartnerId,
    },
}

/// Granular admin access (or a pending request) was revoked before its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GranularAdminRevoked {
    /// The customer.
    pub customer_id: CustomerId,
    /// The request.
    pub request_id: GranularAdminRequestId,
    /// Who revoked it.
    pub revoked_by: CustomerParty,
}

/// A reseller relationship was removed: the partner is no longer reseller of record, its
/// delegated admin and granular admin end, and no further orders go through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResellerRelationshipRemoved {
    /// The customer.
    pub customer_id: CustomerId,
    /// The partner removed as reseller of record.
    pub partner_id: PartnerId,
    /// Who removed it.
    pub removed_by: CustomerParty,
    /// Whether delegated admin ended with it.
    pub delegated_admin_ended: bool,
    /// Granular admin requests and grants that ended with it.
    pub granular_admin_ended: Vec<GranularAdminRequestId>,
}

// ---------------------------------------------------------------- invitation stream

/// A partner drafted a customer invitation: the link names the reseller, and optionally
/// one of its authorized providers, so that one acceptance authorizes both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerInvitationCreated {
    /// The invitation.
    pub invitation_id: InvitationId,
    /// The partner the link is personalized to: becomes reseller of record and gets
    /// delegated admin (a reseller, or a provider for a direct relationship).
    pub partner_id: PartnerId,
    /// The tier the inviting partner will hold.
    pub tier: RelationshipTier,
    /// The authorized provider named with the reseller, if any.
    pub provider_id: Option<PartnerId>,
    /// Position of the event that made that partnership active, if a provider is named.
    pub partnership_authorized_at: Option<u64>,
    /// The address the invitation is sent to.
    pub customer_email: Email,
    /// SHA-256 of the link's token.
    pub token_hash: SecretHash,
    /// The link stops working at this instant.
    pub expires_at: DateTime<Utc>,
}

/// One partner made reseller of record by an acceptance, with the standing checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AcceptedPartner {
    /// The partner and why it could transact.
    pub standing: PartnerStanding,
    /// Its tier for this customer.
    pub tier: RelationshipTier,
}

/// The customer's global admin accepted an invitation: each named partner is reseller of
/// record and the inviting partner holds delegated admin. Records what was checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResellerRelationshipAccepted {
    /// The invitation, now used.
    pub invitation_id: InvitationId,
    /// The customer (new, or the one already known for the tenant).
    pub customer_id: CustomerId,
    /// The customer organization.
    pub customer: CustomerProfile,
    /// Every partner made reseller of record.
    pub partners: Vec<AcceptedPartner>,
    /// The partner that got delegated admin over the customer's tenant.
    pub delegated_admin_to: PartnerId,
    /// Position of the event that made the named provider's partnership active, if any.
    pub partnership_authorized_at: Option<u64>,
}

// ---------------------------------------------------------------- order stream

/// One subscription created by an order line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionLine {
    /// The new subscription.
    pub subscription_id: SubscriptionId,
    /// The catalog offer.
    pub offer_id: String,
    /// The product family.
    pub product_family: ProductFamily,
    /// Licenses or units.
    pub quantity: u32,
    /// The reseller of record on the line: always the reseller, never the provider.
    pub partner_on_record: PartnerId,
}

/// A provider submitted an order for a customer citing a reseller; every SPEC §2.5
/// condition held, as the evidence shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderSubmitted {
    /// The order.
    pub order_id: OrderId,
    /// The submitting provider.
    pub provider_id: PartnerId,
    /// The cited reseller.
    pub reseller_id: PartnerId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The provider user who submitted it.
    pub submitted_by: UserId,
    /// One subscription per line.
    pub lines: Vec<SubscriptionLine>,
    /// Why it was allowed.
    pub evidence: OrderEvidence,
}

/// A subscription was cancelled; it no longer blocks removing the relationship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionCancelled {
    /// The order that created it.
    pub order_id: OrderId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

// ---------------------------------------------------------------- the enum

/// The name and current schema version of one event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    /// The type name (the variant name).
    pub name: &'static str,
    /// The version written now.
    pub version: u16,
}

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {event_type} event: {source}")]
pub struct EncodeError {
    /// The event type.
    pub event_type: &'static str,
    /// What the encoder said.
    #[source]
    pub source: rmp_serde::encode::Error,
}

/// Why stored bytes could not be read back as an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No event type of that name exists.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The version is newer than this code knows, or older with no upcaster.
    #[error("unsupported version {version} of event type {event_type} (current is {current})")]
    UnsupportedVersion {
        /// The event type.
        event_type: String,
        /// The version found.
        version: u16,
        /// The version this code writes.
        current: u16,
    },
    /// The bytes are not a valid payload of that type and version.
    #[error("malformed {event_type} v{version} payload: {source}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// The version.
        version: u16,
        /// What the decoder said.
        #[source]
        source: rmp_serde::decode::Error,
    },
}

/// Declares the event enum and its per-type plumbing from one list, so a new event type
/// cannot be forgotten in the type name, version, codec or schema lists.
macro_rules! events {
    ($( $(#[$doc:meta])* $name:ident = $version:literal ),* $(,)?) => {
        /// Every fact the ledger records. In JSON, tagged by `type`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type")]
        pub enum Event {
            $( $(#[$doc])* $name($name), )*
        }

        /// Every event type with the version written now, in declaration order.
        pub const EVENT_TYPES: &[EventType] = &[ $( EventType { name: stringify!($name), version: $version }, )* ];

        // The declaration order as discriminants, so a variant's index is a cast.
        #[derive(Clone, Copy)]
        enum EventTypeIndex { $( $name, )* }

        impl EventTypeIndex {
            fn of(event: &Event) -> Self {
                match event { $( Event::$name(_) => EventTypeIndex::$name, )* }
            }
        }

        /// The index of each event type in [`EVENT_TYPES`], by type name, for matching on
        /// an index without the names.
        pub mod type_index {
            $(
                #[doc = concat!("The index of `", stringify!($name), "`.")]
                #[allow(non_upper_case_globals)]
                pub const $name: usize = super::EventTypeIndex::$name as usize;
            )*
        }

        /// The index in [`EVENT_TYPES`] of the type named `event_type`, if it exists. Read for
        /// every event of a replay, so it compares the name only with the one to three names
        /// of the same length.
        pub fn event_type_index(event_type: &str) -> Option<usize> {
            static BY_LENGTH: std::sync::LazyLock<Vec<Vec<usize>>> = std::sync::LazyLock::new(|| {
                let longest = EVENT_TYPES.iter().map(|t| t.name.len()).max().unwrap_or(0);
                let mut by_length = vec![Vec::new(); longest + 1];
                for (index, known) in EVENT_TYPES.iter().enumerate() {
                    by_length[known.name.len()].push(index);
                }
                by_length
            });
            BY_LENGTH
                .get(event_type.len())?
                .iter()
                .copied()
                .find(|index| EVENT_TYPES[*index].name == event_type)
        }

        impl Event {
            /// The type name (the variant name), stored in the envelope.
            pub fn event_type(&self) -> &'static str {
                match self { $( Event::$name(_) => stringify!($name), )* }
            }

            /// The schema version this code writes for this event's type.
            pub fn schema_version(&self) -> u16 {
                match self { $( Event::$name(_) => $version, )* }
            }

            /// The index of this event's type in [`EVENT_TYPES`].
            pub fn type_index(&self) -> usize {
                EventTypeIndex::of(self) as usize
            }

            /// The payload as MessagePack with named fields, so that fields can be added
            /// without breaking old readers.
            pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
                let event_type = self.event_type();
                match self {
                    $( Event::$name(payload) => rmp_serde::to_vec_named(payload), )*
                }
                .map_err(|source| EncodeError { event_type, source })
            }

            /// Decodes a payload written by this code's current version of the type at
            /// `index` in [`EVENT_TYPES`].
            fn decode_current(index: usize, version: u16, bytes: &[u8]) -> Result<Event, DecodeError> {
                let event_type = EVENT_TYPES.get(index).map_or("", |known| known.name);
                let malformed = |source| DecodeError::Malformed { event_type: event_type.to_owned(), version, source };
                match index {
                    $( type_index::$name => rmp_serde::from_slice::<$name>(bytes).map(Event::$name).map_err(malformed), )*
                    _ => Err(DecodeError::UnknownType(event_type.to_owned())),
                }
            }
        }

        /// The JSON Schema of every event type's payload at its current version.
        pub fn event_schemas() -> Vec<(EventType, Schema)> {
            vec![ $( (EventType { name: stringify!($name), version: $version }, schemars::schema_for!($name)), )* ]
        }

        $(
            impl From<$name> for Event {
                fn from(payload: $name) -> Event {
                    Event::$name(payload)
                }
            }
        )*
    };
}

events! {
    /// See [`EnrollmentStarted`].
    EnrollmentStarted = 1,
    /// See [`MpnProfilesObserved`].
    MpnProfilesObserved = 1,
    /// See [`MpnProfileLinked`].
    MpnProfileLinked = 1,
    /// See [`LegalProfileSubmitted`].
    LegalProfileSubmitted = 1,
    /// See [`PrimaryContactVerificationRequested`].
    PrimaryContactVerificationRequested = 1,
    /// See [`PrimaryContactEmailVerified`].
    PrimaryContactEmailVerified = 1,
    /// See [`EnrollmentReviewStepCompleted`].
    EnrollmentReviewStepCompleted = 1,
    /// See [`EnrollmentAuthorized`].
    EnrollmentAuthorized = 1,
    /// See [`EnrollmentRejected`].
    EnrollmentRejected = 1,
    /// See [`EnrollmentResubmitted`].
    EnrollmentResubmitted = 1,
    /// See [`PartnerAgreementSigned`].
    PartnerAgreementSigned = 1,
    /// See [`PartnerDeauthorized`].
    PartnerDeauthorized = 1,
    /// See [`ResellerProgramAdded`].
    ResellerProgramAdded = 1,
    /// See [`ProviderOnboarded`].
    ProviderOnboarded = 1,
    /// See [`UserAdded`].
    UserAdded = 1,
    /// See [`TemporaryPasswordIssued`].
    TemporaryPasswordIssued = 1,
    /// See [`TemporaryPasswordChanged`].
    TemporaryPasswordChanged = 1,
    /// See [`UserRolesChanged`].
    UserRolesChanged = 1,
    /// See [`UserRemoved`].
    UserRemoved = 1,
    /// See [`IndirectResellerInvited`].
    IndirectResellerInvited = 1,
    /// See [`IndirectProviderAuthorized`].
    IndirectProviderAuthorized = 1,
    /// See [`PartnershipEnded`].
    PartnershipEnded = 1,
    /// See [`CustomerImported`].
    CustomerImported = 1,
    /// See [`CustomerInvitationCreated`].
    CustomerInvitationCreated = 1,
    /// See [`ResellerRelationshipAccepted`].
    ResellerRelationshipAccepted = 1,
    /// See [`DelegatedAdminRemoved`].
    DelegatedAdminRemoved = 1,
    /// See [`GranularAdminRequested`].
    GranularAdminRequested = 1,
    /// See [`GranularAdminApproved`].
    GranularAdminApproved = 1,
    /// See [`GranularAdminRevoked`].
    GranularAdminRevoked = 1,
    /// See [`ResellerRelationshipRemoved`].
    ResellerRelationshipRemoved = 1,
    /// See [`OrderSubmitted`].
    OrderSubmitted = 1,
    /// See [`SubscriptionCancelled`].
    SubscriptionCancelled = 1,
}

/// The version this code writes for `event_type`, if the type exists.
pub fn current_version(event_type: &str) -> Option<u16> {
    event_type_index(event_type).map(|index| EVENT_TYPES[index].version)
}

impl Event {
    /// Reads a stored payload of any known version, upcasting old versions to the current
    /// shape. Old versions are never rewritten in the log; they are converted here, on read.
    ///
    /// To add version 2 of a type: bump its number in the `events!` list, keep the v1
    /// struct under a new name, and add an arm in [`Event::decode_type`] that decodes v1 and
    /// converts it.
    pub fn decode(
        event_type: &str,
        schema_version: u16,
        bytes: &[u8],
    ) -> Result<Event, DecodeError> {
        let index = event_type_index(event_type)
            .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
        Self::decode_type(index, schema_version, bytes)
    }

    /// [`Event::decode`] for a caller that has already found the type's index in
    /// [`EVENT_TYPES`] (with [`event_type_index`]), so that the name is not looked up twice.
    pub fn decode_type(
        index: usize,
        schema_version: u16,
        bytes: &[u8],
    ) -> Result<Event, DecodeError> {
        let Some(known) = EVENT_TYPES.get(index) else {
            return Err(DecodeError::UnknownType(format!("type index {index}")));
        };
        let (event_type, current) = (known.name, known.version);
        // The upcasting hook: one arm per (type, old version). None exist yet.
        #[allow(clippy::match_single_binding)]
        match (event_type, schema_version) {
            _ if schema_version == current => Self::decode_current(index, schema_version, bytes),
            _ => Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
                current,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_indexes_agree_with_the_list_of_types() {
        for (index, known) in EVENT_TYPES.iter().enumerate() {
            assert_eq!(event_type_index(known.name), Some(index), "{}", known.name);
            assert_eq!(current_version(known.name), Some(known.version));
        }
        for sample in crate::sample_events() {
            assert_eq!(EVENT_TYPES[sample.type_index()].name, sample.event_type());
            let bytes = sample.encode().unwrap_or_default();
            let by_index = Event::decode_type(sample.type_index(), sample.schema_version(), &bytes);
            assert_eq!(by_index.ok().as_ref(), Some(&sample));
        }
        assert!(Event::decode_type(EVENT_TYPES.len(), 1, &[]).is_err());
        assert_eq!(type_index::OrderSubmitted, 30);
        assert_eq!(event_type_index("OrderSubmittedd"), None);
        assert_eq!(event_type_index(""), None);
        assert_eq!(event_type_index(&"x".repeat(1000)), None);
    }
}
