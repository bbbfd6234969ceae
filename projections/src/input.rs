//! What the read models read of the most numerous events, read without decoding the rest.
//!
//! Decoding payloads is most of a rebuild. The events that come in the largest numbers
//! (orders and cancellations, customer invitations, acceptances and imports, partnership
//! invitations and authorizations, MPN observations, primary-contact verification
//! requests, delegated admin removals) carry fields the read models never keep: order
//! lines, token hashes, expiry times, observed profiles, evidence, import sources. For
//! those types, at their current schema version, the read models read only the fields
//! they keep, straight from the MessagePack map (keys compared as bytes, skipped values
//! stepped over without being parsed), into the views below. Every other event, every
//! older version (which must be upcast) and any payload a view cannot read goes through
//! the domain's own decoder, so a view never decides an outcome the domain would not.
//!
//! The views name the domain's fields (payloads are maps keyed by field name) and read
//! values of the domain's own types (ids as 16-byte binaries; profiles and enums through
//! the domain's `Deserialize`). A test applies random histories both ways and compares the
//! results byte for byte. What a view does not read, it does not check: a payload whose
//! skipped fields are damaged is still applied (the log's checksums and hash chain are what
//! guard against damage).

use chrono::{DateTime, NaiveDate, Utc};
use domain::events::{self, Event};
use domain::types::{self, CustomerProfile, CustomerSource, RelationshipTier, ReviewStep};
use domain::{
    AdminRole, AgentRole, Country, CustomerId, Email, GranularAdminRequestId, GranularDuration,
    OrderId, PartnerId, PartnerNumber, SecretHash, TenantId, UserId,
};
use rmp::Marker;
use serde::Deserialize;
use serde::de::value::BorrowedStrDeserializer;
use smallvec::SmallVec;
use std::sync::LazyLock;
use uuid::Uuid;

/// Why a payload could not be read through its view (it then goes to the domain's
/// decoder, which either reads it or says what is wrong with it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unreadable;

type Read<T> = Result<T, Unreadable>;

