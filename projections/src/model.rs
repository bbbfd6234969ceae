//! The read models' state and how each event changes it.
//!
//! Built from events alone (never from the domain's write model): every fact is kept as its
//! history (intervals of validity, versions, marks; see [`crate::timeline`]), so that the
//! queries in [`crate::query`] answer at any prefix of the log. Applying an event only ever
//! appends to those histories, which is what makes as-of answers equal to the answers of a
//! rebuild of the prefix.

use chrono::{DateTime, Utc};
use domain::events::{CustomerParty, Event, GranularAdminApproved, GranularAdminRequested};
use domain::types::{CustomerProfile, LegalProfile, RelationshipTier, SupportDetails};
use domain::{
    Country, CustomerId, Email, GranularAdminRequestId, GranularDuration, OrderId, PartnerId,
    PartnerNumber, Roles, TenantId, UserId,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use store::RecordedEvent;
use uuid::Uuid;

use smallvec::SmallVec;

use crate::idtable::IdTable;
use crate::input::{self, Hot};
use crate::intern::{Names, hash_of, sorted};
use crate::timeline::{Fact, History, Marks, Mentions, NONE, Span, Spans, Versions};

/// Why an event could not be applied. The read models never skip a fact: the caller stops
/// and reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The payload could not be decoded as the event type and version it claims.
    #[error("event at position {position} cannot be read: {reason}")]
    Undecodable {
        /// Its position.
        position: u64,
        /// What the decoder said.
        reason: String,
    },
    /// Positions must strictly increase; the log handed them out of order.
    #[error("event at position {position} comes after position {previous}: out of order")]
    OutOfOrder {
        /// The position of the last event applied.
        previous: u64,
        /// The position offered.
        position: u64,
    },
    /// Recorded-at must not decrease in log order (the store guarantees it).
    #[error("event at position {position} was recorded before the event before it")]
    TimeWentBack {
        /// The position offered.
        position: u64,
    },
    /// More events than the read models can number (4 294 967 294).
    #[error("the read models are full: more than {} events", u32::MAX - 1)]
    Full,
    /// The recorded-at time is outside what nanoseconds since 1970 can hold.
    #[error("event at position {position} has a recorded-at time out of range")]
    TimeOutOfRange {
        /// The position offered.
        position: u64,
    },
}

/// The envelope facts the read models keep for each event.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The event's id.
    pub event_id: Uuid,
    /// Its global position.
    pub position: u64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Its stream.
    pub stream: &'a str,
    /// Who caused it: the envelope's actor text (JSON of `domain::Actor`).
    pub actor: &'a str,
}

impl<'a> Envelope<'a> {
    /// The envelope of a recorded event.
    pub fn of(recorded: &'a RecordedEvent) -> Self {
        Envelope {
            event_id: recorded.event_id,
            position: recorded.position.0,
            recorded_at: recorded.recorded_at,
            stream: recorded.stream.as_str(),
            actor: &recorded.actor,
        }
    }
}

/// A partner's enrollment status, as SPEC §2.1 names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PartnerStatus {
    /// Enrolling.
    Pending {
        /// The sub-status.
        step: PendingStep,
    },
    /// Authorized by the operator (or onboarded as a provider).
    Authorized,
    /// Rejected, with the operator's reason.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Deauthorized by the operator, with its reason.
    Deauthorized {
        /// Why.
        reason: String,
    },
}

/// The sub-status of a pending enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStep {
    /// Profile, MPN link and legal details still being gathered.
    Profile,
    /// Waiting for the primary contact to verify its email.
    EmailOwnership,
    /// Under review, awaiting the operator's decision.
    Decision,
}

