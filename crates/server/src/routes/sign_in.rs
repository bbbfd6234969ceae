//! Signing in and the commands that carry their own credentials.
//!
//! - Partner users sign in with email and password (Argon2id in the credential store) and
//!   get an expiring bearer token; one signed in with a temporary password may only change
//!   it (`/v1/auth/change-password`), which records `TemporaryPasswordChanged` and returns a
//!   full token.
//! - An enrolling tenant admin proves its tenant with a directory token (the bearer of
//!   `/v1/enrollments`: tenant, email and name are the token's) and chooses a password when
//!   starting the enrollment. It is stored under the enrollment (`enrollment:{partner id}`)
//!   and signs the admin in as the tenant admin while the enrollment is pending. Once the
//!   operator authorizes the enrollment, the admin's first sign-in with that email and
//!   password binds it to the partner's first user (a global admin), who has no temporary
//!   password by the domain's rules.
//! - A customer's global admin opens the invitation link: the invitation id and the link's
//!   token in the body, and a directory token of the tenant's global admin as the bearer,
//!   give a session acting as that tenant's customer admin.
//! - The primary contact's verification link is a one-shot command (`/v1/verifications`).
//!
//! Every failed sign-in is the same `401`, whether the account exists or not, and takes the
//! same work: one Argon2id verification, against a dummy hash when there is no credential
//! to check. Guesses at a secret (a sign-in's password, change-password's current password,
//! an invitation link's token) are throttled per account and client address and per address
//! ([`crate::auth::limiter`]): a `429` problem with `Retry-After`, for at most a minute by
//! default, never a lockout. A password change or reset ends every session of the user;
//! change-password answers with a fresh token in place of the one it was called with. No
//! password or token is ever logged.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use credentials::CredentialError;
use domain::commands::{StartEnrollment, VerifyPrimaryContact};
use domain::{Actor, Command, Country, Email, Event, InvitationId, PartnerId, Proof, SecretHash};
use handler::CommandRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::sessions::IssuedToken;
use crate::auth::{AnyCaller, ClientAddress, DirectoryAdmin, Principal, directory_proof};
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};
use crate::routes::commands::{CORRELATION_ID, IDEMPOTENCY_KEY, header_uuid, recorded_response};

/// The credential subject of an enrollment's admin before the first user exists.
pub fn enrollment_subject(partner: PartnerId) -> String {
    format!("enrollment:{}", partner.0)
}

/// The body of `POST /v1/auth/sign-in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    email: String,
    password: String,
}

/// Whom a sign-in would be for, once the password checks out.
enum Candidate {
    /// A partner user with its own credential.
    User { principal: Principal },
    /// The first user of an authorized enrollment, whose credential is still the
    /// enrollment's: bound on this sign-in.
    FirstUser {
        principal: Principal,
        enrollment: PartnerId,
    },
    /// The admin of a pending enrollment.
    TenantAdmin { principal: Principal },
}

fn session_json(issued: &IssuedToken, principal: &Principal) -> Value {
    let mut value = json!({
        "token": issued.token,
        "token_type": "Bearer",
        "expires_at": issued.expires_at,
        "principal": principal.kind(),
    });
    match principal {
        Principal::User {
            user_id,
            partner_id,
            must_change_password,
        } => {
            value["user_id"] = json!(user_id);
            value["partner_id"] = json!(partner_id);
            value["must_change_password"] = json!(must_change_password);
        }
        Principal::TenantAdmin { partner_id, .. } => {
            value["partner_id"] = json!(partner_id);
        }
        Principal::Customer { tenant_id, .. } => {
            value["tenant_id"] = json!(tenant_id);
        }
        _ => {}
    }
    value
}

/// Opens a session for `principal` (writing the sessions file off the async workers).
async fn open_session(state: &Arc<AppState>, principal: Principal) -> ApiResult<IssuedToken> {
    state
        .off_workers(move |state| state.sessions.issue(principal))
        .await?
        .map_err(|full| Problem::unavailable("sessions-full", full.to_string()))
}

async fn issue(state: &Arc<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let issued = open_session(state, principal.clone()).await?;
    Ok(Json(session_json(&issued, &principal)))
}

/// The answer to an attempt refused until `wait` has passed.
fn too_many(wait: Duration) -> Problem {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        "too many failed attempts",
    )
    .detail("too many failed attempts from this address; wait before trying again");
    problem.retry_after_seconds = Some(seconds.max(1));
    problem
}

