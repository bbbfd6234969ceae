//! Query dispatch: the queries of SPEC §5 by name, shared by the HTTP API and the command
//! line. A query is parsed from its name and parameters ([`Query::parse`]), answered on a
//! view at any instant ([`view`], [`run`]) and rendered to JSON with the position the answer
//! was computed at and, on request, the events that make it true.
//!
//! Evidence in answers is given as event references (small numbers); with `explain`, the
//! `explanation` lists each referenced event (`ref`, position, type, stream, actor, time).
//! What a reader may see of an answer is the caller's read policy ([`Scope`]); this module
//! only leaves out what the scope hides.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use domain::{Capability, CustomerId, PartnerId, UserId};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{AsOf, CapabilityCheck, EventRef, GranularState, Projections, QueryError, View};

/// Whose entries an answer shows: the caller's read policy decides (the server's), this
/// module only leaves out what it hides.
pub trait Scope {
    /// Whether entries of `partner` (a reseller of record, an admin holder, a side of an
    /// ordering pair) are shown.
    fn sees(&self, partner: PartnerId) -> bool;
    /// Whether `partner`'s internals (legal profile, tenant, partner number) are shown.
    fn sees_internals_of(&self, partner: PartnerId) -> bool;
}

/// Every entry: the command line, and readers the policy lets see everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Everything;

impl Scope for Everything {
    fn sees(&self, _: PartnerId) -> bool {
        true
    }

    fn sees_internals_of(&self, _: PartnerId) -> bool {
        true
    }
}

/// Every query, by its name in the API and on the command line.
pub const QUERY_NAMES: [&str; 13] = [
    "reseller-of-record",
    "may-order",
    "ordering-pairs",
    "providers",
    "resellers",
    "shared-customers",
    "customers",
    "partner",
    "users",
    "user",
    "can",
    "admin-access",
    "tenant-admin-access",
];

/// One query with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Who is reseller of record for a customer.
    ResellerOfRecord {
        /// The customer.
        customer: CustomerId,
    },
    /// May provider P order for customer C citing reseller R, and why.
    MayOrder {
        /// P.
        provider: PartnerId,
        /// C.
        customer: CustomerId,
        /// R.
        reseller: PartnerId,
    },
    /// The (provider, reseller) pairs that may order for a customer.
    OrderingPairs {
        /// The customer.
        customer: CustomerId,
    },
    /// The indirect providers of a reseller.
    Providers {
        /// The reseller.
        reseller: PartnerId,
    },
    /// The indirect resellers of a provider.
    Resellers {
        /// The provider.
        provider: PartnerId,
    },
    /// The customers a provider and a reseller share.
    SharedCustomers {
        /// The provider.
        provider: PartnerId,
        /// The reseller.
        reseller: PartnerId,
    },
    /// A partner's customers.
    Customers {
        /// The partner.
        partner: PartnerId,
    },
    /// A partner's status, profile and agreement.
    Partner {
        /// The partner.
        partner: PartnerId,
    },
    /// The users of a partner.
    Users {
        /// The partner.
        partner: PartnerId,
    },
    /// One user's roles and capabilities.
    User {
        /// The user.
        user: UserId,
    },
    /// Whether a user may use a capability.
    Can {
        /// The user.
        user: UserId,
        /// The capability.
        capability: Capability,
    },
    /// Who holds delegated admin (and granular delegated admin) over a customer's tenant.
    AdminAccess {
        /// The customer.
        customer: CustomerId,
    },
    /// Which providers hold admin access to a reseller's tenant.
    TenantAdminAccess {
        /// The reseller.
        reseller: PartnerId,
    },
}

/// Why a query could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryFailure {
    /// Unknown query name or bad parameters.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked about did not exist at that instant.
    #[error("{0}")]
    NotFound(String),
}

fn param<T: serde::de::DeserializeOwned>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<T, QueryFailure> {
    let text = params
        .get(name)
        .ok_or_else(|| QueryFailure::Invalid(format!("parameter {name} is required")))?;
    serde_json::from_value(Value::String(text.clone()))
        .map_err(|error| QueryFailure::Invalid(format!("parameter {name}: {error}")))
}

