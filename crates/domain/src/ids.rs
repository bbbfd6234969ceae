//! Identifiers and validated value types: what the ledger names and how it checks names.
//!
//! Entity ids are UUIDs chosen by the ledger (UUIDv7, handed in through the decision
//! context); value types are checked once, when they are built, so a value of the type is
//! always valid and no rule needs to check it again.

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Declares a UUID newtype that serializes as the bare UUID.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn new(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The bare UUID: stream names and messages embed it as is.
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl $name {
            /// A short kind word for messages ("partner", "user", ...).
            pub const KIND: &'static str = $prefix;
        }
    };
}

uuid_id!(
    /// A partner organization (indirect reseller, indirect provider, or both).
    PartnerId,
    "partner"
);
uuid_id!(
    /// A partner user; belongs to exactly one partner.
    UserId,
    "user"
);
uuid_id!(
    /// A customer organization.
    CustomerId,
    "customer"
);
uuid_id!(
    /// A customer invitation (the reseller relationship request link).
    InvitationId,
    "invitation"
);
uuid_id!(
    /// An order submitted by a provider on behalf of a customer.
    OrderId,
    "order"
);
uuid_id!(
    /// A subscription created by one order line.
    SubscriptionId,
    "subscription"
);
uuid_id!(
    /// A work-account directory (Microsoft Entra tenant); the directory chooses it.
    TenantId,
    "tenant"
);
uuid_id!(
    /// A time-bound granular delegated admin (GDAP) request.
    GranularAdminRequestId,
    "granular admin request"
);

/// Why a value was not accepted as one of the validated value types.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A partner number is 6 to 10 ASCII digits.
    #[error("partner number must be 6 to 10 digits, got {0:?}")]
    PartnerNumber(String),
    /// A country is an ISO 3166-1 alpha-2 code.
    #[error("country must be an ISO 3166-1 alpha-2 code of two uppercase letters, got {0:?}")]
    Country(String),
    /// An email address with one `@`, a local part and a dotted domain.
    #[error("email must have one '@', a non-empty local part and a dotted domain, got {0:?}")]
    Email(String),
    /// A SHA-256 hash is 64 hexadecimal characters.
    #[error("secret hash must be 64 hexadecimal characters")]
    SecretHash,
    /// A granular admin duration is an ISO-8601 duration from P1D to P2Y.
    #[error("duration must be an ISO-8601 duration PnD, PnW or PnY between P1D and P2Y, got {0:?}")]
    Duration(String),
}

/// Implements the string conversions and a string JSON Schema for a validated value type.
macro_rules! string_value {
    ($name:ident, $schema:tt) => {
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(text: String) -> Result<Self, ValueError> {
                Self::parse(&text)
            }
        }

        string_value!(@common $name, $schema);
    };
    // A value whose parse can keep the text it was given (`parse_owned`).
    (owned $name:ident, $schema:tt) => {
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(text: String) -> Result<Self, ValueError> {
                Self::parse_owned(text)
            }
        }

        string_value!(@common $name, $schema);
    };
    (@common $name:ident, $schema:tt) => {
        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(text: &str) -> Result<Self, ValueError> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.to_string()
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

/// The MPN ID / PartnerID of an organization: 6 to 10 ASCII digits.
///
/// Kept as text so leading zeros survive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartnerNumber(String);

impl PartnerNumber {
    /// Checks and builds a partner number.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        let digits = (6..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        if digits {
            Ok(Self(text.to_owned()))
        } else {
            Err(ValueError::PartnerNumber(text.to_owned()))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For the crate's own fixed samples, whose text is known valid.
    pub(crate) fn known_valid(text: &'static str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Display for PartnerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(PartnerNumber, {
    "type": "string",
    "pattern": "^[0-9]{6,10}$",
    "description": "MPN ID / PartnerID: 6 to 10 digits."
});

/// An ISO 3166-1 alpha-2 country code, two uppercase ASCII letters.
///
/// The type checks the shape only, so that every event once recorded stays readable when the
/// ISO list changes (codes are withdrawn, as `AN` was). Whether a code is assigned today is a
/// rule of the decisions ([`Country::is_assigned`]): a command naming a country that does not
/// exist is refused, an event already in the log is read as it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    /// Checks and builds a country code. Lowercase input is refused rather than fixed, so
    /// that the same country is never spelled two ways in the log.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// [`Country::parse`] of text given as its bytes (two ASCII letters are their own
    /// UTF-8), for a reader that has the bytes and would otherwise check them as UTF-8
    /// first. Bytes that are not a code are refused as `parse` refuses text.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, ValueError> {
        match bytes {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(ValueError::Country(
                String::from_utf8_lossy(bytes).into_owned(),
            )),
        }
    }

    /// Whether ISO 3166-1 assigns this code to a country today ([`ASSIGNED_COUNTRIES`]).
    pub fn is_assigned(&self) -> bool {
        ASSIGNED_COUNTRIES.binary_search(&self.0).is_ok()
    }

    /// For the crate's own fixed samples, whose letters are known valid.
    pub(crate) const fn known_valid(letters: [u8; 2]) -> Self {
        Self(letters)
    }

    /// The two letters.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII uppercase letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes, sorted: the 249 of Debian's
