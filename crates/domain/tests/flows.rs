//! Scenario tests that read like SPEC §2's flows: the whole seed story, then every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use domain::commands::*;
use domain::partner::{PartnerStatus, PendingStep};
use domain::types::*;
use domain::*;

use AdminRole::*;
use AgentRole::*;

#[test]
fn the_seed_story() {
    let mut w = World::new();

    // §2.1 Enrollment of an indirect reseller, step by step.
    let (partner_id, tenant, admin, number) = w.start_enrollment("Contoso", "US");
    assert_eq!(
        w.partner(partner_id).pending_step(),
        Some(PendingStep::Profile)
    );
    w.complete_application(partner_id, &admin, &number, "US");
    assert_eq!(
        w.partner(partner_id).pending_step(),
        Some(PendingStep::Decision)
    );
    w.review(partner_id);
    let events = w.operator(AuthorizeEnrollment { partner_id });
    let Event::UserAdded(first) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (first.agent_role, first.admin_role),
        (Some(AdminAgent), Some(GlobalAdmin))
    );
    let reseller = Org {
        id: partner_id,
        tenant,
        number,
        country: country("US"),
        admin: first.user_id,
    };
    assert_eq!(w.partner(partner_id).status, PartnerStatus::Authorized);
    w.sign(&reseller);

    // §2.2 Users: a sales agent is refused for a reseller; an admin agent works after the
    // temporary password is changed.
    let agent = w.user(&reseller, Some(AdminAgent), None);
    let helpdesk = w.user(&reseller, Some(HelpdeskAgent), None);

    // §2.3 Partnership.
    let provider = w.provider("Northwind", &["US", "CA"]);
    let provider_sales = w.user(&provider, Some(SalesAgent), None);
    w.partner_up(&provider, &reseller);
    assert!(
        w.state
            .partnership(provider.id, reseller.id)
            .unwrap()
            .is_active()
    );

    // §2.4 Customer invitations of both kinds, and acceptance.
    let (reseller_only, token) = w.invite(agent, &reseller, None);
    let solo_tenant = w.tenant();
    let solo = w.accept(solo_tenant, reseller_only, &token, "US");
    let solo_state = w.state.customer(solo.id).unwrap();
    assert_eq!(solo_state.relationships.len(), 1);
    assert!(
        solo_state.relationships[&reseller.id]
            .delegated_admin_since
            .is_some()
    );

    let (with_provider, token) = w.invite(agent, &reseller, Some(&provider));
    let shared_tenant = w.tenant();
    let shared = w.accept(shared_tenant, with_provider, &token, "US");
    let shared_state = w.state.customer(shared.id).unwrap();
    assert_eq!(
        shared_state.relationships[&reseller.id].tier,
        RelationshipTier::IndirectReseller
    );
    assert_eq!(
        shared_state.relationships[&provider.id].tier,
        RelationshipTier::IndirectProvider
    );
    assert!(
        shared_state.relationships[&provider.id]
            .delegated_admin_since
            .is_none()
    );

    // A provider's own direct invitation.
    let (direct, token) = w.invite(provider.admin, &provider, None);
    let direct_tenant = w.tenant();
    let direct_customer = w.accept(direct_tenant, direct, &token, "CA");
    assert_eq!(
        w.state.customer(direct_customer.id).unwrap().relationships[&provider.id].tier,
        RelationshipTier::Direct
    );

    // §2.5 Orders: the evidence names the positions that made each condition true.
    let events = w.as_user(
        provider_sales,
        World::order_command(&provider, shared, &reseller),
    );
    let Event::OrderSubmitted(order) = &events[0] else {
        panic!()
    };
    assert!(
        order
            .lines
            .iter()
            .all(|line| line.partner_on_record == reseller.id)
    );
    let evidence = order.evidence;
    for position in [
        evidence.provider.authorized_at,
        evidence.reseller.agreement_signed_at,
        evidence.partnership_authorized_at,
        evidence.reseller_of_record_at,
        evidence.provider_of_record_at,
    ] {
        assert!(position < w.log.len() as u64);
    }
    assert!(matches!(
        w.log[evidence.partnership_authorized_at as usize].1,
        Event::IndirectProviderAuthorized(_)
    ));
    assert!(matches!(
        w.log[evidence.reseller_of_record_at as usize].1,
        Event::ResellerRelationshipAccepted(_)
    ));

    // The reseller-only customer cannot be ordered for by the provider.
    let refusal = w.refused(
        user(provider_sales),
        World::order_command(&provider, solo, &reseller),
        "provider-not-of-record",
    );
    assert!(refusal.to_string().contains("not reseller of record"));

    // A helpdesk agent may not invite customers.
    w.refused(
        user(helpdesk),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("x@y.example"),
            provider_id: None,
        },
        "missing-capability",
    );

    // Every event is in its aggregate's stream, revisions count up per stream.
    let mut revisions = std::collections::BTreeMap::<String, u64>::new();
    for (meta, _) in &w.log {
        let next = revisions.entry(meta.stream.clone()).or_insert(0);
        assert_eq!(meta.stream_revision, *next);
        *next += 1;
        assert!(
            domain::streams::PREFIXES
                .iter()
                .any(|prefix| meta.stream.starts_with(prefix))
        );
    }
}

// ---------------------------------------------------------------- enrollment refusals

