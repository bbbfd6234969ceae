//! Queries over the read models, at any instant of the log, with their explanations.
//!
//! [`Projections::at`] resolves an optional [`AsOf`] to a [`View`]: the first `n` events of
//! the log. Every query of a view answers for that prefix and states the position it was
//! computed at ([`Answer::position`]). Evidence is given as [`EventRef`]s, which
//! [`View::event`] turns into the event's position, type, stream, actor and time.

use chrono::{DateTime, Utc};
use domain::types::{CustomerProfile, LegalProfile, Program, RelationshipTier, SupportDetails};
use domain::{
    Capability, Country, CustomerId, Email, GranularAdminRequestId, GranularDuration, OrderRefusal,
    PartnerId, PartnerNumber, Roles, TenantId, UserId,
};
use serde::Serialize;

use domain::order::{Known, OrderFacts, StandingProof};

use crate::model::{
    Agreement, CustomerRec, PartnerRec, PartnerStatus, Projections, RecordSummary,
    TIME_INDEX_STRIDE, UserRec,
};
use crate::timeline::{Fact, History, Marks, NONE};

/// An instant of history to answer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum AsOf {
    /// Just after the event at this global position (events at or before it count).
    Position(u64),
    /// At this instant (events recorded at or before it count).
    Time(DateTime<Utc>),
}

/// Why a view could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The read models have not reached that position yet; wait for it
    /// (`ProjectionsHandle::wait_for`) or ask again later.
    #[error("position {requested} is not reached yet (the read models are at {reached:?})")]
    NotReached {
        /// The position asked for.
        requested: u64,
        /// The last position applied.
        reached: Option<u64>,
    },
}

/// One event that makes an answer true (or made a condition fail). Resolve with
/// [`View::event`] or [`Projections::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EventRef(pub(crate) u32);

/// What an [`EventRef`] points at: the envelope facts of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventInfo<'a> {
    /// Global position.
    pub position: u64,
    /// Event type name.
    pub event_type: &'static str,
    /// Its stream.
    pub stream: &'a str,
    /// Who caused it (the envelope's actor text: JSON of `domain::Actor`).
    pub actor: &'a str,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// An answer and the position it was computed at (the consistency token: the answer
/// reflects every event up to and including that position, and none after it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer<T> {
    /// The last event the answer reflects (`None`: the empty log).
    pub position: Option<u64>,
    /// The answer.
    pub value: T,
}

/// A partner's standing: the events that authorized it and recorded its agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The partner.
    pub partner: PartnerId,
    /// Its (latest) authorization: enrollment authorized, or provider onboarded.
    pub authorized: EventRef,
    /// Its (latest) agreement signature.
    pub agreement_signed: EventRef,
}

/// Why provider P may order for customer C citing reseller R: the event behind each
/// condition of SPEC §2.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OrderRight {
    /// The provider's standing.
    pub provider: Standing,
    /// The reseller's standing.
    pub reseller: Standing,
    /// The authorization that made the partnership active.
    pub partnership_authorized: EventRef,
    /// The event that made the reseller reseller of record for the customer.
    pub reseller_of_record: EventRef,
    /// The event that made the provider reseller of record for the customer.
    pub provider_of_record: EventRef,
}

impl OrderRight {
    /// Every event of the explanation, in the order of the conditions.
    pub fn events(&self) -> [EventRef; 7] {
        [
            self.provider.authorized,
            self.provider.agreement_signed,
            self.reseller.authorized,
            self.reseller.agreement_signed,
            self.partnership_authorized,
            self.reseller_of_record,
            self.provider_of_record,
        ]
    }
}

/// Why an order would be refused: the first failing condition, in the order the domain
/// checks them, and the event that made it fail when there is one (a deauthorization, a
/// rejection, the end of the partnership, the removal of a relationship).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderDenial {
    /// The failing condition.
    #[serde(serialize_with = "refusal_rule")]
    pub refusal: OrderRefusal,
    /// The event that made it fail, if one did (otherwise the fact never held).
    pub failed_by: Option<EventRef>,
}

fn refusal_rule<S: serde::Serializer>(refusal: &OrderRefusal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(refusal.rule())
}

/// One reseller of record of a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OfRecord {
    /// The partner.
    pub partner: PartnerId,
    /// Its tier for this customer.
    pub tier: RelationshipTier,
    /// The event that made it reseller of record (acceptance or import); its time is the
    /// "since".
    pub since: EventRef,
}

/// A provider–reseller partnership that is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ActivePartnership {
    /// The provider.
    pub provider: PartnerId,
    /// The reseller.
    pub reseller: PartnerId,
    /// The reseller's authorization of the provider.
    pub since: EventRef,
}