/// `iso-codes` 4.15 (`iso_3166-1.json`). User-assigned codes (`XK` and the like) and
/// reserved ones (`UK`, `EU`) are not countries here.
pub const ASSIGNED_COUNTRIES: &[[u8; 2]] = &[
    *b"AD", *b"AE", *b"AF", *b"AG", *b"AI", *b"AL", *b"AM", *b"AO", *b"AQ", *b"AR", *b"AS", *b"AT",
    *b"AU", *b"AW", *b"AX", *b"AZ", *b"BA", *b"BB", *b"BD", *b"BE", *b"BF", *b"BG", *b"BH", *b"BI",
    *b"BJ", *b"BL", *b"BM", *b"BN", *b"BO", *b"BQ", *b"BR", *b"BS", *b"BT", *b"BV", *b"BW", *b"BY",
    *b"BZ", *b"CA", *b"CC", *b"CD", *b"CF", *b"CG", *b"CH", *b"CI", *b"CK", *b"CL", *b"CM", *b"CN",
    *b"CO", *b"CR", *b"CU", *b"CV", *b"CW", *b"CX", *b"CY", *b"CZ", *b"DE", *b"DJ", *b"DK", *b"DM",
    *b"DO", *b"DZ", *b"EC", *b"EE", *b"EG", *b"EH", *b"ER", *b"ES", *b"ET", *b"FI", *b"FJ", *b"FK",
    *b"FM", *b"FO", *b"FR", *b"GA", *b"GB", *b"GD", *b"GE", *b"GF", *b"GG", *b"GH", *b"GI", *b"GL",
    *b"GM", *b"GN", *b"GP", *b"GQ", *b"GR", *b"GS", *b"GT", *b"GU", *b"GW", *b"GY", *b"HK", *b"HM",
    *b"HN", *b"HR", *b"HT", *b"HU", *b"ID", *b"IE", *b"IL", *b"IM", *b"IN", *b"IO", *b"IQ", *b"IR",
    *b"IS", *b"IT", *b"JE", *b"JM", *b"JO", *b"JP", *b"KE", *b"KG", *b"KH", *b"KI", *b"KM", *b"KN",
    *b"KP", *b"KR", *b"KW", *b"KY", *b"KZ", *b"LA", *b"LB", *b"LC", *b"LI", *b"LK", *b"LR", *b"LS",
    *b"LT", *b"LU", *b"LV", *b"LY", *b"MA", *b"MC", *b"MD", *b"ME", *b"MF", *b"MG", *b"MH", *b"MK",
    *b"ML", *b"MM", *b"MN", *b"MO", *b"MP", *b"MQ", *b"MR", *b"MS", *b"MT", *b"MU", *b"MV", *b"MW",
    *b"MX", *b"MY", *b"MZ", *b"NA", *b"NC", *b"NE", *b"NF", *b"NG", *b"NI", *b"NL", *b"NO", *b"NP",
    *b"NR", *b"NU", *b"NZ", *b"OM", *b"PA", *b"PE", *b"PF", *b"PG", *b"PH", *b"PK", *b"PL", *b"PM",
    *b"PN", *b"PR", *b"PS", *b"PT", *b"PW", *b"PY", *b"QA", *b"RE", *b"RO", *b"RS", *b"RU", *b"RW",
    *b"SA", *b"SB", *b"SC", *b"SD", *b"SE", *b"SG", *b"SH", *b"SI", *b"SJ", *b"SK", *b"SL", *b"SM",
    *b"SN", *b"SO", *b"SR", *b"SS", *b"ST", *b"SV", *b"SX", *b"SY", *b"SZ", *b"TC", *b"TD", *b"TF",
    *b"TG", *b"TH", *b"TJ", *b"TK", *b"TL", *b"TM", *b"TN", *b"TO", *b"TR", *b"TT", *b"TV", *b"TW",
    *b"TZ", *b"UA", *b"UG", *b"UM", *b"US", *b"UY", *b"UZ", *b"VA", *b"VC", *b"VE", *b"VG", *b"VI",
    *b"VN", *b"VU", *b"WF", *b"WS", *b"YE", *b"YT", *b"ZA", *b"ZM", *b"ZW",
];

string_value!(Country, {
    "type": "string",
    "pattern": "^[A-Z]{2}$",
    "description": "ISO 3166-1 alpha-2 country code."
});