#[test]
fn countries_that_iso_does_not_assign_are_refused() {
    let mut w = World::new();
    // Shape-valid codes that name no country: user-assigned, reserved, withdrawn.
    for code in ["ZZ", "XK", "UK", "EU", "AN"] {
        let tenant = w.tenant();
        let admin = Actor::TenantAdmin {
            tenant_id: tenant,
            email: email("admin@nowhere.example"),
            name: "Admin".into(),
        };
        let refusal = w.refused(
            admin,
            StartEnrollment {
                organization_name: "Nowhere".into(),
                tenant_country: country(code),
            },
            "country-unknown",
        );
        assert!(refusal.to_string().contains(code), "{refusal}");
    }
    let (partner_id, ..) = w.start_enrollment("Contoso", "US");
    w.refused(
        Actor::System,
        RecordMpnProfiles {
            partner_id,
            profiles: vec![MpnProfile {
                partner_number: PartnerNumber::parse("4999999").unwrap(),
                organization_name: "Contoso".into(),
                country: country("QQ"),
                active: true,
            }],
        },
        "country-unknown",
    );
    let provider = w.provider("Northwind", &["US"]);
    let mut onboard = OnboardProvider {
        tenant_id: w.tenant(),
        tenant_country: country("CA"),
        partner_number: PartnerNumber::parse("1999999").unwrap(),
        legal_name: "Tailspin".into(),
        countries_served: vec![country("US"), country("XX")],
        support: support(),
        first_admin: NewUser {
            full_name: "Tailspin Admin".into(),
            email: email("admin@tailspin.example"),
        },
    };
    w.refused(Actor::Operator, onboard.clone(), "country-unknown");
    onboard.countries_served = vec![country("US"), country("AX")];
    w.operator(onboard);

    let reseller = w.reseller("Contoso", "US");
    w.partner_up(&provider, &reseller);
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    w.refused(
        customer_admin(tenant, Some(&token)),
        w.accept_command(invitation, "ZZ"),
        "country-unknown",
    );
}

#[test]
fn texts_refuse_control_characters() {
    let mut w = World::new();
    for name in [
        "Contoso\u{0}",
        "Contoso\u{1b}[31m",
        "Contoso\r\nApproved",
        "Con\u{7f}toso",
    ] {
        let tenant = w.tenant();
        let admin = Actor::TenantAdmin {
            tenant_id: tenant,
            email: email("admin@contoso.example"),
            name: "Admin".into(),
        };
        w.refused(
            admin,
            StartEnrollment {
                organization_name: name.into(),
                tenant_country: country("US"),
            },
            "control-character",
        );
    }
    let (partner_id, _, admin, _) = w.start_enrollment("Contoso", "US");
    let mut profile = w.legal_profile("US", "pat@contoso.example");
    profile.address.region = Some("WA\u{8}\u{8}OR".into());
    w.refused(
        admin,
        SubmitLegalProfile {
            partner_id,
            profile,
        },
        "control-character",
    );
}

#[test]
fn webmail_primary_contact_is_refused() {
    let mut w = World::new();
    let (partner_id, _, admin, _) = w.start_enrollment("Contoso", "US");
    for webmail in [
        "pat@gmail.com",
        "pat@yahoo.co.uk",
        "pat@hotmail.fr",
        "pat@live.com",
        "pat@outlook.com",
        "Pat@ICloud.com",
    ] {
        let profile = w.legal_profile("US", webmail);
        w.refused(
            admin.clone(),
            SubmitLegalProfile {
                partner_id,
                profile,
            },
            "webmail-primary-contact",
        );
    }
    // Own domains that merely look alike are fine.
    let profile = w.legal_profile("US", "pat@yahoo-partners.example");
    w.ok(
        admin.clone(),
        SubmitLegalProfile {
            partner_id,
            profile,
        },
    );
    let profile = w.legal_profile("US", "pat@mylive.com");
    w.ok(
        admin,
        SubmitLegalProfile {
            partner_id,
            profile,
        },
    );
}

#[test]
fn mpn_profile_must_be_active_and_in_the_tenant_country() {
    let mut w = World::new();
    let (partner_id, _, admin, _) = w.start_enrollment("Contoso", "US");
    let foreign = PartnerNumber::parse("5550001").unwrap();
    let inactive = PartnerNumber::parse("5550002").unwrap();
    w.ok(
        Actor::System,
        RecordMpnProfiles {
            partner_id,
            profiles: vec![
                MpnProfile {
                    partner_number: foreign.clone(),
                    organization_name: "Contoso DE".into(),
                    country: country("DE"),
                    active: true,
                },
                MpnProfile {
                    partner_number: inactive.clone(),
                    organization_name: "Contoso".into(),
                    country: country("US"),
                    active: false,
                },
            ],
        },
    );
    w.refused(
        admin.clone(),
        LinkMpnProfile {
            partner_id,
            partner_number: foreign,
        },
        "mpn-country-mismatch",
    );
    w.refused(
        admin.clone(),
        LinkMpnProfile {
            partner_id,
            partner_number: inactive,
        },
        "mpn-profile-inactive",
    );
    let unknown = PartnerNumber::parse("5550003").unwrap();
    w.refused(
        admin.clone(),
        LinkMpnProfile {
            partner_id,
            partner_number: unknown,
        },
        "mpn-profile-not-observed",
    );
    // Only the observing system records profiles, not the enrolling user.
    w.refused(
        admin,
        RecordMpnProfiles {
            partner_id,
            profiles: vec![],
        },
        "actor-not-allowed",
    );
}

