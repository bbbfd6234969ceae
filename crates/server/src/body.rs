//! Request bodies: JSON parsed strictly (unknown fields refused by the types), size-limited,
//! and refused as problem details before anything reaches the handler or the log.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::AppState;
use crate::problem::Problem;

/// A JSON body of type `T`. Refusals: `408` when the body takes longer than
/// `ServerConfig::body_read_timeout`, `413` over the size limit (axum's `DefaultBodyLimit`,
/// set by the router), `415` for a non-JSON content type, `400` for bad JSON or a body that
/// does not fit `T` (unknown fields included, where `T` denies them).
pub struct JsonBody<T>(pub T);

impl<T> FromRequest<Arc<AppState>> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Problem> {
        let json_content = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let media = value.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("application/json")
            });
        if !json_content {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "unsupported media type",
            )
            .detail("send the body as application/json"));
        }
        // The whole body within one deadline, not per read: a client trickling a byte at a
        // time must not hold the request open.
        let read = tokio::time::timeout(
            state.config.body_read_timeout,
            Bytes::from_request(request, state),
        )
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-read-timeout",
                "request timeout",
            )
            .detail(format!(
                "the body did not arrive within {} ms",
                state.config.body_read_timeout.as_millis()
            ))
        })?;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "body too large",
                )
                .detail(rejection.body_text())
            } else {
                Problem::bad_request("unreadable-body", rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| Problem::bad_request("invalid-json", error.to_string()))
    }
}
