//! The order aggregate (`order-{id}`): a provider's order for a customer citing the
//! reseller of record, the subscriptions its lines create, and their cancellation.
//!
//! [`may_order`] is the one statement of SPEC §2.5's rule, used by decisions here and by
//! projections' tests.

use std::collections::BTreeMap;

use crate::access::{self, Need};
use crate::checks;
use crate::commands::{CancelSubscription, SubmitOrder, limits};
use crate::context::{Actor, Context, Decision, EventMeta};
use crate::events::{
    Event, OrderEvidence, OrderSubmitted, SubscriptionCancelled, SubscriptionLine,
};
use crate::ids::{CustomerId, OrderId, PartnerId, SubscriptionId, UserId};
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

/// Whether provider `provider` may order for `customer` citing `reseller` now, with the
/// evidence of every condition, or the first condition that fails, checked in this order:
/// the provider is a transacting indirect provider; the reseller a transacting indirect
/// reseller; their partnership is active; the customer exists; the reseller, then the
/// provider, is reseller of record for it. (The submitting user's conditions are checked by
/// the order decision before this rule, as for every command.)
pub fn may_order(
    state: &LedgerState,
    provider: PartnerId,
    customer: CustomerId,
    reseller: PartnerId,
) -> Result<Evidence, OrderRefusal> {
    let p = state
        .partner(provider)
        .ok_or(OrderRefusal::ProviderNotFound(provider))?;
    if !p.has(Program::IndirectProvider) {
        return Err(OrderRefusal::NotAProvider(provider));
    }
    if p.deauthorized_at.is_some() {
        return Err(OrderRefusal::ProviderDeauthorized(provider));
    }
    let provider_authorized_at = p
        .authorized_at
        .ok_or(OrderRefusal::ProviderNotAuthorized(provider))?;
    let provider_agreement_at = p
        .agreement_signed_at
        .ok_or(OrderRefusal::ProviderAgreementNotSigned(provider))?;
    let r = state
        .partner(reseller)
        .ok_or(OrderRefusal::ResellerNotFound(reseller))?;
    if !r.has(Program::IndirectReseller) {
        return Err(OrderRefusal::NotAReseller(reseller));
    }
    if r.deauthorized_at.is_some() {
        return Err(OrderRefusal::ResellerDeauthorized(reseller));
    }
    let reseller_authorized_at = r
        .authorized_at
        .ok_or(OrderRefusal::ResellerNotAuthorized(reseller))?;
    let reseller_agreement_at = r
        .agreement_signed_at
        .ok_or(OrderRefusal::ResellerAgreementNotSigned(reseller))?;
    let partnership_authorized_at = state
        .partnership(provider, reseller)
        .and_then(|partnership| partnership.active_since)
        .ok_or(OrderRefusal::PartnershipNotActive { provider, reseller })?;
    let c = state
        .customer(customer)
        .ok_or(OrderRefusal::CustomerNotFound(customer))?;
    let reseller_of_record_at = c
        .relationships
        .get(&reseller)
        .map(|relationship| relationship.since)
        .ok_or(OrderRefusal::ResellerNotOfRecord { reseller, customer })?;
    let provider_of_record_at = c
        .relationships
        .get(&provider)
        .map(|relationship| relationship.since)
        .ok_or(OrderRefusal::ProviderNotOfRecord { provider, customer })?;
    Ok(OrderEvidence {
        provider: crate::events::PartnerStanding {
            partner_id: provider,
            authorized_at: provider_authorized_at,
            agreement_signed_at: provider_agreement_at,
        },
        reseller: crate::events::PartnerStanding {
            partner_id: reseller,
            authorized_at: reseller_authorized_at,
            agreement_signed_at: reseller_agreement_at,
        },
        partnership_authorized_at,
        reseller_of_record_at,
        provider_of_record_at,
    })
}

fn decision(state: &LedgerState, order: OrderId, events: Vec<Event>) -> Decision {
    let stream = streams::order(order);
    Decision {
        expected_revision: state.stream_revision(&stream),
        stream,
        events,
    }
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