/// A customer for which both a provider and a reseller are reseller of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SharedCustomer {
    /// The customer.
    pub customer: CustomerId,
    /// The event that made the reseller of record.
    pub reseller_since: EventRef,
    /// The event that made the provider of record.
    pub provider_since: EventRef,
}

/// A (provider, reseller) pair that may order for a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OrderingPair {
    /// The provider.
    pub provider: PartnerId,
    /// The reseller.
    pub reseller: PartnerId,
    /// Why.
    pub right: OrderRight,
}

/// A partner as the directory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartnerInfo<'a> {
    /// The partner.
    pub id: PartnerId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The tenant's country.
    pub country: Country,
    /// Its name (legal name once submitted).
    pub name: &'a str,
    /// Its programs.
    pub programs: Vec<Program>,
    /// Its status and the event that set it.
    pub status: &'a PartnerStatus,
    /// The event that set the status.
    pub status_since: EventRef,
    /// Its linked MPN ID.
    pub partner_number: Option<&'a PartnerNumber>,
    /// Its legal business profile.
    pub legal_profile: Option<&'a LegalProfile>,
    /// Its support details.
    pub support: Option<&'a SupportDetails>,
    /// Countries served.
    pub countries_served: &'a [Country],
    /// The signed agreement and the signature event.
    pub agreement: Option<(&'a Agreement, EventRef)>,
    /// Whether it may transact: authorized, agreement signed, not deauthorized.
    pub may_transact: bool,
    /// The event that created it.
    pub created: EventRef,
}

/// A customer as the directory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerInfo<'a> {
    /// The customer.
    pub id: CustomerId,
    /// The organization.
    pub profile: &'a CustomerProfile,
    /// The event that first recorded it.
    pub created: EventRef,
}

/// A partner user with its roles and capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo<'a> {
    /// The user.
    pub id: UserId,
    /// Its partner.
    pub partner: PartnerId,
    /// Full name.
    pub full_name: &'a str,
    /// Sign-in email.
    pub email: &'a Email,
    /// Roles, and the event that set them.
    pub roles: Roles,
    /// The event that set the roles.
    pub roles_since: EventRef,
    /// Capabilities the roles hold (by the permission matrix).
    pub capabilities: Vec<Capability>,
    /// The removal, if removed.
    pub removed: Option<EventRef>,
    /// The issue of a temporary password not yet changed, if any.
    pub temporary_password_pending: Option<EventRef>,
    /// The event that added it.
    pub added: EventRef,
}

/// Whether a user may use a capability, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum CapabilityCheck {
    /// It may: its roles (set by this event) hold the capability, it is not removed and
    /// has changed any temporary password.
    Allowed {
        /// The event that set its roles.
        roles_since: EventRef,
    },
    /// No such user.
    UserNotFound,
    /// The user was removed.
    UserRemoved {
        /// The removal.
        removed: EventRef,
    },
    /// The user must first change its temporary password.
    TemporaryPasswordNotChanged {
        /// The issue of the temporary password.
        issued: EventRef,
    },
    /// The user's roles do not hold the capability.
    MissingCapability {
        /// The event that set its roles.
        roles_since: EventRef,
    },
}

/// Why a user may submit an order: its own conditions, then the partners'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UserOrderRight {
    /// The user's partner, the provider.
    pub provider: PartnerId,
    /// The event that set the user's roles (holding *submit orders*).
    pub roles_since: EventRef,
    /// The partners' conditions.
    pub right: OrderRight,
}

/// Why a user may not submit an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "failed", rename_all = "snake_case")]
pub enum UserOrderDenial {
    /// The user's own conditions failed (not found, removed, temporary password, role).
    User {
        /// The failed check.
        check: CapabilityCheck,
    },
    /// The user may, but the partners' conditions fail.
    Order {
        /// The failing condition.
        denial: OrderDenial,
    },
}

/// Delegated admin over a customer's tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DelegatedAdmin {
    /// The partner holding it.
    pub partner: PartnerId,
    /// The grant (acceptance or import).
    pub since: EventRef,
}

/// Where a granular delegated admin request stood at the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GranularState {
    /// Waiting for the customer.
    Pending {
        /// It lapses, unanswered, at this instant.
        request_expires_at: DateTime<Utc>,
        /// Whether it had lapsed at the view's instant.
        lapsed: bool,
    },
    /// Approved: access from `starts_at` until `ends_at`.
    Approved {
        /// The approval.
        approved: EventRef,
        /// Access starts.
        starts_at: DateTime<Utc>,
        /// Access ends (expiry, no event).
        ends_at: DateTime<Utc>,
        /// Whether access held at the view's instant.
        active: bool,
    },
    /// Revoked, or ended with the relationship.
    Revoked {
        /// The revocation or removal.
        revoked: EventRef,
    },
}

