//! Scenario tests that read like SPEC §2 and §5: the seed story's answers at each step, the
//! earlier truth still shown as of before terminations and removals, and the operation of
//! checkpoints, rebuilds and the live runner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use domain::commands::*;
use domain::types::RelationshipTier;
use domain::*;
use projections::{
    AsOf, CapabilityCheck, GranularState, PartnerStatus, PendingStep, Projections, QueryError,
    Runner, RunnerConfig, UserOrderDenial, WaitError, checkpoint,
};
use store::{EventStore, ExpectedRevision, MemoryStore, NewEvent};

use AgentRole::*;

/// The read models of everything the world recorded so far.
fn now(w: &World) -> Projections {
    build(&recorded(&w.log))
}

/// The position of the last event recorded.
fn head(w: &World) -> u64 {
    w.log.len() as u64 - 1
}

#[track_caller]
fn event_types(p: &Projections, events: &[projections::EventRef]) -> Vec<&'static str> {
    events.iter().map(|e| p.event(*e).event_type).collect()
}

#[test]
fn the_seed_story_step_by_step() {
    let mut w = World::new();

    // §2.1 enrollment: the status moves through its sub-statuses.
    let (partner_id, tenant, admin, number) = w.start_enrollment("Contoso", "US");
    let p = now(&w);
    let info = p.at(None).unwrap().partner_info(partner_id).value.unwrap();
    assert_eq!(
        info.status,
        &PartnerStatus::Pending {
            step: PendingStep::Profile
        }
    );
    assert!(!info.may_transact);
    w.complete_application(partner_id, &admin, &number, "US");
    let p = now(&w);
    let info = p.at(None).unwrap().partner_info(partner_id).value.unwrap();
    assert_eq!(
        info.status,
        &PartnerStatus::Pending {
            step: PendingStep::Decision
        }
    );
    assert_eq!(info.partner_number, Some(&number));
    assert!(info.legal_profile.is_some());
    w.review(partner_id);
    let events = w.operator(AuthorizeEnrollment { partner_id });
    let Event::UserAdded(first) = &events[1] else {
        panic!()
    };
    let reseller = Org {
        id: partner_id,
        tenant,
        number,
        country: country("US"),
        admin: first.user_id,
    };
    let authorized_at = head(&w) - 1;
    let p = now(&w);
    let view = p.at(None).unwrap();
    let info = view.partner_info(partner_id).value.unwrap();
    assert_eq!(info.status, &PartnerStatus::Authorized);
    assert_eq!(
        view.event(info.status_since).event_type,
        "EnrollmentAuthorized"
    );
    assert!(
        info.agreement.is_none() && !info.may_transact,
        "no agreement yet"
    );
    // The first user is global admin and admin agent.
    let users = view.users_of(partner_id).value.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].roles, Roles::FIRST_USER);
    w.sign(&reseller);
    let p = now(&w);
    let info = p.at(None).unwrap().partner_info(partner_id).value.unwrap();
    let (agreement, signed) = info.agreement.unwrap();
    assert_eq!(
        (agreement.version.as_str(), agreement.signed_by),
        ("2026-01", reseller.admin)
    );
    assert_eq!(p.event(signed).event_type, "PartnerAgreementSigned");
    assert!(info.may_transact);
    // As of the authorization, the agreement was not signed yet.
    let before = p.at(Some(AsOf::Position(authorized_at))).unwrap();
    assert!(
        before
            .partner_info(partner_id)
            .value
            .unwrap()
            .agreement
            .is_none()
    );

    // §2.3 partnership: listed on both sides, with admin access to the reseller's tenant.
    let provider = w.provider("Northwind", &["US", "CA"]);
    let sales = w.user(&provider, Some(SalesAgent), None);
    let pending_sales = w.user_pending(&provider, Some(SalesAgent), None);
    let helpdesk = w.user(&provider, Some(HelpdeskAgent), None);
    w.partner_up(&provider, &reseller);
    let partnered_at = head(&w);
    let p = now(&w);
    let view = p.at(None).unwrap();
    let providers = view.indirect_providers(reseller.id).value.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].provider, provider.id);
    assert_eq!(
        p.event(providers[0].since).event_type,
        "IndirectProviderAuthorized"
    );
    assert_eq!(
        view.indirect_resellers(provider.id).value.unwrap()[0].reseller,
        reseller.id
    );
    assert_eq!(
        view.tenant_admin_access(reseller.id).value.unwrap()[0].provider,
        provider.id
    );

    // §2.4 a customer invited with the provider: both are reseller of record; the reseller
    // holds delegated admin.
    let customer = w.shared_customer(&provider, &reseller);
    let accepted_at = head(&w);
    let p = now(&w);
    let view = p.at(None).unwrap();
    let of_record = view.reseller_of_record(customer.id).value.unwrap();
    let tiers: Vec<(PartnerId, RelationshipTier)> =
        of_record.iter().map(|r| (r.partner, r.tier)).collect();
    assert_eq!(
        tiers,
        vec![
            (reseller.id, RelationshipTier::IndirectReseller),
            (provider.id, RelationshipTier::IndirectProvider)
        ]
    );
    assert_eq!(view.event(of_record[0].since).position, accepted_at);
    assert_eq!(
        view.event(of_record[0].since).event_type,
        "ResellerRelationshipAccepted"
    );
    let delegated = view.delegated_admins(customer.id).value.unwrap();
    assert_eq!(delegated.len(), 1);
    assert_eq!(delegated[0].partner, reseller.id);
    let shared = view.shared_customers(provider.id, reseller.id).value;
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].customer, customer.id);
    assert_eq!(view.customers_of(reseller.id).value.unwrap().len(), 1);

    // §2.5 may-order, explained by the events behind every condition.
    let answer = view.may_order(provider.id, customer.id, reseller.id);
    assert_eq!(answer.position, Some(accepted_at));
    let right = answer.value.unwrap();
    assert_eq!(
        event_types(&p, &right.events()),
        vec![
            "ProviderOnboarded",
            "PartnerAgreementSigned",
            "EnrollmentAuthorized",
            "PartnerAgreementSigned",
            "IndirectProviderAuthorized",
            "ResellerRelationshipAccepted",
            "ResellerRelationshipAccepted",
        ]
    );
    assert_eq!(p.event(right.partnership_authorized).position, partnered_at);
    let pairs = view.ordering_pairs(customer.id).value;
    assert_eq!(
        pairs
            .iter()
            .map(|x| (x.provider, x.reseller))
            .collect::<Vec<_>>(),
        vec![(provider.id, reseller.id)]
    );
    // Citing the provider as reseller fails at the first condition that does not hold.
    let denial = view
        .may_order(provider.id, customer.id, provider.id)
        .value
        .unwrap_err();
    assert_eq!(denial.refusal.rule(), "not-a-reseller");
    assert_eq!(denial.failed_by, None);

    // User-level: the user's partner, roles and temporary password.
    assert!(
        view.user_may_order(sales, customer.id, reseller.id)
            .value
            .is_ok()
    );
    let Err(UserOrderDenial::User { check }) = view
        .user_may_order(pending_sales, customer.id, reseller.id)
        .value
    else {
        panic!()
    };
    let CapabilityCheck::TemporaryPasswordNotChanged { issued } = check else {
        panic!("{check:?}")
    };
    assert_eq!(p.event(issued).event_type, "TemporaryPasswordIssued");
    let Err(UserOrderDenial::User { check }) = view
        .user_may_order(helpdesk, customer.id, reseller.id)
        .value
    else {
        panic!()
    };
    assert!(matches!(check, CapabilityCheck::MissingCapability { .. }));
    assert!(matches!(
        view.can(helpdesk, Capability::ViewCustomers).value,
        CapabilityCheck::Allowed { .. }
    ));
    let info = view.user_info_of(sales).value.unwrap();
    assert!(info.capabilities.contains(&Capability::SubmitOrders));
    assert!(!info.capabilities.contains(&Capability::ManageUsers));

    // An order, then the reseller ends the partnership.
    let (order, subscriptions) = w.order(sales, &provider, customer, &reseller);
    let ordered_at = head(&w);
    w.as_user(
        reseller.admin,
        EndPartnership {
            provider_id: provider.id,
            reseller_id: reseller.id,
            reason: Some("moving on".into()),
        },
    );
    let ended_at = head(&w);
    let p = now(&w);
    let view = p.at(None).unwrap();
    let denial = view
        .may_order(provider.id, customer.id, reseller.id)
        .value
        .unwrap_err();
    assert_eq!(denial.refusal.rule(), "partnership-not-active");
    assert_eq!(p.event(denial.failed_by.unwrap()).position, ended_at);
    assert_eq!(
        p.event(denial.failed_by.unwrap()).event_type,
        "PartnershipEnded"
    );
    assert!(
        view.indirect_providers(reseller.id)
            .value
            .unwrap()
            .is_empty()
    );
    assert!(
        view.tenant_admin_access(reseller.id)
            .value
            .unwrap()
            .is_empty()
    );
    // The customers stay (SPEC §2.3.4).
    assert_eq!(
        view.shared_customers(provider.id, reseller.id).value.len(),
        1
    );
    assert!(view.ordering_pairs(customer.id).value.is_empty());
    // As of the order, everything still held.
    let then = p.at(Some(AsOf::Position(ordered_at))).unwrap();
    assert!(
        then.may_order(provider.id, customer.id, reseller.id)
            .value
            .is_ok()
    );
    assert_eq!(then.indirect_providers(reseller.id).value.unwrap().len(), 1);
    assert_eq!(then.position(), Some(ordered_at));

    // The subscriptions are cancelled, then the customer removes the provider.
    for subscription_id in subscriptions {
        w.operator(CancelSubscription {
            order_id: order,
            subscription_id,
        });
    }
    w.ok(
        customer_admin(customer.tenant, None),
        RemoveResellerRelationship {
            customer_id: customer.id,
            partner_id: reseller.id,
        },
    );
    let removed_at = head(&w);
    let p = now(&w);
    let view = p.at(None).unwrap();
    let of_record = view.reseller_of_record(customer.id).value.unwrap();
    assert_eq!(
        of_record.iter().map(|r| r.partner).collect::<Vec<_>>(),
        vec![provider.id]
    );
    assert!(
        view.delegated_admins(customer.id).value.unwrap().is_empty(),
        "removal ends delegated admin"
    );
    assert!(
        view.shared_customers(provider.id, reseller.id)
            .value
            .is_empty()
    );
    let then = p.at(Some(AsOf::Position(removed_at - 1))).unwrap();
    assert_eq!(then.reseller_of_record(customer.id).value.unwrap().len(), 2);
    assert_eq!(then.delegated_admins(customer.id).value.unwrap().len(), 1);
    assert_eq!(
        then.shared_customers(provider.id, reseller.id).value.len(),
        1
    );

    // The operator deauthorizes the reseller: as of before, it was authorized.
    w.operator(DeauthorizePartner {
        partner_id: reseller.id,
        reason: "audit".into(),
    });
    let p = now(&w);
    let info = p.at(None).unwrap().partner_info(reseller.id).value.unwrap();
    assert_eq!(
        info.status,
        &PartnerStatus::Deauthorized {
            reason: "audit".into()
        }
    );
    let before = p.at(Some(AsOf::Position(removed_at))).unwrap();
    assert_eq!(
        before.partner_info(reseller.id).value.unwrap().status,
        &PartnerStatus::Authorized
    );
    // Even citing it, the deauthorization is the event that makes may-order fail.
    let denial = p
        .at(None)
        .unwrap()
        .may_order(provider.id, customer.id, reseller.id)
        .value
        .unwrap_err();
    assert_eq!(denial.refusal.rule(), "reseller-deauthorized");
    assert_eq!(
        p.event(denial.failed_by.unwrap()).event_type,
        "PartnerDeauthorized"
    );

    // History: everything that happened to the customer, in order, with actors.
    let view = p.at(None).unwrap();
    let history = view.customer_history(customer.id).value;
    let types = event_types(&p, &history);
    assert_eq!(types.first(), Some(&"ResellerRelationshipAccepted"));
    assert!(types.contains(&"OrderSubmitted") && types.contains(&"SubscriptionCancelled"));
    assert_eq!(types.last(), Some(&"ResellerRelationshipRemoved"));
    let positions: Vec<u64> = history.iter().map(|e| p.event(*e).position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert!(
        p.event(*history.last().unwrap())
            .actor
            .contains("customer_admin")
    );
    let stream = view
        .stream_history(&domain::streams::partnership(provider.id, reseller.id))
        .value;
    assert_eq!(
        event_types(&p, &stream),
        vec![
            "IndirectResellerInvited",
            "IndirectProviderAuthorized",
            "PartnershipEnded"
        ]
    );
    assert_eq!(
        view.partnership_history(provider.id, reseller.id).value,
        stream
    );
    let relationship = event_types(
        &p,
        &view.relationship_history(customer.id, reseller.id).value,
    );
    assert_eq!(relationship.first(), Some(&"ResellerRelationshipAccepted"));
    assert_eq!(relationship.last(), Some(&"ResellerRelationshipRemoved"));
    assert!(event_types(&p, &view.user_history(sales).value).contains(&"OrderSubmitted"));
}