#[test]
fn review_cannot_start_before_the_contact_is_verified() {
    let mut w = World::new();
    let (partner_id, _, admin, number) = w.start_enrollment("Contoso", "US");
    w.ok(
        admin.clone(),
        LinkMpnProfile {
            partner_id,
            partner_number: number,
        },
    );
    let profile = w.legal_profile("US", "pat@contoso.example");
    w.ok(
        admin.clone(),
        SubmitLegalProfile {
            partner_id,
            profile,
        },
    );
    assert_eq!(
        w.partner(partner_id).pending_step(),
        Some(PendingStep::EmailOwnership)
    );
    w.refused(
        Actor::Operator,
        CompleteReviewStep {
            partner_id,
            step: ReviewStep::Business,
        },
        "review-before-verification",
    );
    w.refused(
        Actor::Operator,
        AuthorizeEnrollment { partner_id },
        "review-before-verification",
    );
    w.refused(
        Actor::Operator,
        RejectEnrollment {
            partner_id,
            reason: "no".into(),
        },
        "review-before-verification",
    );

    // A wrong or expired link does not verify.
    w.ok(admin, RequestPrimaryContactVerification { partner_id });
    let token = w.token();
    w.refused(
        Actor::PrimaryContact {
            token: hash("guess"),
        },
        VerifyPrimaryContact { partner_id },
        "token-mismatch",
    );
    w.advance_days(8);
    w.refused(
        Actor::PrimaryContact {
            token: hash(&token),
        },
        VerifyPrimaryContact { partner_id },
        "verification-expired",
    );
}

#[test]
fn authorization_needs_every_review_step() {
    let mut w = World::new();
    let (partner_id, _, admin, number) = w.start_enrollment("Contoso", "US");
    w.complete_application(partner_id, &admin, &number, "US");
    w.operator(CompleteReviewStep {
        partner_id,
        step: ReviewStep::EmailOwnership,
    });
    w.refused(
        Actor::Operator,
        CompleteReviewStep {
            partner_id,
            step: ReviewStep::EmailOwnership,
        },
        "review-step-already-completed",
    );
    w.refused(
        Actor::Operator,
        AuthorizeEnrollment { partner_id },
        "review-incomplete",
    );
    w.refused(
        admin,
        AuthorizeEnrollment { partner_id },
        "actor-not-allowed",
    );
}

#[test]
fn a_rejected_enrollment_is_fixed_and_resubmitted_back_to_review() {
    let mut w = World::new();
    let (partner_id, _, admin, number) = w.start_enrollment("Contoso", "US");
    w.complete_application(partner_id, &admin, &number, "US");
    w.review(partner_id);
    w.operator(RejectEnrollment {
        partner_id,
        reason: "business not found in registry".into(),
    });
    assert_eq!(w.partner(partner_id).status, PartnerStatus::Rejected);
    w.refused(
        Actor::Operator,
        AuthorizeEnrollment { partner_id },
        "enrollment-status",
    );
    // The fix changes the primary contact, who must verify again.
    let profile = w.legal_profile("US", "legal@contoso-fixed.example");
    w.ok(
        admin.clone(),
        SubmitLegalProfile {
            partner_id,
            profile,
        },
    );
    w.ok(admin.clone(), ResubmitEnrollment { partner_id });
    assert_eq!(w.partner(partner_id).status, PartnerStatus::Pending);
    assert!(w.partner(partner_id).review_steps.is_empty());
    w.refused(
        Actor::Operator,
        CompleteReviewStep {
            partner_id,
            step: ReviewStep::Business,
        },
        "review-before-verification",
    );
    w.ok(admin, RequestPrimaryContactVerification { partner_id });
    let token = w.token();
    w.ok(
        Actor::PrimaryContact {
            token: hash(&token),
        },
        VerifyPrimaryContact { partner_id },
    );
    w.review(partner_id);
    w.operator(AuthorizeEnrollment { partner_id });
    assert_eq!(w.partner(partner_id).status, PartnerStatus::Authorized);
}

#[test]
fn a_tenant_has_one_partner_account_and_enrolled_partners_add_the_program() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let again = Actor::TenantAdmin {
        tenant_id: reseller.tenant,
        email: email("other@contoso.example"),
        name: "Other".into(),
    };
    w.refused(
        again,
        StartEnrollment {
            organization_name: "Contoso".into(),
            tenant_country: country("US"),
        },
        "tenant-already-partner",
    );

    // A provider (an enrolled CSP partner) adds the reseller program with its support contact.
    let provider = w.provider("Northwind", &["US"]);
    w.as_user(
        provider.admin,
        AddResellerProgram {
            partner_id: provider.id,
            support: support(),
        },
    );
    assert!(w.partner(provider.id).has(Program::IndirectReseller));
    w.refused(
        user(provider.admin),
        AddResellerProgram {
            partner_id: provider.id,
            support: support(),
        },
        "program-already-held",
    );
}

#[test]
fn the_enrolling_admin_acts_only_on_its_own_tenant() {
    let mut w = World::new();
    let (partner_id, _, _, number) = w.start_enrollment("Contoso", "US");
    let (_, _, stranger, _) = w.start_enrollment("Fabrikam", "US");
    w.refused(
        stranger,
        LinkMpnProfile {
            partner_id,
            partner_number: number,
        },
        "tenant-mismatch",
    );
}

// ---------------------------------------------------------------- agreement and standing