/// A granular delegated admin request over a customer's tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GranularAdmin<'a> {
    /// The request.
    pub request_id: GranularAdminRequestId,
    /// The requesting partner.
    pub partner: PartnerId,
    /// Directory roles.
    pub roles: &'a [String],
    /// Duration once approved.
    pub duration: GranularDuration,
    /// The request event.
    pub requested: EventRef,
    /// Where it stood.
    pub state: GranularState,
}

/// A read-only view of the read models as of the first `n` events of the log.
#[derive(Clone, Copy, Debug)]
pub struct View<'p> {
    p: &'p Projections,
    n: u32,
    /// The instant time-bound facts are judged at; `None`: the recorded time of the view's
    /// last event, looked up only when a query needs it (most never do).
    instant: Option<DateTime<Utc>>,
}

impl Projections {
    /// A view at `as_of`, or of everything applied when `None`. A position beyond what was
    /// applied is refused ([`QueryError::NotReached`]); a time beyond it answers with
    /// everything applied.
    ///
    /// Time-bound facts (granular admin expiry, lapsed requests) are judged at the view's
    /// instant: the given time, or the recorded time of the view's last event. Reads no
    /// clock: a caller that judges the current view at its own `now` says so
    /// ([`View::with_instant`], [`crate::dispatch::view`]).
    pub fn at(&self, as_of: Option<AsOf>) -> Result<View<'_>, QueryError> {
        let table = &self.events;
        let count = table.positions.len();
        let (n, instant) = match as_of {
            None => (count, None),
            Some(AsOf::Position(position)) => {
                let reached = table.positions.last().copied();
                if reached.is_none_or(|last| position > last) {
                    return Err(QueryError::NotReached {
                        requested: position,
                        reached,
                    });
                }
                (self.count_through_position(position), None)
            }
            Some(AsOf::Time(time)) => {
                let nanos = time
                    .timestamp_nanos_opt()
                    .unwrap_or(if time.timestamp() < 0 {
                        i64::MIN
                    } else {
                        i64::MAX
                    });
                (self.count_through_time(nanos), Some(time))
            }
        };
        Ok(View {
            p: self,
            n: n as u32,
            instant,
        })
    }

    /// How many events have a position at or before `position`.
    fn count_through_position(&self, position: u64) -> usize {
        let positions = &self.events.positions;
        match positions.first() {
            None => 0,
            Some(&first) if position < first => 0,
            Some(&first) if self.events.dense => {
                ((position - first) as usize + 1).min(positions.len())
            }
            Some(_) => positions.partition_point(|p| *p <= position),
        }
    }

    /// How many events were recorded at or before `nanos`: the time index picks the
    /// stride, a search within it the event.
    fn count_through_time(&self, nanos: i64) -> usize {
        let table = &self.events;
        let strides = table.time_index.partition_point(|t| *t <= nanos);
        let Some(stride) = strides.checked_sub(1) else {
            return 0;
        };
        let start = stride * TIME_INDEX_STRIDE;
        let end = (start + TIME_INDEX_STRIDE).min(table.times.len());
        start + table.times[start..end].partition_point(|t| *t <= nanos)
    }

    fn time_of_count(&self, n: usize) -> DateTime<Utc> {
        n.checked_sub(1)
            .map(|seq| DateTime::from_timestamp_nanos(self.events.times[seq]))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// What an event reference points at.
    pub fn event(&self, event: EventRef) -> EventInfo<'_> {
        let seq = event.0 as usize;
        let table = &self.events;
        EventInfo {
            position: table.positions[seq],
            event_type: domain::EVENT_TYPES[table.kinds[seq] as usize].name,
            stream: table.stream_names.name(table.streams[seq]),
            actor: table.actor_names.name(table.actors[seq]),
            recorded_at: DateTime::from_timestamp_nanos(table.times[seq]),
        }
    }

    /// The partner of a tenant (enrolling or enrolled), now.
    pub fn partner_by_tenant(&self, tenant: TenantId) -> Option<PartnerId> {
        let index = *self.partner_by_tenant.get(&tenant)?;
        Some(self.partners[index as usize].id)
    }

    /// The partner that linked an MPN ID, now.
    pub fn partner_by_number(&self, number: &PartnerNumber) -> Option<PartnerId> {
        let index = *self.partner_by_number.get(number)?;
        Some(self.partners[index as usize].id)
    }

    /// The customer of a tenant.
    pub fn customer_by_tenant(&self, tenant: TenantId) -> Option<CustomerId> {
        let index = *self.customer_by_tenant.get(&tenant)?;
        Some(self.customers[index as usize].id)
    }
}

impl<'p> View<'p> {
    /// The position this view answers at (`None`: before the first event).
    pub fn position(&self) -> Option<u64> {
        let table = &self.p.events;
        let seq = (self.n as usize).checked_sub(1)?;
        // On a log without position gaps, computed: no look into the column.
        Some(match table.positions.first() {
            Some(first) if table.dense => first + seq as u64,
            _ => table.positions[seq],
        })
    }