/// A cursor over one MessagePack payload.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn byte(&mut self) -> Read<u8> {
        let byte = *self.bytes.get(self.at).ok_or(Unreadable)?;
        self.at += 1;
        Ok(byte)
    }

    #[inline]
    fn take(&mut self, count: usize) -> Read<&'a [u8]> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(Unreadable)?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// A big-endian unsigned integer of `width` bytes (a length or a number).
    fn number(&mut self, width: usize) -> Read<u64> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte)))
    }

    fn length(&mut self, width: usize) -> Read<usize> {
        usize::try_from(self.number(width)?).map_err(|_| Unreadable)
    }

    fn map_len(&mut self) -> Read<usize> {
        match Marker::from_u8(self.byte()?) {
            Marker::FixMap(count) => Ok(usize::from(count)),
            Marker::Map16 => self.length(2),
            Marker::Map32 => self.length(4),
            _ => Err(Unreadable),
        }
    }

    fn array_len(&mut self) -> Read<usize> {
        match Marker::from_u8(self.byte()?) {
            Marker::FixArray(count) => Ok(usize::from(count)),
            Marker::Array16 => self.length(2),
            Marker::Array32 => self.length(4),
            _ => Err(Unreadable),
        }
    }

    /// A string value, checked to be UTF-8.
    fn text(&mut self) -> Read<&'a str> {
        // bstr's check, where the standard library's takes a byte at a time while it is
        // short of aligned words: these texts are names, domains and codes of a few dozen
        // ASCII bytes.
        bstr::ByteSlice::to_str(self.str_bytes()?).map_err(|_| Unreadable)
    }

    /// The bytes of a string (a map key: compared as bytes, never parsed).
    #[inline]
    fn str_bytes(&mut self) -> Read<&'a [u8]> {
        // Keys and most texts are short: a fixstr holds its length in the marker.
        if let Some(&marker) = self.bytes.get(self.at)
            && marker & 0xe0 == 0xa0
        {
            let start = self.at + 1;
            let end = start + usize::from(marker & 0x1f);
            let text = self.bytes.get(start..end).ok_or(Unreadable)?;
            self.at = end;
            return Ok(text);
        }
        self.longer_str_bytes()
    }

    /// [`Reader::str_bytes`] of a string whose length follows its marker.
    #[inline(never)]
    fn longer_str_bytes(&mut self) -> Read<&'a [u8]> {
        let count = match Marker::from_u8(self.byte()?) {
            Marker::FixStr(count) => usize::from(count),
            Marker::Str8 => self.length(1)?,
            Marker::Str16 => self.length(2)?,
            Marker::Str32 => self.length(4)?,
            _ => return Err(Unreadable),
        };
        self.take(count)
    }

    /// A UUID, written as a 16-byte binary (a bin8 marker, its length 16, the bytes).
    #[inline]
    fn uuid(&mut self) -> Read<Uuid> {
        let Some([0xc4, 16, bytes @ ..]) = self
            .bytes
            .get(self.at..self.at + 18)
            .and_then(|written| <&[u8; 18]>::try_from(written).ok())
        else {
            return Err(Unreadable);
        };
        self.at += 18;
        Ok(Uuid::from_bytes(*bytes))
    }

    /// Consumes a nil, if one is next.
    #[inline]
    fn nil(&mut self) -> bool {
        if self.bytes.get(self.at) == Some(&0xc0) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Steps over one whole value, nested ones included, without parsing it.
    #[inline]
    fn skip(&mut self) -> Read<()> {
        // Most values stepped over are a short key or a number: a marker and at most 31
        // bytes that it says follow.
        if let Some(&marker) = self.bytes.get(self.at) {
            let size = usize::from(SCALAR_SIZE[usize::from(marker)]);
            if size != usize::from(NOT_SCALAR) {
                if self.bytes.len() - self.at <= size {
                    return Err(Unreadable);
                }
                self.at += 1 + size;
                return Ok(());
            }
        }
        self.skip_any()
    }

    /// [`Reader::skip`] of any value.
    #[inline(never)]
    fn skip_any(&mut self) -> Read<()> {
        // Values still to step over; each takes at least one byte, so a count beyond the
        // bytes left is damage, caught before it can loop long.
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let skipped = match Marker::from_u8(self.byte()?) {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => 0,
                Marker::U8 | Marker::I8 => 1,
                Marker::U16 | Marker::I16 => 2,
                Marker::U32 | Marker::I32 | Marker::F32 => 4,
                Marker::U64 | Marker::I64 | Marker::F64 => 8,
                Marker::FixStr(count) => usize::from(count),
                Marker::Str8 | Marker::Bin8 => self.length(1)?,
                Marker::Str16 | Marker::Bin16 => self.length(2)?,
                Marker::Str32 | Marker::Bin32 => self.length(4)?,
                Marker::FixExt1 => 2,
                Marker::FixExt2 => 3,
                Marker::FixExt4 => 5,
                Marker::FixExt8 => 9,
                Marker::FixExt16 => 17,
                Marker::Ext8 => self.length(1)? + 1,
                Marker::Ext16 => self.length(2)? + 1,
                Marker::Ext32 => self.length(4)? + 1,
                Marker::FixArray(count) => {
                    pending += usize::from(count);
                    0
                }
                Marker::Array16 => {
                    pending += self.length(2)?;
                    0
                }
                Marker::Array32 => {
                    pending += self.length(4)?;
                    0
                }
                Marker::FixMap(count) => {
                    pending += 2 * usize::from(count);
                    0
                }
                Marker::Map16 => {
                    pending += 2 * self.length(2)?;
                    0
                }
                Marker::Map32 => {
                    pending += 2 * self.length(4)?;
                    0
                }
                Marker::Reserved => return Err(Unreadable),
            };
            self.take(skipped)?;
            if pending > self.bytes.len() - self.at {
                return Err(Unreadable);
            }
        }
        Ok(())
    }
}

/// [`SCALAR_SIZE`] of a marker whose value is not a scalar of a known size.
const NOT_SCALAR: u8 = u8::MAX;

/// For each MessagePack marker, how many bytes follow it when its value is a scalar of a
/// size the marker alone gives (numbers, nil, booleans, short strings), else [`NOT_SCALAR`].
const SCALAR_SIZE: [u8; 256] = {
    let mut sizes = [NOT_SCALAR; 256];
    let mut marker = 0;
    while marker < 256 {
        sizes[marker] = match marker as u8 {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 0,
            0xa0..=0xbf => marker as u8 & 0x1f,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            _ => NOT_SCALAR,
        };
        marker += 1;
    }
    sizes
};

/// What a view does with a map's entries after the last field it needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Step over them: the map is a value inside another, which reading goes on after.
    Skip,
    /// Leave them: the map is the whole payload.
    Leave,
}

/// A value a view reads.
trait Field: Sized {
    /// Reads the whole value.
    fn read(reader: &mut Reader<'_>) -> Read<Self>;

    /// Reads the value as a whole payload: what follows the last field needed is left.
    fn read_payload(reader: &mut Reader<'_>) -> Read<Self> {
        Self::read(reader)
    }
}

macro_rules! uuid_fields {
    ($($id:ident),*) => {
        $(
            impl Field for $id {
                #[inline]
                fn read(reader: &mut Reader<'_>) -> Read<Self> {
                    reader.uuid().map($id)
                }
            }
        )*
    };
}

uuid_fields!(
    OrderId,
    PartnerId,
    CustomerId,
    UserId,
    TenantId,
    GranularAdminRequestId
);

impl<T: Field> Field for Option<T> {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        if reader.nil() {
            Ok(None)
        } else {
            T::read(reader).map(Some)
        }
    }
}

