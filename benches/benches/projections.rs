//! Benchmarks of the read models (`projections`) over a generated history of 1,000,000
//! events, 10,000 partners and 200,000 customers: full rebuild (decoding every payload),
//! may-order now and as of a past position, reseller-of-record lookup and shared-customers
//! listing. Also printed: the time to generate the history, one rebuild on a fresh heap and
//! one on a used heap, the domain's full decoding of every event alone (what the read
//! models' partial views save), rebuilds one after another with the user and kernel time
//! and page faults of each (`PROJECTIONS_REBUILD_ROUNDS`, default 3), the checkpoint's
//! size, the latency percentiles of may-order now and as of a position and a time, and the
//! resident memory of the read models.
//!
//! `cargo bench -p benches --bench projections`. The events are made directly as
//! `domain::Event` values with consistent ids (deciding a million commands would measure the
//! domain, not the projections) and encoded as the handler would store them.

/// The program's allocator, so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_main};
use domain::events::*;
use domain::types::{
    Address, Contact, CustomerProfile, LegalProfile, MpnProfile, ProductFamily, RelationshipTier,
    ReviewStep, SupportDetails,
};
use domain::*;
use projections::{AsOf, Projections};
use store::{Position, RecordedEvent, StreamName};
use uuid::Uuid;

const EVENTS: usize = 1_000_000;
const PROVIDERS: usize = 500;
const PARTNERS: usize = 10_000;
const CUSTOMERS: usize = 200_000;
/// Queries timed one by one for the percentiles.
const LATENCY_SAMPLES: usize = 200_000;

/// A small deterministic generator (SplitMix64): the same history on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn id(kind: u128, n: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | (kind << 80) | n as u128)
}

fn valid<T, E: std::fmt::Debug>(value: Result<T, E>) -> T {
    value.unwrap_or_else(|error| panic!("generated value is invalid: {error:?}"))
}

/// The generated history and what the queries pick from.
struct History {
    events: Vec<RecordedEvent>,
    /// (provider, customer, reseller) of shared customers.
    triples: Vec<(PartnerId, CustomerId, PartnerId)>,
    /// (provider, reseller) partnerships.
    partnerships: Vec<(PartnerId, PartnerId)>,
    customers: Vec<CustomerId>,
}

struct Writer {
    events: Vec<RecordedEvent>,
    revisions: HashMap<String, u64>,
    now: DateTime<Utc>,
}

impl Writer {
    fn push(&mut self, stream: String, actor: Actor, event: Event) {
        let position = self.events.len() as u64;
        // About ten events a second, so that time and position both move.
        if position.is_multiple_of(10) {
            self.now += chrono::Duration::seconds(1);
        }
        let revision = self
            .revisions
            .entry(stream.clone())
            .and_modify(|r| *r += 1)
            .or_insert(0);
        let actor_text = valid(serde_json::to_string(&actor));
        self.events.push(RecordedEvent {
            event_id: id(0xe, position as usize),
            stream: valid(StreamName::new(stream)),
            revision: *revision,
            position: Position(position),
            event_type: event.event_type().to_string(),
            schema_version: event.schema_version(),
            recorded_at: self.now,
            actor: actor_text,
            command_id: id(0xc, position as usize),
            correlation_id: id(0xc, position as usize),
            causation_id: id(0xc, position as usize),
            payload: valid(event.encode()),
        });
    }
}

fn support(n: usize) -> SupportDetails {
    SupportDetails {
        email: valid(Email::parse(&format!("support@partner{n}.example"))),
        phone: "+1 555 0100".into(),
        website: None,
    }
}