#[test]
fn no_transaction_before_the_agreement() {
    let mut w = World::new();
    let reseller = w.reseller_unsigned("Contoso", "US");
    let provider = w.provider_unsigned("Northwind", &["US"]);
    // The provider may not invite before it signs.
    w.refused(
        user(provider.admin),
        InviteReseller {
            provider_id: provider.id,
            reseller_partner_number: reseller.number.clone(),
        },
        "agreement-not-signed",
    );
    w.sign(&provider);
    w.as_user(
        provider.admin,
        InviteReseller {
            provider_id: provider.id,
            reseller_partner_number: reseller.number.clone(),
        },
    );
    let token = w.token();
    let authorize = AuthorizeIndirectProvider {
        provider_id: provider.id,
        reseller_id: reseller.id,
        token_hash: hash(&token),
        consent: true,
    };
    // The reseller may not authorize a provider, invite customers or be cited, unsigned.
    w.refused(
        user(reseller.admin),
        authorize.clone(),
        "agreement-not-signed",
    );
    w.refused(
        user(reseller.admin),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: None,
        },
        "agreement-not-signed",
    );
    // Only a global admin signs; signing twice is refused.
    let agent = w.user(&reseller, Some(AdminAgent), Some(UserManagementAdmin));
    w.refused(
        user(agent),
        SignPartnerAgreement {
            partner_id: reseller.id,
            agreement_version: "1".into(),
        },
        "global-admin-required",
    );
    w.sign(&reseller);
    w.refused(
        user(reseller.admin),
        SignPartnerAgreement {
            partner_id: reseller.id,
            agreement_version: "1".into(),
        },
        "agreement-already-signed",
    );
    w.as_user(reseller.admin, authorize);
}

#[test]
fn a_deauthorized_partner_stops_transacting() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    w.partner_up(&provider, &reseller);
    let customer = w.shared_customer(&provider, &reseller);
    w.operator(DeauthorizePartner {
        partner_id: reseller.id,
        reason: "agreement breach".into(),
    });
    w.refused(
        user(provider.admin),
        World::order_command(&provider, customer, &reseller),
        "reseller-deauthorized",
    );
    w.refused(
        user(reseller.admin),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: None,
        },
        "partner-deauthorized",
    );
    w.refused(
        Actor::Operator,
        DeauthorizePartner {
            partner_id: reseller.id,
            reason: "again".into(),
        },
        "enrollment-status",
    );
}

// ---------------------------------------------------------------- users and roles

#[test]
fn acting_before_changing_the_temporary_password_is_refused() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let newcomer = w.user_pending(&reseller, Some(AdminAgent), Some(GlobalAdmin));
    w.refused(
        user(newcomer),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: None,
        },
        "temporary-password-not-changed",
    );
    w.refused(
        user(newcomer),
        SignPartnerAgreement {
            partner_id: reseller.id,
            agreement_version: "1".into(),
        },
        "temporary-password-not-changed",
    );
    w.as_user(
        newcomer,
        ChangeTemporaryPassword {
            partner_id: reseller.id,
        },
    );
    w.refused(
        user(newcomer),
        ChangeTemporaryPassword {
            partner_id: reseller.id,
        },
        "no-temporary-password",
    );
    w.as_user(
        newcomer,
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: None,
        },
    );
    // A reset puts the user back behind the password change.
    w.as_user(
        reseller.admin,
        ResetTemporaryPassword {
            partner_id: reseller.id,
            user_id: newcomer,
        },
    );
    w.refused(
        user(newcomer),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: None,
        },
        "temporary-password-not-changed",
    );
}

#[test]
fn a_partner_keeps_at_least_one_global_admin() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    w.refused(
        user(reseller.admin),
        RemoveUser {
            partner_id: reseller.id,
            user_id: reseller.admin,
        },
        "last-global-admin",
    );
    w.refused(
        user(reseller.admin),
        ChangeUserRoles {
            partner_id: reseller.id,
            user_id: reseller.admin,
            agent_role: Some(AdminAgent),
            admin_role: None,
        },
        "last-global-admin",
    );
    let second = w.user(&reseller, None, Some(GlobalAdmin));
    w.as_user(
        second,
        RemoveUser {
            partner_id: reseller.id,
            user_id: reseller.admin,
        },
    );
    w.refused(
        user(reseller.admin),
        RemoveUser {
            partner_id: reseller.id,
            user_id: second,
        },
        "user-removed",
    );
    w.refused(
        user(second),
        RemoveUser {
            partner_id: reseller.id,
            user_id: second,
        },
        "last-global-admin",
    );
}

/// A global admin who still holds its temporary password has never signed in and may never
/// do so: it does not count as the partner's remaining global admin.
#[test]
fn a_global_admin_with_a_temporary_password_does_not_keep_the_partner_administered() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let pending = w.user_pending(&reseller, None, Some(GlobalAdmin));
    let demote_self = ChangeUserRoles {
        partner_id: reseller.id,
        user_id: reseller.admin,
        agent_role: Some(AdminAgent),
        admin_role: None,
    };
    w.refused(
        user(reseller.admin),
        demote_self.clone(),
        "last-global-admin",
    );
    w.refused(
        user(reseller.admin),
        RemoveUser {
            partner_id: reseller.id,
            user_id: reseller.admin,
        },
        "last-global-admin",
    );
    // Once the other admin has signed in with a password of its own, it counts.
    w.as_user(
        pending,
        ChangeTemporaryPassword {
            partner_id: reseller.id,
        },
    );
    w.as_user(reseller.admin, demote_self);
}

