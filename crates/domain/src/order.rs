//! The order aggregate (`order-{id}`): a provider's order for a customer citing the
//! reseller of record, the subscriptions its lines create, and their cancellation.
//!
//! [`may_order_by`] is the one statement of SPEC §2.5's rule, over a small trait of what a
//! reader knows ([`OrderFacts`]): the order decision here judges it on the write model
//! ([`may_order`]), the read models (`projections`) on what they know at any instant.

use std::collections::BTreeMap;

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{CancelSubscription, SubmitOrder, limits};
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::customer::Customer;
use crate::events::{
    Event, OrderEvidence, OrderSubmitted, PartnerStanding, SubscriptionCancelled, SubscriptionLine,
};
use crate::ids::{CustomerId, OrderId, PartnerId, SubscriptionId, UserId};
use crate::partner::Partner;
use crate::rejection::{OrderRefusal, Rejection};
use crate::roles::Capability;
use crate::state::LedgerState;
use crate::streams;
use crate::types::{ProductFamily, Program};

/// The evidence that an order is allowed; see [`OrderEvidence`].
pub type Evidence = OrderEvidence;

/// One subscription created by an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The catalog offer.
    pub offer_id: String,
    /// The product family.
    pub product_family: ProductFamily,
    /// Quantity.
    pub quantity: u32,
    /// The reseller of record on the line.
    pub partner_on_record: PartnerId,
    /// Whether it was cancelled.
    pub cancelled: bool,
}

/// The state of one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The order.
    pub id: OrderId,
    /// The submitting provider.
    pub provider_id: PartnerId,
    /// The cited reseller.
    pub reseller_id: PartnerId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The submitting user.
    pub submitted_by: UserId,
    /// Position of the submission.
    pub submitted_at: u64,
    /// Its subscriptions.
    pub subscriptions: BTreeMap<SubscriptionId, Subscription>,
}

/// A condition of the rule as a reader knows it at the instant it answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known<E> {
    /// It holds, made true by this event.
    Holds(E),
    /// It does not hold: this event made it fail, or (`None`) it never held.
    Fails(Option<E>),
}

/// What a reader knows of provider P, reseller R and customer C, for [`may_order_by`]: the
/// write model at the log's head ([`LedgerState`]), or the read models at any instant. The
/// reader states facts; the rule, and the order its conditions are checked in, is
/// [`may_order_by`]'s alone.
pub trait OrderFacts {
    /// How the reader names the event behind a fact (a position, an index of its own).
    type Event: Copy;
    /// A partner the reader found.
    type Partner: Copy;
    /// A customer the reader found.
    type Customer: Copy;

    /// The partner, if it exists.
    fn partner(&self, id: PartnerId) -> Option<Self::Partner>;
    /// The customer, if it exists.
    fn customer(&self, id: CustomerId) -> Option<Self::Customer>;
    /// Whether the partner is in `program`.
    fn in_program(&self, partner: Self::Partner, program: Program) -> bool;
    /// The partner's deauthorization, if it was deauthorized.
    fn deauthorized(&self, partner: Self::Partner) -> Option<Self::Event>;
    /// The partner's latest authorization, or the rejection that refused it.
    fn authorized(&self, partner: Self::Partner) -> Known<Self::Event>;
    /// The partner's latest agreement signature, if it signed.
    fn agreement_signed(&self, partner: Self::Partner) -> Option<Self::Event>;
    /// Whether the provider–reseller partnership is active.
    fn partnership_active(
        &self,
        provider: Self::Partner,
        reseller: Self::Partner,
    ) -> Known<Self::Event>;
    /// Whether the partner is reseller of record for the customer.
    fn of_record(&self, customer: Self::Customer, partner: Self::Partner) -> Known<Self::Event>;
}

/// A partner's standing in a program: the events behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandingProof<E> {
    /// The partner.
    pub partner: PartnerId,
    /// Its latest authorization (enrollment authorized or provider onboarded).
    pub authorized: E,
    /// Its latest agreement signature.
    pub agreement_signed: E,
}

/// Why P may order for C citing R: the event behind each condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderProof<E> {
    /// The provider's standing.
    pub provider: StandingProof<E>,
    /// The reseller's standing.
    pub reseller: StandingProof<E>,
    /// The authorization that made the partnership active.
    pub partnership_authorized: E,
    /// The event that made the reseller reseller of record for the customer.
    pub reseller_of_record: E,
    /// The event that made the provider reseller of record for the customer.
    pub provider_of_record: E,
}

