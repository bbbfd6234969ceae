//! Shared test support: the domain's test `World` (reused as is, so histories are made by
//! the domain's own commands), a random-history generator over it, the conversion of its log
//! into recorded events as the handler would store them, the facts of SPEC §2.5 read naively
//! from the raw event list, and a rendering of every answer for comparisons.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/domain/tests/common/mod.rs"]
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write;

use domain::commands::*;
use domain::*;
use projections::{AsOf, Projections, View};
use proptest::prelude::*;
use store::{Position, RecordedEvent, StreamName};
use uuid::Uuid;

pub use world::*;

/// The log of a world as the store would hand it out: encoded payloads, actor JSON text,
/// positions from 0 and deterministic event ids.
pub fn recorded(log: &[(EventMeta, Event)]) -> Vec<RecordedEvent> {
    log.iter()
        .map(|(meta, event)| RecordedEvent {
            event_id: Uuid::from_u128(
                0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(meta.global_position),
            ),
            stream: StreamName::new(meta.stream.clone()).unwrap(),
            revision: meta.stream_revision,
            position: Position(meta.global_position),
            event_type: event.event_type().to_string(),
            schema_version: event.schema_version(),
            recorded_at: meta.recorded_at,
            actor: serde_json::to_string(&meta.actor).unwrap(),
            command_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            causation_id: Uuid::nil(),
            payload: event.encode().unwrap(),
        })
        .collect()
}

/// Read models built from recorded events.
pub fn build(events: &[RecordedEvent]) -> Projections {
    let mut projections = Projections::new();
    for event in events {
        projections.apply(event).unwrap();
    }
    projections
}

/// One random step of a history; indexes pick from the pools modulo their length.
#[derive(Clone, Debug)]
pub enum Step {
    AddUser(usize, usize, Option<AgentRole>, Option<AdminRole>),
    ChangeRoles(usize, usize, usize, Option<AgentRole>, Option<AdminRole>),
    RemoveUser(usize, usize, usize),
    ChangePassword(usize, usize),
    ResetPassword(usize, usize, usize),
    InviteReseller(usize, usize),
    AuthorizeProvider(usize, usize),
    EndPartnership(usize, usize, bool),
    InviteCustomer(usize, Option<usize>),
    Accept(usize, usize),
    Import(usize, usize, bool),
    Order(usize, usize, usize, usize),
    Cancel(usize, usize),
    RemoveRelationship(usize, usize, bool),
    RemoveDelegatedAdmin(usize, usize),
    RequestGranular(usize, usize),
    ApproveGranular(usize),
    RevokeGranular(usize, bool),
    Deauthorize(usize),
    Advance(i64),
}

fn agent() -> impl Strategy<Value = Option<AgentRole>> {
    prop_oneof![
        Just(None),
        Just(Some(AgentRole::AdminAgent)),
        Just(Some(AgentRole::SalesAgent)),
        Just(Some(AgentRole::HelpdeskAgent))
    ]
}

fn admin() -> impl Strategy<Value = Option<AdminRole>> {
    prop_oneof![
        Just(None),
        Just(Some(AdminRole::GlobalAdmin)),
        Just(Some(AdminRole::UserManagementAdmin))
    ]
}