fn generate() -> History {
    let mut rng = Rng(42);
    let mut w = Writer {
        events: Vec::with_capacity(EVENTS),
        revisions: HashMap::new(),
        now: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    };
    let us = valid(Country::parse("US"));
    let partner = |n: usize| PartnerId(id(1, n));
    let user_of = |n: usize, k: usize| UserId(id(2, n * 4 + k));
    let standing = |n: usize| PartnerStanding {
        partner_id: partner(n),
        authorized_at: n as u64,
        agreement_signed_at: n as u64 + 1,
    };
    // Providers 0..PROVIDERS, resellers after them.
    for n in 0..PROVIDERS {
        let p = partner(n);
        let stream = streams::partner(p);
        let number = valid(PartnerNumber::parse(&format!("{:07}", 1_000_000 + n)));
        w.push(
            stream.clone(),
            Actor::Operator,
            Event::ProviderOnboarded(ProviderOnboarded {
                partner_id: p,
                tenant_id: TenantId(id(3, n)),
                partner_number: number,
                legal_name: format!("Provider {n}"),
                country: us,
                countries_served: vec![us],
                support: support(n),
            }),
        );
        let admin = user_of(n, 0);
        w.push(
            stream.clone(),
            Actor::Operator,
            Event::UserAdded(UserAdded {
                partner_id: p,
                user_id: admin,
                full_name: format!("Admin {n}"),
                email: valid(Email::parse(&format!("admin@partner{n}.example"))),
                agent_role: Some(AgentRole::AdminAgent),
                admin_role: Some(AdminRole::GlobalAdmin),
            }),
        );
        w.push(
            stream.clone(),
            Actor::Operator,
            Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
                partner_id: p,
                user_id: admin,
            }),
        );
        w.push(
            stream.clone(),
            Actor::user(admin),
            Event::TemporaryPasswordChanged(TemporaryPasswordChanged {
                partner_id: p,
                user_id: admin,
            }),
        );
        w.push(
            stream,
            Actor::user(admin),
            Event::PartnerAgreementSigned(PartnerAgreementSigned {
                partner_id: p,
                signed_by: admin,
                agreement_version: "2026-01".into(),
            }),
        );
    }
    for n in PROVIDERS..PARTNERS {
        let p = partner(n);
        let stream = streams::partner(p);
        let tenant = TenantId(id(3, n));
        let email = valid(Email::parse(&format!("admin@partner{n}.example")));
        let tenant_admin = Actor::TenantAdmin {
            tenant_id: tenant,
            email: email.clone(),
            name: format!("Admin {n}"),
        };
        let number = valid(PartnerNumber::parse(&format!("{:07}", 4_000_000 + n)));
        w.push(
            stream.clone(),
            tenant_admin.clone(),
            Event::EnrollmentStarted(EnrollmentStarted {
                partner_id: p,
                tenant_id: tenant,
                tenant_country: us,
                organization_name: format!("Reseller {n}"),
                enrolling_admin_email: email.clone(),
                enrolling_admin_name: format!("Admin {n}"),
            }),
        );
        w.push(
            stream.clone(),
            Actor::System,
            Event::MpnProfilesObserved(MpnProfilesObserved {
                partner_id: p,
                profiles: vec![MpnProfile {
                    partner_number: number.clone(),
                    organization_name: format!("Reseller {n}"),
                    country: us,
                    active: true,
                }],
            }),
        );
        w.push(
            stream.clone(),
            tenant_admin.clone(),
            Event::MpnProfileLinked(MpnProfileLinked {
                partner_id: p,
                partner_number: number,
                country: us,
            }),
        );
        let contact = valid(Email::parse(&format!("pat@partner{n}.example")));
        w.push(
            stream.clone(),
            tenant_admin.clone(),
            Event::LegalProfileSubmitted(LegalProfileSubmitted {
                partner_id: p,
                profile: LegalProfile {
                    legal_name: format!("Reseller {n} Ltd"),
                    address: Address {
                        lines: vec!["1 Main Street".into()],
                        city: "Springfield".into(),
                        region: None,
                        postal_code: Some("12345".into()),
                        country: us,
                    },
                    primary_contact: Contact {
                        name: "Pat Contact".into(),
                        email: contact.clone(),
                        phone: None,
                    },
                    support: support(n),
                },
            }),
        );
        w.push(
            stream.clone(),
            tenant_admin.clone(),
            Event::PrimaryContactVerificationRequested(PrimaryContactVerificationRequested {
                partner_id: p,
                email: contact.clone(),
                token_hash: SecretHash::of(&n.to_le_bytes()),
                expires_at: w.now + chrono::Duration::days(7),
            }),
        );
        w.push(
            stream.clone(),
            Actor::PrimaryContact {
                token: SecretHash::of(&n.to_le_bytes()),
            },
            Event::PrimaryContactEmailVerified(PrimaryContactEmailVerified {
                partner_id: p,
                email: contact,
            }),
        );
        for step in ReviewStep::ALL {
            w.push(
                stream.clone(),
                Actor::Operator,
                Event::EnrollmentReviewStepCompleted(EnrollmentReviewStepCompleted {
                    partner_id: p,
                    step,
                }),
            );
        }
        let admin = user_of(n, 0);
        w.push(
            stream.clone(),
            Actor::Operator,
            Event::EnrollmentAuthorized(EnrollmentAuthorized {
                partner_id: p,
                first_user_id: admin,
            }),
        );
        w.push(
            stream.clone(),
            Actor::Operator,
            Event::UserAdded(UserAdded {
                partner_id: p,
                user_id: admin,
                full_name: format!("Admin {n}"),
                email,
                agent_role: Some(AgentRole::AdminAgent),
                admin_role: Some(AdminRole::GlobalAdmin),
            }),
        );
        w.push(
            stream,
            Actor::user(admin),
            Event::PartnerAgreementSigned(PartnerAgreementSigned {
                partner_id: p,
                signed_by: admin,
                agreement_version: "2026-01".into(),
            }),
        );
    }
    // One more user per partner, who changes its temporary password.
    for n in 0..PARTNERS {
        let p = partner(n);
        let stream = streams::partner(p);
        let (admin, agent) = (user_of(n, 0), user_of(n, 1));
        let role = if n < PROVIDERS {
            AgentRole::SalesAgent
        } else {
            AgentRole::HelpdeskAgent
        };
        w.push(
            stream.clone(),
            Actor::user(admin),
            Event::UserAdded(UserAdded {
                partner_id: p,
                user_id: agent,
                full_name: format!("Agent {n}"),
                email: valid(Email::parse(&format!("agent@partner{n}.example"))),
                agent_role: Some(role),
                admin_role: None,
            }),
        );
        w.push(
            stream.clone(),
            Actor::user(admin),
            Event::TemporaryPasswordIssued(TemporaryPasswordIssued {
                partner_id: p,
                user_id: agent,
            }),
        );
        w.push(
            stream,
            Actor::user(agent),
            Event::TemporaryPasswordChanged(TemporaryPasswordChanged {
                partner_id: p,
                user_id: agent,
            }),
        );
    }
    // Every reseller partners with two providers.
    let mut partnerships = Vec::new();
    for n in PROVIDERS..PARTNERS {
        for k in 0..2 {
            let provider = (n * 7 + k * 131) % PROVIDERS;
            let (p, r) = (partner(provider), partner(n));
            let stream = streams::partnership(p, r);
            w.push(
                stream.clone(),
                Actor::user(user_of(provider, 0)),
                Event::IndirectResellerInvited(IndirectResellerInvited {
                    provider_id: p,
                    reseller_id: r,
                    reseller_partner_number: valid(PartnerNumber::parse(&format!(
                        "{:07}",
                        4_000_000 + n
                    ))),
                    token_hash: SecretHash::of(&(n * 2 + k).to_le_bytes()),
                    expires_at: w.now + chrono::Duration::days(30),
                }),
            );
            w.push(
                stream,
                Actor::user(user_of(n, 0)),
                Event::IndirectProviderAuthorized(IndirectProviderAuthorized {
                    provider_id: p,
                    reseller_id: r,
                    invitation_at: 0,
                    provider: standing(provider),
                    reseller: standing(n),
                    country: us,
                }),
            );
            partnerships.push((provider, n));
        }
    }
    // Customers: 90% invited by a reseller with one of its providers, 10% imported.
    let mut triples = Vec::new();
    let mut customers = Vec::new();
    for c in 0..CUSTOMERS {
        let customer = CustomerId(id(4, c));
        let tenant = TenantId(id(5, c));
        let profile = CustomerProfile {
            tenant_id: tenant,
            company_name: format!("Customer {c}"),
            primary_domain: format!("customer{c}.example"),
            country: us,
        };
        let reseller = PROVIDERS + rng.below(PARTNERS - PROVIDERS);
        customers.push(customer);
        if c % 10 == 9 {
            w.push(
                streams::customer(customer),
                Actor::Operator,
                Event::CustomerImported(CustomerImported {
                    customer_id: customer,
                    customer: profile,
                    reseller_id: partner(reseller),
                    reseller_authorized_at: 0,
                    source: domain::types::CustomerSource::AzureManagementPortal,
                    original_start: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
                    delegated_admin: true,
                }),
            );
            continue;
        }
        let provider = (reseller * 7 + (c % 2) * 131) % PROVIDERS;
        let invitation = InvitationId(id(6, c));
        let stream = streams::invitation(invitation);
        w.push(
            stream.clone(),
            Actor::user(user_of(reseller, 0)),
            Event::CustomerInvitationCreated(CustomerInvitationCreated {
                invitation_id: invitation,
                partner_id: partner(reseller),
                tier: RelationshipTier::IndirectReseller,
                provider_id: Some(partner(provider)),
                partnership_authorized_at: Some(0),
                customer_email: valid(Email::parse(&format!("it@customer{c}.example"))),
                token_hash: SecretHash::of(&c.to_le_bytes()),
                expires_at: w.now + chrono::Duration::days(30),
            }),
        );
        w.push(
            stream,
            Actor::CustomerAdmin {
                tenant_id: tenant,
                token: Some(SecretHash::of(&c.to_le_bytes())),
            },
            Event::ResellerRelationshipAccepted(ResellerRelationshipAccepted {
                invitation_id: invitation,
                customer_id: customer,
                customer: profile,
                partners: vec![
                    AcceptedPartner {
                        standing: standing(reseller),
                        tier: RelationshipTier::IndirectReseller,
                    },
                    AcceptedPartner {
                        standing: standing(provider),
                        tier: RelationshipTier::IndirectProvider,
                    },
                ],
                delegated_admin_to: partner(reseller),
                partnership_authorized_at: Some(0),
            }),
        );
        triples.push((provider, c, reseller));
    }
    // Activity until a million events: mostly orders, with cancellations, role changes,
    // granular admin, delegated admin removals, relationship removals and partnership ends.
    let mut orders: Vec<(OrderId, CustomerId, PartnerId, Vec<SubscriptionId>)> = Vec::new();
    let mut granular: Vec<(CustomerId, GranularAdminRequestId, TenantId)> = Vec::new();
    while w.events.len() < EVENTS {
        let roll = rng.below(100);
        let (provider, c, reseller) = triples[rng.below(triples.len())];
        let customer = CustomerId(id(4, c));
        let tenant = TenantId(id(5, c));
        match roll {
            0..=69 => {
                let order = OrderId(id(7, w.events.len()));
                let subscriptions = vec![SubscriptionId(id(8, w.events.len()))];
                w.push(
                    streams::order(order),
                    Actor::user(user_of(provider, 1)),
                    Event::OrderSubmitted(OrderSubmitted {
                        order_id: order,
                        provider_id: partner(provider),
                        reseller_id: partner(reseller),
                        customer_id: customer,
                        submitted_by: user_of(provider, 1),
                        lines: vec![SubscriptionLine {
                            subscription_id: subscriptions[0],
                            offer_id: "CFQ7TTC0LH18:0001".into(),
                            product_family: ProductFamily::Office365,
                            quantity: 10,
                            partner_on_record: partner(reseller),
                        }],
                        evidence: OrderEvidence {
                            provider: standing(provider),
                            reseller: standing(reseller),
                            partnership_authorized_at: 0,
                            reseller_of_record_at: 0,
                            provider_of_record_at: 0,
                        },
                    }),
                );
                orders.push((order, customer, partner(provider), subscriptions));
            }
            70..=79 if !orders.is_empty() => {
                let (order, _, provider, subscriptions) =
                    orders.swap_remove(rng.below(orders.len()));
                let _ = provider;
                w.push(
                    streams::order(order),
                    Actor::Operator,
                    Event::SubscriptionCancelled(SubscriptionCancelled {
                        order_id: order,
                        subscription_id: subscriptions[0],
                    }),
                );
            }
            80..=84 => {
                let n = rng.below(PARTNERS);
                let role = if n < PROVIDERS {
                    AgentRole::AdminAgent
                } else {
                    AgentRole::HelpdeskAgent
                };
                w.push(
                    streams::partner(partner(n)),
                    Actor::user(user_of(n, 0)),
                    Event::UserRolesChanged(UserRolesChanged {
                        partner_id: partner(n),
                        user_id: user_of(n, 1),
                        agent_role: Some(role),
                        admin_role: None,
                    }),
                );
            }
            85..=89 => {
                let request = GranularAdminRequestId(id(9, w.events.len()));
                w.push(
                    streams::customer(customer),
                    Actor::user(user_of(reseller, 0)),
                    Event::GranularAdminRequested(GranularAdminRequested {
                        customer_id: customer,
                        request_id: request,
                        partner_id: partner(reseller),
                        roles: vec!["Helpdesk Administrator".into()],
                        duration: valid(GranularDuration::from_days(30)),
                        request_expires_at: w.now + chrono::Duration::days(90),
                    }),
                );
                granular.push((customer, request, tenant));
            }
            90..=93 if !granular.is_empty() => {
                let (customer, request, tenant) = granular.swap_remove(rng.below(granular.len()));
                let now = w.now;
                w.push(
                    streams::customer(customer),
                    Actor::CustomerAdmin {
                        tenant_id: tenant,
                        token: None,
                    },
                    Event::GranularAdminApproved(GranularAdminApproved {
                        customer_id: customer,
                        request_id: request,
                        starts_at: now,
                        ends_at: now + chrono::Duration::days(30),
                    }),
                );
            }
            94..=95 => {
                w.push(
                    streams::customer(customer),
                    Actor::CustomerAdmin {
                        tenant_id: tenant,
                        token: None,
                    },
                    Event::DelegatedAdminRemoved(DelegatedAdminRemoved {
                        customer_id: customer,
                        partner_id: partner(reseller),
                    }),
                );
            }
            96..=97 => {
                w.push(
                    streams::customer(customer),
                    Actor::CustomerAdmin {
                        tenant_id: tenant,
                        token: None,
                    },
                    Event::ResellerRelationshipRemoved(ResellerRelationshipRemoved {
                        customer_id: customer,
                        partner_id: partner(provider),
                        removed_by: CustomerParty::Customer,
                        delegated_admin_ended: false,
                        granular_admin_ended: Vec::new(),
                    }),
                );
            }
            98 => {
                let (p, r) = partnerships[rng.below(partnerships.len())];
                w.push(
                    streams::partnership(partner(p), partner(r)),
                    Actor::user(user_of(r, 0)),
                    Event::PartnershipEnded(PartnershipEnded {
                        provider_id: partner(p),
                        reseller_id: partner(r),
                        ended_by: PartnershipSide::Reseller,
                        reason: None,
                    }),
                );
            }
            _ => {
                w.push(
                    streams::partner(partner(reseller)),
                    Actor::System,
                    Event::MpnProfilesObserved(MpnProfilesObserved {
                        partner_id: partner(reseller),
                        profiles: Vec::new(),
                    }),
                );
            }
        }
    }
    History {
        events: w.events,
        triples: triples
            .into_iter()
            .map(|(p, c, r)| (partner(p), CustomerId(id(4, c)), partner(r)))
            .collect(),
        partnerships: partnerships
            .into_iter()
            .map(|(p, r)| (partner(p), partner(r)))
            .collect(),
        customers,
    }
}