/// The elements of an array, into any collection.
fn elements<T: Field, C: FromIterator<T>>(reader: &mut Reader<'_>) -> Read<C> {
    let count = reader.array_len()?;
    // Every element takes at least a byte: a larger count is damage.
    if count > reader.bytes.len() - reader.at {
        return Err(Unreadable);
    }
    (0..count).map(|_| T::read(reader)).collect()
}

impl<T: Field> Field for SmallVec<[T; 2]> {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        elements(reader)
    }
}

impl<T: Field> Field for Vec<T> {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        elements(reader)
    }
}

impl Field for String {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        reader.text().map(str::to_owned)
    }
}

impl Field for DateTime<Utc> {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        let text = reader.text()?;
        match utc_time(text) {
            Some(time) => Ok(time),
            None => from_text(text),
        }
    }
}

/// Reads a time in the form the domain's encoder writes (chrono's: `2026-01-01T00:00:10Z`,
/// with 1 to 9 digits of a second's fraction when it has one) without chrono's general
/// RFC 3339 parser; `None` for any other text, which that parser then reads (or refuses).
fn utc_time(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes.get(range)?.iter().try_fold(0u32, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || !separators
            .iter()
            .all(|(at, byte)| bytes.get(*at) == Some(byte))
        || bytes.last() != Some(&b'Z')
    {
        return None;
    }
    let nanos = match &bytes[19..bytes.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(20..bytes.len() - 1)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    // A date or time out of range (a leap second's 60 too) is left to chrono.
    NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)?
        .and_hms_nano_opt(digits(11..13)?, digits(14..16)?, digits(17..19)?, nanos)
        .map(|time| time.and_utc())
}

impl Field for GranularDuration {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        GranularDuration::parse(reader.text()?).map_err(|_| Unreadable)
    }
}

impl Field for Country {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        // Checked as bytes: a code is two ASCII letters, UTF-8 by that alone.
        Country::parse_bytes(reader.str_bytes()?).map_err(|_| Unreadable)
    }
}

/// A value the domain's `Deserialize` reads from a string (a unit variant by name, a time).
fn from_text<'de, T: Deserialize<'de>>(name: &'de str) -> Read<T> {
    T::deserialize(BorrowedStrDeserializer::<serde::de::value::Error>::new(
        name,
    ))
    .map_err(|_| Unreadable)
}

/// Values the domain writes as text and reads through `Deserialize` from a string (enum
/// variants by name, RFC 3339 times): read by that same `Deserialize`.
macro_rules! text_fields {
    ($($type:ty),*) => {
        $(
            impl Field for $type {
                fn read(reader: &mut Reader<'_>) -> Read<Self> {
                    from_text(reader.text()?)
                }
            }
        )*
    };
}

text_fields!(
    AgentRole,
    AdminRole,
    NaiveDate,
    Email,
    PartnerNumber,
    SecretHash,
    CustomerSource,
    events::PartnershipSide
);

/// Unit-variant enums met in numbers, read by comparing the value's bytes with each variant
/// as the domain's encoder writes it (`rmp_serde`, a string of the variant's name), which
/// spares validating the text and matching it through `Deserialize`. Bytes that match no
/// variant are read the long way, by the domain's `Deserialize`.
macro_rules! variant_fields {
    ($($type:ident),*) => {
        $(
            impl Field for $type {
                fn read(reader: &mut Reader<'_>) -> Read<Self> {
                    // The text of each variant written as a string (all are, by name).
                    static NAMES: LazyLock<Vec<(Vec<u8>, $type)>> = LazyLock::new(|| {
                        $type::ALL
                            .iter()
                            .filter_map(|variant| {
                                let encoded = rmp_serde::to_vec_named(variant).ok()?;
                                let mut written = Reader { bytes: &encoded, at: 0 };
                                let name = written.str_bytes().ok()?.to_vec();
                                (written.at == encoded.len()).then_some((name, *variant))
                            })
                            .collect()
                    });
                    let start = reader.at;
                    let text = reader.str_bytes()?;
                    match NAMES.iter().find(|(name, _)| name.as_slice() == text) {
                        Some((_, variant)) => Ok(*variant),
                        None => {
                            reader.at = start;
                            from_text(reader.text()?)
                        }
                    }
                }
            }
        )*
    };
}

variant_fields!(RelationshipTier, ReviewStep);

impl Field for bool {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        match Marker::from_u8(reader.byte()?) {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(Unreadable),
        }
    }
}

impl Field for u64 {
    fn read(reader: &mut Reader<'_>) -> Read<Self> {
        match Marker::from_u8(reader.byte()?) {
            Marker::FixPos(value) => Ok(u64::from(value)),
            Marker::U8 => reader.number(1),
            Marker::U16 => reader.number(2),
            Marker::U32 => reader.number(4),
            Marker::U64 => reader.number(8),
            _ => Err(Unreadable),
        }
    }
}