impl Query {
    /// Parses a query from its name and parameters (`customer`, `provider`, `reseller`,
    /// `partner`, `user`, `capability`).
    pub fn parse(what: &str, params: &HashMap<String, String>) -> Result<Self, QueryFailure> {
        Ok(match what {
            "reseller-of-record" => Query::ResellerOfRecord {
                customer: param(params, "customer")?,
            },
            "may-order" => Query::MayOrder {
                provider: param(params, "provider")?,
                customer: param(params, "customer")?,
                reseller: param(params, "reseller")?,
            },
            "ordering-pairs" => Query::OrderingPairs {
                customer: param(params, "customer")?,
            },
            "providers" => Query::Providers {
                reseller: param(params, "reseller")?,
            },
            "resellers" => Query::Resellers {
                provider: param(params, "provider")?,
            },
            "shared-customers" => Query::SharedCustomers {
                provider: param(params, "provider")?,
                reseller: param(params, "reseller")?,
            },
            "customers" => Query::Customers {
                partner: param(params, "partner")?,
            },
            "partner" => Query::Partner {
                partner: param(params, "partner")?,
            },
            "users" => Query::Users {
                partner: param(params, "partner")?,
            },
            "user" => Query::User {
                user: param(params, "user")?,
            },
            "can" => Query::Can {
                user: param(params, "user")?,
                capability: param(params, "capability")?,
            },
            "admin-access" => Query::AdminAccess {
                customer: param(params, "customer")?,
            },
            "tenant-admin-access" => Query::TenantAdminAccess {
                reseller: param(params, "reseller")?,
            },
            other => {
                return Err(QueryFailure::Invalid(format!(
                    "unknown query {other:?}; one of {}",
                    QUERY_NAMES.join(", ")
                )));
            }
        })
    }
}

/// Parses an `as_of`: a global position or an RFC 3339 time.
pub fn parse_as_of(text: &str) -> Result<AsOf, QueryFailure> {
    if let Ok(position) = text.parse::<u64>() {
        return Ok(AsOf::Position(position));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| AsOf::Time(time.with_timezone(&Utc)))
        .map_err(|_| {
            QueryFailure::Invalid(format!(
                "as_of {text:?} is neither a position nor an RFC 3339 time"
            ))
        })
}

/// The view a query answers on: as of `as_of`, or of everything applied judging time-bound
/// facts (granular admin expiry) at `now`, the caller's clock, or at the last event's time
/// if the clock is behind it.
pub fn view(
    projections: &Projections,
    as_of: Option<AsOf>,
    now: DateTime<Utc>,
) -> Result<View<'_>, QueryError> {
    let view = projections.at(as_of)?;
    Ok(match as_of {
        None => {
            let last = view.instant();
            view.with_instant(now.max(last))
        }
        Some(_) => view,
    })
}