fn resident_bytes() -> u64 {
    // The second field of /proc/self/statm is the resident set, in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// This process's minor page faults and its user and kernel CPU time so far, from
/// /proc/self/stat (fields 10, 14 and 15; times in clock ticks of 10 ms).
fn process_counters() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let fields: Vec<u64> = text
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    (field(10), field(14), field(15))
}

/// Rebuilds `rounds` times, each dropped before the next, printing each one's wall time,
/// user and kernel CPU time and minor page faults: the kernel's share is the clearing of
/// pages the heap takes from the system.
fn rebuild_rounds(events: &[RecordedEvent], rounds: usize) {
    for round in 1..=rounds {
        let (faults, user, system) = process_counters();
        let started = Instant::now();
        drop(black_box(rebuild(events)));
        let wall = started.elapsed();
        let (faults_after, user_after, system_after) = process_counters();
        println!(
            "rebuild {round}: {wall:.2?} ({:.0} events/s), user {} ms, kernel {} ms, {} page faults",
            events.len() as f64 / wall.as_secs_f64(),
            (user_after - user) * 10,
            (system_after - system) * 10,
            faults_after - faults
        );
    }
}

fn rebuild(events: &[RecordedEvent]) -> Projections {
    let mut projections = Projections::new();
    valid(projections.apply_all(events));
    projections
}

