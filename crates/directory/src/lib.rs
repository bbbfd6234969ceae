//! Directory-proven identities (SPEC §6.1): the ledger as a resource server of OpenID Connect
//! issuers such as Microsoft Entra ID.
//!
//! A work account is a directory tenant. Who a tenant is, and whether a person is its global
//! admin, is never taken from a request body: it comes from a bearer JWT that [`Verifier`]
//! checks against the issuer's keys (its JWKS, found through its discovery document, cached
//! and refetched on an unknown key id at a bounded rate), its `iss`, `aud`, `exp` and `nbf`
//! (with a small leeway) and an allow-list of signature algorithms. The tenant is the `tid`
//! claim, the directory user `oid` (or `sub`), global admin `wids` containing the Global
//! Administrator role template id; [`ClaimNames`] renames them for other directories.
//!
//! [`DevDirectory`] is a development issuer for the demo: its own Ed25519 key in the data
//! directory, its own discovery and JWKS documents, and tokens minted for a named tenant and
//! user. Its tokens are verified by the same [`Verifier`], fetched over HTTP like any
//! issuer's: there is no second path.
//!
//! Signatures are checked by `jsonwebtoken` (RustCrypto backends); this crate only decides
//! which key and which claims.

mod dev;
mod verifier;

use std::time::Duration;

pub use dev::{DevDirectory, DevDirectoryError, DevTokenRequest};
use domain::TenantId;
pub use jsonwebtoken::Algorithm;
pub use verifier::Verifier;

/// The role template id of Entra ID's Global Administrator, as listed in a token's `wids`.
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The placeholder of a multi-tenant issuer template (Entra ID's
/// `https://login.microsoftonline.com/{tenantid}/v2.0`), checked against the token's own tenant.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The claims an identity is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    /// The tenant id (a UUID): Entra ID's `tid`.
    pub tenant: String,
    /// The directory user's stable id: Entra ID's `oid`.
    pub user: String,
    /// Used for the user when `user` is absent: `sub`.
    pub user_fallback: String,
    /// The list of directory role template ids: Entra ID's `wids`.
    pub roles: String,
    /// Claims holding the user's sign-in email, the first present wins.
    pub email: Vec<String>,
    /// The user's display name.
    pub name: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            tenant: "tid".into(),
            user: "oid".into(),
            user_fallback: "sub".into(),
            roles: "wids".into(),
            email: vec!["email".into(), "preferred_username".into(), "upn".into()],
            name: "name".into(),
        }
    }
}

/// One trusted issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The issuer identifier, exactly as tokens and the discovery document state it; may
    /// contain [`TENANT_PLACEHOLDER`], which must then equal the token's own tenant claim.
    pub issuer: String,
    /// Accepted audiences (the ledger's application id); a token must name one.
    pub audiences: Vec<String>,
    /// Where the discovery document is; by default `{issuer}/.well-known/openid-configuration`
    /// with the tenant placeholder read as `common`.
    pub discovery_url: Option<String>,
}

impl IssuerConfig {
    /// An issuer whose discovery document is at the standard place.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            discovery_url: None,
        }
    }

    /// The discovery document's address.
    pub fn discovery_url(&self) -> String {
        self.discovery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                self.issuer
                    .replace(TENANT_PLACEHOLDER, "common")
                    .trim_end_matches('/')
            )
        })
    }

    /// Whether a token's `iss` belongs to this issuer, given the token's tenant claim.
    pub fn names(&self, iss: &str, tenant: Option<&str>) -> bool {
        if self.issuer.contains(TENANT_PLACEHOLDER) {
            tenant.is_some_and(|tenant| self.issuer.replace(TENANT_PLACEHOLDER, tenant) == iss)
        } else {
            self.issuer == iss
        }
    }
}

/// How tokens are verified.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// The trusted issuers; a token of any other is refused.
    pub issuers: Vec<IssuerConfig>,
    /// Where the identity is read from.
    pub claims: ClaimNames,
    /// The role id in `claims.roles` that makes a global admin.
    pub global_admin_role: String,
    /// Accepted signature algorithms (never `none`, never a shared-secret one).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Shortest time between two fetches of an issuer's keys, so that tokens naming unknown
    /// key ids cannot make the ledger hammer the issuer.
    pub keys_refetch_min: Duration,
    /// Timeout of one fetch from an issuer.
    pub fetch_timeout: Duration,
    /// Most keys kept per issuer.
    pub keys_max: usize,
    /// Longest token accepted, in bytes.
    pub token_bytes_max: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            claims: ClaimNames::default(),
            global_admin_role: GLOBAL_ADMIN_ROLE.into(),
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
            ],
            leeway: Duration::from_secs(60),
            keys_refetch_min: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
            keys_max: 64,
            token_bytes_max: 16 * 1024,
        }
    }
}

/// A person proven by a directory token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryIdentity {
    /// The token's issuer.
    pub issuer: String,
    /// The directory user (`oid`, or `sub`).
    pub subject: String,
    /// The tenant the token was issued in.
    pub tenant_id: TenantId,
    /// Whether the user is a global admin of that tenant.
    pub global_admin: bool,
    /// The sign-in email, when the token carries one.
    pub email: Option<String>,
    /// The display name, when the token carries one.
    pub name: Option<String>,
}

/// Why a token was not accepted. The HTTP layer answers every refusal with the same `401`;
/// the cases are for logs and tests.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Not a JWS compact token, or its parts do not decode.
    #[error("not a well-formed token: {0}")]
    Malformed(String),
    /// The `iss` is not a trusted issuer (or its tenant placeholder does not match `tid`).
    #[error("issuer {0:?} is not trusted")]
    UntrustedIssuer(String),
    /// The algorithm is not allowed.
    #[error("algorithm {0} is not allowed")]
    AlgorithmRefused(String),
    /// No key of the issuer has the token's key id.
    #[error("the issuer has no key {0:?}")]
    UnknownKey(String),
    /// The signature, audience or issuer check failed.
    #[error("token refused: {0}")]
    Refused(String),
    /// Past `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` (beyond the leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// An identity claim is missing or malformed.
    #[error("claim {0:?} is missing or malformed")]
    Claim(String),
    /// The issuer's discovery document or keys could not be fetched.
    #[error("issuer unavailable: {0}")]
    IssuerUnavailable(String),
}

impl DirectoryError {
    /// Whether the failure is the issuer's rather than the token's (answered `503`, not `401`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DirectoryError::IssuerUnavailable(_))
    }
}
