//! Who is calling: bearer tokens and keys resolved to a [`Principal`].
//!
//! One header, `Authorization: Bearer <secret>`, carries every kind of credential: the
//! operator key (configured at start), an auditor or service key (issued by the operator), a
//! session token (from signing in with email and password, from starting an enrollment, or
//! from opening a customer invitation link), or a directory token (an OpenID Connect JWT of
//! a trusted issuer, verified by [`directory::Verifier`]: the tenant and its global admin are
//! proven by the directory, never named by a body). Secrets are compared by their SHA-256,
//! never logged, and every failure is the same `401`.

pub mod keys;
pub mod limiter;
pub mod sessions;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use directory::DirectoryIdentity;
use domain::{Actor, Email, InvitationId, PartnerId, Proof, SecretHash, TenantId, UserId};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::problem::Problem;
pub use keys::{ApiKeys, KeyInfo, KeyKind};

/// An authenticated caller. The principals a session can be for (users, enrolling tenant
/// admins, customer admins) are kept in the sessions file in this form; keys and directory
/// tokens are never sessions, so they are never written.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// The program operator.
    #[serde(skip)]
    Operator,
    /// An auditor key: reads everything, writes nothing.
    #[serde(skip)]
    Auditor(KeyInfo),
    /// A service key: the event feed and queries.
    #[serde(skip)]
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
        /// How the session was established: the directory token that started the
        /// enrollment, or a later sign-in with the enrollment's password.
        proof: Proof,
    },
    /// A customer's global admin, acting through an invitation link's token.
    Customer {
        /// The customer's tenant.
        tenant_id: TenantId,
        /// The SHA-256 of the link's token.
        token_hash: SecretHash,
        /// The invitation the link belongs to.
        invitation_id: InvitationId,
        /// The directory token of the tenant's global admin that opened the link.
        proof: Proof,
    },
    /// A person proven by a directory token sent as the bearer itself. A tenant's global
    /// admin acts as that tenant's customer admin; anyone else may do nothing.
    #[serde(skip)]
    Directory(DirectoryIdentity),
}

impl Principal {
    /// Whether a session can be for this principal (and so be kept in the sessions file).
    pub fn is_session(&self) -> bool {
        matches!(
            self,
            Principal::User { .. } | Principal::TenantAdmin { .. } | Principal::Customer { .. }
        )
    }
}