/// Times `query` one call at a time over `samples` inputs and prints its percentiles.
fn percentiles<T>(name: &str, samples: &[T], mut query: impl FnMut(&T) -> bool) {
    let mut nanos = Vec::with_capacity(samples.len());
    let mut yes = 0usize;
    for sample in samples {
        let start = Instant::now();
        let answer = query(sample);
        nanos.push(start.elapsed().as_nanos() as u64);
        yes += usize::from(black_box(answer));
    }
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() as f64 * q) as usize).min(nanos.len() - 1)];
    println!(
        "{name}: p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, max {} ns ({} of {} allowed; each includes ~20 ns of clock reads)",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        nanos[nanos.len() - 1],
        yes,
        nanos.len()
    );
}

fn projections_benches(c: &mut Criterion) {
    let started = Instant::now();
    let history = generate();
    println!(
        "generated {} events in {:.2?}",
        history.events.len(),
        started.elapsed()
    );

    // First, while the heap is fresh, so that the growth of the resident set is the read
    // models' own.
    let per_second = |d: Duration| history.events.len() as f64 / d.as_secs_f64();
    let before = resident_bytes();
    let started = Instant::now();
    let projections = rebuild(&history.events);
    let rebuild_time = started.elapsed();
    let after = resident_bytes();
    println!(
        "one rebuild (decode + apply): {rebuild_time:.2?} ({:.0} events/s); resident memory of the read models: {:.1} MiB",
        per_second(rebuild_time),
        after.saturating_sub(before) as f64 / (1024.0 * 1024.0)
    );
    // Decoding alone with the domain's full decoder (each event dropped at once), to see
    // what the read models' partial views of the numerous events save.
    let started = Instant::now();
    for e in &history.events {
        black_box(valid(Event::decode(
            &e.event_type,
            e.schema_version,
            &e.payload,
        )));
    }
    let decode_time = started.elapsed();
    let started = Instant::now();
    drop(black_box(rebuild(&history.events)));
    let warm_time = started.elapsed();
    println!(
        "domain's full decode alone: {decode_time:.2?} ({:.0} events/s); a second rebuild: {warm_time:.2?} ({:.0} events/s)",
        per_second(decode_time),
        per_second(warm_time)
    );

    // More rounds on request (PROJECTIONS_REBUILD_ROUNDS), for a profiler to see mostly
    // rebuilds.
    let rounds = std::env::var("PROJECTIONS_REBUILD_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(3);
    rebuild_rounds(&history.events, rounds);

    let image = valid(projections::checkpoint::encode(&projections));
    println!(
        "checkpoint image: {:.1} MiB",
        image.len() as f64 / (1024.0 * 1024.0)
    );
    drop(image);

    let mut rng = Rng(7);
    let head = history.events.len() as u64 - 1;
    let queries: Vec<(PartnerId, CustomerId, PartnerId, u64)> = (0..LATENCY_SAMPLES)
        .map(|_| {
            let (p, c, r) = history.triples[rng.below(history.triples.len())];
            (p, c, r, rng.next() % head)
        })
        .collect();
    let current = valid(projections.at(None));
    percentiles("may_order (current)", &queries, |(p, c, r, _)| {
        current.may_order(*p, *c, *r).value.is_ok()
    });
    percentiles(
        "may_order_as_of (position)",
        &queries,
        |(p, c, r, position)| {
            valid(projections.at(Some(AsOf::Position(*position))))
                .may_order(*p, *c, *r)
                .value
                .is_ok()
        },
    );
    let times: Vec<_> = queries
        .iter()
        .map(|q| (q.0, q.1, q.2, history.events[q.3 as usize].recorded_at))
        .collect();
    percentiles("may_order_as_of (time)", &times, |(p, c, r, time)| {
        valid(projections.at(Some(AsOf::Time(*time))))
            .may_order(*p, *c, *r)
            .value
            .is_ok()
    });

    let mut group = c.benchmark_group("projections");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(history.events.len() as u64));
    group.bench_function("rebuild", |b| {
        b.iter_with_large_drop(|| rebuild(black_box(&history.events)))
    });
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("may_order", |b| {
        b.iter(|| {
            let (p, c, r, _) = queries[i % queries.len()];
            i += 1;
            black_box(current.may_order(p, c, r).value.is_ok())
        })
    });
    group.bench_function("may_order_as_of", |b| {
        b.iter(|| {
            let (p, c, r, position) = queries[i % queries.len()];
            i += 1;
            let view = valid(projections.at(Some(AsOf::Position(position))));
            black_box(view.may_order(p, c, r).value.is_ok())
        })
    });
    group.bench_function("reseller_of_record", |b| {
        b.iter(|| {
            let customer = history.customers[i % history.customers.len()];
            i += 1;
            black_box(
                current
                    .reseller_of_record(customer)
                    .value
                    .map_or(0, |v| v.len()),
            )
        })
    });
    group.bench_function("shared_customers", |b| {
        b.iter(|| {
            let (p, r) = history.partnerships[i % history.partnerships.len()];
            i += 1;
            black_box(current.shared_customers(p, r).value.len())
        })
    });
    group.finish();
}

// `criterion_group!` makes an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::projections_benches);
}
criterion_main!(group::benches);