    /// The instant time-bound facts are judged at.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
            .unwrap_or_else(|| self.p.time_of_count(self.n as usize))
    }

    /// The same view, judging time-bound facts (granular admin expiry) at `instant`.
    pub fn with_instant(self, instant: DateTime<Utc>) -> Self {
        View {
            instant: Some(instant),
            ..self
        }
    }

    fn answer<T>(&self, value: T) -> Answer<T> {
        Answer {
            position: self.position(),
            value,
        }
    }

    /// What an event reference points at.
    pub fn event(&self, event: EventRef) -> EventInfo<'p> {
        self.p.event(event)
    }

    fn partner(&self, id: PartnerId) -> Option<&'p PartnerRec> {
        let partner = &self.p.partners[*self.p.partner_index.get(&id)? as usize];
        (partner.created < self.n).then_some(partner)
    }

    fn customer(&self, id: CustomerId) -> Option<&'p CustomerRec> {
        let customer = &self.p.customers[self.p.customer_index.get(&id)?.index as usize];
        (customer.created < self.n).then_some(customer)
    }

    fn user(&self, id: UserId) -> Option<&'p UserRec> {
        let user = &self.p.users[*self.p.user_index.get(&id)? as usize];
        (user.created < self.n).then_some(user)
    }

    fn partner_id(&self, index: u32) -> PartnerId {
        self.p.partners[index as usize].id
    }

    /// Whether provider `provider` may order for `customer` citing `reseller` (SPEC §2.5),
    /// with the evidence of every condition or the first failing one, checked in the
    /// domain's order: provider, reseller, partnership, customer, reseller of record,
    /// provider of record.
    pub fn may_order(
        &self,
        provider: PartnerId,
        customer: CustomerId,
        reseller: PartnerId,
    ) -> Answer<Result<OrderRight, OrderDenial>> {
        self.answer(self.order_right(provider, customer, reseller))
    }

    fn order_right(
        &self,
        provider: PartnerId,
        customer: CustomerId,
        reseller: PartnerId,
    ) -> Result<OrderRight, OrderDenial> {
        let standing = |s: StandingProof<u32>| Standing {
            partner: s.partner,
            authorized: EventRef(s.authorized),
            agreement_signed: EventRef(s.agreement_signed),
        };
        match domain::order::may_order_by(&Facts(*self), provider, customer, reseller) {
            Ok(proof) => Ok(OrderRight {
                provider: standing(proof.provider),
                reseller: standing(proof.reseller),
                partnership_authorized: EventRef(proof.partnership_authorized),
                reseller_of_record: EventRef(proof.reseller_of_record),
                provider_of_record: EventRef(proof.provider_of_record),
            }),
            Err(denied) => Err(OrderDenial {
                refusal: denied.refusal,
                failed_by: denied.failed_by.map(EventRef),
            }),
        }
    }

    /// Every (provider, reseller) pair that may order for `customer`, sorted by ids.
    pub fn ordering_pairs(&self, customer: CustomerId) -> Answer<Vec<OrderingPair>> {
        let mut pairs = Vec::new();
        if let Some(c) = self.customer(customer) {
            let of_record: Vec<&PartnerRec> = c
                .relationships
                .iter()
                .filter(|r| r.of_record.holds_at(self.n))
                .map(|r| &self.p.partners[r.partner as usize])
                .collect();
            for provider in of_record.iter().filter(|p| p.provider_since < self.n) {
                for reseller in of_record.iter().filter(|p| p.reseller_since < self.n) {
                    if let Ok(right) = self.order_right(provider.id, customer, reseller.id) {
                        pairs.push(OrderingPair {
                            provider: provider.id,
                            reseller: reseller.id,
                            right,
                        });
                    }
                }
            }
        }
        pairs.sort_by_key(|pair| (pair.provider, pair.reseller));
        self.answer(pairs)
    }

    /// Whether `user` may use `capability`: it exists, is not removed, has changed any
    /// temporary password (before which it may do nothing else), and its roles hold it.
    pub fn can(&self, user: UserId, capability: Capability) -> Answer<CapabilityCheck> {
        self.answer(self.capability_check(user, capability))
    }

    fn capability_check(&self, user: UserId, capability: Capability) -> CapabilityCheck {
        let n = self.n;
        let Some(u) = self.user(user) else {
            return CapabilityCheck::UserNotFound;
        };
        if let Fact::Held(seq) = u.removed.at(n) {
            return CapabilityCheck::UserRemoved {
                removed: EventRef(seq),
            };
        }
        if let Fact::Held(seq) = u.temporary.at(n) {
            return CapabilityCheck::TemporaryPasswordNotChanged {
                issued: EventRef(seq),
            };
        }
        let Some((roles_since, roles)) = u.roles.at(n) else {
            return CapabilityCheck::UserNotFound;
        };
        if domain::can(roles, capability) {
            CapabilityCheck::Allowed {
                roles_since: EventRef(roles_since),
            }
        } else {
            CapabilityCheck::MissingCapability {
                roles_since: EventRef(roles_since),
            }
        }
    }

    /// Whether `user` may submit an order for `customer` citing `reseller`: the user's own
    /// conditions (checked first, as the domain does), then [`View::may_order`] for the
    /// user's partner as provider.
    pub fn user_may_order(
        &self,
        user: UserId,
        customer: CustomerId,
        reseller: PartnerId,
    ) -> Answer<Result<UserOrderRight, UserOrderDenial>> {
        let check = self.capability_check(user, Capability::SubmitOrders);
        let value = match check {
            CapabilityCheck::Allowed { roles_since } => {
                let provider =
                    self.p.partners[self.user(user).map_or(0, |u| u.partner) as usize].id;
                match self.order_right(provider, customer, reseller) {
                    Ok(right) => Ok(UserOrderRight {
                        provider,
                        roles_since,
                        right,
                    }),
                    Err(denial) => Err(UserOrderDenial::Order { denial }),
                }
            }
            check => Err(UserOrderDenial::User { check }),
        };
        self.answer(value)
    }

    /// The resellers of record of a customer (`None`: no such customer at the view).
    pub fn reseller_of_record(&self, customer: CustomerId) -> Answer<Option<Vec<OfRecord>>> {
        let value = self.customer(customer).map(|c| {
            c.relationships
                .iter()
                .filter_map(|r| {
                    let index = r.of_record.held_index(self.n)?;
                    let Fact::Held(since) = r.of_record.at(self.n) else {
                        return None;
                    };
                    Some(OfRecord {
                        partner: self.partner_id(r.partner),
                        tier: r.tiers[index],
                        since: EventRef(since),
                    })
                })
                .collect()
        });
        self.answer(value)
    }

    /// The providers with an active partnership with `reseller` (its *Indirect providers*
    /// page). `None`: no such partner.
    pub fn indirect_providers(
        &self,
        reseller: PartnerId,
    ) -> Answer<Option<Vec<ActivePartnership>>> {
        let value = self
            .partner(reseller)
            .map(|r| self.active_partnerships(&r.as_reseller));
        self.answer(value)
    }

    /// The resellers with an active partnership with `provider` (its *Indirect resellers*
    /// page). `None`: no such partner.
    pub fn indirect_resellers(
        &self,
        provider: PartnerId,
    ) -> Answer<Option<Vec<ActivePartnership>>> {
        let value = self
            .partner(provider)
            .map(|p| self.active_partnerships(&p.as_provider));
        self.answer(value)
    }

    /// The providers holding admin access to `reseller`'s tenant: those with an active
    /// partnership (SPEC §2.3.3), each since the authorization.
    pub fn tenant_admin_access(
        &self,
        reseller: PartnerId,
    ) -> Answer<Option<Vec<ActivePartnership>>> {
        self.indirect_providers(reseller)
    }

    fn active_partnerships(&self, indexes: &[u32]) -> Vec<ActivePartnership> {
        indexes
            .iter()
            .filter_map(|index| {
                let partnership = &self.p.partnerships[*index as usize];
                match partnership.active.at(self.n) {
                    Fact::Held(since) => Some(ActivePartnership {
                        provider: self.partner_id(partnership.provider),
                        reseller: self.partner_id(partnership.reseller),
                        since: EventRef(since),
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// The customers for which both `provider` and `reseller` are reseller of record (the
    /// *View customers* list of the *Indirect providers* page), in order of first record.
    pub fn shared_customers(
        &self,
        provider: PartnerId,
        reseller: PartnerId,
    ) -> Answer<Vec<SharedCustomer>> {
        let mut shared = Vec::new();
        if let (Some(&p), Some(&r)) = (
            self.p.partner_index.get(&provider),
            self.p.partner_index.get(&reseller),
        ) {
            let n = self.n;
            // Walk the shorter customer list and look the other partner up in each customer.
            let (pc, rc) = (
                &self.p.partners[p as usize].customers,
                &self.p.partners[r as usize].customers,
            );
            let walk = if pc.len() <= rc.len() { pc } else { rc };
            for &customer in walk {
                let c = &self.p.customers[customer as usize];
                let mut reseller_since = None;
                let mut provider_since = None;
                for relationship in &c.relationships {
                    if relationship.partner == r {
                        reseller_since = relationship.of_record.at(n).held();
                    }
                    if relationship.partner == p {
                        provider_since = relationship.of_record.at(n).held();
                    }
                }
                if let (Some(reseller_since), Some(provider_since)) =
                    (reseller_since, provider_since)
                {
                    shared.push(SharedCustomer {
                        customer: c.id,
                        reseller_since: EventRef(reseller_since),
                        provider_since: EventRef(provider_since),
                    });
                }
            }
        }
        self.answer(shared)
    }

    /// The customers `partner` is reseller of record for, in order of first record.
    pub fn customers_of(&self, partner: PartnerId) -> Answer<Option<Vec<(CustomerId, OfRecord)>>> {
        let found = self.p.partner_index.get(&partner).copied();
        let value = found.zip(self.partner(partner)).map(|(index, rec)| {
            rec.customers
                .iter()
                .filter_map(|customer| {
                    let c = &self.p.customers[*customer as usize];
                    let r = c.relationships.iter().find(|r| r.partner == index)?;
                    let slot = r.of_record.held_index(self.n)?;
                    let since = r.of_record.at(self.n).held()?;
                    Some((
                        c.id,
                        OfRecord {
                            partner,
                            tier: r.tiers[slot],
                            since: EventRef(since),
                        },
                    ))
                })
                .collect()
        });
        self.answer(value)
    }

    /// A partner's status, profile and agreement.
    pub fn partner_info(&self, partner: PartnerId) -> Answer<Option<PartnerInfo<'p>>> {
        let n = self.n;
        let value = self.partner(partner).and_then(|p| {
            let (status_since, status) = p.status.at(n)?;
            let mut programs = Vec::new();
            if p.reseller_since < n {
                programs.push(Program::IndirectReseller);
            }
            if p.provider_since < n {
                programs.push(Program::IndirectProvider);
            }
            let agreement = p.agreement.at(n).map(|(seq, a)| (a, EventRef(seq)));
            let may_transact = p.deauthorized.last_before(n).is_none()
                && p.authorized.last_before(n).is_some()
                && agreement.is_some();
            Some(PartnerInfo {
                id: p.id,
                tenant_id: p.tenant,
                country: p.country,
                name: p.name.at(n).map_or("", |(_, name)| name.as_str()),
                programs,
                status,
                status_since: EventRef(status_since),
                partner_number: p.number.at(n).map(|(_, number)| number),
                legal_profile: p.legal.at(n).map(|(_, legal)| legal),
                support: p.support.at(n).map(|(_, support)| support),
                countries_served: if p.provider_since < n {
                    &p.countries_served
                } else {
                    std::slice::from_ref(&p.country)
                },
                agreement,
                may_transact,
                created: EventRef(p.created),
            })
        });
        self.answer(value)
    }

    /// A customer's organization.
    pub fn customer_info(&self, customer: CustomerId) -> Answer<Option<CustomerInfo<'p>>> {
        let value = self.customer(customer).map(|c| CustomerInfo {
            id: c.id,
            profile: &c.profile,
            created: EventRef(c.created),
        });
        self.answer(value)
    }

    fn user_info(&self, u: &'p UserRec) -> Option<UserInfo<'p>> {
        let n = self.n;
        let (roles_since, roles) = u.roles.at(n)?;
        Some(UserInfo {
            id: u.id,
            partner: self.partner_id(u.partner),
            full_name: &u.full_name,
            email: &u.email,
            roles: *roles,
            roles_since: EventRef(roles_since),
            capabilities: domain::roles::capabilities(roles),
            removed: u.removed.at(n).held().map(EventRef),
            temporary_password_pending: u.temporary.at(n).held().map(EventRef),
            added: EventRef(u.created),
        })
    }

    /// The users of a partner (removed ones included, marked), in order of addition.
    pub fn users_of(&self, partner: PartnerId) -> Answer<Option<Vec<UserInfo<'p>>>> {
        let value = self.partner(partner).map(|p| {
            p.users
                .iter()
                .filter_map(|index| {
                    let u = &self.p.users[*index as usize];
                    (u.created < self.n).then(|| self.user_info(u)).flatten()
                })
                .collect()
        });
        self.answer(value)
    }

    /// A user's roles and capabilities.
    pub fn user_info_of(&self, user: UserId) -> Answer<Option<UserInfo<'p>>> {
        let value = self.user(user).and_then(|u| self.user_info(u));
        self.answer(value)
    }

    /// The partners holding delegated admin over a customer's tenant.
    pub fn delegated_admins(&self, customer: CustomerId) -> Answer<Option<Vec<DelegatedAdmin>>> {
        let value = self.customer(customer).map(|c| {
            c.relationships
                .iter()
                .filter_map(|r| {
                    Some(DelegatedAdmin {
                        partner: self.partner_id(r.partner),
                        since: EventRef(r.delegated.at(self.n).held()?),
                    })
                })
                .collect()
        });
        self.answer(value)
    }

    /// The granular delegated admin requests over a customer's tenant made before the view,
    /// each with where it stood (judged at the view's instant for expiry).
    pub fn granular_admins(&self, customer: CustomerId) -> Answer<Option<Vec<GranularAdmin<'p>>>> {
        let n = self.n;
        let now = self.instant();
        let value = self.customer(customer).map(|c| {
            c.granular
                .iter()
                .filter(|g| g.requested < n)
                .map(|g| {
                    let state = if g.revoked < n {
                        GranularState::Revoked {
                            revoked: EventRef(g.revoked),
                        }
                    } else if g.approved < n
                        && let Some((starts_at, ends_at)) = g.window
                    {
                        GranularState::Approved {
                            approved: EventRef(g.approved),
                            starts_at,
                            ends_at,
                            active: starts_at <= now && now < ends_at,
                        }
                    } else {
                        GranularState::Pending {
                            request_expires_at: g.request_expires_at,
                            lapsed: now >= g.request_expires_at,
                        }
                    };
                    GranularAdmin {
                        request_id: g.request_id,
                        partner: self.partner_id(g.partner),
                        roles: &g.roles,
                        duration: g.duration,
                        requested: EventRef(g.requested),
                        state,
                    }
                })
                .collect()
        });
        self.answer(value)
    }

    fn history(&self, history: &History) -> Vec<EventRef> {
        self.p
            .mentions
            .before(history, self.n)
            .into_iter()
            .map(EventRef)
            .collect()
    }

    /// Every event about a partner (its stream, its partnerships, its customers'
    /// relationships, invitations and orders naming it), in log order.
    pub fn partner_history(&self, partner: PartnerId) -> Answer<Vec<EventRef>> {
        let value = self
            .partner(partner)
            .map_or_else(Vec::new, |p| self.history(&p.history));
        self.answer(value)
    }

    /// Every event about a customer, in log order.
    pub fn customer_history(&self, customer: CustomerId) -> Answer<Vec<EventRef>> {
        let value = self
            .customer(customer)
            .map_or_else(Vec::new, |c| self.history(&c.history));
        self.answer(value)
    }

    /// Every event about a user (added, roles, password, removal, signatures, orders it
    /// submitted), in log order.
    pub fn user_history(&self, user: UserId) -> Answer<Vec<EventRef>> {
        let value = self
            .user(user)
            .map_or_else(Vec::new, |u| self.history(&u.history));
        self.answer(value)
    }

    /// Every event about the relationship of a customer and a partner (records, delegated
    /// and granular admin, removal, orders through it), in log order.
    pub fn relationship_history(
        &self,
        customer: CustomerId,
        partner: PartnerId,
    ) -> Answer<Vec<EventRef>> {
        let value = match (self.customer(customer), self.p.partner_index.get(&partner)) {
            (Some(c), Some(index)) => c
                .relationships
                .iter()
                .find(|r| r.partner == *index)
                .map_or_else(Vec::new, |r| self.history(&r.history)),
            _ => Vec::new(),
        };
        self.answer(value)
    }

    /// Every event of a stream, in order.
    pub fn stream_history(&self, stream: &str) -> Answer<Vec<EventRef>> {
        let table = &self.p.events;
        let mut events = Vec::new();
        if let Some(index) = table.stream_names.find(stream) {
            let mut seq = table.stream_last[index as usize];
            while seq != NONE {
                if seq < self.n {
                    events.push(EventRef(seq));
                }
                seq = table.previous_in_stream[seq as usize];
            }
            events.reverse();
        }
        self.answer(events)
    }

    /// Every event of a provider–reseller partnership's stream, in order.
    pub fn partnership_history(
        &self,
        provider: PartnerId,
        reseller: PartnerId,
    ) -> Answer<Vec<EventRef>> {
        self.stream_history(&domain::streams::partnership(provider, reseller))
    }
}

/// What the read models know of P, R and C as of a view, for the domain's one statement of
/// may-order: facts are known by the sequence number of the event behind them, and a fact
/// that ended by the event that ended it. Partners' standings and customers' records are
/// read from their compact summaries, and from the full records only for views older than
/// the latest change or for busier customers.
struct Facts<'p>(View<'p>);

