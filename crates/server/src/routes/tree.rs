//! The verifiable history (SPEC §3.1): the latest signed checkpoint, the verifier key,
//! inclusion and consistency proofs, and the tiles at their C2SP paths, so that
//! off-the-shelf transparency-log tooling can fetch and check them. Who may read them is
//! [`crate::policy::may_read_tree`]'s answer (everyone).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use transparency::{ProofError, Transparency};

use crate::AppState;
use crate::params::PathParam;
use crate::problem::{ApiResult, Problem};

fn tree(state: &AppState) -> ApiResult<&Transparency> {
    debug_assert!(crate::policy::may_read_tree());
    state.transparency.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "no-verifiable-history",
            "this server keeps no Merkle tree of its log",
        )
    })
}

fn proof_problem(error: ProofError) -> Problem {
    match &error {
        ProofError::UnknownPosition(_) | ProofError::BeyondTree { .. } => {
            Problem::new(StatusCode::NOT_FOUND, "not-in-tree", "not in the tree")
                .detail(error.to_string())
        }
        ProofError::NotInTree { .. } | ProofError::BadRange { .. } => {
            Problem::bad_request("invalid-proof-request", error.to_string())
        }
        ProofError::Tree(_) => {
            tracing::error!(%error, "answering a proof");
            Problem::internal()
        }
    }
}

fn query<T>(query: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    query
        .map(|Query(params)| params)
        .map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))
}

fn text(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/checkpoint` (and `/checkpoint`, the C2SP tlog-tiles path): the latest signed
/// checkpoint as a C2SP signed note.
pub async fn checkpoint(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let published = tree(&state)?.latest().ok_or_else(|| {
        Problem::unavailable(
            "no-checkpoint-yet",
            "the first checkpoint is published once the tree has caught up with the log",
        )
    })?;
    Ok(text(published.note.clone(), "no-cache"))
}

/// `GET /v1/checkpoint/verifier-key`: the key checkpoints are verified with.
pub async fn verifier_key(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    Ok(text(
        format!("{}\n", tree(&state)?.verifier_key()),
        "no-cache",
    ))
}

/// Parameters of an inclusion proof.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// The record's log position.
    position: u64,
    /// The tree size (a checkpoint's).
    size: u64,
}

/// `GET /v1/proofs/inclusion?position=P&size=N`.
pub async fn inclusion(
    State(state): State<Arc<AppState>>,
    params: Result<Query<InclusionParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let params = query(params)?;
    let proof = tree(&state)?
        .inclusion_proof(params.position, params.size)
        .map_err(proof_problem)?;
    Ok(Json(proof.to_json()))
}

/// Parameters of a consistency proof.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
}

/// `GET /v1/proofs/consistency?from=M&to=N`.
pub async fn consistency(
    State(state): State<Arc<AppState>>,
    params: Result<Query<ConsistencyParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let params = query(params)?;
    let proof = tree(&state)?
        .consistency_proof(params.from, params.to)
        .map_err(proof_problem)?;
    Ok(Json(proof.to_json()))
}

/// `GET /tile/<L>/<N>[.p/<W>]`: a tile's hashes (C2SP tlog-tiles). A tile of a given width
/// never changes, so it may be cached for good.
pub async fn tile(
    State(state): State<Arc<AppState>>,
    PathParam(path): PathParam<String>,
) -> ApiResult<Response> {
    let id = tlog::TileId::parse(&format!("tile/{path}"))
        .map_err(|error| Problem::bad_request("invalid-tile-path", error.0))?;
    let bytes = tree(&state)?
        .tile(id)
        .map_err(proof_problem)?
        .ok_or_else(|| Problem::not_found(format!("the tree has no tile {path} yet")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        bytes,
    )
        .into_response())
}