/// A random step, weighted so that most histories reach orders, removals and endings.
pub fn step() -> impl Strategy<Value = Step> {
    let i = || 0usize..16;
    prop_oneof![
        2 => (i(), i(), agent(), admin()).prop_map(|(a, b, c, d)| Step::AddUser(a, b, c, d)),
        2 => (i(), i(), i(), agent(), admin()).prop_map(|(a, b, c, d, e)| Step::ChangeRoles(a, b, c, d, e)),
        1 => (i(), i(), i()).prop_map(|(a, b, c)| Step::RemoveUser(a, b, c)),
        2 => (i(), i()).prop_map(|(a, b)| Step::ChangePassword(a, b)),
        1 => (i(), i(), i()).prop_map(|(a, b, c)| Step::ResetPassword(a, b, c)),
        3 => (i(), i()).prop_map(|(a, b)| Step::InviteReseller(a, b)),
        3 => (i(), i()).prop_map(|(a, b)| Step::AuthorizeProvider(a, b)),
        1 => (i(), i(), any::<bool>()).prop_map(|(a, b, c)| Step::EndPartnership(a, b, c)),
        4 => (i(), prop::option::of(i())).prop_map(|(a, b)| Step::InviteCustomer(a, b)),
        4 => (i(), i()).prop_map(|(a, b)| Step::Accept(a, b)),
        1 => (i(), i(), any::<bool>()).prop_map(|(a, b, c)| Step::Import(a, b, c)),
        5 => (i(), i(), i(), i()).prop_map(|(a, b, c, d)| Step::Order(a, b, c, d)),
        2 => (i(), i()).prop_map(|(a, b)| Step::Cancel(a, b)),
        2 => (i(), i(), any::<bool>()).prop_map(|(a, b, c)| Step::RemoveRelationship(a, b, c)),
        1 => (i(), i()).prop_map(|(a, b)| Step::RemoveDelegatedAdmin(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Step::RequestGranular(a, b)),
        2 => i().prop_map(Step::ApproveGranular),
        1 => (i(), any::<bool>()).prop_map(|(a, b)| Step::RevokeGranular(a, b)),
        1 => (0usize..60).prop_map(Step::Deauthorize),
        1 => (0i64..120).prop_map(Step::Advance),
    ]
}

/// A world plus the pools the steps pick from.
pub struct Run {
    pub w: World,
    pub providers: Vec<Org>,
    pub resellers: Vec<Org>,
    pub users: BTreeMap<PartnerId, Vec<UserId>>,
    pub reseller_tokens: BTreeMap<(PartnerId, PartnerId), String>,
    pub invitations: Vec<(InvitationId, String)>,
    pub tenants: Vec<TenantId>,
    pub customers: Vec<Cust>,
    pub orders: Vec<(OrderId, Vec<SubscriptionId>)>,
    pub granular: Vec<(CustomerId, TenantId, GranularAdminRequestId, PartnerId)>,
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

impl Run {
    /// Three providers (one unsigned), four resellers (one unsigned), two partnerships and a
    /// shared customer to start from.
    pub fn new() -> Self {
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
        let tenants: Vec<TenantId> = (0..6).map(|_| w.tenant()).collect();
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
            granular: Vec::new(),
        }
    }

    pub fn orgs(&self) -> Vec<Org> {
        self.providers
            .iter()
            .chain(&self.resellers)
            .cloned()
            .collect()
    }

    fn user_of(&self, org: &Org, index: usize) -> UserId {
        pick(&self.users[&org.id], index).unwrap()
    }

    /// Applies one step; refusals are part of realistic traffic and change nothing.
    pub fn apply(&mut self, step: &Step) {
        let orgs = self.orgs();
        let org = |i: usize| orgs[i % orgs.len()].clone();
        match step.clone() {
            Step::AddUser(o, by, agent_role, admin_role) => {
                let o = org(o);
                let by = self.user_of(&o, by);
                let n = self.w.fresh_uuid();
                let command = AddUser {
                    partner_id: o.id,
                    full_name: "Random User".into(),
                    email: email(&format!("u{}@x.example", n.simple())),
                    agent_role,
                    admin_role,
                };
                if let Ok(events) = self.w.try_as(user(by), command) {
                    let Event::UserAdded(added) = &events[0] else {
                        panic!()
                    };
                    self.users.get_mut(&o.id).unwrap().push(added.user_id);
                }
            }
            Step::ChangeRoles(o, by, target, agent_role, admin_role) => {
                let o = org(o);
                let (by, target) = (self.user_of(&o, by), self.user_of(&o, target));
                let command = ChangeUserRoles {
                    partner_id: o.id,
                    user_id: target,
                    agent_role,
                    admin_role,
                };
                let _ = self.w.try_as(user(by), command);
            }
            Step::RemoveUser(o, by, target) => {
                let o = org(o);
                let (by, target) = (self.user_of(&o, by), self.user_of(&o, target));
                let _ = self.w.try_as(
                    user(by),
                    RemoveUser {
                        partner_id: o.id,
                        user_id: target,
                    },
                );
            }
            Step::ChangePassword(o, u) => {
                let o = org(o);
                let u = self.user_of(&o, u);
                let _ = self
                    .w
                    .try_as(user(u), ChangeTemporaryPassword { partner_id: o.id });
            }
            Step::ResetPassword(o, by, target) => {
                let o = org(o);
                let (by, target) = (self.user_of(&o, by), self.user_of(&o, target));
                let _ = self.w.try_as(
                    user(by),
                    ResetTemporaryPassword {
                        partner_id: o.id,
                        user_id: target,
                    },
                );
            }
            Step::InviteReseller(p, r) => {
                let (p, r) = (org(p), org(r));
                let command = InviteReseller {
                    provider_id: p.id,
                    reseller_partner_number: r.number.clone(),
                };
                if self.w.try_as(user(p.admin), command).is_ok() {
                    let token = self.w.token();
                    self.reseller_tokens.insert((p.id, r.id), token);
                }
            }
            Step::AuthorizeProvider(p, r) => {
                let (p, r) = (org(p), org(r));
                let token = self
                    .reseller_tokens
                    .get(&(p.id, r.id))
                    .cloned()
                    .unwrap_or_default();
                let command = AuthorizeIndirectProvider {
                    provider_id: p.id,
                    reseller_id: r.id,
                    token_hash: hash(&token),
                    consent: true,
                };
                let _ = self.w.try_as(user(r.admin), command);
            }
            Step::EndPartnership(p, r, provider_side) => {
                let (p, r) = (org(p), org(r));
                let by = if provider_side { p.admin } else { r.admin };
                let command = EndPartnership {
                    provider_id: p.id,
                    reseller_id: r.id,
                    reason: None,
                };
                let _ = self.w.try_as(user(by), command);
            }
            Step::InviteCustomer(o, provider) => {
                let o = org(o);
                let provider_id = provider.map(|p| self.providers[p % self.providers.len()].id);
                let command = InviteCustomer {
                    partner_id: o.id,
                    customer_email: email("it@c.example"),
                    provider_id,
                };
                if let Ok(events) = self.w.try_as(user(o.admin), command) {
                    let Event::CustomerInvitationCreated(created) = &events[0] else {
                        panic!()
                    };
                    let token = self.w.token();
                    self.invitations.push((created.invitation_id, token));
                }
            }
            Step::Accept(invitation, tenant) => {
                let Some((invitation, token)) = pick(&self.invitations, invitation) else {
                    return;
                };
                let tenant = pick(&self.tenants, tenant).unwrap();
                let command = self.w.accept_command(invitation, "US");
                if let Ok(events) = self.w.try_as(customer_admin(tenant, Some(&token)), command) {
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
            Step::Import(r, tenant, delegated_admin) => {
                let r = org(r);
                let tenant = pick(&self.tenants, tenant).unwrap();
                let command = ImportExistingCustomer {
                    reseller_id: r.id,
                    customer: domain::types::CustomerProfile {
                        tenant_id: tenant,
                        company_name: "Imported".into(),
                        primary_domain: "imported.example".into(),
                        country: country("US"),
                    },
                    source: domain::types::CustomerSource::Office365PartnerAdminCenter,
                    original_start: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                    delegated_admin,
                };
                if let Ok(events) = self.w.try_as(Actor::Operator, command) {
                    let Event::CustomerImported(imported) = &events[0] else {
                        panic!()
                    };
                    let customer = Cust {
                        id: imported.customer_id,
                        tenant,
                    };
                    if !self.customers.iter().any(|c| c.id == customer.id) {
                        self.customers.push(customer);
                    }
                }
            }
            Step::Order(p, by, c, r) => {
                let Some(customer) = pick(&self.customers, c) else {
                    return;
                };
                // Mostly cite partners the customer has, so that many orders succeed.
                let of_record: Vec<PartnerId> = self
                    .w
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
                let p = if p % 4 == 3 {
                    org(p)
                } else {
                    choose(&self.providers, p)
                };
                let r = if r % 4 == 3 {
                    org(r)
                } else {
                    choose(&self.resellers, r)
                };
                let by = self.user_of(&p, by);
                let command = World::order_command(&p, customer, &r);
                if let Ok(events) = self.w.try_as(user(by), command) {
                    let Event::OrderSubmitted(order) = &events[0] else {
                        panic!()
                    };
                    self.orders.push((
                        order.order_id,
                        order.lines.iter().map(|l| l.subscription_id).collect(),
                    ));
                }
            }
            Step::Cancel(o, s) => {
                let Some((order, subscriptions)) = pick(&self.orders, o) else {
                    return;
                };
                let command = CancelSubscription {
                    order_id: order,
                    subscription_id: subscriptions[s % subscriptions.len()],
                };
                let _ = self.w.try_as(Actor::Operator, command);
            }
            Step::RemoveRelationship(c, o, by_customer) => {
                let Some(customer) = pick(&self.customers, c) else {
                    return;
                };
                let o = org(o);
                let actor = if by_customer {
                    customer_admin(customer.tenant, None)
                } else {
                    user(o.admin)
                };
                let command = RemoveResellerRelationship {
                    customer_id: customer.id,
                    partner_id: o.id,
                };
                let _ = self.w.try_as(actor, command);
            }
            Step::RemoveDelegatedAdmin(c, o) => {
                let Some(customer) = pick(&self.customers, c) else {
                    return;
                };
                let command = RemoveDelegatedAdmin {
                    customer_id: customer.id,
                    partner_id: org(o).id,
                };
                let _ = self
                    .w
                    .try_as(customer_admin(customer.tenant, None), command);
            }
            Step::RequestGranular(c, o) => {
                let Some(customer) = pick(&self.customers, c) else {
                    return;
                };
                let o = org(o);
                let command = RequestGranularAdmin {
                    customer_id: customer.id,
                    partner_id: o.id,
                    roles: vec!["Helpdesk Administrator".into()],
                    duration: GranularDuration::from_days(30).unwrap(),
                };
                if let Ok(events) = self.w.try_as(user(o.admin), command) {
                    let Event::GranularAdminRequested(requested) = &events[0] else {
                        panic!()
                    };
                    self.granular
                        .push((customer.id, customer.tenant, requested.request_id, o.id));
                }
            }
            Step::ApproveGranular(g) => {
                let Some((customer, tenant, request_id, _)) = pick(&self.granular, g) else {
                    return;
                };
                let command = ApproveGranularAdmin {
                    customer_id: customer,
                    request_id,
                };
                let _ = self.w.try_as(customer_admin(tenant, None), command);
            }
            Step::RevokeGranular(g, by_customer) => {
                let Some((customer, tenant, request_id, partner)) = pick(&self.granular, g) else {
                    return;
                };
                let actor = if by_customer {
                    customer_admin(tenant, None)
                } else {
                    user(orgs.iter().find(|o| o.id == partner).unwrap().admin)
                };
                let _ = self.w.try_as(
                    actor,
                    RevokeGranularAdmin {
                        customer_id: customer,
                        request_id,
                    },
                );
            }
            Step::Deauthorize(o) => {
                // Rare: only the first few indexes of a wide range hit a partner.
                if let Some(o) = orgs.get(o) {
                    let command = DeauthorizePartner {
                        partner_id: o.id,
                        reason: "audit".into(),
                    };
                    let _ = self.w.try_as(Actor::Operator, command);
                }
            }
            Step::Advance(days) => self.w.advance_days(days),
        }
    }

    /// Every user id of every partner.
    pub fn all_users(&self) -> Vec<UserId> {
        self.users.values().flatten().copied().collect()
    }
}

/// Every answer of a view for the given ids, rendered with events resolved, so that two
/// views can be compared whole.
pub fn render(view: &View<'_>, run: &Run) -> String {
    let mut out = String::new();
    let orgs = run.orgs();
    let ev = |r: projections::EventRef| {
        let info = view.event(r);
        format!(
            "{}:{}:{}:{}",
            info.position, info.event_type, info.actor, info.recorded_at
        )
    };
    writeln!(
        out,
        "position {:?} instant {}",
        view.position(),
        view.instant()
    )
    .unwrap();
    for c in &run.customers {
        writeln!(out, "ror {:?}", view.reseller_of_record(c.id)).unwrap();
        writeln!(out, "pairs {:?}", view.ordering_pairs(c.id)).unwrap();
        writeln!(out, "customer {:?}", view.customer_info(c.id)).unwrap();
        writeln!(out, "da {:?}", view.delegated_admins(c.id)).unwrap();
        writeln!(out, "gdap {:?}", view.granular_admins(c.id)).unwrap();
        let history: Vec<String> = view
            .customer_history(c.id)
            .value
            .into_iter()
            .map(ev)
            .collect();
        writeln!(out, "history {history:?}").unwrap();
        for p in &orgs {
            writeln!(out, "rel {:?}", view.relationship_history(c.id, p.id)).unwrap();
            for r in &orgs {
                writeln!(out, "may {:?}", view.may_order(p.id, c.id, r.id)).unwrap();
            }
        }
        for u in run.all_users() {
            for r in &orgs {
                writeln!(out, "umay {:?}", view.user_may_order(u, c.id, r.id)).unwrap();
            }
        }
    }
    for p in &orgs {
        writeln!(out, "partner {:?}", view.partner_info(p.id)).unwrap();
        writeln!(out, "providers {:?}", view.indirect_providers(p.id)).unwrap();
        writeln!(out, "resellers {:?}", view.indirect_resellers(p.id)).unwrap();
        writeln!(out, "tenant admin {:?}", view.tenant_admin_access(p.id)).unwrap();
        writeln!(out, "customers {:?}", view.customers_of(p.id)).unwrap();
        writeln!(out, "users {:?}", view.users_of(p.id)).unwrap();
        writeln!(out, "phistory {:?}", view.partner_history(p.id)).unwrap();
        for r in &orgs {
            writeln!(out, "shared {:?}", view.shared_customers(p.id, r.id)).unwrap();
            writeln!(out, "pship {:?}", view.partnership_history(p.id, r.id)).unwrap();
        }
    }
    for u in run.all_users() {
        writeln!(out, "user {:?}", view.user_info_of(u)).unwrap();
        writeln!(out, "uhistory {:?}", view.user_history(u)).unwrap();
        for capability in Capability::ALL {
            writeln!(out, "can {:?}", view.can(u, capability)).unwrap();
        }
    }
    out
}

/// The view of `projections` as of `position`.
pub fn view_at(projections: &Projections, position: u64) -> View<'_> {
    projections.at(Some(AsOf::Position(position))).unwrap()
}

/// What the raw event list says of P, R and C (no state, no index, no summary): an oracle
/// of the facts that may-order reads, independent of both the write model and the read
/// models. The rule itself is the domain's one statement of it ([`order::may_order_by`]).
pub struct RawFacts<'a>(pub &'a [(EventMeta, Event)]);

impl RawFacts<'_> {
    /// The position of the last event matching `f`.
    fn last(&self, f: impl Fn(&Event) -> bool) -> Option<u64> {
        self.0
            .iter()
            .rev()
            .find(|(_, e)| f(e))
            .map(|(m, _)| m.global_position)
    }

    fn any(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.0.iter().any(|(_, e)| f(e))
    }
}