#[test]
fn as_of_a_time_and_beyond_the_head() {
    let mut w = World::new();
    let provider = w.provider("Northwind", &["US"]);
    let reseller = w.reseller("Contoso", "US");
    w.advance_days(1);
    let day_two = w.now;
    w.partner_up(&provider, &reseller);
    let p = now(&w);
    let before = p
        .at(Some(AsOf::Time(day_two - chrono::Duration::seconds(1))))
        .unwrap();
    assert!(
        before
            .indirect_providers(reseller.id)
            .value
            .unwrap()
            .is_empty()
    );
    let after = p.at(Some(AsOf::Time(day_two))).unwrap();
    assert_eq!(
        after.indirect_providers(reseller.id).value.unwrap().len(),
        1
    );
    assert_eq!(after.position(), Some(head(&w)));
    let far_future = p
        .at(Some(AsOf::Time(day_two + chrono::Duration::days(3650))))
        .unwrap();
    assert_eq!(far_future.position(), Some(head(&w)));
    let long_ago = p
        .at(Some(AsOf::Time(day_two - chrono::Duration::days(3650))))
        .unwrap();
    assert_eq!(long_ago.position(), None);
    assert!(
        long_ago.partner_info(provider.id).value.is_none(),
        "nothing existed yet"
    );
    assert_eq!(
        p.at(Some(AsOf::Position(head(&w) + 1))).err(),
        Some(QueryError::NotReached {
            requested: head(&w) + 1,
            reached: Some(head(&w))
        })
    );
}