/// What a verified directory identity proves, for the envelope.
pub fn directory_proof(identity: &DirectoryIdentity) -> Proof {
    Proof::DirectoryToken {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
    }
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
            Principal::Directory(identity) => {
                identity.global_admin.then_some(Actor::CustomerAdmin {
                    tenant_id: identity.tenant_id,
                    token: None,
                })
            }
        }
    }

    /// The actor this principal's commands are recorded as, with how it was established
    /// (recorded beside it in every event's envelope); `None` for read-only keys and for
    /// directory users who are not a tenant's global admin.
    pub fn acting(&self) -> Option<(Actor, Proof)> {
        let actor = self.actor()?;
        let proof = match self {
            Principal::Operator => Proof::OperatorKey,
            Principal::User { .. } => Proof::SignIn,
            Principal::TenantAdmin { proof, .. } | Principal::Customer { proof, .. } => {
                proof.clone()
            }
            Principal::Directory(identity) => directory_proof(identity),
            // Read-only keys have no actor (returned above).
            Principal::Auditor(_) | Principal::Service(_) => return None,
        };
        Some((actor, proof))
    }

    /// The tenant whose customer admin this principal is: a customer session bound to its
    /// tenant, or a directory token of a tenant's global admin.
    pub fn customer_tenant(&self) -> Option<TenantId> {
        match self {
            Principal::Customer { tenant_id, .. } => Some(*tenant_id),
            Principal::Directory(identity) if identity.global_admin => Some(identity.tenant_id),
            _ => None,
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
            Principal::Directory(_) => "directory_user",
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
    bearer_header(&parts.headers)
}

/// The bearer secret of a request's headers, if it has one.
pub fn bearer_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

/// Resolves a bearer secret to a principal: a key, a session, or a directory token. `Err` is
/// the answer to give (the same `401` for every refusal; `503` when a directory's issuer
/// cannot be reached).
pub async fn resolve(state: &AppState, secret: &str) -> Result<Principal, Problem> {
    // Comparing hashes: a timing difference would only tell an attacker about a hash.
    if token_hash(secret) == state.operator_key_hash {
        return Ok(Principal::Operator);
    }
    if let Some(info) = state.keys.resolve(secret) {
        return Ok(match info.kind {
            KeyKind::Auditor => Principal::Auditor(info),
            KeyKind::Service => Principal::Service(info),
        });
    }
    if let Some(principal) = state.sessions.resolve(secret) {
        if let Principal::User { user_id, .. } = &principal
            && state.user_removed(*user_id)
        {
            return Err(Problem::unauthorized());
        }
        return Ok(principal);
    }
    if looks_like_jwt(secret) {
        return directory_identity(state, secret)
            .await
            .map(Principal::Directory);
    }
    Err(Problem::unauthorized())
}

/// Whether a bearer secret has the shape of a JWS compact token (three base64url parts).
fn looks_like_jwt(secret: &str) -> bool {
    secret.split('.').count() == 3
}

/// Verifies a directory token. Every refusal is the same `401`: which check failed is logged
/// at debug level only, and never the token.
pub async fn directory_identity(
    state: &AppState,
    token: &str,
) -> Result<DirectoryIdentity, Problem> {
    let Some(verifier) = &state.directory else {
        return Err(Problem::unauthorized());
    };
    match verifier.verify(token, state.handler.clock().now()).await {
        Ok(identity) => Ok(identity),
        Err(error) if error.is_unavailable() => {
            tracing::warn!(%error, "directory issuer unavailable");
            Err(Problem::unavailable(
                "directory-unavailable",
                "the directory that issued the token cannot be reached; try again shortly",
            ))
        }
        Err(error) => {
            tracing::debug!(%error, "directory token refused");
            Err(Problem::unauthorized())
        }
    }
}

/// The global admin of a tenant, proven by the directory token in the bearer header (the
/// enrollment and invitation routes, which take no session).
pub async fn directory_global_admin(
    state: &AppState,
    parts_headers: &axum::http::HeaderMap,
) -> Result<DirectoryIdentity, Problem> {
    let secret = bearer_header(parts_headers).ok_or_else(Problem::unauthorized)?;
    let identity = directory_identity(state, secret).await?;
    if !identity.global_admin {
        tracing::debug!("directory token of a user who is not the tenant's global admin");
        return Err(Problem::unauthorized());
    }
    Ok(identity)
}

/// A tenant's global admin proven by the directory token in the bearer header: the
/// extractor of the routes that take no session (enrollment, opening an invitation). It runs
/// before the body is read, so that a request without a valid token is the same `401`
/// whatever its body says.
pub struct DirectoryAdmin(pub DirectoryIdentity);

impl FromRequestParts<Arc<AppState>> for DirectoryAdmin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        directory_global_admin(state, &parts.headers)
            .await
            .map(DirectoryAdmin)
    }
}

/// The client's address, when the server knows it: [`crate::serve`] puts it in every
/// request; a router driven some other way (tests without a listener) may not have it.
/// The peer of the connection: a proxy's `X-Forwarded-For` is not trusted.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|connected| connected.0.ip()),
        ))
    }
}

/// Any authenticated caller, including a user who must still change a temporary password.
pub struct AnyCaller(pub Principal);

/// An authenticated caller allowed to do more than change its temporary password.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<AppState>> for AnyCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let secret = bearer(parts).ok_or_else(Problem::unauthorized)?;
        let principal = resolve(state, secret).await?;
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
