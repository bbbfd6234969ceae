//! RFC 9457 problem details: every error the API returns, with a stable `type` per cause.
//!
//! A refusal by the domain carries the domain's rule name (`missing-capability`,
//! `partnership-not-active`, …) as the last segment of its `type`, and the same name in the
//! `rule` extension member, so that a client can branch on it without parsing prose.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Rejection, RejectionKind};
use handler::HandleError;
use serde::Serialize;

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail, ready to be sent. Boxed, so that results carrying it stay small.
#[derive(Clone, Debug)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

/// The members of a problem detail (RFC 9457 §3.1, plus extensions).
#[derive(Clone, Debug, Serialize)]
pub struct ProblemDetails {
    /// A URI reference naming the problem type: `/problems/{rule}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    /// What went wrong this time, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable rule name (the last segment of `type`).
    pub rule: String,
    /// For refusals of a missing capability: which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// For `429`: seconds until a retry may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    /// A problem of `status` with a rule name and a title.
    pub fn new(status: StatusCode, rule: &str, title: &str) -> Self {
        Self(Box::new(ProblemDetails {
            problem_type: format!("/problems/{rule}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: None,
            rule: rule.to_string(),
            capability: None,
            retry_after_seconds: None,
        }))
    }

    /// Adds the detail text.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// `400`: the request itself is malformed.
    pub fn bad_request(rule: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, rule, "bad request").detail(detail)
    }

    /// `401`: no valid credentials. Says nothing about which part was wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required",
        )
        .detail("sign in, or send a valid bearer token or key")
    }

    /// `403` that reveals nothing about the thing asked for (no existence oracle): the same
    /// answer whether it exists or not.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "forbidden")
            .detail("you may not do this, or it is outside what you may see")
    }

    /// `404` for callers allowed to know what exists.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "not found").detail(detail)
    }

    /// `500`: the detail is logged, never sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .detail("the server failed; the request may be retried with the same command id")
    }

    /// `503`: retry later.
    pub fn unavailable(rule: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, rule, "unavailable").detail(detail)
    }

    /// A problem for a refusal known only by its status: what the HTTP machinery (routing,
    /// extractors, limits) answers before any handler runs. The rule names the status.
    pub fn of_status(status: StatusCode) -> Self {
        let rule = match status {
            StatusCode::BAD_REQUEST => "bad-request",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::REQUEST_TIMEOUT => "request-timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            StatusCode::URI_TOO_LONG => "uri-too-long",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers-too-large",
            status if status.is_server_error() => "internal",
            _ => "http-error",
        };
        let title = status.canonical_reason().unwrap_or("error").to_lowercase();
        Self::new(status, rule, &title)
    }

    /// `405`: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::of_status(StatusCode::METHOD_NOT_ALLOWED).detail(
            "this endpoint does not take that method; the Allow header lists those it takes",
        )
    }

    /// The status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after_seconds;
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body was never read, so this connection cannot carry another
            // request: say so, or a client that pools connections sends its next request
            // into one the server is closing.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"csp-ledger\""),
            );
        }
        response
    }
}

/// Most bytes of a non-problem error body kept as the detail of the problem replacing it.
const FOREIGN_DETAIL_BYTES_MAX: usize = 1024;