/// Checks a password off the async workers: Argon2id takes tens of milliseconds.
async fn verify_password(
    state: &Arc<AppState>,
    subject: String,
    password: String,
) -> ApiResult<Result<credentials::Verified, CredentialError>> {
    state
        .off_workers(move |state| state.handler.credentials().verify(&subject, &password))
        .await
}

/// `POST /v1/auth/sign-in`.
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<SignIn>,
) -> ApiResult<Json<Value>> {
    let account = body.email.trim().to_lowercase();
    let attempt = state
        .limiter
        .begin(&format!("sign-in {account}"), address)
        .map_err(too_many)?;
    let candidate = match Email::parse(&account) {
        Ok(email) => find_candidate(&state, &email).await?,
        Err(_) => None,
    };
    let subject = match &candidate {
        Some(Candidate::User { principal }) => match principal {
            Principal::User { user_id, .. } => user_id.to_string(),
            _ => String::new(),
        },
        Some(Candidate::FirstUser { enrollment, .. }) => enrollment_subject(*enrollment),
        Some(Candidate::TenantAdmin { principal }) => match principal {
            Principal::TenantAdmin { partner_id, .. } => enrollment_subject(*partner_id),
            _ => String::new(),
        },
        // No credential to check: the credential store checks the password against its
        // dummy hash, so that an unknown account costs the same work as a known one.
        None => "unknown:".to_string(),
    };
    let verified = verify_password(&state, subject, body.password.clone()).await?;
    let (Some(candidate), Ok(verified)) = (candidate, verified) else {
        // The attempt stays counted as a failure.
        return Err(Problem::unauthorized());
    };
    attempt.succeeded();
    let principal = match candidate {
        Candidate::User { principal } => match principal {
            Principal::User {
                user_id,
                partner_id,
                ..
            } => Principal::User {
                user_id,
                partner_id,
                must_change_password: verified.temporary,
            },
            other => other,
        },
        Candidate::FirstUser {
            principal,
            enrollment,
        } => {
            bind_first_user(&state, &principal, enrollment, body.password).await?;
            principal
        }
        Candidate::TenantAdmin { principal } => principal,
    };
    tracing::info!(principal = principal.kind(), "signed in");
    issue(&state, principal).await
}

/// Moves the enrollment's password to the first user it belongs to.
async fn bind_first_user(
    state: &Arc<AppState>,
    principal: &Principal,
    enrollment: PartnerId,
    password: String,
) -> ApiResult<()> {
    let Principal::User { user_id, .. } = principal else {
        return Err(Problem::internal());
    };
    let credentials = state.handler.credentials().clone();
    let subject = user_id.to_string();
    let now = state.handler.clock().now();
    tokio::task::spawn_blocking(move || {
        credentials.set_password(&subject, &password, now)?;
        credentials.remove(&enrollment_subject(enrollment))
    })
    .await
    .map_err(|_| Problem::internal())?
    .map_err(|error| {
        tracing::error!(%error, "binding the enrollment password to the first user");
        Problem::internal()
    })
}

async fn find_candidate(state: &Arc<AppState>, email: &Email) -> ApiResult<Option<Candidate>> {
    let credentials = state.handler.credentials().clone();
    let (candidate, _) = state
        .handler
        .read_state(|ledger| {
            if let Some((partner, user)) = ledger.user_by_email(email) {
                if user.removed {
                    return None;
                }
                let principal = Principal::User {
                    user_id: user.id,
                    partner_id: partner.id,
                    must_change_password: user.temporary_password_pending,
                };
                if credentials.contains(&user.id.to_string()) {
                    return Some(Candidate::User { principal });
                }
                let enrolled_by_this_admin = partner
                    .enrolling_admin
                    .as_ref()
                    .is_some_and(|(admin, _)| admin == email);
                return enrolled_by_this_admin.then_some(Candidate::FirstUser {
                    principal,
                    enrollment: partner.id,
                });
            }
            ledger
                .partners()
                .find(|partner| {
                    partner.authorized_at.is_none()
                        && partner
                            .enrolling_admin
                            .as_ref()
                            .is_some_and(|(admin, _)| admin == email)
                })
                .and_then(|partner| {
                    let (email, name) = partner.enrolling_admin.clone()?;
                    Some(Candidate::TenantAdmin {
                        principal: Principal::TenantAdmin {
                            tenant_id: partner.tenant_id,
                            email,
                            name,
                            partner_id: partner.id,
                            proof: Proof::SignIn,
                        },
                    })
                })
        })
        .await
        .map_err(Problem::from)?;
    Ok(candidate)
}