#[test]
fn only_a_global_admin_grants_or_revokes_global_admin() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let manager = w.user(&reseller, None, Some(UserManagementAdmin));
    let n = email("new@contoso.example");
    w.refused(
        user(manager),
        AddUser {
            partner_id: reseller.id,
            full_name: "New".into(),
            email: n.clone(),
            agent_role: None,
            admin_role: Some(GlobalAdmin),
        },
        "global-admin-grant-requires-global-admin",
    );
    w.refused(
        user(manager),
        ChangeUserRoles {
            partner_id: reseller.id,
            user_id: manager,
            agent_role: None,
            admin_role: Some(GlobalAdmin),
        },
        "global-admin-grant-requires-global-admin",
    );
    let other_admin = w.user(&reseller, None, Some(GlobalAdmin));
    w.refused(
        user(manager),
        ChangeUserRoles {
            partner_id: reseller.id,
            user_id: other_admin,
            agent_role: Some(AdminAgent),
            admin_role: None,
        },
        "global-admin-grant-requires-global-admin",
    );
    w.refused(
        user(manager),
        RemoveUser {
            partner_id: reseller.id,
            user_id: other_admin,
        },
        "global-admin-grant-requires-global-admin",
    );
    w.refused(
        user(manager),
        ResetTemporaryPassword {
            partner_id: reseller.id,
            user_id: other_admin,
        },
        "global-admin-grant-requires-global-admin",
    );
    // What a user management admin may do: manage non-admin users.
    w.as_user(
        manager,
        AddUser {
            partner_id: reseller.id,
            full_name: "New".into(),
            email: n.clone(),
            agent_role: Some(HelpdeskAgent),
            admin_role: None,
        },
    );
    // Emails are unique across the ledger.
    w.refused(
        user(reseller.admin),
        AddUser {
            partner_id: reseller.id,
            full_name: "Dup".into(),
            email: n,
            agent_role: None,
            admin_role: None,
        },
        "email-taken",
    );
    // Agents do not manage users.
    let agent = w.user(&reseller, Some(AdminAgent), None);
    w.refused(
        user(agent),
        RemoveUser {
            partner_id: reseller.id,
            user_id: manager,
        },
        "missing-capability",
    );
}

#[test]
fn sales_agent_exists_only_for_providers() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    w.refused(
        user(reseller.admin),
        AddUser {
            partner_id: reseller.id,
            full_name: "S".into(),
            email: email("s@contoso.example"),
            agent_role: Some(SalesAgent),
            admin_role: None,
        },
        "sales-agent-only-for-providers",
    );
    let provider = w.provider("Northwind", &["US"]);
    w.user(&provider, Some(SalesAgent), None);
}

#[test]
fn users_act_only_for_their_own_partner() {
    let mut w = World::new();
    let contoso = w.reseller("Contoso", "US");
    let fabrikam = w.reseller("Fabrikam", "US");
    w.refused(
        user(contoso.admin),
        RemoveUser {
            partner_id: fabrikam.id,
            user_id: fabrikam.admin,
        },
        "user-not-in-partner",
    );
}

// ---------------------------------------------------------------- partnerships

#[test]
fn only_a_reseller_global_admin_with_consent_authorizes_a_provider() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    let agent = w.user(&reseller, Some(AdminAgent), Some(UserManagementAdmin));
    w.as_user(
        provider.admin,
        InviteReseller {
            provider_id: provider.id,
            reseller_partner_number: reseller.number.clone(),
        },
    );
    let token = w.token();
    let authorize = |consent| AuthorizeIndirectProvider {
        provider_id: provider.id,
        reseller_id: reseller.id,
        token_hash: hash(&token),
        consent,
    };
    w.refused(user(agent), authorize(true), "missing-capability");
    w.refused(user(reseller.admin), authorize(false), "consent-required");
    w.refused(
        user(reseller.admin),
        AuthorizeIndirectProvider {
            provider_id: provider.id,
            reseller_id: reseller.id,
            token_hash: hash("forged"),
            consent: true,
        },
        "token-mismatch",
    );
    w.as_user(reseller.admin, authorize(true));
    w.refused(
        user(reseller.admin),
        authorize(true),
        "partnership-already-active",
    );
}

#[test]
fn reseller_invitation_links_expire_and_are_single_use() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    let invite = InviteReseller {
        provider_id: provider.id,
        reseller_partner_number: reseller.number.clone(),
    };
    w.as_user(provider.admin, invite.clone());
    let token = w.token();
    let authorize = AuthorizeIndirectProvider {
        provider_id: provider.id,
        reseller_id: reseller.id,
        token_hash: hash(&token),
        consent: true,
    };
    w.advance_days(30);
    w.refused(
        user(reseller.admin),
        authorize.clone(),
        "invitation-expired",
    );
    // A fresh invitation works once; after the partnership ends, the old link stays used.
    w.as_user(provider.admin, invite);
    let token = w.token();
    let authorize = AuthorizeIndirectProvider {
        token_hash: hash(&token),
        ..authorize
    };
    w.as_user(reseller.admin, authorize.clone());
    w.as_user(
        reseller.admin,
        EndPartnership {
            provider_id: provider.id,
            reseller_id: reseller.id,
            reason: None,
        },
    );
    w.refused(user(reseller.admin), authorize, "invitation-already-used");
}

#[test]
fn partners_must_share_a_country() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "FR");
    let provider = w.provider("Northwind", &["US", "CA"]);
    w.as_user(
        provider.admin,
        InviteReseller {
            provider_id: provider.id,
            reseller_partner_number: reseller.number.clone(),
        },
    );
    let token = w.token();
    w.refused(
        user(reseller.admin),
        AuthorizeIndirectProvider {
            provider_id: provider.id,
            reseller_id: reseller.id,
            token_hash: hash(&token),
            consent: true,
        },
        "country-not-served",
    );
}