/// An answer, ready to be sent.
#[derive(Clone, Debug, Serialize)]
pub struct QueryAnswer {
    /// The query's name.
    pub query: &'static str,
    /// The last event the answer reflects (`None`: the empty log).
    pub position: Option<u64>,
    /// The instant time-bound facts were judged at.
    pub instant: DateTime<Utc>,
    /// The answer.
    pub answer: Value,
    /// The events behind the answer, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<Value>>,
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn found<T>(value: Option<T>, what: &str) -> Result<T, QueryFailure> {
    value.ok_or_else(|| QueryFailure::NotFound(format!("{what} not found at that instant")))
}

fn capability_refs(check: &CapabilityCheck, refs: &mut BTreeSet<EventRef>) {
    match *check {
        CapabilityCheck::Allowed { roles_since }
        | CapabilityCheck::MissingCapability { roles_since } => {
            refs.insert(roles_since);
        }
        CapabilityCheck::UserRemoved { removed } => {
            refs.insert(removed);
        }
        CapabilityCheck::TemporaryPasswordNotChanged { issued } => {
            refs.insert(issued);
        }
        CapabilityCheck::UserNotFound => {}
    }
}

/// Answers `query` on `view`, showing the entries of the partners `sees` lets the reader see
/// (the read policy's scope; [`Everything`] on the command line). Entries left out leave
/// their evidence out of the explanation too.
pub fn run(
    view: &View<'_>,
    query: &Query,
    explain: bool,
    sees: &dyn Scope,
) -> Result<QueryAnswer, QueryFailure> {
    let mut refs = BTreeSet::new();
    let (name, position, answer) = match *query {
        Query::ResellerOfRecord { customer } => {
            let answer = view.reseller_of_record(customer);
            let mut value = found(answer.value, "customer")?;
            value.retain(|of| sees.sees(of.partner));
            refs.extend(value.iter().map(|of| of.since));
            ("reseller-of-record", answer.position, to_json(&value))
        }
        Query::MayOrder {
            provider,
            customer,
            reseller,
        } => {
            let answer = view.may_order(provider, customer, reseller);
            let value = match &answer.value {
                Ok(right) => {
                    refs.extend(right.events());
                    json!({"allowed": true, "right": right})
                }
                Err(denial) => {
                    refs.extend(denial.failed_by);
                    json!({"allowed": false, "denial": denial, "reason": denial.refusal.to_string()})
                }
            };
            ("may-order", answer.position, value)
        }
        Query::OrderingPairs { customer } => {
            let mut answer = view.ordering_pairs(customer);
            answer
                .value
                .retain(|pair| sees.sees(pair.provider) && sees.sees(pair.reseller));
            for pair in &answer.value {
                refs.extend(pair.right.events());
            }
            ("ordering-pairs", answer.position, to_json(&answer.value))
        }
        Query::Providers { reseller } => {
            let answer = view.indirect_providers(reseller);
            let value = found(answer.value, "reseller")?;
            refs.extend(value.iter().map(|p| p.since));
            ("providers", answer.position, to_json(&value))
        }
        Query::Resellers { provider } => {
            let answer = view.indirect_resellers(provider);
            let value = found(answer.value, "provider")?;
            refs.extend(value.iter().map(|p| p.since));
            ("resellers", answer.position, to_json(&value))
        }
        Query::SharedCustomers { provider, reseller } => {
            let answer = view.shared_customers(provider, reseller);
            for shared in &answer.value {
                refs.insert(shared.reseller_since);
                refs.insert(shared.provider_since);
            }
            ("shared-customers", answer.position, to_json(&answer.value))
        }
        Query::Customers { partner } => {
            let answer = view.customers_of(partner);
            let value = found(answer.value, "partner")?;
            refs.extend(value.iter().map(|(_, of)| of.since));
            let list: Vec<Value> = value
                .iter()
                .map(|(customer, of)| {
                    let profile = view.customer_info(*customer).value.map(|c| to_json(c.profile));
                    json!({"customer": customer, "tier": of.tier, "since": of.since, "profile": profile})
                })
                .collect();
            ("customers", answer.position, Value::Array(list))
        }
        Query::Partner { partner } => {
            let answer = view.partner_info(partner);
            let value = found(answer.value, "partner")?;
            refs.insert(value.status_since);
            refs.insert(value.created);
            refs.extend(value.agreement.map(|(_, signed)| signed));
            let mut shown = to_json(&value);
            if !sees.sees_internals_of(partner)
                && let Some(fields) = shown.as_object_mut()
            {
                // A counterpart's standing, not its internals.
                for internal in ["tenant_id", "legal_profile", "partner_number"] {
                    fields.remove(internal);
                }
            }
            ("partner", answer.position, shown)
        }
        Query::Users { partner } => {
            let answer = view.users_of(partner);
            let value = found(answer.value, "partner")?;
            for user in &value {
                refs.insert(user.added);
                refs.insert(user.roles_since);
                refs.extend(user.removed);
            }
            ("users", answer.position, to_json(&value))
        }
        Query::User { user } => {
            let answer = view.user_info_of(user);
            let value = found(answer.value, "user")?;
            refs.insert(value.added);
            refs.insert(value.roles_since);
            refs.extend(value.removed);
            refs.extend(value.temporary_password_pending);
            ("user", answer.position, to_json(&value))
        }
        Query::Can { user, capability } => {
            let answer = view.can(user, capability);
            capability_refs(&answer.value, &mut refs);
            let allowed = matches!(answer.value, CapabilityCheck::Allowed { .. });
            (
                "can",
                answer.position,
                json!({"allowed": allowed, "capability": capability, "check": answer.value}),
            )
        }
        Query::AdminAccess { customer } => {
            let delegated = view.delegated_admins(customer);
            let granular = view.granular_admins(customer);
            let mut delegated_value = found(delegated.value, "customer")?;
            delegated_value.retain(|admin| sees.sees(admin.partner));
            let mut granular_value = granular.value.unwrap_or_default();
            granular_value.retain(|grant| sees.sees(grant.partner));
            refs.extend(delegated_value.iter().map(|d| d.since));
            for grant in &granular_value {
                refs.insert(grant.requested);
                match grant.state {
                    GranularState::Approved { approved, .. } => {
                        refs.insert(approved);
                    }
                    GranularState::Revoked { revoked } => {
                        refs.insert(revoked);
                    }
                    GranularState::Pending { .. } => {}
                }
            }
            (
                "admin-access",
                delegated.position,
                json!({"delegated_admin": delegated_value, "granular_admin": granular_value}),
            )
        }
        Query::TenantAdminAccess { reseller } => {
            let answer = view.tenant_admin_access(reseller);
            let value = found(answer.value, "reseller")?;
            refs.extend(value.iter().map(|p| p.since));
            ("tenant-admin-access", answer.position, to_json(&value))
        }
    };
    let explanation = explain.then(|| {
        refs.iter()
            .map(|event| {
                let mut info = to_json(&view.event(*event));
                info["ref"] = to_json(event);
                info
            })
            .collect()
    });
    Ok(QueryAnswer {
        query: name,
        position,
        instant: view.instant(),
        answer,
        explanation,
    })
}