#[test]
fn granular_admin_expires_with_time_and_ends_with_revocation() {
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
            roles: vec!["Helpdesk Administrator".into()],
            duration: GranularDuration::parse("P30D").unwrap(),
        },
    );
    let Event::GranularAdminRequested(requested) = &events[0] else {
        panic!()
    };
    let request_id = requested.request_id;
    let requested_at = head(&w);
    w.ok(
        customer_admin(tenant, None),
        ApproveGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
    );
    let approved_time = w.now;
    let p = now(&w);
    let view = p.at(None).unwrap().with_instant(approved_time);
    let grants = view.granular_admins(customer.id).value.unwrap();
    assert!(matches!(
        grants[0].state,
        GranularState::Approved { active: true, .. }
    ));
    let later = view.with_instant(approved_time + chrono::Duration::days(31));
    assert!(matches!(
        later.granular_admins(customer.id).value.unwrap()[0].state,
        GranularState::Approved { active: false, .. }
    ));
    let pending = p.at(Some(AsOf::Position(requested_at))).unwrap();
    assert!(matches!(
        pending.granular_admins(customer.id).value.unwrap()[0].state,
        GranularState::Pending { lapsed: false, .. }
    ));
    w.ok(
        customer_admin(tenant, None),
        RevokeGranularAdmin {
            customer_id: customer.id,
            request_id,
        },
    );
    let p = now(&w);
    let grants = p
        .at(None)
        .unwrap()
        .granular_admins(customer.id)
        .value
        .unwrap();
    let GranularState::Revoked { revoked } = grants[0].state else {
        panic!()
    };
    assert_eq!(p.event(revoked).event_type, "GranularAdminRevoked");
    // Delegated admin removal keeps the relationship.
    w.ok(
        customer_admin(tenant, None),
        RemoveDelegatedAdmin {
            customer_id: customer.id,
            partner_id: reseller.id,
        },
    );
    let p = now(&w);
    let view = p.at(None).unwrap();
    assert!(view.delegated_admins(customer.id).value.unwrap().is_empty());
    assert_eq!(view.reseller_of_record(customer.id).value.unwrap().len(), 1);
    let before = p.at(Some(AsOf::Position(head(&w) - 1))).unwrap();
    assert_eq!(before.delegated_admins(customer.id).value.unwrap().len(), 1);
}