/// Why P may not order for C citing R: the first failing condition, and the event that made
/// it fail when there is one (otherwise the fact never held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderDenied<E> {
    /// The failing condition.
    pub refusal: OrderRefusal,
    /// The event that made it fail, if one did.
    pub failed_by: Option<E>,
}

/// SPEC §2.5's rule, the one statement of it, judged on what `facts` knows: whether
/// provider `provider` may order for `customer` citing `reseller`, with the evidence of
/// every condition, or the first condition that fails, checked in this order: the provider
/// is a transacting indirect provider; the reseller a transacting indirect reseller; their
/// partnership is active; the customer exists; the reseller, then the provider, is reseller
/// of record for it. (The submitting user's conditions are checked by the order decision
/// before this rule, as for every command.)
pub fn may_order_by<F: OrderFacts>(
    facts: &F,
    provider: PartnerId,
    customer: CustomerId,
    reseller: PartnerId,
) -> Result<OrderProof<F::Event>, OrderDenied<F::Event>> {
    let fail = |refusal, failed_by| Err(OrderDenied { refusal, failed_by });
    // Looked up before any condition is judged, so that a reader whose records are far
    // apart in memory fetches them together; the conditions are still judged in order.
    let c = facts.customer(customer);
    let p = facts.partner(provider);
    let r = facts.partner(reseller);
    let p = standing(facts, provider, p, &PROVIDER)?;
    let r = standing(facts, reseller, r, &RESELLER)?;
    let partnership_authorized = match facts.partnership_active(p.0, r.0) {
        Known::Holds(event) => event,
        Known::Fails(failed_by) => {
            return fail(
                OrderRefusal::PartnershipNotActive { provider, reseller },
                failed_by,
            );
        }
    };
    let Some(c) = c else {
        return fail(OrderRefusal::CustomerNotFound(customer), None);
    };
    let reseller_of_record = match facts.of_record(c, r.0) {
        Known::Holds(event) => event,
        Known::Fails(failed_by) => {
            return fail(
                OrderRefusal::ResellerNotOfRecord { reseller, customer },
                failed_by,
            );
        }
    };
    let provider_of_record = match facts.of_record(c, p.0) {
        Known::Holds(event) => event,
        Known::Fails(failed_by) => {
            return fail(
                OrderRefusal::ProviderNotOfRecord { provider, customer },
                failed_by,
            );
        }
    };
    Ok(OrderProof {
        provider: p.1,
        reseller: r.1,
        partnership_authorized,
        reseller_of_record,
        provider_of_record,
    })
}

/// The program a side of the order must be in, and the refusal of each of its conditions.
struct Side {
    program: Program,
    not_found: fn(PartnerId) -> OrderRefusal,
    not_in_program: fn(PartnerId) -> OrderRefusal,
    deauthorized: fn(PartnerId) -> OrderRefusal,
    not_authorized: fn(PartnerId) -> OrderRefusal,
    agreement_not_signed: fn(PartnerId) -> OrderRefusal,
}

const PROVIDER: Side = Side {
    program: Program::IndirectProvider,
    not_found: OrderRefusal::ProviderNotFound,
    not_in_program: OrderRefusal::NotAProvider,
    deauthorized: OrderRefusal::ProviderDeauthorized,
    not_authorized: OrderRefusal::ProviderNotAuthorized,
    agreement_not_signed: OrderRefusal::ProviderAgreementNotSigned,
};

const RESELLER: Side = Side {
    program: Program::IndirectReseller,
    not_found: OrderRefusal::ResellerNotFound,
    not_in_program: OrderRefusal::NotAReseller,
    deauthorized: OrderRefusal::ResellerDeauthorized,
    not_authorized: OrderRefusal::ResellerNotAuthorized,
    agreement_not_signed: OrderRefusal::ResellerAgreementNotSigned,
};