/// An email address: trimmed, lowercased, exactly one `@`, a non-empty local part and a
/// domain with at least one dot and no empty label.
///
/// Lowercasing the whole address makes "unique email" mean what a person expects; mail
/// systems treat the local part case-insensitively in practice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Longest address accepted (RFC 5321 path limit).
    pub const LENGTH_MAX: usize = 254;

    /// Checks, normalizes and builds an email address.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        Self::parse_owned(text.to_owned())
    }

    /// [`Email::parse`] of an owned text, which is kept when it needs no normalizing (every
    /// address read back from the log: it was stored normalized).
    fn parse_owned(text: String) -> Result<Self, ValueError> {
        if Self::plain(&text) {
            Self::checked_plain(text)
        } else {
            Self::parse_general(&text)
        }
    }

    /// Whether normalizing `text` leaves it as it is and it has no whitespace: printable
    /// ASCII without capitals (ASCII whitespace, U+000B included, is not printable).
    fn plain(text: &str) -> bool {
        text.bytes()
            .all(|byte| byte.is_ascii_graphic() && !byte.is_ascii_uppercase())
    }

    /// Checks a [`plain`](Email::plain) text, its own normalized form.
    fn checked_plain(text: String) -> Result<Self, ValueError> {
        if text.len() <= Self::LENGTH_MAX && Self::well_formed(&text) {
            Ok(Self(text))
        } else {
            Err(ValueError::Email(text))
        }
    }

    /// Checks the trimmed, lower-cased copy of any text.
    fn parse_general(text: &str) -> Result<Self, ValueError> {
        let normalized = text.trim().to_lowercase();
        if normalized.len() > Self::LENGTH_MAX
            || normalized.chars().any(char::is_whitespace)
            || !Self::well_formed(&normalized)
        {
            return Err(ValueError::Email(text.to_owned()));
        }
        Ok(Self(normalized))
    }

    /// One `@`, after a non-empty local part, before a domain of non-empty dotted labels.
    ///
    /// Read byte by byte in one pass over the domain (`@` and `.` are ASCII, and no byte of
    /// a longer UTF-8 character equals an ASCII one): every address the log holds is read
    /// again by each rebuild.
    fn well_formed(normalized: &str) -> bool {
        let bytes = normalized.as_bytes();
        let Some(at) = bytes.iter().position(|byte| *byte == b'@') else {
            return false;
        };
        let domain = &bytes[at + 1..];
        // Whether the byte before is a dot (or the domain's start): a label is empty then.
        let mut after_dot = true;
        let mut dots = 0usize;
        for byte in domain {
            match byte {
                b'@' => return false,
                b'.' if after_dot => return false,
                b'.' => {
                    dots += 1;
                    after_dot = true;
                }
                _ => after_dot = false,
            }
        }
        at > 0 && dots > 0 && !after_dot
    }

    /// For the crate's own fixed samples, whose text is known valid and normalized.
    pub(crate) fn known_valid(text: &'static str) -> Self {
        Self(text.to_owned())
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(owned Email, {
    "type": "string",
    "format": "email",
    "description": "Email address, stored trimmed and lowercased."
});

/// The SHA-256 hash of a secret token (an invitation or verification link's token).
///
/// The ledger never sees the token itself: the command handler generates it, returns it
/// once, and passes only this hash. Serialized as 64 lowercase hexadecimal characters, so
/// JSON and MessagePack show the same readable text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Hashes a token with SHA-256.
    pub fn of(token: &[u8]) -> Self {
        Self(Sha256::digest(token).into())
    }

    /// Parses 64 hexadecimal characters.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(ValueError::SecretHash);
        }
        let mut hash = [0u8; 32];
        for (slot, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or(ValueError::SecretHash)?;
            let low = hex_value(pair[1]).ok_or(ValueError::SecretHash)?;
            *slot = high << 4 | low;
        }
        Ok(Self(hash))
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({self})")
    }
}

string_value!(SecretHash, {
    "type": "string",
    "pattern": "^[0-9a-f]{64}$",
    "description": "SHA-256 of a secret token, in lowercase hexadecimal."
});

/// The duration of a granular delegated admin (GDAP) relationship, in whole days, P1D to P2Y.
///
/// Written as an ISO-8601 duration. Accepted forms are `PnD`, `PnW` and `PnY`, where a year
/// counts 365 days, so `P2Y` is the 730-day maximum that Partner Center allows; months are
/// refused because their length is ambiguous. Always written back as `PnD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GranularDuration(u16);

impl GranularDuration {
    /// Shortest duration, one day.
    pub const DAYS_MIN: u16 = 1;
    /// Longest duration, two years of 365 days.
    pub const DAYS_MAX: u16 = 730;