impl<'p> OrderFacts for Facts<'p> {
    type Event = u32;
    /// The partner's index.
    type Partner = u32;
    /// The customer's record summary.
    type Customer = &'p RecordSummary;

    fn partner(&self, id: PartnerId) -> Option<u32> {
        let index = *self.0.p.partner_index.get(&id)?;
        (self.0.p.standings[index as usize].created < self.0.n).then_some(index)
    }

    fn customer(&self, id: CustomerId) -> Option<&'p RecordSummary> {
        let summary = self.0.p.customer_index.get(&id)?;
        (summary.created < self.0.n).then_some(summary)
    }

    fn in_program(&self, partner: u32, program: Program) -> bool {
        let summary = &self.0.p.standings[partner as usize];
        let since = match program {
            Program::IndirectProvider => summary.provider_since,
            Program::IndirectReseller => summary.reseller_since,
        };
        since < self.0.n
    }

    fn deauthorized(&self, partner: u32) -> Option<u32> {
        let latest = self.0.p.standings[partner as usize].deauthorized;
        self.0.latest_before(partner, latest, |p| &p.deauthorized)
    }

    fn authorized(&self, partner: u32) -> Known<u32> {
        let latest = self.0.p.standings[partner as usize].authorized;
        match self.0.latest_before(partner, latest, |p| &p.authorized) {
            Some(seq) => Known::Holds(seq),
            // A rejection is the event that made it fail, when there is one.
            None => Known::Fails(
                match self.0.p.partners[partner as usize].status.at(self.0.n) {
                    Some((seq, PartnerStatus::Rejected { .. })) => Some(seq),
                    _ => None,
                },
            ),
        }
    }

    fn agreement_signed(&self, partner: u32) -> Option<u32> {
        let latest = self.0.p.standings[partner as usize].signed;
        self.0.latest_before(partner, latest, |p| &p.signed)
    }

    fn partnership_active(&self, provider: u32, reseller: u32) -> Known<u32> {
        let fact = self
            .0
            .p
            .partnership_index
            .get(&(provider, reseller))
            .map_or(Fact::Never, |index| {
                self.0.p.partnerships[*index as usize].active.at(self.0.n)
            });
        known(fact)
    }

    fn of_record(&self, customer: &'p RecordSummary, partner: u32) -> Known<u32> {
        let n = self.0.n;
        let fact = customer.of_record(partner, n).unwrap_or_else(|| {
            self.0.p.customers[customer.index as usize]
                .relationships
                .iter()
                .find(|relationship| relationship.partner == partner)
                .map_or(Fact::Never, |relationship| relationship.of_record.at(n))
        });
        known(fact)
    }
}

