//! Property tests over random command sequences drawn from a pool of plausible actors and
//! ids, so that many commands succeed: no invariant is ever broken, every accepted order
//! satisfied every condition at its position (rechecked by a naive scan of the log), no
//! event holds a generated secret, replay rebuilds the same state, and every event
//! round-trips through its encoding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use domain::commands::*;
use domain::events::*;
use domain::types::ProductFamily;
use domain::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    AddUser {
        org: usize,
        by: usize,
        agent: Option<AgentRole>,
        admin: Option<AdminRole>,
    },
    ChangeRoles {
        org: usize,
        by: usize,
        target: usize,
        agent: Option<AgentRole>,
        admin: Option<AdminRole>,
    },
    RemoveUser {
        org: usize,
        by: usize,
        target: usize,
    },
    ChangePassword {
        org: usize,
        user: usize,
    },
    ResetPassword {
        org: usize,
        by: usize,
        target: usize,
    },
    InviteReseller {
        provider: usize,
        reseller: usize,
        by: usize,
    },
    AuthorizeProvider {
        provider: usize,
        reseller: usize,
        by: usize,
        good_token: bool,
    },
    EndPartnership {
        provider: usize,
        reseller: usize,
        by: usize,
        provider_side: bool,
    },
    InviteCustomer {
        org: usize,
        by: usize,
        provider: Option<usize>,
    },
    Accept {
        invitation: usize,
        tenant: usize,
        canada: bool,
    },
    Order {
        provider: usize,
        by: usize,
        customer: usize,
        reseller: usize,
    },
    Cancel {
        order: usize,
        by_org: usize,
        by: usize,
    },
    RemoveRelationship {
        customer: usize,
        org: usize,
        by_customer: bool,
        by: usize,
    },
    RemoveDelegatedAdmin {
        customer: usize,
        org: usize,
    },
    Deauthorize {
        org: usize,
    },
    Advance {
        days: i64,
    },
}

fn agent_role() -> impl Strategy<Value = Option<AgentRole>> {
    prop_oneof![
        Just(None),
        Just(Some(AgentRole::AdminAgent)),
        Just(Some(AgentRole::SalesAgent)),
        Just(Some(AgentRole::HelpdeskAgent))
    ]
}

