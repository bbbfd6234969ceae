//! Who is calling: bearer tokens and keys resolved to a [`Principal`].
//!
//! One header, `Authorization: Bearer <secret>`, carries every kind of credential: the
//! operator key (configured at start), an auditor or service key (issued by the operator), or
//! a session token (from signing in with email and password, from starting an enrollment,
//! or from opening a customer invitation link). Secrets are compared by their SHA-256, never
//! logged, and every failure is the same `401`.

pub mod keys;
pub mod limiter;
pub mod sessions;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::{Actor, Email, InvitationId, PartnerId, SecretHash, TenantId, UserId};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::problem::Problem;
pub use keys::{ApiKeys, KeyInfo, KeyKind};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The program operator.
    Operator,
    /// An auditor key: reads everything, writes nothing.
    Auditor(KeyInfo),
    /// A service key: the event feed and queries.
    Service(KeyInfo),
    /// A signed-in partner user.
    User {
        /// The user.
        user_id: UserId,
        /// Its partner.
        partner_id: PartnerId,
        /// Signed in with a temporary password: may only change it.
        must_change_password: bool,
    },
    /// The global admin of a tenant enrolling as a reseller (before authorization).
    TenantAdmin {
        /// The tenant.
        tenant_id: TenantId,
        /// The admin's email.
        email: Email,
        /// The admin's name.
        name: String,
        /// The partner being enrolled.
        partner_id: PartnerId,
    },
    /// A customer's global admin, acting through an invitation link's token.
    Customer {
        /// The customer's tenant.
        tenant_id: TenantId,
        /// The SHA-256 of the link's token.
        token_hash: SecretHash,
        /// The invitation the link belongs to.
        invitation_id: InvitationId,
    },
}

impl Principal {
    /// The actor commands of this principal are recorded as; `None` for read-only keys.
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Principal::Operator => Some(Actor::Operator),
            Principal::Auditor(_) | Principal::Service(_) => None,
            Principal::User { user_id, .. } => Some(Actor::user(*user_id)),
            Principal::TenantAdmin {
                tenant_id,
                email,
                name,
                ..
            } => Some(Actor::TenantAdmin {
                tenant_id: *tenant_id,
                email: email.clone(),
                name: name.clone(),
            }),
            Principal::Customer {
                tenant_id,
                token_hash,
                ..
            } => Some(Actor::CustomerAdmin {
                tenant_id: *tenant_id,
                token: Some(*token_hash),
            }),
        }
    }

    /// Whether this principal reads everything (operator and auditor keys).
    pub fn reads_everything(&self) -> bool {
        matches!(self, Principal::Operator | Principal::Auditor(_))
    }

    /// A short word for logs (never a secret).
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Operator => "operator",
            Principal::Auditor(_) => "auditor",
            Principal::Service(_) => "service",
            Principal::User { .. } => "user",
            Principal::TenantAdmin { .. } => "tenant_admin",
            Principal::Customer { .. } => "customer_admin",
        }
    }
}

/// SHA-256 of a secret.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bearer secret of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

/// Resolves a bearer secret to a principal.
pub fn resolve(state: &AppState, secret: &str) -> Option<Principal> {
    // Comparing hashes: a timing difference would only tell an attacker about a hash.
    if token_hash(secret) == state.operator_key_hash {
        return Some(Principal::Operator);
    }
    if let Some(info) = state.keys.resolve(secret) {
        return Some(match info.kind {
            KeyKind::Auditor => Principal::Auditor(info),
            KeyKind::Service => Principal::Service(info),
        });
    }
    let principal = state.sessions.resolve(secret)?;
    if let Principal::User { user_id, .. } = &principal
        && state.user_removed(*user_id)
    {
        return None;
    }
    Some(principal)
}

/// Any authenticated caller, including a user who must still change a temporary password.
pub struct AnyCaller(pub Principal);

/// An authenticated caller allowed to do more than change its temporary password.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<AppState>> for AnyCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let secret = bearer(parts).ok_or_else(Problem::unauthorized)?;
        let principal = resolve(state, secret).ok_or_else(Problem::unauthorized)?;
        tracing::debug!(principal = principal.kind(), "authenticated");
        Ok(AnyCaller(principal))
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let AnyCaller(principal) = AnyCaller::from_request_parts(parts, state).await?;
        if let Principal::User {
            must_change_password: true,
            ..
        } = principal
        {
            return Err(Problem::from(
                &domain::Rejection::TemporaryPasswordNotChanged,
            ));
        }
        Ok(Caller(principal))
    }
}