#[test]
fn a_removed_user_and_changed_roles_keep_their_earlier_truth() {
    let mut w = World::new();
    let provider = w.provider("Northwind", &["US"]);
    let agent = w.user(&provider, Some(SalesAgent), None);
    let as_sales = head(&w);
    w.as_user(
        provider.admin,
        ChangeUserRoles {
            partner_id: provider.id,
            user_id: agent,
            agent_role: Some(HelpdeskAgent),
            admin_role: None,
        },
    );
    let as_helpdesk = head(&w);
    w.as_user(
        provider.admin,
        RemoveUser {
            partner_id: provider.id,
            user_id: agent,
        },
    );
    let p = now(&w);
    let check = |position: u64| {
        p.at(Some(AsOf::Position(position)))
            .unwrap()
            .can(agent, Capability::SubmitOrders)
            .value
    };
    assert!(matches!(check(as_sales), CapabilityCheck::Allowed { .. }));
    assert!(matches!(
        check(as_helpdesk),
        CapabilityCheck::MissingCapability { .. }
    ));
    let CapabilityCheck::UserRemoved { removed } = check(head(&w)) else {
        panic!()
    };
    assert_eq!(p.event(removed).event_type, "UserRemoved");
    let users = p.at(None).unwrap().users_of(provider.id).value.unwrap();
    assert!(users.iter().any(|u| u.id == agent && u.removed.is_some()));
}

