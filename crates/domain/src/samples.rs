//! One realistic value of every event type, for golden MessagePack samples in `schemas/`
//! and for tests. Fixed ids and times, so the samples are the same bytes on every run.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use crate::events::*;
use crate::ids::{
    Country, CustomerId, Email, GranularAdminRequestId, GranularDuration, InvitationId, OrderId,
    PartnerId, PartnerNumber, SecretHash, SubscriptionId, TenantId, UserId,
};
use crate::roles::{AdminRole, AgentRole};
use crate::types::{
    Address, Contact, CustomerProfile, CustomerSource, LegalProfile, MpnProfile, ProductFamily,
    RelationshipTier, ReviewStep, SupportDetails,
};

const RESELLER: PartnerId = PartnerId(Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0001));
const PROVIDER: PartnerId = PartnerId(Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0002));
const RESELLER_TENANT: TenantId =
    TenantId(Uuid::from_u128(0x5e1d_0000_0000_4000_8000_0000_0000_0001));
const PROVIDER_TENANT: TenantId =
    TenantId(Uuid::from_u128(0x5e1d_0000_0000_4000_8000_0000_0000_0002));
const CUSTOMER_TENANT: TenantId =
    TenantId(Uuid::from_u128(0x5e1d_0000_0000_4000_8000_0000_0000_0003));
const ADMIN: UserId = UserId(Uuid::from_u128(0x0195_0000_0001_7000_8000_0000_0000_0001));
const AGENT: UserId = UserId(Uuid::from_u128(0x0195_0000_0001_7000_8000_0000_0000_0002));
const CUSTOMER: CustomerId = CustomerId(Uuid::from_u128(0x0195_0000_0002_7000_8000_0000_0000_0001));
const INVITATION: InvitationId =
    InvitationId(Uuid::from_u128(0x0195_0000_0003_7000_8000_0000_0000_0001));
const REQUEST: GranularAdminRequestId =
    GranularAdminRequestId(Uuid::from_u128(0x0195_0000_0004_7000_8000_0000_0000_0001));
const ORDER: OrderId = OrderId(Uuid::from_u128(0x0195_0000_0005_7000_8000_0000_0000_0001));
const SUBSCRIPTION: SubscriptionId =
    SubscriptionId(Uuid::from_u128(0x0195_0000_0005_7000_8000_0000_0000_0002));
const US: Country = Country::known_valid(*b"US");

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn token() -> SecretHash {
    SecretHash::of(b"sample token, never a real one")
}

fn support() -> SupportDetails {
    SupportDetails {
        email: Email::known_valid("support@contoso.com"),
        phone: "+1 425 555 0100".to_owned(),
        website: Some("https://support.contoso.com".to_owned()),
    }
}

fn reseller_standing() -> PartnerStanding {
    PartnerStanding {
        partner_id: RESELLER,
        authorized_at: 9,
        agreement_signed_at: 11,
    }
}

fn provider_standing() -> PartnerStanding {
    PartnerStanding {
        partner_id: PROVIDER,
        authorized_at: 1,
        agreement_signed_at: 4,
    }
}

fn customer_profile() -> CustomerProfile {
    CustomerProfile {
        tenant_id: CUSTOMER_TENANT,
        company_name: "Fabrikam, Inc.".to_owned(),
        primary_domain: "fabrikam.com".to_owned(),
        country: US,
    }
}