#[test]
fn a_resellers_tenant_cannot_also_be_its_providers_customer() {
    let mut w = World::new();
    let provider = w.provider("Northwind", &["US"]);
    let reseller = w.reseller("Contoso", "US");
    // The reseller's tenant is already the provider's direct customer.
    let (invitation, token) = w.invite(provider.admin, &provider, None);
    w.accept(reseller.tenant, invitation, &token, "US");
    w.as_user(
        provider.admin,
        InviteReseller {
            provider_id: provider.id,
            reseller_partner_number: reseller.number.clone(),
        },
    );
    let token = w.token();
    w.refused(
        user(reseller.admin),
        AuthorizeIndirectProvider {
            provider_id: provider.id,
            reseller_id: reseller.id,
            token_hash: hash(&token),
            consent: true,
        },
        "reseller-is-provider-customer",
    );
    // And the other way round: a partnered reseller's tenant cannot accept the provider.
    let other = w.reseller("Fabrikam", "US");
    w.partner_up(&provider, &other);
    let (invitation, token) = w.invite(provider.admin, &provider, None);
    let command = w.accept_command(invitation, "US");
    w.refused(
        customer_admin(other.tenant, Some(&token)),
        command,
        "reseller-is-provider-customer",
    );
}

#[test]
fn a_reseller_partners_with_several_providers_and_either_side_ends_it() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let first = w.provider("Northwind", &["US"]);
    let second = w.provider("Litware", &["US"]);
    w.partner_up(&first, &reseller);
    w.partner_up(&second, &reseller);
    let customer = w.shared_customer(&first, &reseller);
    let provider_agent = w.user(&first, Some(AdminAgent), None);
    // Ending needs a global admin of either side.
    let end = EndPartnership {
        provider_id: first.id,
        reseller_id: reseller.id,
        reason: Some("switching".into()),
    };
    w.refused(user(provider_agent), end.clone(), "missing-capability");
    w.as_user(first.admin, end.clone());
    w.refused(user(first.admin), end, "partnership-not-active");
    // Customers stay; order rights through the ended partnership go.
    assert!(
        w.state
            .customer(customer.id)
            .unwrap()
            .relationships
            .contains_key(&reseller.id)
    );
    assert!(
        w.state
            .customer(customer.id)
            .unwrap()
            .relationships
            .contains_key(&first.id)
    );
    w.refused(
        user(first.admin),
        World::order_command(&first, customer, &reseller),
        "partnership-not-active",
    );
    assert!(
        w.state
            .partnership(second.id, reseller.id)
            .unwrap()
            .is_active()
    );
}

// ---------------------------------------------------------------- customers

#[test]
fn customer_invitations_expire_and_are_single_use() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let command = w.accept_command(invitation, "US");
    w.refused(
        customer_admin(tenant, Some("forged")),
        command.clone(),
        "token-mismatch",
    );
    w.refused(
        customer_admin(tenant, None),
        command.clone(),
        "token-mismatch",
    );
    w.accept(tenant, invitation, &token, "US");
    let other = w.tenant();
    w.refused(
        customer_admin(other, Some(&token)),
        command.clone(),
        "invitation-already-used",
    );

    let (late, token) = w.invite(reseller.admin, &reseller, None);
    w.advance_days(31);
    let command = w.accept_command(late, "US");
    w.refused(
        customer_admin(other, Some(&token)),
        command,
        "invitation-expired",
    );
}

#[test]
fn acceptance_rechecks_every_named_partner() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    w.partner_up(&provider, &reseller);
    let (invitation, token) = w.invite(reseller.admin, &reseller, Some(&provider));
    // The partnership ends between the invitation and its acceptance.
    w.as_user(
        provider.admin,
        EndPartnership {
            provider_id: provider.id,
            reseller_id: reseller.id,
            reason: None,
        },
    );
    let tenant = w.tenant();
    let command = w.accept_command(invitation, "US");
    w.refused(
        customer_admin(tenant, Some(&token)),
        command,
        "partnership-not-active",
    );

    // A customer in another country than the reseller is refused.
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let command = w.accept_command(invitation, "DE");
    w.refused(
        customer_admin(tenant, Some(&token)),
        command,
        "country-not-served",
    );

    // A deauthorized reseller is no longer eligible.
    w.operator(DeauthorizePartner {
        partner_id: reseller.id,
        reason: "fraud".into(),
    });
    let command = w.accept_command(invitation, "US");
    w.refused(
        customer_admin(tenant, Some(&token)),
        command,
        "partner-deauthorized",
    );
}

#[test]
fn inviting_with_a_provider_needs_an_active_partnership() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    w.refused(
        user(reseller.admin),
        InviteCustomer {
            partner_id: reseller.id,
            customer_email: email("it@f.example"),
            provider_id: Some(provider.id),
        },
        "partnership-not-active",
    );
}

#[test]
fn existing_customers_are_imported_with_source_and_start() {
    let mut w = World::new();
    let reseller = w.reseller_unsigned("Contoso", "US");
    let tenant = w.tenant();
    let import = ImportExistingCustomer {
        reseller_id: reseller.id,
        customer: CustomerProfile {
            tenant_id: tenant,
            company_name: "Adatum".into(),
            primary_domain: "adatum.example".into(),
            country: country("US"),
        },
        source: CustomerSource::AzureManagementPortal,
        original_start: chrono::NaiveDate::from_ymd_opt(2018, 5, 1).unwrap(),
        delegated_admin: true,
    };
    w.refused(user(reseller.admin), import.clone(), "actor-not-allowed");
    let events = w.operator(import.clone());
    let Event::CustomerImported(imported) = &events[0] else {
        panic!()
    };
    let customer = w.state.customer(imported.customer_id).unwrap();
    assert!(
        customer.relationships[&reseller.id]
            .delegated_admin_since
            .is_some()
    );
    w.refused(Actor::Operator, import, "already-reseller-of-record");
}

