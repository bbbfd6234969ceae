//! The development directory's documents and token endpoint (`serve --dev-directory`): an
//! OpenID issuer for the demo on one machine. Tokens minted here carry no privilege of their
//! own: the ledger fetches this directory's JWKS over HTTP and verifies them exactly as a
//! real issuer's.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use directory::DevTokenRequest;
use serde_json::{Value, json};

use crate::AppState;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

fn dev(state: &AppState) -> ApiResult<&directory::DevDirectory> {
    state
        .dev_directory
        .as_deref()
        .ok_or_else(|| Problem::not_found("no such endpoint"))
}

/// `GET /dev-directory/.well-known/openid-configuration`.
pub async fn discovery(State(state): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    Ok(Json(dev(&state)?.discovery()))
}

/// `GET /dev-directory/jwks`.
pub async fn jwks(State(state): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    Ok(Json(dev(&state)?.jwks()))
}

/// `POST /dev-directory/token`: a token for the tenant and person named in the body.
pub async fn token(
    State(state): State<Arc<AppState>>,
    JsonBody(request): JsonBody<DevTokenRequest>,
) -> ApiResult<Json<Value>> {
    let dev = dev(&state)?;
    let now = state.handler.clock().now();
    let token = dev.mint(&request, now).map_err(|error| match error {
        directory::DevDirectoryError::Refused(reason) => {
            Problem::bad_request("invalid-token-request", reason)
        }
        other => {
            tracing::error!(error = %other, "minting a development token");
            Problem::internal()
        }
    })?;
    tracing::info!(tenant = %request.tenant_id, "development directory token minted");
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "issuer": dev.issuer(),
    })))
}
