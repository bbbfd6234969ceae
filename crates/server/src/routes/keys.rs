//! Auditor and service keys: issued, listed and revoked by the operator only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, KeyKind, Principal, keys::KeyError};
use crate::body::JsonBody;
use crate::params::PathParam;
use crate::problem::{ApiResult, Problem};

/// The body of `POST /v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    kind: KeyKind,
    name: String,
}

fn operator_only(caller: &Principal) -> ApiResult<()> {
    match caller {
        Principal::Operator => Ok(()),
        _ => Err(Problem::forbidden()),
    }
}

fn key_problem(error: KeyError) -> Problem {
    match error {
        KeyError::Refused(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "key-refused",
            "refused by a rule",
        )
        .detail(reason),
        other => {
            tracing::error!(error = %other, "api key store");
            Problem::internal()
        }
    }
}

/// `POST /v1/keys`: issues a key, shown once.
pub async fn issue(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<IssueKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    operator_only(&caller)?;
    let (info, key) = state
        .keys
        .issue(body.kind, &body.name)
        .map_err(key_problem)?;
    tracing::info!(key_id = %info.id, kind = ?info.kind, "api key issued");
    Ok((StatusCode::CREATED, Json(json!({"key": key, "info": info}))))
}

/// `GET /v1/keys`: every key, without secrets.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> ApiResult<Json<Value>> {
    operator_only(&caller)?;
    Ok(Json(json!({"keys": state.keys.list()})))
}

/// `DELETE /v1/keys/{id}`: revokes a key at once.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    PathParam(id): PathParam<Uuid>,
) -> ApiResult<StatusCode> {
    operator_only(&caller)?;
    if state.keys.revoke(id).map_err(key_problem)? {
        tracing::info!(key_id = %id, "api key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no such key"))
    }
}