/// A small history with a bit of everything.
fn small_history() -> World {
    let mut w = World::new();
    let provider = w.provider("Northwind", &["US"]);
    let reseller = w.reseller("Contoso", "US");
    w.partner_up(&provider, &reseller);
    let customer = w.shared_customer(&provider, &reseller);
    w.order(provider.admin, &provider, customer, &reseller);
    w
}

/// The checkpoint of a fixed history is the same bytes as the golden image of the current
/// format version: a change to what a checkpoint holds, or how, must come with a new
/// `FORMAT_VERSION` (an image of another version is discarded and rebuilt, never misread).
/// When the change is deliberate, bump the version, run with `CSP_LEDGER_BLESS=1` and commit
/// the new image; the images of earlier versions stay as they are.
#[test]
fn a_checkpoint_is_the_golden_image_of_its_format_version() {
    let mut w = small_history();
    let provider = w.provider("Fabrikam", &["US"]);
    let reseller = w.reseller("Tailspin", "US");
    w.partner_up(&provider, &reseller);
    for _ in 0..3 {
        let customer = w.shared_customer(&provider, &reseller);
        w.order(provider.admin, &provider, customer, &reseller);
    }
    let p = now(&w);
    let image = checkpoint::encode(&p).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("checkpoint-v{}.bin", checkpoint::FORMAT_VERSION));
    if std::env::var_os("CSP_LEDGER_BLESS").is_some()
        && std::fs::read(&path).ok() != Some(image.clone())
    {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &image).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(
        golden == image,
        "the checkpoint of the fixed history differs from {}: bump FORMAT_VERSION if the format changed (or, if only the history did, re-bless), run with CSP_LEDGER_BLESS=1 and commit the image",
        path.display()
    );
    assert!(checkpoint::decode(&golden).unwrap() == p);
}