    /// A duration of whole days, checked against the P1D..P2Y range.
    pub fn from_days(days: u16) -> Result<Self, ValueError> {
        if (Self::DAYS_MIN..=Self::DAYS_MAX).contains(&days) {
            Ok(Self(days))
        } else {
            Err(ValueError::Duration(format!("P{days}D")))
        }
    }

    /// Parses `PnD`, `PnW` or `PnY`.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let refuse = || ValueError::Duration(text.to_owned());
        let body = text.strip_prefix('P').ok_or_else(refuse)?;
        let (number, unit) = body.split_at(body.len().saturating_sub(1));
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 4 {
            return Err(refuse());
        }
        let count: u32 = number.parse().map_err(|_| refuse())?;
        let days = match unit {
            "D" => count,
            "W" => count * 7,
            "Y" => count * 365,
            _ => return Err(refuse()),
        };
        let days = u16::try_from(days).map_err(|_| refuse())?;
        Self::from_days(days).map_err(|_| refuse())
    }

    /// For the crate's own fixed samples, whose count is known in range.
    pub(crate) const fn known_valid(days: u16) -> Self {
        Self(days)
    }

    /// The number of days.
    pub const fn days(self) -> u16 {
        self.0
    }
}

impl fmt::Display for GranularDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}D", self.0)
    }
}

string_value!(GranularDuration, {
    "type": "string",
    "pattern": "^P[0-9]{1,4}[DWY]$",
    "description": "ISO-8601 duration between P1D and P2Y (PnD, PnW or PnY; a year is 365 days)."
});

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_when_built() {
        assert!(PartnerNumber::parse("123456").is_ok());
        assert!(PartnerNumber::parse("12345").is_err());
        assert!(PartnerNumber::parse("12345678901").is_err());
        assert!(PartnerNumber::parse("12345a").is_err());
        assert!(Country::parse("US").is_ok());
        assert!(Country::parse("us").is_err());
        assert!(Country::parse("USA").is_err());
        assert_eq!(
            Country::parse_bytes(b"US").unwrap(),
            Country::parse("US").unwrap()
        );
        for bad in [&b"us"[..], b"U", b"", b"U\xff", b"\xc3\x9c\x53", b"USA"] {
            assert!(Country::parse_bytes(bad).is_err(), "{bad:?}");
        }
        let email = Email::parse("  Ada@Contoso.COM ").unwrap();
        assert_eq!(email.as_str(), "ada@contoso.com");
        assert_eq!(email.domain(), "contoso.com");
        for bad in [
            "ada",
            "@contoso.com",
            "ada@contoso",
            "a@b@c.com",
            "ada@.com",
            "a b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(GranularDuration::parse("P2Y").unwrap().days(), 730);
        assert_eq!(GranularDuration::parse("P1D").unwrap().days(), 1);
        assert_eq!(GranularDuration::parse("P2W").unwrap().days(), 14);
        for bad in ["P0D", "P731D", "P3Y", "P1M", "1D", "P", "PD", "P-1D"] {
            assert!(GranularDuration::parse(bad).is_err(), "{bad}");
        }
        let hash = SecretHash::of(b"token");
        assert_eq!(SecretHash::parse(&hash.to_string()).unwrap(), hash);
    }

    /// The rule [`Email::well_formed`] reads byte by byte, as first written over text.
    fn well_formed_by_text(normalized: &str) -> bool {
        normalized.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && domain.split('.').all(|label| !label.is_empty())
        })
    }

    proptest::proptest! {
        /// The byte-by-byte reading of an address's shape decides every text as the rule
        /// over text does.
        #[test]
        fn email_shape_reads_as_the_rule_over_text(
            text in r"[a@.é\u{3000}]{0,10}|[a-z]{0,3}@[a-z.]{0,6}|.{0,20}"
        ) {
            proptest::prop_assert_eq!(Email::well_formed(&text), well_formed_by_text(&text));
        }

        /// The plain path (text kept as given) decides every text as the general one
        /// (trimmed, lower-cased copy) does, owned or borrowed: same address, same refusal.
        #[test]
        fn emails_read_plain_as_normalized(
            text in r"[ \t\x0b\x0c\r\nAa@.bZ~\x00\x7fé\u{85}\u{3000}-]{0,12}|[ \t\x0b\u{3000}]?[a-zA-Zé]{1,4}@[a-zA-Z]{1,4}\.[a-zA-Z]{1,3}[ \x0b\u{85}]?|.{250,256}|[a-z]{240,250}@[a-z]{2,6}\.[a-z]{2,4}"
        ) {
            let general = Email::parse_general(&text);
            proptest::prop_assert_eq!(&Email::parse(&text), &general);
            proptest::prop_assert_eq!(&Email::try_from(text.clone()), &general);
        }
    }
}