impl order::OrderFacts for RawFacts<'_> {
    type Event = u64;
    type Partner = PartnerId;
    type Customer = CustomerId;

    fn partner(&self, id: PartnerId) -> Option<PartnerId> {
        self.any(|e| match e {
            Event::EnrollmentStarted(x) => x.partner_id == id,
            Event::ProviderOnboarded(x) => x.partner_id == id,
            _ => false,
        })
        .then_some(id)
    }

    fn customer(&self, id: CustomerId) -> Option<CustomerId> {
        self.any(|e| match e {
            Event::CustomerImported(x) => x.customer_id == id,
            Event::ResellerRelationshipAccepted(x) => x.customer_id == id,
            _ => false,
        })
        .then_some(id)
    }

    fn in_program(&self, id: PartnerId, program: types::Program) -> bool {
        self.any(|e| match (program, e) {
            (types::Program::IndirectProvider, Event::ProviderOnboarded(x)) => x.partner_id == id,
            (types::Program::IndirectReseller, Event::EnrollmentStarted(x)) => x.partner_id == id,
            (types::Program::IndirectReseller, Event::ResellerProgramAdded(x)) => {
                x.partner_id == id
            }
            _ => false,
        })
    }

    fn deauthorized(&self, id: PartnerId) -> Option<u64> {
        self.last(|e| matches!(e, Event::PartnerDeauthorized(x) if x.partner_id == id))
    }

    fn authorized(&self, id: PartnerId) -> order::Known<u64> {
        // The raw list is not asked which rejection refused it: only the rule name and the
        // evidence are compared.
        self.last(|e| match e {
            Event::EnrollmentAuthorized(x) => x.partner_id == id,
            Event::ProviderOnboarded(x) => x.partner_id == id,
            _ => false,
        })
        .map_or(order::Known::Fails(None), order::Known::Holds)
    }

    fn agreement_signed(&self, id: PartnerId) -> Option<u64> {
        self.last(|e| matches!(e, Event::PartnerAgreementSigned(x) if x.partner_id == id))
    }

    fn partnership_active(&self, p: PartnerId, r: PartnerId) -> order::Known<u64> {
        // Active when its last fact is an authorization.
        self.0
            .iter()
            .rev()
            .find_map(|(m, e)| match e {
                Event::IndirectProviderAuthorized(x)
                    if x.provider_id == p && x.reseller_id == r =>
                {
                    Some(order::Known::Holds(m.global_position))
                }
                Event::PartnershipEnded(x) if x.provider_id == p && x.reseller_id == r => {
                    Some(order::Known::Fails(Some(m.global_position)))
                }
                _ => None,
            })
            .unwrap_or(order::Known::Fails(None))
    }

    fn of_record(&self, c: CustomerId, partner: PartnerId) -> order::Known<u64> {
        // Of record since the first making-of-record after the last removal.
        let mut since = None;
        for (m, e) in self.0 {
            match e {
                Event::CustomerImported(x) if x.customer_id == c && x.reseller_id == partner => {
                    since.get_or_insert(m.global_position);
                }
                Event::ResellerRelationshipAccepted(x)
                    if x.customer_id == c
                        && x.partners.iter().any(|a| a.standing.partner_id == partner) =>
                {
                    since.get_or_insert(m.global_position);
                }
                Event::ResellerRelationshipRemoved(x)
                    if x.customer_id == c && x.partner_id == partner =>
                {
                    since = None
                }
                _ => {}
            }
        }
        since.map_or(order::Known::Fails(None), order::Known::Holds)
    }
}

/// Whether P may order for C citing R after the events of `prefix`, judged on the raw
/// events' facts ([`RawFacts`]): the rule name of the first failing condition, or the
/// positions of the evidence.
pub fn naive_may_order(
    prefix: &[(EventMeta, Event)],
    p: PartnerId,
    c: CustomerId,
    r: PartnerId,
) -> Result<[u64; 7], &'static str> {
    order::may_order_by(&RawFacts(prefix), p, c, r)
        .map(|proof| {
            [
                proof.provider.authorized,
                proof.provider.agreement_signed,
                proof.reseller.authorized,
                proof.reseller.agreement_signed,
                proof.partnership_authorized,
                proof.reseller_of_record,
                proof.provider_of_record,
            ]
        })
        .map_err(|denied| denied.refusal.rule())
}

/// Generates histories for property tests: the steps, applied to a fresh run.
pub fn history(steps: &[Step]) -> Run {
    let mut run = Run::new();
    for step in steps {
        run.apply(step);
    }
    run
}