/// One realistic value of every event type, in [`EVENT_TYPES`] order.
pub fn sample_events() -> Vec<Event> {
    vec![
        Event::EnrollmentStarted(EnrollmentStarted {
            partner_id: RESELLER,
            tenant_id: RESELLER_TENANT,
            tenant_country: US,
            organization_name: "Contoso".to_owned(),
            enrolling_admin_email: Email::known_valid("admin@contoso.onmicrosoft.com"),
            enrolling_admin_name: "Ada Admin".to_owned(),
        }),
        Event::MpnProfilesObserved(MpnProfilesObserved {
            partner_id: RESELLER,
            profiles: vec![MpnProfile {
                partner_number: PartnerNumber::known_valid("4812345"),
                organization_name: "Contoso Ltd".to_owned(),
                country: US,
                active: true,
            }],
        }),
        Event::MpnProfileLinked(MpnProfileLinked {
            partner_id: RESELLER,
            partner_number: PartnerNumber::known_valid("4812345"),
            country: US,
        }),
        Event::LegalProfileSubmitted(LegalProfileSubmitted {
            partner_id: RESELLER,
            profile: LegalProfile {
                legal_name: "Contoso Ltd".to_owned(),
                address: Address {
                    lines: vec!["1 Microsoft Way".to_owned()],
                    city: "Redmond".to_owned(),
                    region: Some("WA".to_owned()),
                    postal_code: Some("98052".to_owned()),
                    country: US,
                },
                primary_contact: Contact {
                    name: "Pat Contact".to_owned(),
                    email: Email::known_valid("pat@contoso.com"),
                    phone: Some("+1 425 555 0101".to_owned()),
                },
                support: support(),
            },
        }),
        Event::PrimaryContactVerificationRequested(PrimaryContactVerificationRequested {
            partner_id: RESELLER,
            email: Email::known_valid("pat@contoso.com"),
            token_hash: token(),
            expires_at: at(8),
        }),
        Event::PrimaryContactEmailVerified(PrimaryContactEmailVerified {
            partner_id: RESELLER,
            email: Email::known_valid("pat@contoso.com"),
        }),
        Event::EnrollmentReviewStepCompleted(EnrollmentReviewStepCompleted {
            partner_id: RESELLER,
            step: ReviewStep::EmailOwnership,
        }),
        Event::EnrollmentAuthorized(EnrollmentAuthorized {
            partner_id: RESELLER,
            first_user_id: ADMIN,
        }),
        Event::EnrollmentRejected(EnrollmentRejected {
            partner_id: RESELLER,
            reason: "the business registration could not be confirmed".to_owned(),
        }),
        Event::EnrollmentResubmitted(EnrollmentResubmitted {
            partner_id: RESELLER,
        }),
        Event::PartnerAgreementSigned(PartnerAgreementSigned {
            partner_id: RESELLER,
            signed_by: ADMIN,
            agreement_version: "2026-01".to_owned(),
        }),
        Event::PartnerDeauthorized(PartnerDeauthorized {
            partner_id: RESELLER,
            reason: "breach of the partner agreement".to_owned(),
        }),
        Event::ResellerProgramAdded(ResellerProgramAdded {
            partner_id: PROVIDER,
            support: support(),
        }),
        Event::ProviderOnboarded(ProviderOnboarded {
            partner_id: PROVIDER,
            tenant_id: PROVIDER_TENANT,
            partner_number: PartnerNumber::known_valid("1000001"),
            legal_name: "Northwind Distribution".to_owned(),
            country: US,
            countries_served: vec![Country::known_valid(*b"CA"), US],
            support: support(),
        }),
        Event::UserAdded(UserAdded {
            partner_id: RESELLER,
            user_id: AGENT,
            full_name: "Sam Sales".to_owned(),
            email: Email::known_valid("sam@contoso.com"),
            agent_role: Some(AgentRole::AdminAgent),
            admin_role: Some(AdminRole::UserManagementAdmin),
        }),
        Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
            partner_id: RESELLER,
            user_id: AGENT,
        }),
        Event::TemporaryPasswordChanged(TemporaryPasswordChanged {
            partner_id: RESELLER,
            user_id: AGENT,
        }),
        Event::UserRolesChanged(UserRolesChanged {
            partner_id: RESELLER,
            user_id: AGENT,
            agent_role: Some(AgentRole::HelpdeskAgent),
            admin_role: None,
        }),
        Event::UserRemoved(UserRemoved {
            partner_id: RESELLER,
            user_id: AGENT,
        }),
        Event::IndirectResellerInvited(IndirectResellerInvited {
            provider_id: PROVIDER,
            reseller_id: RESELLER,
            reseller_partner_number: PartnerNumber::known_valid("4812345"),
            token_hash: token(),
            expires_at: at(31),
        }),
        Event::IndirectProviderAuthorized(IndirectProviderAuthorized {
            provider_id: PROVIDER,
            reseller_id: RESELLER,
            invitation_at: 12,
            provider: provider_standing(),
            reseller: reseller_standing(),
            country: US,
        }),
        Event::PartnershipEnded(PartnershipEnded {
            provider_id: PROVIDER,
            reseller_id: RESELLER,
            ended_by: PartnershipSide::Reseller,
            reason: Some("moved to another distributor".to_owned()),
        }),
        Event::CustomerImported(CustomerImported {
            customer_id: CUSTOMER,
            customer: customer_profile(),
            reseller_id: RESELLER,
            reseller_authorized_at: 9,
            source: CustomerSource::Office365PartnerAdminCenter,
            original_start: NaiveDate::from_ymd_opt(2019, 7, 1).unwrap_or_default(),
            delegated_admin: true,
        }),
        Event::CustomerInvitationCreated(CustomerInvitationCreated {
            invitation_id: INVITATION,
            partner_id: RESELLER,
            tier: RelationshipTier::IndirectReseller,
            provider_id: Some(PROVIDER),
            partnership_authorized_at: Some(13),
            customer_email: Email::known_valid("it@fabrikam.com"),
            token_hash: token(),
            expires_at: at(30),
        }),
        Event::ResellerRelationshipAccepted(ResellerRelationshipAccepted {
            invitation_id: INVITATION,
            customer_id: CUSTOMER,
            customer: customer_profile(),
            partners: vec![
                AcceptedPartner {
                    standing: reseller_standing(),
                    tier: RelationshipTier::IndirectReseller,
                },
                AcceptedPartner {
                    standing: provider_standing(),
                    tier: RelationshipTier::IndirectProvider,
                },
            ],
            delegated_admin_to: RESELLER,
            partnership_authorized_at: Some(13),
        }),
        Event::DelegatedAdminRemoved(DelegatedAdminRemoved {
            customer_id: CUSTOMER,
            partner_id: RESELLER,
        }),
        Event::GranularAdminRequested(GranularAdminRequested {
            customer_id: CUSTOMER,
            request_id: REQUEST,
            partner_id: RESELLER,
            roles: vec![
                "Helpdesk Administrator".to_owned(),
                "User Administrator".to_owned(),
            ],
            duration: GranularDuration::known_valid(180),
            request_expires_at: at(30) + chrono::Duration::days(60),
        }),
        Event::GranularAdminApproved(GranularAdminApproved {
            customer_id: CUSTOMER,
            request_id: REQUEST,
            starts_at: at(5),
            ends_at: at(5) + chrono::Duration::days(180),
        }),
        Event::GranularAdminRevoked(GranularAdminRevoked {
            customer_id: CUSTOMER,
            request_id: REQUEST,
            revoked_by: CustomerParty::Customer,
        }),
        Event::ResellerRelationshipRemoved(ResellerRelationshipRemoved {
            customer_id: CUSTOMER,
            partner_id: RESELLER,
            removed_by: CustomerParty::Partner {
                partner_id: RESELLER,
            },
            delegated_admin_ended: true,
            granular_admin_ended: vec![REQUEST],
        }),
        Event::OrderSubmitted(OrderSubmitted {
            order_id: ORDER,
            provider_id: PROVIDER,
            reseller_id: RESELLER,
            customer_id: CUSTOMER,
            submitted_by: AGENT,
            lines: vec![SubscriptionLine {
                subscription_id: SUBSCRIPTION,
                offer_id: "CFQ7TTC0LH18:0001".to_owned(),
                product_family: ProductFamily::Office365,
                quantity: 25,
                partner_on_record: RESELLER,
            }],
            evidence: OrderEvidence {
                provider: provider_standing(),
                reseller: reseller_standing(),
                partnership_authorized_at: 13,
                reseller_of_record_at: 20,
                provider_of_record_at: 20,
            },
        }),
        Event::SubscriptionCancelled(SubscriptionCancelled {
            order_id: ORDER,
            subscription_id: SUBSCRIPTION,
        }),
    ]
}