/// Middleware that turns any error response not already a problem into one, so that the
/// answers of the HTTP machinery (a rejection of an extractor this crate does not wrap, a
/// limit layer) are RFC 9457 problems too. The typed refusals of this crate are problems
/// already and pass unchanged; so do successes, and a route's own JSON document sent with an
/// error status (the readiness report of `/readyz`'s 503, whose fields a waiting client
/// reads): the HTTP machinery never answers JSON. Headers (`Allow`, `Retry-After`) are kept.
pub async fn every_error_is_a_problem(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value.as_bytes() == PROBLEM_JSON.as_bytes() || value.as_bytes() == b"application/json"
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    let mut problem = Problem::of_status(status);
    if is_text
        && let Ok(bytes) = axum::body::to_bytes(body, FOREIGN_DETAIL_BYTES_MAX).await
        && !bytes.is_empty()
    {
        problem = problem.detail(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut replaced = problem.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

/// The status of a refusal by the domain: who must act decides it.
pub fn rejection_status(kind: RejectionKind) -> StatusCode {
    match kind {
        RejectionKind::Invalid => StatusCode::BAD_REQUEST,
        RejectionKind::NotFound => StatusCode::NOT_FOUND,
        RejectionKind::Forbidden => StatusCode::FORBIDDEN,
        RejectionKind::Conflict => StatusCode::CONFLICT,
        RejectionKind::RuleRefused => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<&Rejection> for Problem {
    fn from(rejection: &Rejection) -> Self {
        let status = rejection_status(rejection.kind());
        let title = match rejection.kind() {
            RejectionKind::Invalid => "invalid command",
            RejectionKind::NotFound => "not found",
            RejectionKind::Forbidden => "forbidden",
            RejectionKind::Conflict => "conflict",
            RejectionKind::RuleRefused => "refused by a rule",
        };
        let mut problem =
            Problem::new(status, rejection.rule(), title).detail(rejection.to_string());
        if let Rejection::MissingCapability(capability) = rejection {
            problem.capability = Some(capability.name().to_string());
        }
        problem
    }
}

impl From<HandleError> for Problem {
    fn from(error: HandleError) -> Self {
        use credentials::CredentialError;
        match error {
            HandleError::Rejected(rejection) => Problem::from(&rejection),
            HandleError::Credentials(CredentialError::WrongCredentials) => Problem::new(
                StatusCode::FORBIDDEN,
                "wrong-current-password",
                "forbidden",
            )
            .detail("the current password does not match"),
            HandleError::Credentials(CredentialError::PasswordRefused(reason)) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "password-refused",
                "refused by a rule",
            )
            .detail(reason),
            HandleError::Contention { stream, attempts } => Problem::new(
                StatusCode::CONFLICT,
                "contention",
                "conflict",
            )
            .detail(format!(
                "stream {stream} kept changing ({attempts} attempts); retry with the same command id"
            )),
            // The reason stays in the log and in `/readyz`: it may name what another
            // party's event held.
            HandleError::StreamUnreadable { position, .. }
            | HandleError::Undecodable { position, .. } => Problem::new(
                StatusCode::CONFLICT,
                "stream-unreadable",
                "conflict",
            )
            .detail(format!(
                "the history this command depends on holds an event this ledger cannot read (position {position}); the operator must look at it"
            )),
            HandleError::Store(store::StoreError::Invalid(reason)) => {
                Problem::bad_request("invalid-request", reason)
            }
            // A read replica, or a writer that lost its lease: nothing was recorded, and the
            // message names the process that records.
            HandleError::Store(store::StoreError::NotWriter(reason)) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-the-writer",
                "service unavailable",
            )
            .detail(reason),
            other => {
                tracing::error!(error = %other, "command failed");
                Problem::internal()
            }
        }
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_error_answers_become_problems_and_keep_their_headers() {
        let plain = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
            "method not allowed here",
        )
            .into_response();
        let response = every_error_is_a_problem(plain).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
        assert_eq!(
            response.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET,HEAD"[..])
        );
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(problem["type"], "/problems/method-not-allowed");
        assert_eq!(problem["status"], 405);
        assert_eq!(problem["detail"], "method not allowed here");
    }

    #[tokio::test]
    async fn a_routes_own_json_document_keeps_its_fields_under_an_error_status() {
        let report = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"ready": false, "log_head": 19})),
        )
            .into_response();
        let response = every_error_is_a_problem(report).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["log_head"], 19);
    }

    #[tokio::test]
    async fn successes_and_problems_pass_unchanged() {
        let ok = every_error_is_a_problem((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(
            ok.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes())
                != Some(PROBLEM_JSON.as_bytes())
        );
        let problem = every_error_is_a_problem(Problem::forbidden().into_response()).await;
        let bytes = axum::body::to_bytes(problem.into_body(), 4096)
            .await
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["rule"], "forbidden");
    }
}
