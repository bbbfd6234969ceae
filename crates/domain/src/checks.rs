//! Small input checks shared by the aggregates: required and bounded texts, assigned
//! countries, the webmail list.

use crate::commands::limits::{NAME_LENGTH_MAX, TEXT_LENGTH_MAX};
use crate::context::Context;
use crate::ids::{Country, Email, SecretHash};
use crate::rejection::Rejection;

/// Web-based mail domains refused for a primary contact (SPEC §2.1.3). This is data: an
/// entry `name.*` matches `name` followed by any suffix (`yahoo.com`, `yahoo.co.uk`), any
/// other entry matches exactly.
pub const WEBMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.*",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "outlook.com",
    "hotmail.*",
    "live.*",
    "msn.com",
];

/// Whether `email` is on a web-based mail domain of [`WEBMAIL_DOMAINS`].
pub fn is_webmail(email: &Email) -> bool {
    let domain = email.domain();
    WEBMAIL_DOMAINS
        .iter()
        .any(|entry| match entry.strip_suffix(".*") {
            Some(name) => domain
                .strip_prefix(name)
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.')),
            None => domain == *entry,
        })
}

/// A required, bounded name.
pub(crate) fn name(field: &'static str, text: &str) -> Result<(), Rejection> {
    bounded(field, text, NAME_LENGTH_MAX, true)
}

/// A required, bounded free text.
pub(crate) fn text(field: &'static str, text: &str) -> Result<(), Rejection> {
    bounded(field, text, TEXT_LENGTH_MAX, true)
}

/// An optional, bounded free text.
pub(crate) fn optional_text(field: &'static str, value: Option<&str>) -> Result<(), Rejection> {
    value.map_or(Ok(()), |value| {
        bounded(field, value, TEXT_LENGTH_MAX, false)
    })
}

fn bounded(field: &'static str, text: &str, max: usize, required: bool) -> Result<(), Rejection> {
    if required && text.trim().is_empty() {
        return Err(Rejection::FieldRequired { field });
    }
    if text.len() > max {
        return Err(Rejection::FieldTooLong { field, max });
    }
    // Control characters (a NUL, an escape sequence, a carriage return that rewrites a line
    // of a report) have no place in a name or a note a person typed.
    if text.chars().any(char::is_control) {
        return Err(Rejection::ControlCharacter { field });
    }
    Ok(())
}

/// A country that ISO 3166-1 assigns today.
pub(crate) fn country(field: &'static str, country: Country) -> Result<(), Rejection> {
    if country.is_assigned() {
        Ok(())
    } else {
        Err(Rejection::CountryUnknown { field, country })
    }
}

/// A list length within bounds.
pub(crate) fn count(
    field: &'static str,
    len: usize,
    min: usize,
    max: usize,
) -> Result<(), Rejection> {
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(Rejection::OutOfRange { field, min, max })
    }
}

/// The token hash a token-issuing command must come with.
pub(crate) fn issued_token(ctx: &Context) -> Result<SecretHash, Rejection> {
    ctx.secret_hash.ok_or(Rejection::SecretHashMissing)
}