/// A partner's conditions, in the rule's order: it exists, is in the side's program, is not
/// deauthorized, is authorized and signed the agreement.
#[allow(clippy::type_complexity)]
fn standing<F: OrderFacts>(
    facts: &F,
    id: PartnerId,
    partner: Option<F::Partner>,
    side: &Side,
) -> Result<(F::Partner, StandingProof<F::Event>), OrderDenied<F::Event>> {
    let fail = |refusal: fn(PartnerId) -> OrderRefusal, failed_by| {
        Err(OrderDenied {
            refusal: refusal(id),
            failed_by,
        })
    };
    let Some(partner) = partner else {
        return fail(side.not_found, None);
    };
    if !facts.in_program(partner, side.program) {
        return fail(side.not_in_program, None);
    }
    if let Some(deauthorized) = facts.deauthorized(partner) {
        return fail(side.deauthorized, Some(deauthorized));
    }
    let authorized = match facts.authorized(partner) {
        Known::Holds(event) => event,
        Known::Fails(failed_by) => return fail(side.not_authorized, failed_by),
    };
    let Some(agreement_signed) = facts.agreement_signed(partner) else {
        return fail(side.agreement_not_signed, None);
    };
    Ok((
        partner,
        StandingProof {
            partner: id,
            authorized,
            agreement_signed,
        },
    ))
}

/// The write model knows each fact by the position of the event behind it, and keeps no
/// event that made a fact fail.
impl<'s> OrderFacts for &'s LedgerState {
    type Event = u64;
    type Partner = &'s Partner;
    type Customer = &'s Customer;

    fn partner(&self, id: PartnerId) -> Option<&'s Partner> {
        LedgerState::partner(self, id)
    }

    fn customer(&self, id: CustomerId) -> Option<&'s Customer> {
        LedgerState::customer(self, id)
    }

    fn in_program(&self, partner: &'s Partner, program: Program) -> bool {
        partner.has(program)
    }

    fn deauthorized(&self, partner: &'s Partner) -> Option<u64> {
        partner.deauthorized_at
    }

    fn authorized(&self, partner: &'s Partner) -> Known<u64> {
        partner
            .authorized_at
            .map_or(Known::Fails(None), Known::Holds)
    }

    fn agreement_signed(&self, partner: &'s Partner) -> Option<u64> {
        partner.agreement_signed_at
    }

    fn partnership_active(&self, provider: &'s Partner, reseller: &'s Partner) -> Known<u64> {
        LedgerState::partnership(self, provider.id, reseller.id)
            .and_then(|partnership| partnership.active_since)
            .map_or(Known::Fails(None), Known::Holds)
    }

    fn of_record(&self, customer: &'s Customer, partner: &'s Partner) -> Known<u64> {
        customer
            .relationships
            .get(&partner.id)
            .map_or(Known::Fails(None), |relationship| {
                Known::Holds(relationship.since)
            })
    }
}

/// Whether provider `provider` may order for `customer` citing `reseller` now, by the write
/// model: [`may_order_by`] on `state`, with the evidence as the order event records it.
pub fn may_order(
    state: &LedgerState,
    provider: PartnerId,
    customer: CustomerId,
    reseller: PartnerId,
) -> Result<Evidence, OrderRefusal> {
    let proof = may_order_by(&state, provider, customer, reseller).map_err(|d| d.refusal)?;
    let standing = |s: StandingProof<u64>| PartnerStanding {
        partner_id: s.partner,
        authorized_at: s.authorized,
        agreement_signed_at: s.agreement_signed,
    };
    Ok(OrderEvidence {
        provider: standing(proof.provider),
        reseller: standing(proof.reseller),
        partnership_authorized_at: proof.partnership_authorized,
        reseller_of_record_at: proof.reseller_of_record,
        provider_of_record_at: proof.provider_of_record,
    })
}

fn decision(state: &LedgerState, order: OrderId, events: Vec<Event>) -> Decision {
    let stream = streams::order(order);
    let expected_revision = state.stream_revision(&stream);
    Decision::new(stream, expected_revision, events)
}