/// The body of `POST /v1/auth/change-password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /v1/auth/change-password`: a partner user replaces its password. A temporary one is
/// replaced through the command handler (recording `TemporaryPasswordChanged`). Every
/// session of the user ends, the one that called included, and a fresh full token is
/// returned in place of the caller's. A wrong current password is a failed guess for the
/// attempt limiter.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    AnyCaller(caller): AnyCaller,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ChangePassword>,
) -> ApiResult<Json<Value>> {
    let Principal::User {
        user_id,
        partner_id,
        must_change_password,
    } = caller
    else {
        return Err(Problem::forbidden());
    };
    let attempt = state
        .limiter
        .begin(&format!("change-password {user_id}"), address)
        .map_err(too_many)?;
    let changed = if must_change_password {
        let command_id = header_uuid(&headers, IDEMPOTENCY_KEY)?.unwrap_or_else(Uuid::now_v7);
        state
            .handler
            .change_temporary_password(
                command_id,
                user_id,
                partner_id,
                &body.current_password,
                &body.new_password,
            )
            .await
            .map(|outcome| outcome.events.last().map(|e| e.position.0))
    } else {
        let now = state.handler.clock().now();
        state
            .off_workers(move |state| {
                state.handler.credentials().change_password(
                    &user_id.to_string(),
                    &body.current_password,
                    &body.new_password,
                    now,
                )
            })
            .await?
            .map(|()| None)
            .map_err(handler::HandleError::from)
    };
    // The current password was right if the change was made, or if only the new password
    // was refused (checked after the current one).
    if matches!(
        changed,
        Ok(_)
            | Err(handler::HandleError::Credentials(
                CredentialError::PasswordRefused(_)
            ))
    ) {
        attempt.succeeded();
    }
    let position = changed.map_err(Problem::from)?;
    let ended = state
        .off_workers(move |state| state.sessions.revoke_user(user_id))
        .await?;
    tracing::info!(
        principal = "user",
        sessions_ended = ended,
        "password changed"
    );
    let Json(mut value) = issue(
        &state,
        Principal::User {
            user_id,
            partner_id,
            must_change_password: false,
        },
    )
    .await?;
    value["position"] = json!(position);
    Ok(Json(value))
}

fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