#[test]
fn delegated_admin_is_removed_without_ending_the_relationship() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let customer = w.accept(tenant, invitation, &token, "US");
    let remove = RemoveDelegatedAdmin {
        customer_id: customer.id,
        partner_id: reseller.id,
    };
    let stranger = w.tenant();
    w.refused(
        customer_admin(stranger, None),
        remove.clone(),
        "tenant-mismatch",
    );
    w.refused(user(reseller.admin), remove.clone(), "actor-not-allowed");
    w.ok(customer_admin(tenant, None), remove.clone());
    let relationship = &w.state.customer(customer.id).unwrap().relationships[&reseller.id];
    assert!(relationship.delegated_admin_since.is_none());
    w.refused(customer_admin(tenant, None), remove, "no-delegated-admin");
}

#[test]
fn granular_admin_is_time_bound() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let customer = w.accept(tenant, invitation, &token, "US");
    let sales = w.user(&reseller, None, Some(UserManagementAdmin));
    let request = |duration: &str| RequestGranularAdmin {
        customer_id: customer.id,
        partner_id: reseller.id,
        roles: vec!["Helpdesk Administrator".into()],
        duration: GranularDuration::parse(duration).unwrap(),
    };
    w.refused(user(sales), request("P30D"), "missing-capability");
    let events = w.as_user(reseller.admin, request("P30D"));
    let Event::GranularAdminRequested(requested) = &events[0] else {
        panic!()
    };
    let request_id = requested.request_id;
    w.refused(
        user(reseller.admin),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
        "actor-not-allowed",
    );
    w.ok(
        customer_admin(tenant, None),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
    );
    let grant = &w.state.customer(customer.id).unwrap().granular[&request_id];
    assert!(grant.is_active_at(w.now));
    assert!(!grant.is_active_at(w.now + chrono::Duration::days(30)));
    w.refused(
        customer_admin(tenant, None),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
        "granular-admin-not-pending",
    );
    w.ok(
        customer_admin(tenant, None),
        RevokeGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
    );
    w.refused(
        customer_admin(tenant, None),
        RevokeGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
        "granular-admin-not-active",
    );

    // An unanswered request lapses after 90 days.
    let events = w.as_user(reseller.admin, request("P2Y"));
    let Event::GranularAdminRequested(requested) = &events[0] else {
        panic!()
    };
    w.advance_days(90);
    w.refused(
        customer_admin(tenant, None),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id: requested.request_id,
        },
        "granular-admin-request-expired",
    );
    // Durations outside P1D..P2Y do not even parse.
    assert!(GranularDuration::parse("P3Y").is_err());
}

#[test]
fn removal_is_refused_while_subscriptions_are_active() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    w.partner_up(&provider, &reseller);
    let customer = w.shared_customer(&provider, &reseller);
    let (order, subscriptions) = w.order(provider.admin, &provider, customer, &reseller);
    let remove = RemoveResellerRelationship {
        customer_id: customer.id,
        partner_id: reseller.id,
    };
    w.refused(
        customer_admin(customer.tenant, None),
        remove.clone(),
        "active-subscriptions",
    );
    w.refused(
        user(provider.admin),
        RemoveResellerRelationship {
            customer_id: customer.id,
            partner_id: provider.id,
        },
        "active-subscriptions",
    );
    // A helpdesk agent may not cancel Office 365 subscriptions; an admin agent may.
    let helpdesk = w.user(&reseller, Some(HelpdeskAgent), None);
    let cancel = CancelSubscription {
        order_id: order,
        subscription_id: subscriptions[0],
    };
    w.refused(user(helpdesk), cancel.clone(), "missing-capability");
    let agent = w.user(&reseller, Some(AdminAgent), None);
    w.as_user(agent, cancel.clone());
    w.refused(user(agent), cancel, "subscription-already-cancelled");
    // The operator may wind subscriptions down too; a customer admin may not.
    let second = CancelSubscription {
        order_id: order,
        subscription_id: subscriptions[1],
    };
    w.refused(
        customer_admin(customer.tenant, None),
        second.clone(),
        "actor-not-allowed",
    );
    w.operator(second);
    // Only a global admin removes on the partner's side.
    w.refused(user(agent), remove.clone(), "missing-capability");
    w.as_user(reseller.admin, remove.clone());
    let state = w.state.customer(customer.id).unwrap();
    assert!(!state.relationships.contains_key(&reseller.id));
    // No more orders through the removed reseller.
    w.refused(
        user(provider.admin),
        World::order_command(&provider, customer, &reseller),
        "reseller-not-of-record",
    );
    w.refused(
        customer_admin(customer.tenant, None),
        remove,
        "not-reseller-of-record",
    );
}

// ---------------------------------------------------------------- orders