/// Reads a struct from a map keyed by field name in any order, other keys skipped; a
/// missing field, or one repeated before the last is found, makes it unreadable. Reading
/// stops at the last field the struct needs: the domain writes fields in declaration
/// order, so the bulk of a payload behind the kept fields (order lines, evidence) is never
/// even stepped over.
///
/// `strict` is for the domain's structs that refuse unknown fields: their map must have
/// exactly their fields (any other goes to the domain's decoder, which says what is wrong).
macro_rules! map_reader {
    (strict $name:path { $( $field:ident : $type:ty ),* $(,)? }) => {
        map_reader!(@entries $name { $( $field: $type ),* });

        impl Field for $name {
            fn read(reader: &mut Reader<'_>) -> Read<Self> {
                let entries = reader.map_len()?;
                // Each field is read once, so with as many entries there is no other key.
                if entries != [$( stringify!($field) ),*].len() {
                    return Err(Unreadable);
                }
                Self::read_entries(reader, entries, Rest::Skip)
            }
        }
    };
    ($name:path { $( $field:ident : $type:ty ),* $(,)? }) => {
        map_reader!(@entries $name { $( $field: $type ),* });

        impl Field for $name {
            fn read(reader: &mut Reader<'_>) -> Read<Self> {
                let entries = reader.map_len()?;
                Self::read_entries(reader, entries, Rest::Skip)
            }

            fn read_payload(reader: &mut Reader<'_>) -> Read<Self> {
                let entries = reader.map_len()?;
                Self::read_entries(reader, entries, Rest::Leave)
            }
        }
    };
    (@entries $name:path { $( $field:ident : $type:ty ),* }) => {
        impl Entries for $name {
            fn read_entries(reader: &mut Reader<'_>, entries: usize, rest: Rest) -> Read<Self> {
                const FIELDS: usize = [$( stringify!($field) ),*].len();
                $( let mut $field: Option<$type> = None; )*
                let mut found = 0;
                for entry in 0..entries {
                    match reader.str_bytes()? {
                        $(
                            key if key == stringify!($field).as_bytes() => {
                                if $field.replace(<$type as Field>::read(reader)?).is_some() {
                                    return Err(Unreadable);
                                }
                                found += 1;
                                if found == FIELDS {
                                    if rest == Rest::Skip {
                                        for _ in entry + 1..entries {
                                            reader.skip()?;
                                            reader.skip()?;
                                        }
                                    }
                                    break;
                                }
                            }
                        )*
                        _ => reader.skip()?,
                    }
                }
                Ok(Self { $( $field: $field.ok_or(Unreadable)?, )* })
            }
        }
    };
}

/// A struct read from a map's entries (see [`map_reader`]).
trait Entries: Sized {
    /// Reads the fields from the next `entries` entries of a map. Once all are found, the
    /// rest of the map is stepped over, or (`Rest::Leave`, for a whole payload) left unread.
    fn read_entries(reader: &mut Reader<'_>, entries: usize, rest: Rest) -> Read<Self>;
}

/// Declares views: structs of the fields kept, read by [`map_reader`].
macro_rules! views {
    ($(
        $(#[$doc:meta])*
        $name:ident { $( $field:ident : $type:ty ),* $(,)? }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Eq)]
            pub(crate) struct $name {
                $( pub $field: $type, )*
            }

            map_reader!($name { $( $field: $type ),* });
        )*
    };
}

views! {

    /// The parts of `OrderSubmitted` the read models keep.
    OrderSubmitted {
        order_id: OrderId,
        provider_id: PartnerId,
        reseller_id: PartnerId,
        customer_id: CustomerId,
        submitted_by: UserId,
    }

    /// The parts of `SubscriptionCancelled` the read models keep: its order.
    SubscriptionCancelled {
        order_id: OrderId,
    }

    /// The parts of `CustomerInvitationCreated` the read models keep: whom it names.
    CustomerInvitationCreated {
        partner_id: PartnerId,
        provider_id: Option<PartnerId>,
    }

    /// The partner of an acceptance's standing (the evidence positions are the domain's
    /// record of what it checked; the read models have their own).
    Standing {
        partner_id: PartnerId,
    }

    /// One partner made reseller of record by an acceptance.
    AcceptedPartner {
        standing: Standing,
        tier: RelationshipTier,
    }

    /// The parts of `ResellerRelationshipAccepted` the read models keep. An acceptance
    /// names the reseller and at most one provider, hence two inline.
    ResellerRelationshipAccepted {
        customer_id: CustomerId,
        customer: CustomerProfile,
        partners: SmallVec<[AcceptedPartner; 2]>,
        delegated_admin_to: PartnerId,
    }

    /// The parts of `IndirectResellerInvited` the read models keep: the two partners.
    IndirectResellerInvited {
        provider_id: PartnerId,
        reseller_id: PartnerId,
    }

    /// The parts of `MpnProfilesObserved` the read models keep: whose enrollment.
    MpnProfilesObserved {
        partner_id: PartnerId,
    }

    /// The parts of `DelegatedAdminRemoved` the read models keep (all of it).
    DelegatedAdminRemoved {
        customer_id: CustomerId,
        partner_id: PartnerId,
    }

    /// The parts of `PrimaryContactVerificationRequested` the read models keep: whose
    /// enrollment (the email, token and expiry are the write model's).
    PrimaryContactVerificationRequested {
        partner_id: PartnerId,
    }

    /// The parts of `IndirectProviderAuthorized` the read models keep: the two partners
    /// (the standings are the domain's record of what it checked).
    IndirectProviderAuthorized {
        provider_id: PartnerId,
        reseller_id: PartnerId,
    }

    /// The parts of `CustomerImported` the read models keep: the customer, its reseller
    /// and whether that holds delegated admin (not the source and original start).
    CustomerImported {
        customer_id: CustomerId,
        customer: CustomerProfile,
        reseller_id: PartnerId,
        delegated_admin: bool,
    }
}