fn admin_role() -> impl Strategy<Value = Option<AdminRole>> {
    prop_oneof![
        Just(None),
        Just(Some(AdminRole::GlobalAdmin)),
        Just(Some(AdminRole::UserManagementAdmin))
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let i = || 0usize..8;
    prop_oneof![
        2 => (i(), i(), agent_role(), admin_role()).prop_map(|(org, by, agent, admin)| Step::AddUser { org, by, agent, admin }),
        2 => (i(), i(), i(), agent_role(), admin_role()).prop_map(|(org, by, target, agent, admin)| Step::ChangeRoles { org, by, target, agent, admin }),
        2 => (i(), i(), i()).prop_map(|(org, by, target)| Step::RemoveUser { org, by, target }),
        2 => (i(), i()).prop_map(|(org, user)| Step::ChangePassword { org, user }),
        1 => (i(), i(), i()).prop_map(|(org, by, target)| Step::ResetPassword { org, by, target }),
        3 => (i(), i(), i()).prop_map(|(provider, reseller, by)| Step::InviteReseller { provider, reseller, by }),
        3 => (i(), i(), i(), prop::bool::weighted(0.9)).prop_map(|(provider, reseller, by, good_token)| Step::AuthorizeProvider { provider, reseller, by, good_token }),
        1 => (i(), i(), i(), any::<bool>()).prop_map(|(provider, reseller, by, provider_side)| Step::EndPartnership { provider, reseller, by, provider_side }),
        4 => (i(), i(), prop::option::of(i())).prop_map(|(org, by, provider)| Step::InviteCustomer { org, by, provider }),
        4 => (i(), i(), prop::bool::weighted(0.2)).prop_map(|(invitation, tenant, canada)| Step::Accept { invitation, tenant, canada }),
        5 => (i(), i(), i(), i()).prop_map(|(provider, by, customer, reseller)| Step::Order { provider, by, customer, reseller }),
        2 => (i(), i(), i()).prop_map(|(order, by_org, by)| Step::Cancel { order, by_org, by }),
        2 => (i(), i(), any::<bool>(), i()).prop_map(|(customer, org, by_customer, by)| Step::RemoveRelationship { customer, org, by_customer, by }),
        1 => (i(), i()).prop_map(|(customer, org)| Step::RemoveDelegatedAdmin { customer, org }),
        1 => (0usize..40).prop_map(|org| Step::Deauthorize { org }),
        1 => (0i64..40).prop_map(|days| Step::Advance { days }),
    ]
}

/// The world of a run plus the pools the steps pick from.
struct Run {
    w: World,
    providers: Vec<Org>,
    resellers: Vec<Org>,
    users: BTreeMap<PartnerId, Vec<UserId>>,
    reseller_tokens: BTreeMap<(PartnerId, PartnerId), String>,
    invitations: Vec<(InvitationId, String)>,
    tenants: Vec<TenantId>,
    customers: Vec<Cust>,
    orders: Vec<(OrderId, Vec<SubscriptionId>)>,
}

fn user_of(users: &BTreeMap<PartnerId, Vec<UserId>>, org: &Org, index: usize) -> UserId {
    pick(&users[&org.id], index).unwrap()
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

impl Run {
    fn new() -> Self {
        let mut w = World::new();
        let providers = vec![
            w.provider("Northwind", &["US"]),
            w.provider("Litware", &["US", "CA"]),
            w.provider_unsigned("Tailspin", &["US"]),
        ];
        let resellers = vec![
            w.reseller("Contoso", "US"),
            w.reseller("Fabrikam", "US"),
            w.reseller("Adatum", "CA"),
            w.reseller_unsigned("Proseware", "US"),
        ];
        let mut users = BTreeMap::new();
        for org in providers.iter().chain(&resellers) {
            users.insert(org.id, vec![org.admin]);
        }
        let mut tenants: Vec<TenantId> = (0..5).map(|_| w.tenant()).collect();
        tenants.push(resellers[0].tenant);
        // Two partnerships and a shared customer to start from.
        w.partner_up(&providers[0], &resellers[0]);
        w.partner_up(&providers[1], &resellers[1]);
        let shared = w.shared_customer(&providers[0], &resellers[0]);
        Run {
            w,
            providers,
            resellers,
            users,
            reseller_tokens: BTreeMap::new(),
            invitations: Vec::new(),
            tenants,
            customers: vec![shared],
            orders: Vec::new(),
        }
    }

    fn orgs(&self) -> Vec<Org> {
        self.providers
            .iter()
            .chain(&self.resellers)
            .cloned()
            .collect()
    }

    fn apply(&mut self, step: &Step) {
        let orgs = self.orgs();
        let org_at = |i: usize| orgs[i % orgs.len()].clone();
        let w = &mut self.w;
        match step.clone() {
            Step::AddUser {
                org,
                by,
                agent,
                admin,
            } => {
                let org = org_at(org);
                let by = user_of(&self.users, &org, by);
                let n = w.fresh_uuid();
                let command = AddUser {
                    partner_id: org.id,
                    full_name: "Random".into(),
                    email: email(&format!("u{}@x.example", n.simple())),
                    agent_role: agent,
                    admin_role: admin,
                };
                if let Ok(events) = w.try_as(user(by), command) {
                    let Event::UserAdded(added) = &events[0] else {
                        panic!()
                    };
                    self.users.get_mut(&org.id).unwrap().push(added.user_id);
                }
            }
            Step::ChangeRoles {
                org,
                by,
                target,
                agent,
                admin,
            } => {
                let org = org_at(org);
                let (by, target) = (
                    user_of(&self.users, &org, by),
                    user_of(&self.users, &org, target),
                );
                let _ = w.try_as(
                    user(by),
                    ChangeUserRoles {
                        partner_id: org.id,
                        user_id: target,
                        agent_role: agent,
                        admin_role: admin,
                    },
                );
            }
            Step::RemoveUser { org, by, target } => {
                let org = org_at(org);
                let (by, target) = (
                    user_of(&self.users, &org, by),
                    user_of(&self.users, &org, target),
                );
                let _ = w.try_as(
                    user(by),
                    RemoveUser {
                        partner_id: org.id,
                        user_id: target,
                    },
                );
            }
            Step::ChangePassword { org, user: index } => {
                let org = org_at(org);
                let id = user_of(&self.users, &org, index);
                let _ = w.try_as(user(id), ChangeTemporaryPassword { partner_id: org.id });
            }
            Step::ResetPassword { org, by, target } => {
                let org = org_at(org);
                let (by, target) = (
                    user_of(&self.users, &org, by),
                    user_of(&self.users, &org, target),
                );
                let _ = w.try_as(
                    user(by),
                    ResetTemporaryPassword {
                        partner_id: org.id,
                        user_id: target,
                    },
                );
            }
            Step::InviteReseller {
                provider,
                reseller,
                by,
            } => {
                let provider = org_at(provider);
                let reseller = org_at(reseller);
                let by = user_of(&self.users, &provider, by);
                let command = InviteReseller {
                    provider_id: provider.id,
                    reseller_partner_number: reseller.number.clone(),
                };
                if w.try_as(user(by), command).is_ok() {
                    self.reseller_tokens
                        .insert((provider.id, reseller.id), w.token());
                }
            }
            Step::AuthorizeProvider {
                provider,
                reseller,
                by,
                good_token,
            } => {
                let provider = org_at(provider);
                let reseller = org_at(reseller);
                let by = user_of(&self.users, &reseller, by);
                let token = self
                    .reseller_tokens
                    .get(&(provider.id, reseller.id))
                    .cloned()
                    .unwrap_or_default();
                let token = if good_token {
                    token
                } else {
                    format!("{token}x")
                };
                let _ = w.try_as(
                    user(by),
                    AuthorizeIndirectProvider {
                        provider_id: provider.id,
                        reseller_id: reseller.id,
                        token_hash: hash(&token),
                        consent: true,
                    },
                );
            }
            Step::EndPartnership {
                provider,
                reseller,
                by,
                provider_side,
            } => {
                let provider = org_at(provider);
                let reseller = org_at(reseller);
                let by = user_of(
                    &self.users,
                    if provider_side { &provider } else { &reseller },
                    by,
                );
                let _ = w.try_as(
                    user(by),
                    EndPartnership {
                        provider_id: provider.id,
                        reseller_id: reseller.id,
                        reason: None,
                    },
                );
            }
            Step::InviteCustomer { org, by, provider } => {
                let org = org_at(org);
                let by = user_of(&self.users, &org, by);
                let provider_id = provider.map(|p| self.providers[p % self.providers.len()].id);
                let command = InviteCustomer {
                    partner_id: org.id,
                    customer_email: email("it@c.example"),
                    provider_id,
                };
                if let Ok(events) = w.try_as(user(by), command) {
                    let Event::CustomerInvitationCreated(created) = &events[0] else {
                        panic!()
                    };
                    self.invitations.push((created.invitation_id, w.token()));
                }
            }
            Step::Accept {
                invitation,
                tenant,
                canada,
            } => {
                let Some((invitation, token)) = pick(&self.invitations, invitation) else {
                    return;
                };
                let tenant = pick(&self.tenants, tenant).unwrap();
                let command = w.accept_command(invitation, if canada { "CA" } else { "US" });
                if let Ok(events) = w.try_as(customer_admin(tenant, Some(&token)), command) {
                    let Event::ResellerRelationshipAccepted(accepted) = &events[0] else {
                        panic!()
                    };
                    let customer = Cust {
                        id: accepted.customer_id,
                        tenant,
                    };
                    if !self.customers.iter().any(|c| c.id == customer.id) {
                        self.customers.push(customer);
                    }
                }
            }
            Step::Order {
                provider,
                by,
                customer,
                reseller,
            } => {
                let Some(customer) = pick(&self.customers, customer) else {
                    return;
                };
                // Mostly cite partners the customer has, so that many orders succeed.
                let of_record: Vec<PartnerId> = w
                    .state
                    .customer(customer.id)
                    .map(|c| c.relationships.keys().copied().collect())
                    .unwrap_or_default();
                let choose = |pool: &[Org], index: usize| {
                    let known: Vec<Org> = pool
                        .iter()
                        .filter(|o| of_record.contains(&o.id))
                        .cloned()
                        .collect();
                    pick(&known, index).unwrap_or_else(|| pool[index % pool.len()].clone())
                };
                let provider = if provider % 4 == 3 {
                    org_at(provider)
                } else {
                    choose(&self.providers, provider)
                };
                let reseller = if reseller % 4 == 3 {
                    org_at(reseller)
                } else {
                    choose(&self.resellers, reseller)
                };
                let by = user_of(&self.users, &provider, by);
                let mut command = World::order_command(&provider, customer, &reseller);
                command.lines.push(OrderLine {
                    offer_id: "azure-plan".into(),
                    product_family: ProductFamily::Azure,
                    quantity: 1,
                });
                if let Ok(events) = w.try_as(user(by), command) {
                    let Event::OrderSubmitted(order) = &events[0] else {
                        panic!()
                    };
                    self.orders.push((
                        order.order_id,
                        order.lines.iter().map(|l| l.subscription_id).collect(),
                    ));
                }
            }
            Step::Cancel { order, by_org, by } => {
                let Some((order, subscriptions)) = pick(&self.orders, order) else {
                    return;
                };
                let org = org_at(by_org);
                let subscription_id = subscriptions[by % subscriptions.len()];
                let by = user_of(&self.users, &org, by);
                let _ = w.try_as(
                    user(by),
                    CancelSubscription {
                        order_id: order,
                        subscription_id,
                    },
                );
            }
            Step::RemoveRelationship {
                customer,
                org,
                by_customer,
                by,
            } => {
                let Some(customer) = pick(&self.customers, customer) else {
                    return;
                };
                let org = org_at(org);
                let actor = if by_customer {
                    customer_admin(customer.tenant, None)
                } else {
                    user(user_of(&self.users, &org, by))
                };
                let _ = w.try_as(
                    actor,
                    RemoveResellerRelationship {
                        customer_id: customer.id,
                        partner_id: org.id,
                    },
                );
            }
            Step::RemoveDelegatedAdmin { customer, org } => {
                let Some(customer) = pick(&self.customers, customer) else {
                    return;
                };
                let org = org_at(org);
                let _ = w.try_as(
                    customer_admin(customer.tenant, None),
                    RemoveDelegatedAdmin {
                        customer_id: customer.id,
                        partner_id: org.id,
                    },
                );
            }
            Step::Deauthorize { org } => {
                // Rare: only the first few indexes of a wide range hit a partner.
                if let Some(org) = orgs.get(org) {
                    let _ = w.try_as(
                        Actor::Operator,
                        DeauthorizePartner {
                            partner_id: org.id,
                            reason: "audit".into(),
                        },
                    );
                }
            }
            Step::Advance { days } => w.advance_days(days),
        }
    }
}

/// Every authorized partner keeps at least one active global admin.
fn check_global_admins(state: &LedgerState) {
    for partner in state.partners() {
        if partner.authorized_at.is_some() {
            assert!(
                partner.active_global_admins() >= 1,
                "partner {} lost its last global admin",
                partner.id
            );
        }
    }
}

/// A naive, independent recheck of SPEC §2.5 for an order at `position`: scans the log
/// prefix for the facts, without the ledger's state or indexes.
fn naive_order_check(
    log: &[(EventMeta, Event)],
    position: usize,
    order: &OrderSubmitted,
    actor: &Actor,
) {
    let prefix = &log[..position];
    let (p, r, c) = (order.provider_id, order.reseller_id, order.customer_id);
    let authorized = |id: PartnerId| {
        prefix.iter().any(|(_, e)| match e {
            Event::EnrollmentAuthorized(x) => x.partner_id == id,
            Event::ProviderOnboarded(x) => x.partner_id == id,
            _ => false,
        })
    };
    let signed = |id: PartnerId| {
        prefix
            .iter()
            .any(|(_, e)| matches!(e, Event::PartnerAgreementSigned(x) if x.partner_id == id))
    };
    let deauthorized = |id: PartnerId| {
        prefix
            .iter()
            .any(|(_, e)| matches!(e, Event::PartnerDeauthorized(x) if x.partner_id == id))
    };
    let is_provider = prefix
        .iter()
        .any(|(_, e)| matches!(e, Event::ProviderOnboarded(x) if x.partner_id == p));
    let is_reseller = prefix.iter().any(|(_, e)| match e {
        Event::EnrollmentStarted(x) => x.partner_id == r,
        Event::ResellerProgramAdded(x) => x.partner_id == r,
        _ => false,
    });
    assert!(is_provider && is_reseller);
    for id in [p, r] {
        assert!(
            authorized(id) && signed(id) && !deauthorized(id),
            "partner {id} could not transact"
        );
    }
    // The last partnership fact for the pair is an authorization.
    let last_partnership = prefix.iter().rev().find_map(|(_, e)| match e {
        Event::IndirectProviderAuthorized(x) if x.provider_id == p && x.reseller_id == r => {
            Some(true)
        }
        Event::PartnershipEnded(x) if x.provider_id == p && x.reseller_id == r => Some(false),
        _ => None,
    });
    assert_eq!(last_partnership, Some(true), "partnership not active");
    // The last relationship fact for each partner and the customer makes it of record.
    let of_record = |partner: PartnerId| {
        prefix.iter().rev().find_map(|(_, e)| match e {
            Event::ResellerRelationshipAccepted(x)
                if x.customer_id == c
                    && x.partners.iter().any(|a| a.standing.partner_id == partner) =>
            {
                Some(true)
            }
            Event::CustomerImported(x) if x.customer_id == c && x.reseller_id == partner => {
                Some(true)
            }
            Event::ResellerRelationshipRemoved(x)
                if x.customer_id == c && x.partner_id == partner =>
            {
                Some(false)
            }
            _ => None,
        })
    };
    assert_eq!(of_record(r), Some(true), "reseller not of record");
    assert_eq!(of_record(p), Some(true), "provider not of record");
    // The submitting user: the actor, of the provider, not removed, password changed,
    // holding submit orders.
    assert_eq!(actor, &Actor::user(order.submitted_by));
    let u = order.submitted_by;
    let mut added = false;
    let mut removed = false;
    let mut pending = false;
    let mut roles = Roles::default();
    for (_, e) in prefix {
        match e {
            Event::UserAdded(x) if x.user_id == u => {
                assert_eq!(x.partner_id, p);
                added = true;
                roles = Roles {
                    agent_role: x.agent_role,
                    admin_role: x.admin_role,
                };
            }
            Event::UserRolesChanged(x) if x.user_id == u => {
                roles = Roles {
                    agent_role: x.agent_role,
                    admin_role: x.admin_role,
                }
            }
            Event::UserRemoved(x) if x.user_id == u => removed = true,
            Event::TemporaryPasswordIssued(x) if x.user_id == u => pending = true,
            Event::TemporaryPasswordChanged(x) if x.user_id == u => pending = false,
            _ => {}
        }
    }
    assert!(added && !removed && !pending);
    let may_submit = roles.admin_role == Some(AdminRole::GlobalAdmin)
        || matches!(
            roles.agent_role,
            Some(AgentRole::AdminAgent | AgentRole::SalesAgent)
        );
    assert!(may_submit, "user {u} may not submit orders");
    // The evidence points at earlier events of the right kinds.
    let at = |position: u64| &log[position as usize].1;
    assert!(matches!(
        at(order.evidence.partnership_authorized_at),
        Event::IndirectProviderAuthorized(_)
    ));
    assert!(matches!(
        at(order.evidence.provider.agreement_signed_at),
        Event::PartnerAgreementSigned(_)
    ));
    assert!(matches!(
        at(order.evidence.reseller_of_record_at),
        Event::ResellerRelationshipAccepted(_) | Event::CustomerImported(_)
    ));
    assert!(order.lines.iter().all(|line| line.partner_on_record == r));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_every_rule(steps in prop::collection::vec(step(), 1..120)) {
        let mut run = Run::new();
        check_global_admins(&run.w.state);
        for step in &steps {
            run.apply(step);
            check_global_admins(&run.w.state);
        }
        let log = &run.w.log;
        let mut orders = 0;
        for (position, (meta, event)) in log.iter().enumerate() {
            if let Event::OrderSubmitted(order) = event {
                naive_order_check(log, position, order, &meta.actor);
                orders += 1;
            }
            // Round trip, and no generated secret in any event, encoded or as JSON.
            let bytes = event.encode().unwrap();
            prop_assert_eq!(&Event::decode(event.event_type(), event.schema_version(), &bytes).unwrap(), event);
            let json = serde_json::to_vec(event).unwrap();
            for secret in &run.w.secrets {
                prop_assert!(!contains(&bytes, secret.as_bytes()), "secret in {}", event.event_type());
                prop_assert!(!contains(&json, secret.as_bytes()), "secret in {}", event.event_type());
            }
        }
        let _ = orders;
        // Replay from scratch rebuilds an equal state.
        let rebuilt = replay(log.iter().map(|(meta, event)| (meta, event)));
        prop_assert_eq!(&rebuilt, &run.w.state);
    }
}

/// The random histories do reach the interesting commands: a fixed long run must produce
/// orders, acceptances and refusals alike, or the properties above prove little.
#[test]
fn random_histories_reach_orders() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let mut kinds = BTreeSet::new();
    for _ in 0..20 {
        let steps = prop::collection::vec(step(), 150)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut run = Run::new();
        let start = run.w.log.len();
        for step in &steps {
            run.apply(step);
        }
        kinds.extend(run.w.log[start..].iter().map(|(_, e)| e.event_type()));
    }
    for kind in [
        "IndirectProviderAuthorized",
        "ResellerRelationshipAccepted",
        "OrderSubmitted",
        "SubscriptionCancelled",
        "UserRolesChanged",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} in random histories: {kinds:?}"
        );
    }
}
