//! `POST /v1/commands`: the command JSON of `domain::Command`, issued as the caller.
//!
//! The command id comes from the `Idempotency-Key` header (a UUID): a retry with the same
//! key returns the original outcome and appends nothing. The actor is never in the body:
//! it is the authenticated caller, so nobody can act as someone else.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Command;
use handler::CommandRequest;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// The header carrying the client-chosen command id.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header carrying the business conversation's id.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// A UUID from a header, if present.
pub fn header_uuid(headers: &HeaderMap, name: &str) -> ApiResult<Option<Uuid>> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| Uuid::parse_str(text.trim()).ok())
        .map(Some)
        .ok_or_else(|| Problem::bad_request("invalid-header", format!("{name} must be a UUID")))
}

/// Commands with their own endpoint, because they carry what the command JSON does not
/// (a password, a link token, a directory identity).
fn dedicated_endpoint(command: &Command) -> Option<&'static str> {
    match command {
        Command::StartEnrollment(_) => Some("POST /v1/enrollments"),
        Command::ChangeTemporaryPassword(_) => Some("POST /v1/auth/change-password"),
        Command::VerifyPrimaryContact(_) => Some("POST /v1/verifications"),
        _ => None,
    }
}

/// Query parameters of `POST /v1/commands`.
#[derive(serde::Deserialize, Default)]
pub struct SubmitParams {
    /// Wait for a checkpoint that includes the command's events and answer with their
    /// receipt (the checkpoint and each event's inclusion proof in it).
    #[serde(default)]
    receipt: bool,
}

/// `POST /v1/commands` (`?receipt=true`: with the events' receipt).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    params: Result<Query<SubmitParams>, axum::extract::rejection::QueryRejection>,
    JsonBody(command): JsonBody<Command>,
) -> ApiResult<Response> {
    let params = params
        .map(|Query(params)| params)
        .map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))?;
    let Some((actor, mut proof)) = caller.acting() else {
        // Auditor and service keys are read-only.
        return Err(Problem::forbidden());
    };
    if let Some(endpoint) = dedicated_endpoint(&command) {
        return Err(Problem::bad_request(
            "use-dedicated-endpoint",
            format!("{} is issued through {endpoint}", command.name()),
        ));
    }
    if let Command::AddResellerProgram(add) = &command {
        proof = tenant_global_admin_proof(&state, &headers, add.partner_id).await?;
    }
    let command_id = header_uuid(&headers, IDEMPOTENCY_KEY)?.unwrap_or_else(Uuid::now_v7);
    let correlation_id = header_uuid(&headers, CORRELATION_ID)?;
    let name = command.name();
    let outcome = state
        .handler
        .handle(CommandRequest {
            command_id,
            actor,
            proof,
            command,
            correlation_id,
        })
        .await
        .map_err(|error| {
            if let handler::HandleError::Rejected(rejection) = &error {
                tracing::info!(
                    command = name,
                    principal = caller.kind(),
                    rule = rejection.rule(),
                    "command refused"
                );
            }
            Problem::from(error)
        })?;
    end_sessions(&state, &outcome).await?;
    tracing::info!(command = name, principal = caller.kind(), stream = %outcome.stream, replayed = outcome.replayed, "command recorded");
    if !params.receipt {
        return Ok(recorded_response(name, &outcome));
    }
    let receipt = receipt(&state, &outcome).await;
    Ok(recorded_response_with(name, &outcome, Some(receipt)))
}

/// The receipt of a recorded command's events, or why there is none: the command is
/// recorded either way, so a missing receipt is not an error of the answer.
async fn receipt(state: &AppState, outcome: &handler::Outcome) -> serde_json::Value {
    let Some(tree) = &state.transparency else {
        return serde_json::json!({"error": "this server keeps no Merkle tree of its log"});
    };
    let positions: Vec<u64> = outcome.events.iter().map(|e| e.position.0).collect();
    match tree
        .receipt(&positions, state.config.receipt_wait_max)
        .await
    {
        Ok(receipt) => receipt,
        Err(transparency::ReceiptError::Proof(error)) if !error.is_request_error() => {
            tracing::error!(%error, "proving a command's events");
            serde_json::json!({"error": "the proofs failed; ask GET /v1/proofs/inclusion later"})
        }
        Err(error) => serde_json::json!({
            "error": format!("{error}; ask GET /v1/checkpoint and GET /v1/proofs/inclusion later")
        }),
    }
}

/// Ends every session of the users the decision names (a temporary password reset, a
/// removal): whoever held them must sign in again, with the new password or not at all. A
/// retry of the command (a replay) names them again, which also covers a server that
/// stopped between recording the command and ending the sessions.
async fn end_sessions(state: &Arc<AppState>, outcome: &handler::Outcome) -> ApiResult<()> {
    let users = outcome.sessions_to_end.clone();
    if users.is_empty() {
        return Ok(());
    }
    let ended = state
        .off_workers(move |state| {
            users
                .into_iter()
                .map(|user| state.sessions.revoke_user(user))
                .sum::<usize>()
        })
        .await?;
    tracing::info!(
        sessions_ended = ended,
        "sessions of reset or removed users ended"
    );
    Ok(())
}

/// The header carrying a directory token beside a signed-in user's session, for commands
/// that the tenant's global admin must also prove through the directory.
pub const DIRECTORY_TOKEN: &str = "x-directory-token";

/// Adding the reseller program to an enrolled partner needs, besides a global admin's
/// session, a directory token of a global admin of the partner's own tenant (SPEC §6.1): the
/// program is the tenant's commitment, not only the ledger user's. Returns what proves it.
async fn tenant_global_admin_proof(
    state: &AppState,
    headers: &HeaderMap,
    partner: domain::PartnerId,
) -> ApiResult<domain::Proof> {
    let token = headers
        .get(DIRECTORY_TOKEN)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Problem::unauthorized().detail(format!(
                "adding the reseller program needs a directory token of the tenant's global admin in {DIRECTORY_TOKEN}"
            ))
        })?;
    let identity = crate::auth::directory_identity(state, token).await?;
    let (tenant, _) = state
        .handler
        .read_state(|ledger| ledger.partner(partner).map(|p| p.tenant_id))
        .await
        .map_err(Problem::from)?;
    if !identity.global_admin || tenant != Some(identity.tenant_id) {
        return Err(Problem::unauthorized());
    }
    Ok(crate::auth::directory_proof(&identity))
}

/// The response of a recorded command: `201` (or `200` for a replay), never cached, as it
/// may carry secrets shown once.
pub fn recorded_response(name: &str, outcome: &handler::Outcome) -> Response {
    recorded_response_with(name, outcome, None)
}

/// [`recorded_response`] with the events' `receipt` in the answer.
fn recorded_response_with(
    name: &str,
    outcome: &handler::Outcome,
    receipt: Option<serde_json::Value>,
) -> Response {
    let mut body = crate::render::outcome_json(name, outcome);
    if let Some(receipt) = receipt {
        body["receipt"] = receipt;
    }
    let status = if outcome.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(position) = outcome.events.last().map(|e| e.position.0)
        && let Ok(value) = HeaderValue::from_str(&position.to_string())
    {
        response.headers_mut().insert(crate::POSITION_HEADER, value);
    }
    response
}