/// `POST /v1/auth/sign-out`: ends the session of the token sent.
pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    if let Some(token) = bearer_of(&headers) {
        let token = token.to_string();
        state
            .off_workers(move |state| state.sessions.revoke(&token))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /v1/auth/invitation`. The tenant is not in it: it is the tenant of the
/// directory token that must accompany it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenInvitation {
    invitation_id: InvitationId,
    /// The token of the link.
    token: String,
}

/// `POST /v1/auth/invitation`: a customer's global admin opens the invitation link, proving
/// its tenant with a directory token (`Authorization: Bearer <JWT>`) of that tenant's global
/// admin. The session is bound to that tenant; once the invitation is accepted, only the
/// accepting customer's tenant can open it again. A link token that does not match is a
/// failed guess for the attempt limiter.
pub async fn open_invitation(
    State(state): State<Arc<AppState>>,
    DirectoryAdmin(identity): DirectoryAdmin,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<OpenInvitation>,
) -> ApiResult<Json<Value>> {
    let attempt = state
        .limiter
        .begin(&format!("invitation {}", body.invitation_id.0), address)
        .map_err(too_many)?;
    let tenant_id = identity.tenant_id;
    let token_hash = SecretHash::of(body.token.as_bytes());
    let (matches, _) = state
        .handler
        .read_state(|ledger| {
            let Some(invitation) = ledger.invitation(body.invitation_id) else {
                return false;
            };
            if invitation.token_hash != token_hash {
                return false;
            }
            // Once accepted, the link acts only for the tenant that accepted it.
            match invitation.accepted_by {
                Some(customer) => ledger
                    .customer(customer)
                    .is_some_and(|c| c.profile.tenant_id == tenant_id),
                None => true,
            }
        })
        .await
        .map_err(Problem::from)?;
    if !matches {
        return Err(Problem::unauthorized());
    }
    attempt.succeeded();
    issue(
        &state,
        Principal::Customer {
            tenant_id,
            token_hash,
            invitation_id: body.invitation_id,
            proof: directory_proof(&identity),
        },
    )
    .await
}

/// The body of `POST /v1/enrollments`. The tenant and the admin are not in it: they are the
/// directory token's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The password the admin will sign in with.
    password: String,
    /// The organization's name.
    organization_name: String,
    /// The tenant's country.
    tenant_country: Country,
}

/// `POST /v1/enrollments`: a tenant's global admin, proven by a directory token
/// (`Authorization: Bearer <JWT>`), starts enrolling its tenant as an indirect reseller and
/// chooses the password it will sign in with; returns the partner id and a session. The
/// tenant, the admin's email and name come from the token.
pub async fn start_enrollment(
    State(state): State<Arc<AppState>>,
    DirectoryAdmin(identity): DirectoryAdmin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Enrollment>,
) -> ApiResult<Response> {
    let admin_email = identity
        .email
        .as_deref()
        .and_then(|email| Email::parse(email).ok())
        .ok_or_else(|| {
            Problem::bad_request(
                "directory-token-without-email",
                "the directory token carries no usable email claim (email, preferred_username or upn) to sign in with",
            )
        })?;
    let admin_name = identity
        .name
        .clone()
        .unwrap_or_else(|| admin_email.as_str().to_string());
    let tenant_id = identity.tenant_id;
    let chars = body.password.chars().count();
    if chars < credentials::PASSWORD_CHARS_MIN
        || body.password.len() > credentials::PASSWORD_BYTES_MAX
    {
        return Err(Problem::from(handler::HandleError::from(
            CredentialError::PasswordRefused(format!(
                "a password has {} to {} characters",
                credentials::PASSWORD_CHARS_MIN,
                credentials::PASSWORD_BYTES_MAX
            )),
        )));
    }
    let command_id = header_uuid(&headers, IDEMPOTENCY_KEY)?.unwrap_or_else(Uuid::now_v7);
    let correlation_id = header_uuid(&headers, CORRELATION_ID)?;
    let actor = Actor::TenantAdmin {
        tenant_id,
        email: admin_email.clone(),
        name: admin_name.clone(),
    };
    let proof = directory_proof(&identity);
    let outcome = state
        .handler
        .handle(CommandRequest {
            command_id,
            actor,
            proof: proof.clone(),
            command: Command::StartEnrollment(StartEnrollment {
                organization_name: body.organization_name,
                tenant_country: body.tenant_country,
            }),
            correlation_id,
        })
        .await
        .map_err(Problem::from)?;
    let Some(Event::EnrollmentStarted(started)) = outcome.events.first().map(|e| &e.event) else {
        return Err(Problem::internal());
    };
    let partner_id = started.partner_id;
    let subject = enrollment_subject(partner_id);
    let credentials = state.handler.credentials().clone();
    let now = state.handler.clock().now();
    let replayed = outcome.replayed;
    let password = body.password;
    tokio::task::spawn_blocking(move || {
        // A retry of the same command id may only set the password if the first attempt
        // failed to; otherwise it must know it.
        if replayed && credentials.contains(&subject) {
            credentials.verify(&subject, &password).map(|_| ())
        } else {
            credentials.set_password(&subject, &password, now)
        }
    })
    .await
    .map_err(|_| Problem::internal())?
    .map_err(|error| match error {
        CredentialError::WrongCredentials => Problem::unauthorized(),
        other => Problem::from(handler::HandleError::from(other)),
    })?;
    let principal = Principal::TenantAdmin {
        tenant_id,
        email: admin_email,
        name: admin_name,
        partner_id,
        proof,
    };
    let issued = open_session(&state, principal.clone()).await?;
    let mut response = recorded_response("StartEnrollment", &outcome);
    let mut value = crate::render::outcome_json("StartEnrollment", &outcome);
    value["partner_id"] = json!(partner_id);
    value["session"] = session_json(&issued, &principal);
    *response.body_mut() = axum::body::Body::from(serde_json::to_vec(&value).unwrap_or_default());
    Ok(response)
}

/// The body of `POST /v1/verifications`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    partner_id: PartnerId,
    /// The token of the verification link.
    token: String,
}

/// `POST /v1/verifications`: the primary contact opens the verification link.
pub async fn verify_primary_contact(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Verification>,
) -> ApiResult<Response> {
    let command_id = header_uuid(&headers, IDEMPOTENCY_KEY)?.unwrap_or_else(Uuid::now_v7);
    let outcome = state
        .handler
        .handle(CommandRequest {
            command_id,
            actor: Actor::PrimaryContact {
                token: SecretHash::of(body.token.as_bytes()),
            },
            proof: Proof::LinkToken,
            command: Command::VerifyPrimaryContact(VerifyPrimaryContact {
                partner_id: body.partner_id,
            }),
            correlation_id: None,
        })
        .await
        .map_err(Problem::from)?;
    Ok(recorded_response("VerifyPrimaryContact", &outcome))
}