/// Decides submitting an order.
pub(crate) fn submit(
    state: &LedgerState,
    command: &SubmitOrder,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    // The submitting user's conditions: belongs to the provider, password changed, holds
    // *submit orders*. The partner-level conditions are the rule's, checked below.
    let (_, user) = access::signed_in(state, ctx, command.provider_id)?;
    if !crate::roles::can(&user.roles, Capability::SubmitOrders) {
        return Err(Rejection::MissingCapability(Capability::SubmitOrders));
    }
    checks::count("lines", command.lines.len(), 1, limits::ORDER_LINES_MAX)?;
    for line in &command.lines {
        checks::name("offer_id", &line.offer_id)?;
        checks::count(
            "quantity",
            line.quantity as usize,
            1,
            limits::QUANTITY_MAX as usize,
        )?;
    }
    let evidence = may_order(
        state,
        command.provider_id,
        command.customer_id,
        command.reseller_id,
    )?;
    let order_id = OrderId(ctx.new_id);
    let lines = command
        .lines
        .iter()
        .zip(1u32..)
        .map(|(line, index)| SubscriptionLine {
            subscription_id: SubscriptionId(ctx.derived_id(index)),
            offer_id: line.offer_id.clone(),
            product_family: line.product_family,
            quantity: line.quantity,
            partner_on_record: command.reseller_id,
        })
        .collect();
    Ok(decision(
        state,
        order_id,
        vec![Event::OrderSubmitted(OrderSubmitted {
            order_id,
            provider_id: command.provider_id,
            reseller_id: command.reseller_id,
            customer_id: command.customer_id,
            submitted_by: user.id,
            lines,
            evidence,
        })],
    ))
}

/// Decides cancelling a subscription, by a user of the provider or of the line's reseller
/// (holding the subscription capability for its product family), or by the operator (so
/// that a deauthorized partner's subscriptions can still be wound down).
pub(crate) fn cancel(
    state: &LedgerState,
    command: &CancelSubscription,
    ctx: &Context,
) -> Result<Decision, Rejection> {
    if !matches!(ctx.actor, Actor::User { .. } | Actor::Operator) {
        return Err(access::not_allowed(ctx, "partner user or operator"));
    }
    let order = state
        .order(command.order_id)
        .ok_or(Rejection::OrderNotFound(command.order_id))?;
    let subscription = order
        .subscriptions
        .get(&command.subscription_id)
        .ok_or(Rejection::SubscriptionNotFound(command.subscription_id))?;
    if matches!(ctx.actor, Actor::User { .. }) {
        let capability = match subscription.product_family {
            ProductFamily::Office365 => Capability::ManageOffice365Subscriptions,
            _ => Capability::ManageSubscriptions,
        };
        let acting_for = match state.partner_of_user(&ctx.actor) {
            Some(partner) if partner == subscription.partner_on_record => partner,
            _ => order.provider_id,
        };
        access::partner_user(state, ctx, acting_for, capability, Need::Authorized)?;
    }
    if subscription.cancelled {
        return Err(Rejection::SubscriptionAlreadyCancelled(
            command.subscription_id,
        ));
    }
    Ok(decision(
        state,
        order.id,
        vec![Event::SubscriptionCancelled(SubscriptionCancelled {
            order_id: order.id,
            subscription_id: command.subscription_id,
        })],
    ))
}

/// Applies an order-stream event.
pub(crate) fn evolve(state: &mut LedgerState, meta: &EventMeta, event: &Event) {
    match event {
        Event::OrderSubmitted(e) => {
            let subscriptions = e
                .lines
                .iter()
                .map(|line| {
                    (
                        line.subscription_id,
                        Subscription {
                            offer_id: line.offer_id.clone(),
                            product_family: line.product_family,
                            quantity: line.quantity,
                            partner_on_record: line.partner_on_record,
                            cancelled: false,
                        },
                    )
                })
                .collect();
            for line in &e.lines {
                state
                    .order_of_subscription
                    .insert(line.subscription_id, e.order_id);
            }
            state
                .orders_by_customer
                .entry(e.customer_id)
                .or_default()
                .insert(e.order_id);
            state.orders.insert(
                e.order_id,
                Order {
                    id: e.order_id,
                    provider_id: e.provider_id,
                    reseller_id: e.reseller_id,
                    customer_id: e.customer_id,
                    submitted_by: e.submitted_by,
                    submitted_at: meta.global_position,
                    subscriptions,
                },
            );
        }
        Event::SubscriptionCancelled(e) => {
            if let Some(subscription) = state
                .orders
                .get_mut(&e.order_id)
                .and_then(|order| order.subscriptions.get_mut(&e.subscription_id))
            {
                subscription.cancelled = true;
            }
        }
        _ => {}
    }
}