// Small events read whole into the domain's own structs (every field: the struct
// literal does not compile if the domain adds one), for the events the views do not cover
// that still come in numbers.
map_reader!(events::EnrollmentReviewStepCompleted {
    partner_id: PartnerId,
    step: ReviewStep,
});
map_reader!(events::EnrollmentAuthorized {
    partner_id: PartnerId,
    first_user_id: UserId,
});
map_reader!(events::TemporaryPasswordIssued {
    partner_id: PartnerId,
    user_id: UserId,
});
map_reader!(events::TemporaryPasswordChanged {
    partner_id: PartnerId,
    user_id: UserId,
});
map_reader!(events::UserRolesChanged {
    partner_id: PartnerId,
    user_id: UserId,
    agent_role: Option<AgentRole>,
    admin_role: Option<AdminRole>,
});
map_reader!(events::GranularAdminRequested {
    customer_id: CustomerId,
    request_id: GranularAdminRequestId,
    partner_id: PartnerId,
    roles: Vec<String>,
    duration: GranularDuration,
    request_expires_at: DateTime<Utc>,
});
map_reader!(events::GranularAdminApproved {
    customer_id: CustomerId,
    request_id: GranularAdminRequestId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
});
map_reader!(events::EnrollmentStarted {
    partner_id: PartnerId,
    tenant_id: TenantId,
    tenant_country: Country,
    organization_name: String,
    enrolling_admin_email: Email,
    enrolling_admin_name: String,
});
map_reader!(events::MpnProfileLinked {
    partner_id: PartnerId,
    partner_number: PartnerNumber,
    country: Country,
});
map_reader!(strict CustomerProfile {
    tenant_id: TenantId,
    company_name: String,
    primary_domain: String,
    country: Country,
});
map_reader!(strict types::Address {
    lines: Vec<String>,
    city: String,
    region: Option<String>,
    postal_code: Option<String>,
    country: Country,
});
map_reader!(strict types::Contact {
    name: String,
    email: Email,
    phone: Option<String>,
});
map_reader!(strict types::SupportDetails {
    email: Email,
    phone: String,
    website: Option<String>,
});
map_reader!(strict types::LegalProfile {
    legal_name: String,
    address: types::Address,
    primary_contact: types::Contact,
    support: types::SupportDetails,
});
map_reader!(events::LegalProfileSubmitted {
    partner_id: PartnerId,
    profile: types::LegalProfile,
});
map_reader!(events::PrimaryContactEmailVerified {
    partner_id: PartnerId,
    email: Email,
});
map_reader!(events::UserAdded {
    partner_id: PartnerId,
    user_id: UserId,
    full_name: String,
    email: Email,
    agent_role: Option<AgentRole>,
    admin_role: Option<AdminRole>,
});
map_reader!(events::PartnerAgreementSigned {
    partner_id: PartnerId,
    signed_by: UserId,
    agreement_version: String,
});
map_reader!(events::PartnershipEnded {
    provider_id: PartnerId,
    reseller_id: PartnerId,
    ended_by: events::PartnershipSide,
    reason: Option<String>,
});

/// Reads a whole payload as `T` (a view or a domain struct); `None` when it cannot.
fn read_payload<T: Field>(payload: &[u8]) -> Option<T> {
    T::read_payload(&mut Reader {
        bytes: payload,
        at: 0,
    })
    .ok()
}