/// A signed partner agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// The agreement's version as shown to the signer.
    pub version: String,
    /// The signing global admin.
    pub signed_by: UserId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartnerRec {
    pub id: PartnerId,
    pub created: u32,
    pub tenant: TenantId,
    pub country: Country,
    /// The event that made it an indirect provider, or [`NONE`].
    pub provider_since: u32,
    /// The event that made it an indirect reseller, or [`NONE`].
    pub reseller_since: u32,
    pub name: Versions<String>,
    pub number: Versions<PartnerNumber>,
    pub legal: Versions<LegalProfile>,
    pub support: Versions<SupportDetails>,
    pub countries_served: Vec<Country>,
    pub status: Versions<PartnerStatus>,
    pub authorized: Marks,
    pub agreement: Versions<Agreement>,
    /// The agreement signatures as marks (inline, for order rights: `agreement`'s versions
    /// live on the heap).
    pub signed: Marks,
    pub deauthorized: Marks,
    /// Working state of the pending sub-status: the verified primary-contact email.
    pub verified_email: Option<Email>,
    pub users: Vec<u32>,
    /// Customers it was ever reseller of record for, in order of the first time.
    pub customers: Vec<u32>,
    /// Partnerships where it is the provider / the reseller, in order of the invitation.
    pub as_provider: Vec<u32>,
    pub as_reseller: Vec<u32>,
    pub history: History,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserRec {
    pub id: UserId,
    pub partner: u32,
    pub created: u32,
    pub full_name: String,
    pub email: Email,
    pub roles: Versions<Roles>,
    pub removed: Spans,
    /// Intervals while a temporary password waited to be changed.
    pub temporary: Spans,
    pub history: History,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartnershipRec {
    pub provider: u32,
    pub reseller: u32,
    pub invited: Marks,
    pub active: Spans,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RelationshipRec {
    pub partner: u32,
    pub of_record: Spans,
    /// The tier of each interval of `of_record` (inline: a tier rarely changes).
    pub tiers: SmallVec<[RelationshipTier; 16]>,
    pub delegated: Spans,
    pub history: History,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GranularRec {
    pub request_id: GranularAdminRequestId,
    pub partner: u32,
    pub roles: Vec<String>,
    pub duration: GranularDuration,
    pub request_expires_at: DateTime<Utc>,
    pub requested: u32,
    pub approved: u32,
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub revoked: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CustomerRec {
    pub id: CustomerId,
    pub created: u32,
    pub profile: CustomerProfile,
    /// Inline: a customer has one or two partners of record (a reseller and its provider).
    pub relationships: SmallVec<[RelationshipRec; 2]>,
    pub granular: Vec<GranularRec>,
    pub history: History,
}

/// A partner's standing in 28 bytes, for order rights: when it was created and entered each
/// program, and its latest authorization, agreement signature and deauthorization. Derived
/// from the partner's record (never serialized); a view older than one of those latest
/// events asks the record's full marks instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StandingSummary {
    pub created: u32,
    pub provider_since: u32,
    pub reseller_since: u32,
    pub authorized: u32,
    pub signed: u32,
    pub deauthorized: u32,
}

impl StandingSummary {
    /// The summary of a partner's record.
    pub fn of(partner: &PartnerRec) -> Self {
        StandingSummary {
            created: partner.created,
            provider_since: partner.provider_since,
            reseller_since: partner.reseller_since,
            authorized: partner.authorized.last().unwrap_or(NONE),
            signed: partner.signed.last().unwrap_or(NONE),
            deauthorized: partner.deauthorized.last().unwrap_or(NONE),
        }
    }
}

/// The reseller-of-record facts of one customer in 36 bytes, for order rights: a customer
/// almost always has at most two partners of record, each made so once, and this summary of
/// its record (derived from it, never serialized) is small enough for the summaries of
/// every customer to stay in cache where the records themselves cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordSummary {
    /// The customer's index.
    pub index: u32,
    /// The event that first recorded the customer.
    pub created: u32,
    /// The partners of its first two relationships ([`NONE`]: no such relationship).
    pub partners: [u32; 2],
    /// The one interval of each of those relationships' record.
    pub spans: [Span; 2],
    /// The record has more than this (a third relationship, or one made of record again
    /// after a removal): ask the record itself.
    pub overflow: bool,
}

impl RecordSummary {
    const NEVER: Span = Span {
        start: NONE,
        end: NONE,
    };

    /// The summary of a customer's record.
    pub fn of(index: u32, customer: &CustomerRec) -> Self {
        let mut summary = RecordSummary {
            index,
            created: customer.created,
            partners: [NONE; 2],
            spans: [Self::NEVER; 2],
            overflow: customer.relationships.len() > 2,
        };
        for (slot, relationship) in customer.relationships.iter().take(2).enumerate() {
            summary.partners[slot] = relationship.partner;
            match relationship.of_record.single() {
                Some(span) => summary.spans[slot] = span.unwrap_or(Self::NEVER),
                None => summary.overflow = true,
            }
        }
        summary
    }

    /// Whether `partner` was of record as of the first `n` events, when the summary tells.
    pub fn of_record(&self, partner: u32, n: u32) -> Option<Fact> {
        if self.overflow {
            return None;
        }
        Some(match self.partners.iter().position(|p| *p == partner) {
            Some(slot) => self.spans[slot].at(n),
            None => Fact::Never,
        })
    }
}

/// Serializes the customers' map as its sorted pairs of id and index, as a map of indexes
/// is (see [`sorted`]): the summaries are derived, and left out. What it reads back holds
/// only the indexes, marked to be asked of the record until
/// [`Projections::rebuild_indexes`] derives them.
mod summaries {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Writes the pairs of id and index, sorted by id.
    pub fn serialize<S: Serializer>(
        map: &IdTable<CustomerId, RecordSummary>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let entries: Vec<(&CustomerId, u32)> = map
            .sorted()
            .into_iter()
            .map(|(id, summary)| (id, summary.index))
            .collect();
        entries.serialize(serializer)
    }

    /// Reads pairs written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<IdTable<CustomerId, RecordSummary>, D::Error> {
        let entries: Vec<(CustomerId, u32)> = Vec::deserialize(deserializer)?;
        Ok(entries
            .into_iter()
            .map(|(id, index)| {
                let unknown = RecordSummary {
                    index,
                    created: NONE,
                    partners: [NONE; 2],
                    spans: [RecordSummary::NEVER; 2],
                    overflow: true,
                };
                (id, unknown)
            })
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderRec {
    pub customer: u32,
    pub provider: u32,
    pub reseller: u32,
    pub user: u32,
}

/// The envelope columns of every event applied, by sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventTable {
    pub positions: Vec<u64>,
    /// Recorded-at, nanoseconds since 1970 (non-decreasing).
    pub times: Vec<i64>,
    /// Index into `domain::EVENT_TYPES`.
    pub kinds: Vec<u8>,
    pub actors: Vec<u32>,
    pub streams: Vec<u32>,
    /// The previous event of the same stream, or [`NONE`]: a stream's history is a walk.
    pub previous_in_stream: Vec<u32>,
    /// The last event of each stream, by stream index.
    pub stream_last: Vec<u32>,
    pub stream_names: Names,
    pub actor_names: Names,
    /// Whether positions are `positions[0] + seq` (no gaps), for an O(1) position lookup.
    pub dense: bool,
    /// Every [`TIME_INDEX_STRIDE`]th recorded-at time: a small index (it stays in cache)
    /// that narrows a search by time to one stride of `times`.
    #[serde(skip)]
    pub time_index: Vec<i64>,
}

/// How many events one entry of the time index stands for.
pub(crate) const TIME_INDEX_STRIDE: usize = 64;

/// How many events [`Projections::apply_all`] reads ahead at once: enough for their cache
/// misses to overlap, few enough that what they bring stays in the cache until the batch
/// is applied.
const WARM_BATCH: usize = 32;

/// The [`hash_of`] an event's stream and actor names, computed once for their lookups.
#[derive(Clone, Copy, Debug, Default)]
struct NameHashes {
    stream: u32,
    actor: u32,
}

impl NameHashes {
    fn of(envelope: Envelope<'_>) -> Self {
        NameHashes {
            stream: hash_of(envelope.stream),
            actor: hash_of(envelope.actor),
        }
    }
}

/// What reading a batch ahead found of one of its events: its type (an index into
/// `domain::EVENT_TYPES`), and its view, if it has one and the payload reads through it.
struct Ahead {
    kind: Option<usize>,
    hot: Option<Hot>,
    /// What the batch's warming pass found of the parties the view names.
    found: Found,
}

/// The indexes of the parties an event's view names, as a batch's warming pass found them
/// ([`NONE`]: not looked up, or not known yet), for reading their records ahead, and for
/// applying the event to use rather than look them up a second time (all but a
/// cancellation's, which come from its order, and an acceptance's or import's customer).
/// An index found before the batch is still right when the event is applied: the lookups
/// of partners, users and customers only ever gain entries, and never change one. One not
/// found is looked up again when the event is applied, as an earlier event of the batch
/// may have added it.
#[derive(Clone, Copy, Debug)]
struct Found {
    customer: u32,
    /// The view's partners in the order of its fields (an acceptance's first two; a
    /// cancellation's order's provider and reseller).
    partners: [u32; 2],
    user: u32,
}

impl Found {
    const NOTHING: Found = Found {
        customer: NONE,
        partners: [NONE; 2],
        user: NONE,
    };
}

/// `found`, an index a batch's warming pass found (see [`Found`]), or else (it is [`NONE`])
/// what `look_up` finds now.
fn found_or(found: u32, look_up: impl FnOnce() -> Option<u32>) -> Option<u32> {
    if found == NONE {
        return look_up();
    }
    debug_assert_eq!(look_up(), Some(found), "an index found ahead changed");
    Some(found)
}

impl Ahead {
    fn of(recorded: &RecordedEvent) -> Self {
        let kind = domain::event_type_index(&recorded.event_type);
        // Views know only the current version; older ones are upcast by the domain's
        // decoder, which also says what is wrong with a payload they cannot read.
        let hot = kind
            .filter(|kind| recorded.schema_version == domain::EVENT_TYPES[*kind].version)
            .and_then(|kind| Hot::read(kind, &recorded.payload));
        Ahead {
            kind,
            hot,
            found: Found::NOTHING,
        }
    }
}

/// Reads ahead the bytes of `batch` that reading it will read: each event's type, stream
/// and actor names and every cache line of its payload. They sit apart on the heap, each
/// its own allocation, so reading them event by event waits for each miss in turn; read
/// here first, the misses of the whole batch overlap. Nothing changes.
fn warm_input(batch: &[RecordedEvent]) {
    const LINE: usize = 64;
    let mut read = 0u8;
    for recorded in batch {
        let first = |bytes: &[u8]| bytes.first().copied().unwrap_or(0);
        read ^= first(recorded.event_type.as_bytes())
            ^ first(recorded.stream.as_str().as_bytes())
            ^ first(recorded.actor.as_bytes());
        for line in recorded.payload.chunks(LINE) {
            read ^= first(line);
        }
    }
    std::hint::black_box(read);
}

impl EventTable {
    /// Computes the name hashes of `batch` into `hashes` and reads ahead what interning
    /// them will read: first every lookup slot, then every name's text and its stream's
    /// last event. Nothing changes; the reads only bring those lines into the cache, with
    /// the misses of the batch overlapping (each read is independent of the others).
    fn warm(&self, batch: &[RecordedEvent], hashes: &mut [NameHashes]) {
        for (recorded, hashes) in batch.iter().zip(hashes.iter_mut()) {
            *hashes = NameHashes::of(Envelope::of(recorded));
        }
        // Apart from the hashing, so that this loop is short enough for the processor to
        // have the slot reads of many events under way at once.
        let mut read = 0u32;
        for hashes in &hashes[..batch.len()] {
            read ^= self.stream_names.warm_slot(hashes.stream);
            read ^= self.actor_names.warm_slot(hashes.actor);
        }
        for hashes in &hashes[..batch.len()] {
            if let Some((stream, byte)) = self.stream_names.warm_text(hashes.stream) {
                let last = self.stream_last.get(stream as usize).copied();
                read ^= u32::from(byte) ^ last.unwrap_or(0);
            }
            if let Some((_, byte)) = self.actor_names.warm_text(hashes.actor) {
                read ^= u32::from(byte);
            }
        }
        std::hint::black_box(read);
    }
}

/// The read models of SPEC §5, built from the log alone.
///
/// Apply recorded events in log order with [`Projections::apply`]; query with
/// [`Projections::at`]. Two values built from the same log are equal and serialize to the
/// same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projections {
    pub(crate) events: EventTable,
    pub(crate) partners: Vec<PartnerRec>,
    /// Serialized sorted by id, as the maps are.
    pub(crate) partner_index: IdTable<PartnerId, u32>,
    /// [`StandingSummary`] of each partner, by index.
    #[serde(skip)]
    pub(crate) standings: Vec<StandingSummary>,
    /// Serialized sorted by id, as the maps are.
    pub(crate) partner_by_tenant: IdTable<TenantId, u32>,
    #[serde(with = "sorted")]
    pub(crate) partner_by_number: FxHashMap<PartnerNumber, u32>,
    pub(crate) users: Vec<UserRec>,
    /// Serialized sorted by id, as the maps are.
    pub(crate) user_index: IdTable<UserId, u32>,
    pub(crate) partnerships: Vec<PartnershipRec>,
    #[serde(with = "sorted")]
    pub(crate) partnership_index: FxHashMap<(u32, u32), u32>,
    pub(crate) customers: Vec<CustomerRec>,
    /// Each customer's index and [`RecordSummary`], by id: one lookup finds both (the
    /// summary sits in the table's slot beside the key). Serialized as the sorted pairs of
    /// id and index alone: the summaries are derived again after reading.
    #[serde(with = "summaries")]
    pub(crate) customer_index: IdTable<CustomerId, RecordSummary>,
    /// Serialized sorted by id, as the maps are.
    pub(crate) customer_by_tenant: IdTable<TenantId, u32>,
    /// Serialized sorted by id, as the maps are.
    pub(crate) orders: IdTable<OrderId, OrderRec>,
    /// The mentions of every party's and relationship's history.
    pub(crate) mentions: Mentions,
    pub(crate) last_event_id: Option<Uuid>,
}

/// The profile a view read, its texts moved out rather than copied: the view is not read
/// again.
fn moved_profile(profile: &mut CustomerProfile) -> CustomerProfile {
    CustomerProfile {
        company_name: std::mem::take(&mut profile.company_name),
        primary_domain: std::mem::take(&mut profile.primary_domain),
        ..*profile
    }
}

fn pending_step(partner: &PartnerRec) -> PendingStep {
    // The same sub-status rule as the domain's partner: verified contact → decision;
    // profile and MPN link present → waiting for the contact; otherwise still gathering.
    if partner.verified_email.is_some() {
        PendingStep::Decision
    } else if partner.legal.current().is_some() && partner.number.current().is_some() {
        PendingStep::EmailOwnership
    } else {
        PendingStep::Profile
    }
}

fn refresh_pending(partner: &mut PartnerRec, seq: u32) {
    if matches!(
        partner.status.current(),
        Some(PartnerStatus::Pending { .. })
    ) {
        let step = pending_step(partner);
        partner
            .status
            .set_if_changed(seq, PartnerStatus::Pending { step });
    }
}

impl Projections {
    /// Empty read models (an empty log).
    pub fn new() -> Self {
        Self {
            events: EventTable {
                dense: true,
                ..EventTable::default()
            },
            ..Self::default()
        }
    }

    /// The position of the last event applied (`None`: nothing applied yet).
    pub fn position(&self) -> Option<u64> {
        self.events.positions.last().copied()
    }

    /// The id of the last event applied, to check a checkpoint against the log.
    pub fn last_event_id(&self) -> Option<Uuid> {
        self.last_event_id
    }

    /// How many events were applied.
    pub fn events_applied(&self) -> u64 {
        self.events.positions.len() as u64
    }

    /// Decodes and applies the next recorded event of the log.
    ///
    /// The most numerous event types are read through views of only the fields the read
    /// models keep (module `input`); the rest through the domain's decoder. Nothing changes
    /// unless the whole event applies.
    pub fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), ApplyError> {
        self.apply_ahead(
            recorded,
            NameHashes::of(Envelope::of(recorded)),
            &mut Ahead::of(recorded),
        )
    }

    /// [`Projections::apply`] with the hashes of the event's names already computed and
    /// its type (and view) already read.
    fn apply_ahead(
        &mut self,
        recorded: &RecordedEvent,
        hashes: NameHashes,
        ahead: &mut Ahead,
    ) -> Result<(), ApplyError> {
        let position = recorded.position.0;
        let undecodable = |reason: String| ApplyError::Undecodable { position, reason };
        let kind = ahead
            .kind
            .ok_or_else(|| undecodable(format!("unknown event type {:?}", recorded.event_type)))?;
        let envelope = Envelope::of(recorded);
        // Used where it lies in the batch: a view is large, and each move of it a copy.
        if let Some(hot) = &mut ahead.hot {
            let seq = self.record(&envelope, kind, hashes)?;
            self.evolve_hot(seq, hot, ahead.found);
            self.last_event_id = Some(envelope.event_id);
            return Ok(());
        }
        let current = recorded.schema_version == domain::EVENT_TYPES[kind].version;
        let event = match current
            .then(|| input::read_whole(kind, &recorded.payload))
            .flatten()
        {
            Some(event) => event,
            None => Event::decode_type(kind, recorded.schema_version, &recorded.payload)
                .map_err(|error| undecodable(error.to_string()))?,
        };
        self.apply_decoded(envelope, &event, hashes)
    }

    /// Applies the next events of the log in order, as [`Projections::apply`] one by one
    /// does (on an error, every event before the failing one is applied and none after),
    /// with room made first for their columns in one step rather than by doubling as they
    /// come.
    ///
    /// The events go in batches. A batch is read first: its input bytes (`warm_input`),
    /// every event's type, view and name hashes (`Ahead`, `NameHashes`), and then what
    /// applying it will look up (`Projections::warm`), so that the cache misses of the
    /// whole batch overlap rather than come one after another, each event waiting for its
    /// own. Reading changes nothing, so an error stops the batch as it would stop events
    /// applied one by one.
    pub fn apply_all(&mut self, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        self.reserve_for(events);
        let mut hashes = [NameHashes::default(); WARM_BATCH];
        let mut ahead = Vec::with_capacity(WARM_BATCH);
        for batch in events.chunks(WARM_BATCH) {
            warm_input(batch);
            ahead.extend(batch.iter().map(Ahead::of));
            self.warm(batch, &mut hashes, &mut ahead);
            for ((recorded, hashes), ahead) in batch.iter().zip(hashes).zip(&mut ahead) {
                self.apply_ahead(recorded, hashes, ahead)?;
            }
            ahead.clear();
        }
        Ok(())
    }

    /// Reads ahead what applying `batch` will read. First it asks for the slots of the id
    /// lookups the views in `ahead` will make ([`IdTable::prefetch`]); then it reads the
    /// name lookups ([`EventTable::warm`], which also computes the `hashes`); then it looks
    /// up the parties the views name (and a cancellation's order), noting them in their
    /// [`Found`] for the application to use; then it reads the records of those parties.
    /// Each pass's reads are independent of one another, so their misses overlap. Nothing
    /// changes.
    fn warm(&self, batch: &[RecordedEvent], hashes: &mut [NameHashes], ahead: &mut [Ahead]) {
        // First ask for the lookups' slots (their addresses follow from the ids alone), to
        // arrive while the names are warmed.
        let partner = |id: &PartnerId| self.partner_index.prefetch(id);
        for ahead in ahead.iter() {
            match &ahead.hot {
                Some(Hot::OrderSubmitted(e)) => {
                    self.orders.prefetch(&e.order_id);
                    self.customer_index.prefetch(&e.customer_id);
                    partner(&e.provider_id);
                    partner(&e.reseller_id);
                    self.user_index.prefetch(&e.submitted_by);
                }
                Some(Hot::SubscriptionCancelled(e)) => self.orders.prefetch(&e.order_id),
                Some(Hot::ResellerRelationshipAccepted(e)) => {
                    self.customer_index.prefetch(&e.customer_id);
                    self.customer_by_tenant.prefetch(&e.customer.tenant_id);
                    e.partners
                        .iter()
                        .for_each(|accepted| partner(&accepted.standing.partner_id));
                }
                Some(Hot::DelegatedAdminRemoved(e)) => {
                    self.customer_index.prefetch(&e.customer_id);
                    partner(&e.partner_id);
                }
                Some(Hot::CustomerInvitationCreated(e)) => {
                    partner(&e.partner_id);
                    e.provider_id.iter().for_each(partner);
                }
                Some(Hot::IndirectResellerInvited(e)) => {
                    partner(&e.provider_id);
                    partner(&e.reseller_id);
                }
                Some(Hot::MpnProfilesObserved(e)) => partner(&e.partner_id),
                Some(Hot::PrimaryContactVerificationRequested(e)) => partner(&e.partner_id),
                Some(Hot::IndirectProviderAuthorized(e)) => {
                    partner(&e.provider_id);
                    partner(&e.reseller_id);
                }
                Some(Hot::CustomerImported(e)) => {
                    self.customer_index.prefetch(&e.customer_id);
                    self.customer_by_tenant.prefetch(&e.customer.tenant_id);
                    partner(&e.reseller_id);
                }
                None => {}
            }
        }
        self.events.warm(batch, hashes);
        let mut read = 0u32;
        let customer = |id: &CustomerId| self.customer_index.get(id).map_or(NONE, |s| s.index);
        let partner = |id: &PartnerId| self.partner_index.get(id).copied().unwrap_or(NONE);
        let user = |id: &UserId| self.user_index.get(id).copied().unwrap_or(NONE);
        for ahead in ahead.iter_mut() {
            let found = &mut ahead.found;
            match &ahead.hot {
                Some(Hot::OrderSubmitted(e)) => {
                    // A new order: the lookup reads the slots its insertion will probe.
                    read ^= u32::from(self.orders.contains_key(&e.order_id));
                    found.customer = customer(&e.customer_id);
                    found.partners = [partner(&e.provider_id), partner(&e.reseller_id)];
                    found.user = user(&e.submitted_by);
                }
                Some(Hot::SubscriptionCancelled(e)) => {
                    // The order's parties, for their records to be read ahead only: applying
                    // looks the order up again, as a second submission of it earlier in the
                    // batch would change them.
                    if let Some(order) = self.orders.get(&e.order_id) {
                        found.customer = order.customer;
                        found.partners = [order.provider, order.reseller];
                        found.user = order.user;
                    }
                }
                Some(Hot::ResellerRelationshipAccepted(e)) => {
                    // Read ahead only: applying finds or adds the customer in one step.
                    found.customer = customer(&e.customer_id);
                    for (slot, accepted) in found.partners.iter_mut().zip(&e.partners) {
                        *slot = partner(&accepted.standing.partner_id);
                    }
                }
                Some(Hot::DelegatedAdminRemoved(e)) => {
                    found.customer = customer(&e.customer_id);
                    found.partners[0] = partner(&e.partner_id);
                }
                Some(Hot::CustomerInvitationCreated(e)) => {
                    found.partners[0] = partner(&e.partner_id);
                    if let Some(provider) = &e.provider_id {
                        found.partners[1] = partner(provider);
                    }
                }
                Some(Hot::IndirectResellerInvited(e)) => {
                    found.partners = [partner(&e.provider_id), partner(&e.reseller_id)];
                }
                Some(Hot::MpnProfilesObserved(e)) => found.partners[0] = partner(&e.partner_id),
                Some(Hot::PrimaryContactVerificationRequested(e)) => {
                    found.partners[0] = partner(&e.partner_id);
                }
                Some(Hot::IndirectProviderAuthorized(e)) => {
                    found.partners = [partner(&e.provider_id), partner(&e.reseller_id)];
                }
                Some(Hot::CustomerImported(e)) => {
                    // Read ahead only, as an acceptance's customer.
                    found.customer = customer(&e.customer_id);
                    found.partners[0] = partner(&e.reseller_id);
                }
                None => {}
            }
        }
        // The records written: each party's history, and a customer's relationships.
        for ahead in ahead.iter() {
            let found = ahead.found;
            if let Some(record) = self.customers.get(found.customer as usize) {
                read ^= u32::from(record.history == History::default());
                read ^= record.relationships.len() as u32;
                if let Some(relationship) = record.relationships.first() {
                    read ^= u32::from(relationship.history == History::default());
                }
                if let Some(relationship) = record.relationships.get(1) {
                    crate::cache::prefetch(&relationship.history);
                }
            }
            let adds_customer = matches!(
                ahead.hot,
                Some(Hot::ResellerRelationshipAccepted(_) | Hot::CustomerImported(_))
            );
            for partner in found.partners {
                if let Some(record) = self.partners.get(partner as usize) {
                    crate::cache::prefetch(&record.history);
                    // An acceptance or import adds the customer to the partner's list.
                    if adds_customer && let Some(last) = record.customers.last() {
                        crate::cache::prefetch(last);
                    }
                }
            }
            if let Some(record) = self.users.get(found.user as usize) {
                crate::cache::prefetch(&record.history);
            }
        }
        std::hint::black_box(read);
    }

    /// Makes room for `events` more events in the per-event columns (a rebuild that knows
    /// how many events it will read calls this once: growing tables by doubling copies
    /// them and touches fresh memory twice).
    pub fn reserve(&mut self, events: usize) {
        let table = &mut self.events;
        table.positions.reserve(events);
        table.times.reserve(events);
        table.kinds.reserve(events);
        table.actors.reserve(events);
        table.streams.reserve(events);
        table.previous_in_stream.reserve(events);
        table.time_index.reserve(events / TIME_INDEX_STRIDE + 1);
        // Each event concerns a few parties and relationships (an order six, a typical
        // history about four on average): a guess, which doubling corrects. Room reserved
        // and not used is never touched, so it costs address space only.
        self.mentions.reserve(events.saturating_mul(4));
    }

    /// Makes room for `events`: their columns and mentions ([`Projections::reserve`]), and
    /// what they can add at most where an upper bound is cheap to know from the envelopes
    /// alone: the text of their stream and actor names, the streams they start (one per
    /// revision 0), their customers (one per acceptance or import at most) and their orders
    /// (one per submission). Room not used is never touched, so an overestimate costs
    /// address space only.
    fn reserve_for(&mut self, events: &[RecordedEvent]) {
        self.reserve(events.len());
        use domain::events::type_index as t;
        // Compared by name (a length differs at once), cheaper than finding every type.
        let named = |index: usize| domain::EVENT_TYPES[index].name;
        let (accepted, imported, ordered) = (
            named(t::ResellerRelationshipAccepted),
            named(t::CustomerImported),
            named(t::OrderSubmitted),
        );
        let (mut stream_bytes, mut actor_bytes) = (0usize, 0usize);
        let (mut customers, mut orders, mut new_streams) = (0usize, 0usize, 0usize);
        for event in events {
            new_streams += usize::from(event.revision == 0);
            stream_bytes = stream_bytes.saturating_add(event.stream.as_str().len());
            actor_bytes = actor_bytes.saturating_add(event.actor.len());
            let event_type = event.event_type.as_str();
            customers += usize::from(event_type == accepted || event_type == imported);
            orders += usize::from(event_type == ordered);
        }
        let table = &mut self.events;
        // A stream's first event is its revision 0, so those count the new streams (of a
        // valid log: the lookup grows if more come). The actors have no such bound (one
        // per event would be far more than they use): their lookup is sized for a new
        // actor in four events, about the share of the acceptances and enrollments that
        // bring them, and doubles if more come; each doubling moved every slot.
        table.stream_names.reserve(new_streams, stream_bytes);
        table.actor_names.reserve(events.len() / 4, actor_bytes);
        table.stream_last.reserve(new_streams);
        // The maps too: growing one by doubling rehashes every entry into a fresh table.
        self.customers.reserve(customers);
        self.customer_index.reserve(customers);
        self.customer_by_tenant.reserve(customers);
        self.orders.reserve(orders);
    }

    /// Applies the next event of the log, already decoded.
    pub fn apply_event(&mut self, envelope: Envelope<'_>, event: &Event) -> Result<(), ApplyError> {
        let hashes = NameHashes::of(envelope);
        self.apply_decoded(envelope, event, hashes)
    }

    fn apply_decoded(
        &mut self,
        envelope: Envelope<'_>,
        event: &Event,
        hashes: NameHashes,
    ) -> Result<(), ApplyError> {
        let seq = self.record(&envelope, event.type_index(), hashes)?;
        self.evolve(seq, event);
        self.last_event_id = Some(envelope.event_id);
        Ok(())
    }

    /// Appends the envelope columns; returns the event's sequence number. Checks everything
    /// before changing anything.
    fn record(
        &mut self,
        envelope: &Envelope<'_>,
        kind: usize,
        hashes: NameHashes,
    ) -> Result<u32, ApplyError> {
        let table = &mut self.events;
        let position = envelope.position;
        if let Some(&previous) = table.positions.last()
            && position <= previous
        {
            return Err(ApplyError::OutOfOrder { previous, position });
        }
        let time = envelope
            .recorded_at
            .timestamp_nanos_opt()
            .ok_or(ApplyError::TimeOutOfRange { position })?;
        if table.times.last().is_some_and(|last| time < *last) {
            return Err(ApplyError::TimeWentBack { position });
        }
        let seq = u32::try_from(table.positions.len()).map_err(|_| ApplyError::Full)?;
        if seq >= NONE - 1 || !self.mentions.has_room() {
            return Err(ApplyError::Full);
        }
        // Interning may add a name that a failure of the other leaves unused: harmless, and
        // only when the names pass 4 GiB.
        let stream = table
            .stream_names
            .intern_hashed(envelope.stream, hashes.stream)
            .ok_or(ApplyError::Full)?;
        let actor = table
            .actor_names
            .intern_hashed(envelope.actor, hashes.actor)
            .ok_or(ApplyError::Full)?;
        if let Some(&first) = table.positions.first() {
            table.dense &= position == first + u64::from(seq);
        }
        if stream as usize == table.stream_last.len() {
            table.stream_last.push(NONE);
        }
        let previous = std::mem::replace(&mut table.stream_last[stream as usize], seq);
        if table.times.len().is_multiple_of(TIME_INDEX_STRIDE) {
            table.time_index.push(time);
        }
        table.positions.push(position);
        table.times.push(time);
        table.kinds.push(kind as u8);
        table.actors.push(actor);
        table.streams.push(stream);
        table.previous_in_stream.push(previous);
        Ok(seq)
    }

    /// The user of `id`, with the event added to its history.
    fn mention_user(&mut self, id: UserId, seq: u32) -> Option<&mut UserRec> {
        let index = *self.user_index.get(&id)?;
        let user = &mut self.users[index as usize];
        self.mentions.mention(&mut user.history, seq);
        Some(user)
    }

    fn mention_partner(&mut self, id: PartnerId, seq: u32) -> Option<u32> {
        self.mention_partner_found(id, NONE, seq)
    }

    /// The index of partner `id`: `found`, if the warming pass found it (see [`Found`]),
    /// else looked up.
    fn partner_found(&self, id: &PartnerId, found: u32) -> Option<u32> {
        found_or(found, || self.partner_index.get(id).copied())
    }

    /// The index of customer `id`, as [`Projections::partner_found`] finds a partner's.
    fn customer_found(&self, id: &CustomerId, found: u32) -> Option<u32> {
        found_or(found, || self.customer_index.get(id).map(|s| s.index))
    }

    /// The index of user `id`, as [`Projections::partner_found`] finds a partner's.
    fn user_found(&self, id: &UserId, found: u32) -> Option<u32> {
        found_or(found, || self.user_index.get(id).copied())
    }

    /// [`Projections::mention_partner`], with its index found ahead or [`NONE`].
    fn mention_partner_found(&mut self, id: PartnerId, found: u32, seq: u32) -> Option<u32> {
        let index = self.partner_found(&id, found)?;
        self.mentions
            .mention(&mut self.partners[index as usize].history, seq);
        Some(index)
    }

    fn mention_customer(&mut self, id: CustomerId, seq: u32) -> Option<u32> {
        self.mention_customer_found(id, NONE, seq)
    }

    /// [`Projections::mention_customer`], with its index found ahead or [`NONE`].
    fn mention_customer_found(&mut self, id: CustomerId, found: u32, seq: u32) -> Option<u32> {
        let index = self.customer_found(&id, found)?;
        self.mentions
            .mention(&mut self.customers[index as usize].history, seq);
        Some(index)
    }

    /// A partner event that changes only the partner record.
    fn with_partner(&mut self, id: PartnerId, seq: u32, change: impl FnOnce(&mut PartnerRec)) {
        let Some(index) = self.mention_partner(id, seq) else {
            return;
        };
        change(&mut self.partners[index as usize]);
        self.summarize_partner(index);
    }

    /// Derives a partner's standing summary anew, after its record changed.
    fn summarize_partner(&mut self, partner: u32) {
        let summary = StandingSummary::of(&self.partners[partner as usize]);
        match self.standings.get_mut(partner as usize) {
            Some(slot) => *slot = summary,
            None => {
                debug_assert_eq!(partner as usize, self.standings.len());
                self.standings.push(summary);
            }
        }
    }

    fn new_partner(
        &mut self,
        id: PartnerId,
        seq: u32,
        tenant: TenantId,
        country: Country,
        name: &str,
    ) -> Option<u32> {
        if self.partner_index.contains_key(&id) {
            // A partner is created once; a second creation of the same id changes nothing,
            // as in the domain's write model, which the decision would have refused anyway.
            return None;
        }
        let index = self.partners.len() as u32;
        let mut name_versions = Versions::default();
        name_versions.set(seq, name.to_owned());
        let mut history = History::default();
        self.mentions.mention(&mut history, seq);
        self.partners.push(PartnerRec {
            id,
            created: seq,
            tenant,
            country,
            provider_since: NONE,
            reseller_since: NONE,
            name: name_versions,
            number: Versions::default(),
            legal: Versions::default(),
            support: Versions::default(),
            countries_served: vec![country],
            status: Versions::default(),
            authorized: Marks::default(),
            agreement: Versions::default(),
            signed: Marks::default(),
            deauthorized: Marks::default(),
            verified_email: None,
            users: Vec::new(),
            customers: Vec::new(),
            as_provider: Vec::new(),
            as_reseller: Vec::new(),
            history,
        });
        self.partner_index.insert(id, index);
        Some(index)
    }

    /// The customer of an import or acceptance, created on first sight.
    fn known_customer(&mut self, id: CustomerId, profile: CustomerProfile, seq: u32) -> u32 {
        let tenant = profile.tenant_id;
        let customers = &mut self.customers;
        let summary = self.customer_index.get_or_insert_with(id, || {
            let index = customers.len() as u32;
            let record = CustomerRec {
                id,
                created: seq,
                profile,
                relationships: SmallVec::new(),
                granular: Vec::new(),
                history: History::default(),
            };
            let summary = RecordSummary::of(index, &record);
            customers.push(record);
            summary
        });
        let index = summary.index;
        self.customer_by_tenant.get_or_insert_with(tenant, || index);
        self.mentions
            .mention(&mut self.customers[index as usize].history, seq);
        index
    }

    /// The slot of the relationship of a customer and a partner, if any.
    fn relationship_slot(&self, customer: u32, partner: u32) -> Option<usize> {
        self.customers[customer as usize]
            .relationships
            .iter()
            .position(|r| r.partner == partner)
    }

    /// The slot of the relationship record of a customer and a partner, created on first
    /// sight.
    fn relationship(&mut self, customer: u32, partner: u32) -> usize {
        if let Some(slot) = self.relationship_slot(customer, partner) {
            return slot;
        }
        let relationships = &mut self.customers[customer as usize].relationships;
        relationships.push(RelationshipRec {
            partner,
            of_record: Spans::default(),
            tiers: SmallVec::new(),
            delegated: Spans::default(),
            history: History::default(),
        });
        self.partners[partner as usize].customers.push(customer);
        relationships.len() - 1
    }

    /// Adds the event to the history of the relationship of a customer and a partner (by
    /// index), if there is one; returns the relationship.
    fn mention_relationship(
        &mut self,
        customer: u32,
        partner: u32,
        seq: u32,
    ) -> Option<&mut RelationshipRec> {
        let slot = self.relationship_slot(customer, partner)?;
        let relationship = &mut self.customers[customer as usize].relationships[slot];
        self.mentions.mention(&mut relationship.history, seq);
        Some(relationship)
    }

    /// Makes `partner` reseller of record for `customer` (keeping an earlier start).
    fn make_of_record(
        &mut self,
        customer: u32,
        (partner, found): (PartnerId, u32),
        tier: RelationshipTier,
        seq: u32,
    ) {
        let Some(partner) = self.mention_partner_found(partner, found, seq) else {
            return;
        };
        let slot = self.relationship(customer, partner);
        let relationship = &mut self.customers[customer as usize].relationships[slot];
        if relationship.of_record.start_keep(seq) {
            relationship.tiers.push(tier);
        }
        self.mentions.mention(&mut relationship.history, seq);
    }

    /// Grants delegated admin to a partner of record (keeping an earlier grant).
    fn grant_delegated_admin(
        &mut self,
        customer: u32,
        (partner, found): (PartnerId, u32),
        seq: u32,
    ) {
        let Some(partner) = self.partner_found(&partner, found) else {
            return;
        };
        let Some(slot) = self.relationship_slot(customer, partner) else {
            return;
        };
        let relationship = &mut self.customers[customer as usize].relationships[slot];
        if relationship.of_record.is_open() {
            relationship.delegated.start_keep(seq);
            self.mentions.mention(&mut relationship.history, seq);
        }
    }

    fn accept(&mut self, e: &mut input::ResellerRelationshipAccepted, found: Found, seq: u32) {
        let customer = self.known_customer(e.customer_id, moved_profile(&mut e.customer), seq);
        // The partners found ahead are the first two (an acceptance names at most two).
        let found_partners = found.partners.into_iter().chain(std::iter::repeat(NONE));
        for (accepted, found) in e.partners.iter().zip(found_partners) {
            let partner = (accepted.standing.partner_id, found);
            self.make_of_record(customer, partner, accepted.tier, seq);
        }
        // Looked up: the partner is one just made of record, so its entry is in the cache.
        self.grant_delegated_admin(customer, (e.delegated_admin_to, NONE), seq);
        self.summarize(customer);
    }

    fn granular_requested(&mut self, e: &GranularAdminRequested, seq: u32) {
        let Some(customer) = self.mention_customer(e.customer_id, seq) else {
            return;
        };
        let Some(partner) = self.mention_partner(e.partner_id, seq) else {
            return;
        };
        self.mention_relationship(customer, partner, seq);
        self.customers[customer as usize]
            .granular
            .push(GranularRec {
                request_id: e.request_id,
                partner,
                roles: e.roles.clone(),
                duration: e.duration,
                request_expires_at: e.request_expires_at,
                requested: seq,
                approved: NONE,
                window: None,
                revoked: NONE,
            });
    }

    fn granular_mut(
        &mut self,
        customer_id: CustomerId,
        request_id: GranularAdminRequestId,
        seq: u32,
    ) -> Option<&mut GranularRec> {
        let customer = self.mention_customer(customer_id, seq)?;
        let slot = self.customers[customer as usize]
            .granular
            .iter()
            .position(|g| g.request_id == request_id)?;
        let partner = self.customers[customer as usize].granular[slot].partner;
        self.mentions
            .mention(&mut self.partners[partner as usize].history, seq);
        self.mention_relationship(customer, partner, seq);
        Some(&mut self.customers[customer as usize].granular[slot])
    }

    fn granular_approved(&mut self, e: &GranularAdminApproved, seq: u32) {
        if let Some(request) = self.granular_mut(e.customer_id, e.request_id, seq) {
            request.approved = seq;
            request.window = Some((e.starts_at, e.ends_at));
        }
    }

    fn mention_party(&mut self, party: &CustomerParty, seq: u32) {
        if let CustomerParty::Partner { partner_id } = party {
            self.mention_partner(*partner_id, seq);
        }
    }

    fn invitation_created(
        &mut self,
        partner: PartnerId,
        provider: Option<PartnerId>,
        found: [u32; 2],
        seq: u32,
    ) {
        self.mention_partner_found(partner, found[0], seq);
        if let Some(provider) = provider {
            self.mention_partner_found(provider, found[1], seq);
        }
    }

    fn delegated_admin_removed(
        &mut self,
        customer: CustomerId,
        partner: PartnerId,
        found: Found,
        seq: u32,
    ) {
        let Some(customer) = self.mention_customer_found(customer, found.customer, seq) else {
            return;
        };
        let Some(partner) = self.mention_partner_found(partner, found.partners[0], seq) else {
            return;
        };
        if let Some(relationship) = self.mention_relationship(customer, partner, seq) {
            relationship.delegated.end(seq);
        }
    }

    fn subscription_cancelled(&mut self, order: OrderId, seq: u32) {
        if let Some(order) = self.orders.get(&order).copied() {
            self.order_mentions(order, seq);
        }
    }

    fn reseller_invited(
        &mut self,
        provider: PartnerId,
        reseller: PartnerId,
        found: [u32; 2],
        seq: u32,
    ) {
        let provider = self.mention_partner_found(provider, found[0], seq);
        let reseller = self.mention_partner_found(reseller, found[1], seq);
        let (Some(provider), Some(reseller)) = (provider, reseller) else {
            return;
        };
        let index = match self.partnership_index.get(&(provider, reseller)) {
            Some(index) => *index,
            None => {
                let index = self.partnerships.len() as u32;
                self.partnerships.push(PartnershipRec {
                    provider,
                    reseller,
                    invited: Marks::default(),
                    active: Spans::default(),
                });
                self.partnership_index.insert((provider, reseller), index);
                self.partners[provider as usize].as_provider.push(index);
                self.partners[reseller as usize].as_reseller.push(index);
                index
            }
        };
        self.partnerships[index as usize].invited.push(seq);
    }

    fn order_submitted(&mut self, e: &input::OrderSubmitted, found: Found, seq: u32) {
        let [provider, reseller] = found.partners;
        let order = OrderRec {
            customer: self
                .customer_found(&e.customer_id, found.customer)
                .unwrap_or(NONE),
            provider: self.partner_found(&e.provider_id, provider).unwrap_or(NONE),
            reseller: self.partner_found(&e.reseller_id, reseller).unwrap_or(NONE),
            user: self.user_found(&e.submitted_by, found.user).unwrap_or(NONE),
        };
        self.order_mentions(order, seq);
        self.orders.insert(e.order_id, order);
    }

    /// An order event concerns its provider, reseller, customer, their relationships and
    /// the submitting user.
    fn order_mentions(&mut self, order: OrderRec, seq: u32) {
        for partner in [order.provider, order.reseller] {
            if partner != NONE {
                self.mentions
                    .mention(&mut self.partners[partner as usize].history, seq);
                if order.customer != NONE {
                    self.mention_relationship(order.customer, partner, seq);
                }
            }
        }
        if order.customer != NONE {
            self.mentions
                .mention(&mut self.customers[order.customer as usize].history, seq);
        }
        if order.user != NONE {
            self.mentions
                .mention(&mut self.users[order.user as usize].history, seq);
        }
    }

    /// Changes the read models for one event read through its view.
    /// The view is left as it was, but for the texts an acceptance moves into the read
    /// models.
    fn evolve_hot(&mut self, seq: u32, event: &mut Hot, found: Found) {
        match event {
            Hot::OrderSubmitted(e) => self.order_submitted(e, found, seq),
            Hot::SubscriptionCancelled(e) => self.subscription_cancelled(e.order_id, seq),
            Hot::CustomerInvitationCreated(e) => {
                self.invitation_created(e.partner_id, e.provider_id, found.partners, seq)
            }
            Hot::ResellerRelationshipAccepted(e) => self.accept(e, found, seq),
            Hot::IndirectResellerInvited(e) => {
                self.reseller_invited(e.provider_id, e.reseller_id, found.partners, seq)
            }
            Hot::MpnProfilesObserved(e) => {
                // An observation changes nothing of the partner but its history.
                self.mention_partner_found(e.partner_id, found.partners[0], seq);
            }
            Hot::DelegatedAdminRemoved(e) => {
                self.delegated_admin_removed(e.customer_id, e.partner_id, found, seq)
            }
            Hot::PrimaryContactVerificationRequested(e) => {
                self.mention_partner_found(e.partner_id, found.partners[0], seq);
            }
            Hot::IndirectProviderAuthorized(e) => {
                let partners = [
                    (e.provider_id, found.partners[0]),
                    (e.reseller_id, found.partners[1]),
                ];
                self.provider_authorized(partners, seq);
            }
            Hot::CustomerImported(e) => {
                let profile = moved_profile(&mut e.customer);
                let reseller = (e.reseller_id, found.partners[0]);
                self.imported(e.customer_id, profile, reseller, e.delegated_admin, seq);
            }
        }
    }

    /// Changes the read models for one event. Cannot fail: the event is a decided fact; an
    /// event naming something unknown changes nothing but the envelope columns.
    fn evolve(&mut self, seq: u32, event: &Event) {
        match event {
            Event::EnrollmentStarted(e) => {
                if let Some(index) = self.new_partner(
                    e.partner_id,
                    seq,
                    e.tenant_id,
                    e.tenant_country,
                    &e.organization_name,
                ) {
                    let partner = &mut self.partners[index as usize];
                    partner.reseller_since = seq;
                    partner.status.set(
                        seq,
                        PartnerStatus::Pending {
                            step: PendingStep::Profile,
                        },
                    );
                    self.summarize_partner(index);
                    self.partner_by_tenant
                        .get_or_insert_with(e.tenant_id, || index);
                }
            }
            Event::ProviderOnboarded(e) => {
                if let Some(index) =
                    self.new_partner(e.partner_id, seq, e.tenant_id, e.country, &e.legal_name)
                {
                    let partner = &mut self.partners[index as usize];
                    partner.provider_since = seq;
                    partner.authorized.push(seq);
                    partner.status.set(seq, PartnerStatus::Authorized);
                    partner.number.set(seq, e.partner_number.clone());
                    partner.support.set(seq, e.support.clone());
                    for country in &e.countries_served {
                        if !partner.countries_served.contains(country) {
                            partner.countries_served.push(*country);
                        }
                    }
                    partner.countries_served.sort_unstable();
                    self.summarize_partner(index);
                    self.partner_by_tenant.insert(e.tenant_id, index);
                    self.partner_by_number
                        .insert(e.partner_number.clone(), index);
                }
            }
            Event::MpnProfilesObserved(e) => {
                // As its view: nothing of the partner changes but its history.
                self.mention_partner(e.partner_id, seq);
            }
            Event::MpnProfileLinked(e) => {
                let Some(&index) = self.partner_index.get(&e.partner_id) else {
                    return;
                };
                // Relinking frees the number linked before, as in the write model.
                if let Some(previous) = self.partners[index as usize].number.current().cloned()
                    && self.partner_by_number.get(&previous) == Some(&index)
                {
                    self.partner_by_number.remove(&previous);
                }
                self.partner_by_number
                    .insert(e.partner_number.clone(), index);
                self.with_partner(e.partner_id, seq, |p| {
                    p.number.set(seq, e.partner_number.clone());
                    refresh_pending(p, seq);
                });
            }
            Event::LegalProfileSubmitted(e) => self.with_partner(e.partner_id, seq, |p| {
                // A new primary contact must be verified again.
                if p.verified_email.as_ref() != Some(&e.profile.primary_contact.email) {
                    p.verified_email = None;
                }
                p.name.set_if_changed(seq, e.profile.legal_name.clone());
                p.support.set_if_changed(seq, e.profile.support.clone());
                p.legal.set(seq, e.profile.clone());
                refresh_pending(p, seq);
            }),
            Event::PrimaryContactVerificationRequested(e) => {
                // As its view: nothing of the partner changes but its history.
                self.mention_partner(e.partner_id, seq);
            }
            Event::PrimaryContactEmailVerified(e) => self.with_partner(e.partner_id, seq, |p| {
                p.verified_email = Some(e.email.clone());
                refresh_pending(p, seq);
            }),
            Event::EnrollmentReviewStepCompleted(e) => self.with_partner(e.partner_id, seq, |_| {}),
            Event::EnrollmentAuthorized(e) => self.with_partner(e.partner_id, seq, |p| {
                p.authorized.push(seq);
                p.status.set(seq, PartnerStatus::Authorized);
            }),
            Event::EnrollmentRejected(e) => self.with_partner(e.partner_id, seq, |p| {
                p.status.set(
                    seq,
                    PartnerStatus::Rejected {
                        reason: e.reason.clone(),
                    },
                );
            }),
            Event::EnrollmentResubmitted(e) => self.with_partner(e.partner_id, seq, |p| {
                let step = pending_step(p);
                p.status.set(seq, PartnerStatus::Pending { step });
            }),
            Event::PartnerAgreementSigned(e) => {
                self.mention_user(e.signed_by, seq);
                self.with_partner(e.partner_id, seq, |p| {
                    p.signed.push(seq);
                    p.agreement.set(
                        seq,
                        Agreement {
                            version: e.agreement_version.clone(),
                            signed_by: e.signed_by,
                        },
                    );
                });
            }
            Event::PartnerDeauthorized(e) => self.with_partner(e.partner_id, seq, |p| {
                p.deauthorized.push(seq);
                p.status.set(
                    seq,
                    PartnerStatus::Deauthorized {
                        reason: e.reason.clone(),
                    },
                );
            }),
            Event::ResellerProgramAdded(e) => self.with_partner(e.partner_id, seq, |p| {
                if p.reseller_since == NONE {
                    p.reseller_since = seq;
                }
                p.support.set_if_changed(seq, e.support.clone());
            }),
            Event::UserAdded(e) => {
                let Some(partner) = self.mention_partner(e.partner_id, seq) else {
                    return;
                };
                if self.user_index.contains_key(&e.user_id) {
                    return;
                }
                let index = self.users.len() as u32;
                let mut roles = Versions::default();
                roles.set(
                    seq,
                    Roles {
                        agent_role: e.agent_role,
                        admin_role: e.admin_role,
                    },
                );
                let mut history = History::default();
                self.mentions.mention(&mut history, seq);
                self.users.push(UserRec {
                    id: e.user_id,
                    partner,
                    created: seq,
                    full_name: e.full_name.clone(),
                    email: e.email.clone(),
                    roles,
                    removed: Spans::default(),
                    temporary: Spans::default(),
                    history,
                });
                self.user_index.insert(e.user_id, index);
                self.partners[partner as usize].users.push(index);
            }
            Event::TemporaryPasswordIssued(e) => {
                self.mention_partner(e.partner_id, seq);
                if let Some(user) = self.mention_user(e.user_id, seq) {
                    user.temporary.start_keep(seq);
                }
            }
            Event::TemporaryPasswordChanged(e) => {
                self.mention_partner(e.partner_id, seq);
                if let Some(user) = self.mention_user(e.user_id, seq) {
                    user.temporary.end(seq);
                }
            }
            Event::UserRolesChanged(e) => {
                self.mention_partner(e.partner_id, seq);
                if let Some(user) = self.mention_user(e.user_id, seq) {
                    user.roles.set(
                        seq,
                        Roles {
                            agent_role: e.agent_role,
                            admin_role: e.admin_role,
                        },
                    );
                }
            }
            Event::UserRemoved(e) => {
                self.mention_partner(e.partner_id, seq);
                if let Some(user) = self.mention_user(e.user_id, seq) {
                    user.removed.start_keep(seq);
                }
            }
            Event::IndirectResellerInvited(e) => {
                self.reseller_invited(e.provider_id, e.reseller_id, [NONE; 2], seq)
            }
            Event::IndirectProviderAuthorized(e) => {
                self.provider_authorized([(e.provider_id, NONE), (e.reseller_id, NONE)], seq)
            }
            Event::PartnershipEnded(e) => {
                if let Some(partnership) = self.partnership_mut(e.provider_id, e.reseller_id, seq) {
                    partnership.active.end(seq);
                }
            }
            Event::CustomerImported(e) => self.imported(
                e.customer_id,
                e.customer.clone(),
                (e.reseller_id, NONE),
                e.delegated_admin,
                seq,
            ),
            Event::CustomerInvitationCreated(e) => {
                self.invitation_created(e.partner_id, e.provider_id, [NONE; 2], seq)
            }
            Event::ResellerRelationshipAccepted(e) => {
                self.accept(&mut e.into(), Found::NOTHING, seq)
            }
            Event::DelegatedAdminRemoved(e) => {
                self.delegated_admin_removed(e.customer_id, e.partner_id, Found::NOTHING, seq)
            }
            Event::GranularAdminRequested(e) => self.granular_requested(e, seq),
            Event::GranularAdminApproved(e) => self.granular_approved(e, seq),
            Event::GranularAdminRevoked(e) => {
                if let Some(request) = self.granular_mut(e.customer_id, e.request_id, seq)
                    && request.revoked == NONE
                {
                    request.revoked = seq;
                }
                if self.customer_index.contains_key(&e.customer_id) {
                    self.mention_party(&e.revoked_by, seq);
                }
            }
            Event::ResellerRelationshipRemoved(e) => {
                let Some(customer) = self.mention_customer(e.customer_id, seq) else {
                    return;
                };
                let partner = self.mention_partner(e.partner_id, seq);
                self.mention_party(&e.removed_by, seq);
                if let Some(partner) = partner
                    && let Some(relationship) = self.mention_relationship(customer, partner, seq)
                {
                    relationship.of_record.end(seq);
                    relationship.delegated.end(seq);
                    self.summarize(customer);
                }
                for request_id in &e.granular_admin_ended {
                    if let Some(request) = self.customers[customer as usize]
                        .granular
                        .iter_mut()
                        .find(|g| g.request_id == *request_id)
                        && request.revoked == NONE
                    {
                        request.revoked = seq;
                    }
                }
            }
            Event::OrderSubmitted(e) => self.order_submitted(&e.into(), Found::NOTHING, seq),
            Event::SubscriptionCancelled(e) => self.subscription_cancelled(e.order_id, seq),
        }
    }

    /// Derives a customer's record summary anew, after its record changed.
    fn summarize(&mut self, customer: u32) {
        let record = &self.customers[customer as usize];
        let summary = RecordSummary::of(customer, record);
        if let Some(slot) = self.customer_index.get_mut(&record.id) {
            *slot = summary;
        }
    }

    fn partnership_mut(
        &mut self,
        provider: PartnerId,
        reseller: PartnerId,
        seq: u32,
    ) -> Option<&mut PartnershipRec> {
        self.partnership_found([(provider, NONE), (reseller, NONE)], seq)
    }

    /// [`Projections::partnership_mut`] of the provider and reseller, each with its index
    /// found ahead or [`NONE`].
    fn partnership_found(
        &mut self,
        [(provider, provider_found), (reseller, reseller_found)]: [(PartnerId, u32); 2],
        seq: u32,
    ) -> Option<&mut PartnershipRec> {
        let provider = self.mention_partner_found(provider, provider_found, seq)?;
        let reseller = self.mention_partner_found(reseller, reseller_found, seq)?;
        let index = *self.partnership_index.get(&(provider, reseller))?;
        Some(&mut self.partnerships[index as usize])
    }

    /// A provider authorized by a reseller: their partnership is active from `seq`.
    fn provider_authorized(&mut self, partners: [(PartnerId, u32); 2], seq: u32) {
        if let Some(partnership) = self.partnership_found(partners, seq) {
            // The write model sets the start anew; it is only ever set while inactive.
            partnership.active.end(seq);
            partnership.active.start_keep(seq);
        }
    }

    /// A customer imported with its reseller of record (the reseller's index found ahead
    /// or [`NONE`]), which holds delegated admin if the import says so.
    fn imported(
        &mut self,
        id: CustomerId,
        profile: CustomerProfile,
        (reseller, found): (PartnerId, u32),
        delegated_admin: bool,
        seq: u32,
    ) {
        let customer = self.known_customer(id, profile, seq);
        let tier = RelationshipTier::IndirectReseller;
        self.make_of_record(customer, (reseller, found), tier, seq);
        if delegated_admin {
            self.grant_delegated_admin(customer, (reseller, found), seq);
        }
        self.summarize(customer);
    }

    /// Rebuilds the lookups that are not serialized (after reading a checkpoint); `false`
    /// when the name tables do not hold together, so cannot be indexed.
    pub(crate) fn rebuild_indexes(&mut self) -> bool {
        let table = &mut self.events;
        if !table.stream_names.well_formed() || !table.actor_names.well_formed() {
            return false;
        }
        table.stream_names.rebuild_index();
        table.actor_names.rebuild_index();
        table.time_index = table
            .times
            .iter()
            .step_by(TIME_INDEX_STRIDE)
            .copied()
            .collect();
        // The summaries are not serialized: derive them, for the index each id was read with
        // (`consistent` then checks that it is the customer's own).
        for summary in self.customer_index.values_mut() {
            if let Some(record) = self.customers.get(summary.index as usize) {
                *summary = RecordSummary::of(summary.index, record);
            }
        }
        self.standings = self.partners.iter().map(StandingSummary::of).collect();
        true
    }

    /// Checks the invariants that tie the tables together, after reading a checkpoint:
    /// a checkpoint that passes its checksum but breaks these is refused, not trusted.
    pub(crate) fn consistent(&self) -> bool {
        let table = &self.events;
        let n = table.positions.len();
        let columns_agree = table.times.len() == n
            && table.kinds.len() == n
            && table.actors.len() == n
            && table.streams.len() == n
            && table.previous_in_stream.len() == n
            && table.stream_last.len() == table.stream_names.len();
        let references_ok = table
            .kinds
            .iter()
            .all(|k| (*k as usize) < domain::EVENT_TYPES.len())
            && table
                .actors
                .iter()
                .all(|a| (*a as usize) < table.actor_names.len())
            && table
                .streams
                .iter()
                .all(|s| (*s as usize) < table.stream_names.len());
        let indexes_ok = self.partner_index.len() == self.partners.len()
            && self.user_index.len() == self.users.len()
            && self.customer_index.len() == self.customers.len()
            && self.partnership_index.len() == self.partnerships.len()
            && self
                .partner_index
                .iter()
                .all(|(id, i)| self.partners.get(*i as usize).is_some_and(|p| p.id == *id))
            && self.customer_index.iter().all(|(id, summary)| {
                self.customers
                    .get(summary.index as usize)
                    .is_some_and(|c| c.id == *id)
            })
            && self
                .user_index
                .iter()
                .all(|(id, i)| self.users.get(*i as usize).is_some_and(|u| u.id == *id));
        let mentions = &self.mentions;
        let histories_ok = mentions.links_well_formed(n)
            && self
                .partners
                .iter()
                .all(|p| mentions.well_formed(&p.history))
            && self.users.iter().all(|u| mentions.well_formed(&u.history))
            && self.customers.iter().all(|c| {
                mentions.well_formed(&c.history)
                    && c.relationships
                        .iter()
                        .all(|r| mentions.well_formed(&r.history))
            });
        let ordered = table.positions.windows(2).all(|w| w[0] < w[1])
            && table.times.windows(2).all(|w| w[0] <= w[1]);
        columns_agree && references_ok && indexes_ok && histories_ok && ordered
    }
}
