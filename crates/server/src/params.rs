//! Path parameters, refused as problem details: axum's own `Path` answers a bad parameter
//! (a malformed UUID, bytes that are not UTF-8) in plain text.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// The path parameters of a route, of type `T`. Refusal: `400` `invalid-path`, with what
/// axum found wrong as the detail.
pub struct PathParam<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParam<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|rejection| Problem::bad_request("invalid-path", rejection.body_text()))
    }
}
