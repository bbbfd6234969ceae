//! The routes, one module per resource.

mod commands;
mod dev_directory;
mod events;
pub(crate) mod health;
mod history;
mod keys;
mod queries;
mod sign_in;
mod tree;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;
use crate::problem::Problem;

/// Every route of the API.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/v1/auth/sign-in", post(sign_in::sign_in))
        .route("/v1/auth/change-password", post(sign_in::change_password))
        .route("/v1/auth/sign-out", post(sign_in::sign_out))
        .route("/v1/auth/invitation", post(sign_in::open_invitation))
        .route("/v1/enrollments", post(sign_in::start_enrollment))
        .route("/v1/verifications", post(sign_in::verify_primary_contact))
        .route("/v1/commands", post(commands::submit))
        .route("/v1/events", get(events::feed))
        .route("/v1/events/page", get(events::page))
        .route("/v1/history/{target}", get(history::history))
        .route("/v1/queries/{what}", get(queries::query))
        .route("/v1/verify", get(health::verify))
        .route("/v1/keys", post(keys::issue).get(keys::list))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route("/v1/checkpoint", get(tree::checkpoint))
        .route("/v1/checkpoint/verifier-key", get(tree::verifier_key))
        .route("/v1/proofs/inclusion", get(tree::inclusion))
        .route("/v1/proofs/consistency", get(tree::consistency))
        // The C2SP tlog-tiles paths, at the root as tooling expects them.
        .route("/checkpoint", get(tree::checkpoint))
        .route("/tile/{*path}", get(tree::tile))
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
}

/// The development directory's routes (`serve --dev-directory`, loopback only).
pub fn dev_directory_router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/dev-directory/.well-known/openid-configuration",
            get(dev_directory::discovery),
        )
        .route("/dev-directory/jwks", get(dev_directory::jwks))
        .route("/dev-directory/token", post(dev_directory::token))
}