#[test]
fn damaged_or_foreign_checkpoints_are_discarded_never_trusted() {
    let w = small_history();
    let p = now(&w);
    let image = checkpoint::encode(&p).unwrap();
    assert!(checkpoint::decode(&image).unwrap() == p);
    // Any flipped byte anywhere is caught.
    for index in [0, 9, 14, 30, 40, 46, image.len() / 2, image.len() - 1] {
        let mut damaged = image.clone();
        damaged[index] ^= 0x40;
        assert!(checkpoint::decode(&damaged).is_err(), "byte {index}");
    }
    assert!(
        checkpoint::decode(&image[..image.len() - 3]).is_err(),
        "truncated"
    );
    // Another format version is refused.
    let mut other_version = image.clone();
    other_version[8..12].copy_from_slice(&(checkpoint::FORMAT_VERSION + 1).to_le_bytes());
    let reason = checkpoint::decode(&other_version).err().unwrap();
    assert!(reason.contains("format version"), "{reason}");

    // Through files: a damaged file is discarded (and logged), a missing one is absent.
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("projections.ckpt");
    assert!(checkpoint::load(&path).unwrap().is_none());
    checkpoint::save(&p, &path).unwrap();
    assert!(checkpoint::load(&path).unwrap().unwrap() == p);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        checkpoint::load(&path),
        Err(checkpoint::CheckpointError::Unusable { .. })
    ));
    assert!(checkpoint::load_or_discard(&path).is_none());

    // A checkpoint of another log is discarded by `resume`: the event at its position has
    // another id.
    checkpoint::save(&p, &path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = MemoryStore::new();
        let other = small_history();
        for event in recorded(&other.log) {
            let new = NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: event.event_type,
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                actor: event.actor,
                command_id: event.command_id,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                payload: event.payload,
            };
            store
                .append(&event.stream, ExpectedRevision::Any, vec![new])
                .await
                .unwrap();
        }
        let resumed = projections::resume(&store, &path).await.unwrap();
        assert_eq!(resumed.position(), None, "a foreign checkpoint starts over");
    });
}

#[test]
fn rebuild_reports_progress_and_the_runner_serves_fresh_reads() {
    let w = small_history();
    let events = recorded(&w.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new());
        for event in &events {
            let new = NewEvent {
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                actor: event.actor.clone(),
                command_id: event.command_id,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                payload: event.payload.clone(),
            };
            store
                .append(&event.stream, ExpectedRevision::Any, vec![new])
                .await
                .unwrap();
        }
        let mut reports = Vec::new();
        let rebuilt = projections::rebuild(store.as_ref(), &mut |progress| reports.push(*progress))
            .await
            .unwrap();
        let last = reports.last().unwrap();
        assert_eq!(last.events_done, events.len() as u64);
        assert_eq!(last.events_total, Some(events.len() as u64));
        assert!(rebuilt == build(&events));

        let dynamic: Arc<dyn EventStore> = store.clone();
        let runner = Runner::start(dynamic, RunnerConfig::default())
            .await
            .unwrap();
        let handle = runner.handle();
        let head = events.len() as u64 - 1;
        let reached = handle
            .wait_for(head, Duration::from_secs(10))
            .await
            .map(|guard| guard.position())
            .unwrap();
        assert_eq!(reached, Some(head));
        let waited = handle.wait_for(head + 1, Duration::from_millis(50)).await;
        assert!(
            matches!(waited, Err(WaitError::Timeout { requested, .. }) if requested == head + 1)
        );
        runner.stop();
        let stopped = handle.wait_for(head + 1, Duration::from_secs(5)).await;
        assert!(
            matches!(stopped, Err(WaitError::Stopped { .. })),
            "{stopped:?}"
        );
    });
}
