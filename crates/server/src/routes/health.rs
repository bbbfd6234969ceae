//! Liveness, readiness (the read models have caught up with the log) and verification of
//! the hash chain.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: `200` once the read models have applied the log's head, `503` before.
pub async fn readyz(State(state): State<Arc<AppState>>) -> ApiResult<(StatusCode, Json<Value>)> {
    let head = state.store.head().await.map_err(|error| {
        tracing::error!(%error, "reading the log head");
        Problem::unavailable("store-unavailable", "the event store does not answer")
    })?;
    let reached = state.projections.position();
    let ready = match head {
        None => true,
        Some(head) => reached.is_some_and(|p| p >= head.0),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let (faults, foreign) = state.handler.faults().await.map_err(|error| {
        tracing::error!(%error, "reading the write model's faults");
        Problem::unavailable("store-unavailable", "the event store does not answer")
    })?;
    let passed_over = state.projections.passed_over();
    // Positions and types only: the decoder's reason may quote what the event held, and
    // this route answers anyone (`/v1/verify` gives the operator and auditors the reasons).
    let unreadable: Vec<Value> = faults
        .iter()
        .map(|fault| {
            json!({
                "position": fault.position.0,
                "event_type": fault.event_type,
                "schema_version": fault.schema_version,
                "newer_schema": fault.newer_schema,
            })
        })
        .collect();
    Ok((
        status,
        Json(json!({
            "ready": ready,
            "log_head": head.map(|p| p.0),
            "projections_position": reached,
            "unreadable_events": faults.len(),
            "unreadable": unreadable,
            "foreign_events": foreign,
            "projections_passed_over": {
                "unreadable": passed_over.unreadable,
                "foreign": passed_over.foreign,
            },
        })),
    ))
}

/// `GET /v1/verify`: checks every record and the hash chain (operator and auditors).
pub async fn verify(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> ApiResult<Json<Value>> {
    if !crate::policy::may_verify(&caller) {
        return Err(Problem::forbidden());
    }
    let report = state.store.verify().await.map_err(|error| {
        tracing::error!(%error, "verifying the log");
        Problem::internal()
    })?;
    let damage = report.damage.as_ref().map(|damage| {
        json!({
            "position": damage.position,
            "offset": damage.offset,
            "reason": damage.reason,
        })
    });
    let (faults, foreign) = state.handler.faults().await.map_err(|error| {
        tracing::error!(%error, "reading the write model's faults");
        Problem::internal()
    })?;
    Ok(Json(json!({
        "intact": report.damage.is_none(),
        "unreadable": faults.iter().map(handler::Fault::to_json).collect::<Vec<_>>(),
        "foreign_events": foreign,
        "records_intact": report.records_intact,
        "last_position": report.last_position.map(|p| p.0),
        "position": report.last_position.map(|p| p.0),
        "chain": store::codec::chain_hex(&report.chain),
        "damage": damage,
    })))
}