#[test]
fn orders_name_the_first_failing_condition() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    let stranger_provider = w.provider("Litware", &["US"]);
    w.partner_up(&provider, &reseller);
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let reseller_only = w.accept(tenant, invitation, &token, "US");
    let shared = w.shared_customer(&provider, &reseller);

    // A provider lacking the customer relationship.
    w.refused(
        user(provider.admin),
        World::order_command(&provider, reseller_only, &reseller),
        "provider-not-of-record",
    );
    // A provider without a partnership with the reseller.
    w.refused(
        user(stranger_provider.admin),
        World::order_command(&stranger_provider, shared, &reseller),
        "partnership-not-active",
    );
    // A reseller cannot submit orders as if it were a provider.
    w.refused(
        user(reseller.admin),
        World::order_command(&reseller, shared, &reseller),
        "not-a-provider",
    );
    // A helpdesk agent of the provider lacks *submit orders*; a user of another partner is refused.
    let helpdesk = w.user(&provider, Some(HelpdeskAgent), None);
    w.refused(
        user(helpdesk),
        World::order_command(&provider, shared, &reseller),
        "missing-capability",
    );
    w.refused(
        user(reseller.admin),
        World::order_command(&provider, shared, &reseller),
        "user-not-in-partner",
    );
    // Empty orders are invalid.
    let mut empty = World::order_command(&provider, shared, &reseller);
    empty.lines.clear();
    w.refused(user(provider.admin), empty, "out-of-range");
    // An order after the partnership ended.
    w.order(provider.admin, &provider, shared, &reseller);
    w.as_user(
        reseller.admin,
        EndPartnership {
            provider_id: provider.id,
            reseller_id: reseller.id,
            reason: None,
        },
    );
    w.refused(
        user(provider.admin),
        World::order_command(&provider, shared, &reseller),
        "partnership-not-active",
    );
    // may_order gives the same answer for projections.
    let refusal = may_order(&w.state, provider.id, shared.id, reseller.id).unwrap_err();
    assert_eq!(refusal.rule(), "partnership-not-active");
}

// ---------------------------------------------------------------- smaller rules

#[test]
fn a_partner_number_links_to_one_partner_only() {
    let mut w = World::new();
    let contoso = w.reseller("Contoso", "US");
    let (partner_id, _, admin, _) = w.start_enrollment("Copycat", "US");
    w.ok(
        Actor::System,
        RecordMpnProfiles {
            partner_id,
            profiles: vec![MpnProfile {
                partner_number: contoso.number.clone(),
                organization_name: "Contoso".into(),
                country: country("US"),
                active: true,
            }],
        },
    );
    w.refused(
        admin,
        LinkMpnProfile {
            partner_id,
            partner_number: contoso.number,
        },
        "partner-number-taken",
    );
}

#[test]
fn existing_customers_are_imported_only_once_the_enrollment_is_authorized() {
    let mut w = World::new();
    let (partner_id, _, _, _) = w.start_enrollment("Contoso", "US");
    let tenant = w.tenant();
    let import = ImportExistingCustomer {
        reseller_id: partner_id,
        customer: CustomerProfile {
            tenant_id: tenant,
            company_name: "Adatum".into(),
            primary_domain: "adatum.example".into(),
            country: country("US"),
        },
        source: CustomerSource::Office365PartnerAdminCenter,
        original_start: chrono::NaiveDate::from_ymd_opt(2017, 1, 9).unwrap(),
        delegated_admin: false,
    };
    w.refused(Actor::Operator, import, "partner-not-authorized");
}

#[test]
fn removing_a_relationship_ends_its_delegated_and_granular_admin() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let (invitation, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let customer = w.accept(tenant, invitation, &token, "US");
    let events = w.as_user(
        reseller.admin,
        RequestGranularAdmin {
            customer_id: customer.id,
            partner_id: reseller.id,
            roles: vec!["User Administrator".into(), "User Administrator".into()],
            duration: GranularDuration::parse("P90D").unwrap(),
        },
    );
    let Event::GranularAdminRequested(requested) = &events[0] else {
        panic!()
    };
    assert_eq!(requested.roles, vec!["User Administrator".to_owned()]);
    w.ok(
        customer_admin(tenant, None),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id: requested.request_id,
        },
    );
    let events = w.ok(
        customer_admin(tenant, None),
        RemoveResellerRelationship {
            customer_id: customer.id,
            partner_id: reseller.id,
        },
    );
    let Event::ResellerRelationshipRemoved(removed) = &events[0] else {
        panic!()
    };
    assert!(removed.delegated_admin_ended);
    assert_eq!(removed.granular_admin_ended, vec![requested.request_id]);
    let grant = &w.state.customer(customer.id).unwrap().granular[&requested.request_id];
    assert!(!grant.is_active_at(w.now));
    // The partner can no longer ask for granular admin there.
    w.refused(
        user(reseller.admin),
        RequestGranularAdmin {
            customer_id: customer.id,
            partner_id: reseller.id,
            roles: vec!["Reader".into()],
            duration: GranularDuration::parse("P1D").unwrap(),
        },
        "not-reseller-of-record",
    );
}

#[test]
fn an_existing_customer_accepting_again_adds_only_new_partners() {
    let mut w = World::new();
    let reseller = w.reseller("Contoso", "US");
    let provider = w.provider("Northwind", &["US"]);
    w.partner_up(&provider, &reseller);
    let (first, token) = w.invite(reseller.admin, &reseller, None);
    let tenant = w.tenant();
    let customer = w.accept(tenant, first, &token, "US");
    // Later the reseller brings its provider in; the same customer accepts.
    let (second, token) = w.invite(reseller.admin, &reseller, Some(&provider));
    let again = w.accept(tenant, second, &token, "US");
    assert_eq!(again.id, customer.id);
    assert_eq!(
        w.state.customer(customer.id).unwrap().relationships.len(),
        2
    );
    let (third, token) = w.invite(reseller.admin, &reseller, Some(&provider));
    let command = w.accept_command(third, "US");
    w.refused(
        customer_admin(tenant, Some(&token)),
        command,
        "already-reseller-of-record",
    );
}