impl View<'_> {
    /// The latest of a partner's marks before the view: the summary's `latest` when the
    /// view is past it, the record's full marks otherwise.
    fn latest_before(
        &self,
        partner: u32,
        latest: u32,
        all: fn(&PartnerRec) -> &Marks,
    ) -> Option<u32> {
        match latest {
            NONE => None,
            latest if latest < self.n => Some(latest),
            _ => all(&self.p.partners[partner as usize]).last_before(self.n),
        }
    }
}

fn known(fact: Fact) -> Known<u32> {
    match fact {
        Fact::Held(seq) => Known::Holds(seq),
        Fact::Ended(seq) => Known::Fails(Some(seq)),
        Fact::Never => Known::Fails(None),
    }
}

impl Fact {
    /// The evidence when the fact holds.
    pub(crate) fn held(self) -> Option<u32> {
        match self {
            Fact::Held(seq) => Some(seq),
            _ => None,
        }
    }
}

/// Convenience for explanations: a customer's relationship tier names.
pub fn tier_name(tier: RelationshipTier) -> &'static str {
    match tier {
        RelationshipTier::Direct => "direct",
        RelationshipTier::IndirectReseller => "indirect_reseller",
        RelationshipTier::IndirectProvider => "indirect_provider",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Envelope;

    /// The time index finds the same count as a search of every time, at every instant
    /// around every event, with many events sharing a time.
    #[test]
    fn a_search_by_time_through_the_index_equals_a_search_of_every_time() {
        let samples = domain::sample_events();
        let mut projections = Projections::new();
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let mut times = Vec::new();
        for seq in 0..1000u64 {
            // Runs of equal times of varying length, so strides start inside runs.
            let time = start + chrono::Duration::milliseconds((seq / 7 + seq / 61) as i64);
            times.push(time.timestamp_nanos_opt().unwrap_or_default());
            let envelope = Envelope {
                event_id: uuid::Uuid::from_u128(u128::from(seq) + 1),
                position: seq * 3,
                recorded_at: time,
                stream: "stream-1",
                actor: "{}",
            };
            let event = &samples[seq as usize % samples.len()];
            assert!(projections.apply_event(envelope, event).is_ok());
        }
        let last = *times.last().unwrap_or(&0);
        for nanos in (-2..last + 2_000_000).step_by(250_000) {
            let expected = times.partition_point(|t| *t <= nanos);
            assert_eq!(
                projections.count_through_time(nanos),
                expected,
                "at {nanos}"
            );
        }
        assert_eq!(projections.count_through_time(i64::MIN), 0);
        assert_eq!(projections.count_through_time(i64::MAX), times.len());
        // Positions with gaps: a view answers at the last event at or before the position.
        for position in 0..=2997u64 {
            let view = projections.at(Some(AsOf::Position(position)));
            assert_eq!(
                view.map(|v| v.position()),
                Ok(Some(position - position % 3))
            );
        }
    }
}
