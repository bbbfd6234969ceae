//! `GET /v1/queries/{what}`: the §5 queries, scoped to what the caller may read, at any
//! instant (`as_of`: a position or an RFC 3339 time), with `explain=true` for the events
//! behind the answer and `min_position` for read-your-writes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use projections::{AsOf, QueryError};

use crate::AppState;
use crate::auth::Caller;
use crate::params::PathParam;
use crate::policy::query_scope;
use crate::problem::{ApiResult, Problem};
use projections::dispatch::{Query, QueryFailure, parse_as_of, run, view};

/// The parameters every state-reading request takes, taken out of the query string.
pub struct ReadParams {
    /// The instant to answer for.
    pub as_of: Option<AsOf>,
    /// Whether to list the events behind the answer.
    pub explain: bool,
    /// Wait until the read models have applied this position.
    pub min_position: Option<u64>,
}

impl ReadParams {
    /// Takes `as_of`, `explain` and `min_position` out of `params`.
    pub fn take(params: &mut HashMap<String, String>) -> ApiResult<Self> {
        let as_of = params
            .remove("as_of")
            .map(|text| parse_as_of(&text))
            .transpose()
            .map_err(failure_problem)?;
        let explain = match params.remove("explain").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") | Some("") => true,
            Some(other) => {
                return Err(Problem::bad_request(
                    "invalid-query",
                    format!("explain must be true or false, got {other:?}"),
                ));
            }
        };
        let min_position = params
            .remove("min_position")
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    Problem::bad_request("invalid-query", "min_position must be a position")
                })
            })
            .transpose()?;
        Ok(Self {
            as_of,
            explain,
            min_position,
        })
    }
}

/// The problem of a failed query.
pub fn failure_problem(failure: QueryFailure) -> Problem {
    match failure {
        QueryFailure::Invalid(detail) => Problem::bad_request("invalid-query", detail),
        QueryFailure::NotFound(detail) => Problem::not_found(detail),
    }
}

/// The problem of a view that cannot be made.
pub fn view_problem(error: QueryError) -> Problem {
    match error {
        QueryError::NotReached { requested, reached } => Problem::bad_request(
            "as-of-beyond-head",
            format!(
                "as_of position {requested} is beyond the log (the read models are at {})",
                reached.map_or("(empty)".to_string(), |p| p.to_string())
            ),
        ),
    }
}

/// Waits for `min_position`, bounded by the configured wait.
pub async fn wait_min_position(state: &AppState, min_position: Option<u64>) -> ApiResult<()> {
    let Some(position) = min_position else {
        return Ok(());
    };
    match state
        .projections
        .wait_for(position, state.config.min_position_wait_max)
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => {
            let mut problem = Problem::unavailable("position-not-reached", error.to_string());
            problem.retry_after_seconds = Some(1);
            Err(problem)
        }
    }
}

/// A JSON response stating the position it reflects in a header too.
pub fn positioned(value: serde_json::Value, position: Option<u64>) -> Response {
    let mut response = (StatusCode::OK, Json(value)).into_response();
    if let Some(position) = position
        && let Ok(header) = HeaderValue::from_str(&position.to_string())
    {
        response
            .headers_mut()
            .insert(crate::POSITION_HEADER, header);
    }
    response
}

/// `GET /v1/queries/{what}`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    PathParam(what): PathParam<String>,
    params: Result<QueryParams<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let QueryParams(mut params) =
        params.map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))?;
    let read = ReadParams::take(&mut params)?;
    let query = Query::parse(&what, &params).map_err(failure_problem)?;
    wait_min_position(&state, read.min_position).await?;
    let projections = state.projections.read();
    let Some(sees) = query_scope(&caller, &projections, &query) else {
        return Err(Problem::forbidden());
    };
    let now = state.handler.clock().now();
    let view = view(&projections, read.as_of, now).map_err(view_problem)?;
    let answer = run(&view, &query, read.explain, &sees).map_err(failure_problem)?;
    let position = answer.position;
    let value = serde_json::to_value(&answer).map_err(|_| Problem::internal())?;
    Ok(positioned(value, position))
}