/// Reads a payload (of the current schema version of the type at `kind`) whole into the
/// domain's event, for the types read that way. `None`: decode it with the domain.
pub(crate) fn read_whole(kind: usize, payload: &[u8]) -> Option<Event> {
    use domain::events::type_index as t;
    use read_payload as whole;
    match kind {
        t::EnrollmentReviewStepCompleted => {
            whole(payload).map(Event::EnrollmentReviewStepCompleted)
        }
        t::EnrollmentAuthorized => whole(payload).map(Event::EnrollmentAuthorized),
        t::TemporaryPasswordIssued => whole(payload).map(Event::TemporaryPasswordIssued),
        t::TemporaryPasswordChanged => whole(payload).map(Event::TemporaryPasswordChanged),
        t::UserRolesChanged => whole(payload).map(Event::UserRolesChanged),
        t::GranularAdminRequested => whole(payload).map(Event::GranularAdminRequested),
        t::GranularAdminApproved => whole(payload).map(Event::GranularAdminApproved),
        t::EnrollmentStarted => whole(payload).map(Event::EnrollmentStarted),
        t::MpnProfileLinked => whole(payload).map(Event::MpnProfileLinked),
        t::PrimaryContactEmailVerified => whole(payload).map(Event::PrimaryContactEmailVerified),
        t::LegalProfileSubmitted => whole(payload).map(Event::LegalProfileSubmitted),
        t::UserAdded => whole(payload).map(Event::UserAdded),
        t::PartnerAgreementSigned => whole(payload).map(Event::PartnerAgreementSigned),
        t::PartnershipEnded => whole(payload).map(Event::PartnershipEnded),
        _ => None,
    }
}

impl From<&domain::events::OrderSubmitted> for OrderSubmitted {
    fn from(e: &domain::events::OrderSubmitted) -> Self {
        OrderSubmitted {
            order_id: e.order_id,
            provider_id: e.provider_id,
            reseller_id: e.reseller_id,
            customer_id: e.customer_id,
            submitted_by: e.submitted_by,
        }
    }
}

impl From<&domain::events::ResellerRelationshipAccepted> for ResellerRelationshipAccepted {
    fn from(e: &domain::events::ResellerRelationshipAccepted) -> Self {
        ResellerRelationshipAccepted {
            customer_id: e.customer_id,
            customer: e.customer.clone(),
            partners: e
                .partners
                .iter()
                .map(|accepted| AcceptedPartner {
                    standing: Standing {
                        partner_id: accepted.standing.partner_id,
                    },
                    tier: accepted.tier,
                })
                .collect(),
            delegated_admin_to: e.delegated_admin_to,
        }
    }
}

/// Declares [`Hot`], one variant per view named after its event type (and its view
/// struct), and [`Hot::read`], which picks the view by the type's index: the list of types
/// read through views is written once, here.
macro_rules! hot_views {
    ($($name:ident),* $(,)?) => {
        /// One of the events read through a view.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(crate) enum Hot {
            $( $name($name), )*
        }

        impl Hot {
            /// Reads `payload` (of the current schema version of the type at `kind` in
            /// `domain::EVENT_TYPES`) through its view. `None`: the type has no view, or this
            /// payload cannot be read through it; decode it with the domain.
            pub fn read(kind: usize, payload: &[u8]) -> Option<Hot> {
                use read_payload as view;
                match kind {
                    $( events::type_index::$name => view(payload).map(Hot::$name), )*
                    _ => None,
                }
            }
        }
    };
}

hot_views!(
    OrderSubmitted,
    SubscriptionCancelled,
    CustomerInvitationCreated,
    ResellerRelationshipAccepted,
    IndirectResellerInvited,
    MpnProfilesObserved,
    DelegatedAdminRemoved,
    PrimaryContactVerificationRequested,
    IndirectProviderAuthorized,
    CustomerImported,
);

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Event, sample_events};
    use proptest::prelude::*;
    use serde::Serialize;

    proptest! {
        /// The one-marker fast paths read any bytes as the general forms do: the same value
        /// or refusal, and on success the same position after it.
        #[test]
        fn fast_paths_read_as_the_general_forms(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..40),
                // The markers of numbers, bins, strings and containers with a length.
                (0xc0u8..=0xdf, prop::collection::vec(any::<u8>(), 0..40))
                    .prop_map(|(marker, rest)| [&[marker][..], &rest].concat()),
                (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40))
                    .prop_map(|(marker, rest)| [&[0xc4, 16, marker][..], &rest].concat()),
            ]
        ) {
            let at = |reader: &Reader<'_>| reader.at;
            let (mut fast, mut general) = (Reader { bytes: &bytes, at: 0 }, Reader { bytes: &bytes, at: 0 });
            let (skipped, skipped_generally) = (fast.skip(), general.skip_any());
            prop_assert_eq!(&skipped, &skipped_generally);
            if skipped.is_ok() {
                prop_assert_eq!(at(&fast), at(&general));
            }
            let (mut fast, mut general) = (Reader { bytes: &bytes, at: 0 }, Reader { bytes: &bytes, at: 0 });
            let (text, text_generally) = (fast.str_bytes(), general.longer_str_bytes());
            prop_assert_eq!(&text, &text_generally);
            if text.is_ok() {
                prop_assert_eq!(at(&fast), at(&general));
            }
            // A UUID: a bin8 marker, the length 16, then 16 bytes.
            let mut fast = Reader { bytes: &bytes, at: 0 };
            let expected = match bytes.as_slice() {
                [0xc4, 16, id @ ..] if id.len() >= 16 => {
                    Ok(Uuid::from_slice(&id[..16]).unwrap_or_default())
                }
                _ => Err(Unreadable),
            };
            let succeeds = expected.is_ok();
            prop_assert_eq!(fast.uuid(), expected);
            if succeeds {
                prop_assert_eq!(at(&fast), 18);
            }
        }

        /// A text is accepted exactly when the standard library would accept its bytes as
        /// UTF-8 (the check is bstr's), and read as the same text.
        #[test]
        fn texts_are_checked_as_the_standard_library_checks_them(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..80),
                any::<String>().prop_map(String::into_bytes),
                // Valid text with one byte changed: near-misses of every kind.
                (any::<String>(), any::<usize>(), any::<u8>()).prop_map(|(text, at, byte)| {
                    let mut bytes = text.into_bytes();
                    if !bytes.is_empty() {
                        let at = at % bytes.len();
                        bytes[at] = byte;
                    }
                    bytes
                }),
            ]
        ) {
            // A str8 holds at most 255 bytes.
            let text = &bytes[..bytes.len().min(usize::from(u8::MAX))];
            let payload = [&[0xd9, text.len() as u8][..], text].concat();
            let mut reader = Reader { bytes: &payload, at: 0 };
            prop_assert_eq!(reader.text().ok(), std::str::from_utf8(text).ok());
        }

        /// A time the domain writes reads back as itself without chrono's parser.
        #[test]
        fn times_written_read_back_by_the_fast_path(
            seconds in -62_000_000_000i64..250_000_000_000,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        ) {
            let time = DateTime::<Utc>::from_timestamp(seconds, nanos).unwrap_or_default();
            let written = rmp_serde::to_vec_named(&time).unwrap_or_default();
            let text: String = rmp_serde::from_slice(&written).unwrap_or_default();
            if (0..=9999).contains(&time.format("%Y").to_string().parse::<i32>().unwrap_or(-1)) {
                prop_assert_eq!(utc_time(&text), Some(time));
            }
        }

        /// Whatever text of the shape the fast path reads, it reads as chrono does, or
        /// leaves it to chrono.
        #[test]
        fn the_fast_path_agrees_with_chrono(
            fields in prop::collection::vec(0u32..100, 6),
            fraction in "[0-9]{0,11}",
            dot in any::<bool>(),
        ) {
            let text = format!(
                "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}Z",
                fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
                if dot { "." } else { "" },
                fraction,
            );
            if let Some(time) = utc_time(&text) {
                prop_assert_eq!(text.parse::<DateTime<Utc>>().ok(), Some(time), "{}", text);
            }
        }
    }

    /// The view of every sample of a type with a view equals the view of the domain's
    /// decoding of it.
    #[test]
    fn views_read_what_the_domain_decodes() {
        let mut read = 0;
        for event in sample_events() {
            let payload = event.encode().unwrap_or_default();
            let Some(hot) = Hot::read(event.type_index(), &payload) else {
                eprintln!("no view read {}", event.event_type());
                continue;
            };
            let expected = match &event {
                Event::OrderSubmitted(e) => Hot::OrderSubmitted(e.into()),
                Event::SubscriptionCancelled(e) => {
                    Hot::SubscriptionCancelled(SubscriptionCancelled {
                        order_id: e.order_id,
                    })
                }
                Event::CustomerInvitationCreated(e) => {
                    Hot::CustomerInvitationCreated(CustomerInvitationCreated {
                        partner_id: e.partner_id,
                        provider_id: e.provider_id,
                    })
                }
                Event::ResellerRelationshipAccepted(e) => {
                    Hot::ResellerRelationshipAccepted(e.into())
                }
                Event::IndirectResellerInvited(e) => {
                    Hot::IndirectResellerInvited(IndirectResellerInvited {
                        provider_id: e.provider_id,
                        reseller_id: e.reseller_id,
                    })
                }
                Event::MpnProfilesObserved(e) => Hot::MpnProfilesObserved(MpnProfilesObserved {
                    partner_id: e.partner_id,
                }),
                Event::DelegatedAdminRemoved(e) => {
                    Hot::DelegatedAdminRemoved(DelegatedAdminRemoved {
                        customer_id: e.customer_id,
                        partner_id: e.partner_id,
                    })
                }
                Event::PrimaryContactVerificationRequested(e) => {
                    Hot::PrimaryContactVerificationRequested(PrimaryContactVerificationRequested {
                        partner_id: e.partner_id,
                    })
                }
                Event::IndirectProviderAuthorized(e) => {
                    Hot::IndirectProviderAuthorized(IndirectProviderAuthorized {
                        provider_id: e.provider_id,
                        reseller_id: e.reseller_id,
                    })
                }
                Event::CustomerImported(e) => Hot::CustomerImported(CustomerImported {
                    customer_id: e.customer_id,
                    customer: e.customer.clone(),
                    reseller_id: e.reseller_id,
                    delegated_admin: e.delegated_admin,
                }),
                other => panic!("a view read {}", other.event_type()),
            };
            assert_eq!(hot, expected);
            read += 1;
        }
        assert_eq!(read, 10, "every view has a sample");
    }

    /// A struct the domain reads strictly is read whole only with exactly its fields: with
    /// one more it goes to the domain's decoder, which refuses it.
    #[test]
    fn strict_structs_refuse_unknown_fields() {
        #[derive(Serialize)]
        struct Address<'a> {
            lines: &'a [&'a str],
            city: &'a str,
            region: Option<&'a str>,
            postal_code: Option<&'a str>,
            country: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            extra: Option<u8>,
        }
        let address = |extra| Address {
            lines: &["1 Main Street"],
            city: "Springfield",
            region: None,
            postal_code: Some("12345"),
            country: "US",
            extra,
        };
        let exact = rmp_serde::to_vec_named(&address(None)).unwrap_or_default();
        let domain: types::Address =
            rmp_serde::from_slice(&exact).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_payload::<types::Address>(&exact), Some(domain));
        let more = rmp_serde::to_vec_named(&address(Some(1))).unwrap_or_default();
        assert!(rmp_serde::from_slice::<types::Address>(&more).is_err());
        assert_eq!(read_payload::<types::Address>(&more), None);
    }

    /// Every sample of a type read whole is read as the domain decodes it, to the letter.
    #[test]
    fn whole_readers_read_what_the_domain_decodes() {
        let mut read = 0;
        for event in sample_events() {
            let payload = event.encode().unwrap_or_default();
            if let Some(whole) = read_whole(event.type_index(), &payload) {
                assert_eq!(whole, event);
                read += 1;
                for cut in 0..payload.len() {
                    let cut = read_whole(event.type_index(), &payload[..cut]);
                    assert!(cut.is_none() || cut.as_ref() == Some(&event));
                }
            }
        }
        assert_eq!(read, 14, "every whole reader has a sample");
    }

    /// A damaged payload is never read through a view: every cut and every flipped
    /// marker byte either reads the same view or goes to the domain's decoder.
    #[test]
    fn damaged_payloads_fall_back_to_the_domain() {
        for event in sample_events() {
            let payload = event.encode().unwrap_or_default();
            let Some(whole) = Hot::read(event.type_index(), &payload) else {
                continue;
            };
            // A cut payload reads nothing, or (cut after the last field read) the same.
            for cut in 0..payload.len() {
                let read = Hot::read(event.type_index(), &payload[..cut]);
                assert!(
                    read.is_none() || read.as_ref() == Some(&whole),
                    "cut at {cut}"
                );
            }
            for at in 0..payload.len() {
                let mut damaged = payload.clone();
                damaged[at] ^= 0xff;
                // Anything may come of it but a panic or an endless loop; a view that still
                // reads must read from a well-formed map.
                if let Some(hot) = Hot::read(event.type_index(), &damaged) {
                    let _ = hot == whole;
                }
            }
        }
    }

    /// Every variant is read by its bytes as the domain's `Deserialize` reads its text, and
    /// other bytes still go through `Deserialize` (which refuses what it does not know).
    #[test]
    fn variants_read_by_bytes_as_by_text() {
        fn check<T>(all: &[T])
        where
            T: Field + Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
        {
            for variant in all {
                let bytes = rmp_serde::to_vec_named(variant).unwrap_or_default();
                let mut reader = Reader {
                    bytes: &bytes,
                    at: 0,
                };
                assert_eq!(T::read(&mut reader).as_ref(), Ok(variant));
                assert_eq!(reader.at, bytes.len());
                let name = serde_json::to_value(variant).unwrap_or_default();
                let text = name.as_str().unwrap_or_default();
                assert_eq!(from_text::<T>(text).as_ref(), Ok(variant));
            }
            let unknown = rmp_serde::to_vec_named("no_such_variant").unwrap_or_default();
            let mut reader = Reader {
                bytes: &unknown,
                at: 0,
            };
            assert_eq!(T::read(&mut reader), Err(Unreadable));
        }
        check(&RelationshipTier::ALL);
        check(&ReviewStep::ALL);
    }

    #[test]
    fn skipping_steps_over_every_kind_of_value() {
        let value = serde_json::json!({
            "a": [1, -1, 300, -300, 70000, -70000, 5_000_000_000u64, -5_000_000_000i64, 1.5],
            "b": {"nested": [null, true, false, "text", "a longer text than thirty-one bytes"]},
        });
        let mut bytes = rmp_serde::to_vec_named(&value).unwrap_or_default();
        bytes.push(0x07);
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
        };
        assert_eq!(reader.skip(), Ok(()));
        assert_eq!(reader.byte(), Ok(0x07));
        let mut reader = Reader {
            bytes: &[0xdd, 0xff, 0xff, 0xff, 0xff],
            at: 0,
        };
        assert_eq!(
            reader.skip(),
            Err(Unreadable),
            "a count beyond the bytes left"
        );
    }
}
