//! The HTTP API of csp-ledger (SPEC §6): commands, queries with `as_of` and explanations,
//! history, the event feed as Server-Sent Events and pages, authentication (sign-in,
//! temporary passwords, invitation links, operator/auditor/service keys), authorization
//! (the permission matrix; the read policy of SPEC §6.1, without an existence oracle), RFC 9457 problem
//! details and the OpenAPI document.
//!
//! Only this crate knows HTTP. It drives the same [`handler::CommandHandler`] as the
//! command line and reads from the live [`projections`]; it never writes the log otherwise.
//!
//! Code map: [`auth`] resolves callers; [`problem`] shapes every error; [`body`] parses
//! request bodies strictly; `routes/*` one module per resource; [`query`] runs the §5
//! queries (shared with the command line); [`policy`] decides what a caller may read;
//! [`openapi`] describes it all.

pub mod auth;
pub mod body;
pub mod openapi;
pub mod params;
pub mod policy;
pub mod problem;
pub mod render;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use handler::CommandHandler;
use projections::ProjectionsHandle;
use store::EventStore;
use tokio::sync::watch;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use auth::limiter::{AttemptLimiter, BackoffConfig, Monotonic, SystemMonotonic};
use auth::sessions::Sessions;
pub use auth::{ApiKeys, KeyInfo, KeyKind, Principal};

/// The command handler the server drives, over any store.
pub type Handler = CommandHandler<dyn EventStore>;

/// Limits and timings of the server. Every queue, body and page is bounded.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body, in bytes. A command is a few hundred bytes.
    pub body_bytes_max: usize,
    /// Largest total of a request's header fields (names and values), in bytes; larger is
    /// refused with a `431` problem. The connection's own read buffer is a few times larger
    /// (see [`serve`]), so that this limit, not hyper's, is the one clients meet.
    pub header_bytes_max: usize,
    /// Most header fields in one request; more is refused with a `431` problem.
    pub headers_max: usize,
    /// How long a connection may take to send a request's header, counted from when the
    /// server starts waiting for it (an idle kept-alive connection included); then the
    /// connection is closed. Stops clients that open connections and send nothing, or a
    /// byte at a time.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive once its header has; then the request
    /// is refused with a `408` problem and the connection closed.
    pub body_read_timeout: Duration,
    /// Most connections served at once. Further connections wait in the listener's
    /// backlog until one closes.
    pub connections_max: usize,
    /// How long a session token lasts.
    pub session_ttl: Duration,
    /// Most sessions open at once.
    pub sessions_max: usize,
    /// Failed guesses at a secret (a sign-in's password, change-password's current
    /// password, an invitation link's token) one account may take from one client address
    /// before each further failure makes the next attempt wait (see [`auth::limiter`]).
    pub attempt_failures_free: u32,
    /// Failed guesses one client address may take across all accounts before each further
    /// failure makes its next attempt wait.
    pub address_failures_free: u32,
    /// The wait after the first failure past an allowance; each further failure doubles it.
    pub attempt_delay_initial: Duration,
    /// The longest wait failures can cause: throttling, never a lockout.
    pub attempt_delay_max: Duration,
    /// Failures are forgotten after this long without another.
    pub attempt_failures_forget_after: Duration,
    /// Most accounts, and most addresses, whose failures are remembered at once.
    pub attempt_keys_max: usize,
    /// Interval of SSE heartbeat comments (keeps proxies from closing idle feeds).
    pub sse_heartbeat: Duration,
    /// Events buffered per SSE subscriber before it counts as slow.
    pub sse_buffer_events: usize,
    /// How long a full subscriber buffer may stay full before the subscriber is dropped.
    pub sse_slow_client_timeout: Duration,
    /// Most SSE subscribers at once.
    pub subscribers_max: usize,
    /// Most events in one page of `/v1/events/page`.
    pub page_events_max: usize,
    /// Longest wait for `min_position` before answering `503`.
    pub min_position_wait_max: Duration,
    /// Longest wait of `POST /v1/commands?receipt=true` for a checkpoint that includes the
    /// command's events (they are published at most every `serve --checkpoint-interval-ms`);
    /// past it the answer carries no receipt, and the proofs can be asked for later.
    pub receipt_wait_max: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_bytes_max: 64 * 1024,
            header_bytes_max: 16 * 1024,
            headers_max: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            connections_max: 4096,
            session_ttl: Duration::from_secs(3600),
            sessions_max: 100_000,
            attempt_failures_free: 5,
            address_failures_free: 50,
            attempt_delay_initial: Duration::from_secs(1),
            attempt_delay_max: Duration::from_secs(60),
            attempt_failures_forget_after: Duration::from_secs(15 * 60),
            attempt_keys_max: 100_000,
            sse_heartbeat: Duration::from_secs(15),
            sse_buffer_events: 256,
            sse_slow_client_timeout: Duration::from_secs(10),
            subscribers_max: 1024,
            page_events_max: 1000,
            min_position_wait_max: Duration::from_secs(5),
            receipt_wait_max: Duration::from_secs(10),
        }
    }
}

/// Everything the routes share.
pub struct AppState {
    handler: Arc<Handler>,
    store: Arc<dyn EventStore>,
    projections: ProjectionsHandle,
    sessions: Sessions,
    keys: ApiKeys,
    limiter: AttemptLimiter,
    operator_key_hash: [u8; 32],
    config: ServerConfig,
    subscribers: Arc<tokio::sync::Semaphore>,
    shutdown: watch::Receiver<bool>,
    /// Verifies directory tokens; `None`: no issuer is trusted, so nothing needing a
    /// directory-proven tenant can be done.
    directory: Option<Arc<directory::Verifier>>,
    /// The development directory served by this server (`serve --dev-directory`).
    dev_directory: Option<Arc<directory::DevDirectory>>,
    /// The verifiable history (checkpoints, proofs, tiles, leaf indexes); `None`: not kept,
    /// and its routes answer `503`.
    transparency: Option<transparency::Transparency>,
}

/// The response header stating the log position a response reflects.
pub const POSITION_HEADER: &str = "x-ledger-position";

/// Shortest operator key accepted: a key is a secret, not a password.
pub const OPERATOR_KEY_CHARS_MIN: usize = 32;

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The operator key is too short.
    #[error("the operator key must be at least {OPERATOR_KEY_CHARS_MIN} characters")]
    OperatorKeyTooShort,
}

impl AppState {
    /// The shared state of a server. `shutdown` turning `true` ends every event feed, so
    /// that a graceful shutdown does not wait on them forever.
    pub fn new(
        handler: Arc<Handler>,
        projections: ProjectionsHandle,
        keys: ApiKeys,
        operator_key: &str,
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, SetupError> {
        if operator_key.trim().chars().count() < OPERATOR_KEY_CHARS_MIN {
            return Err(SetupError::OperatorKeyTooShort);
        }
        let sessions = Sessions::new(
            config.session_ttl,
            config.sessions_max,
            handler.clock().clone(),
        );
        Ok(Self {
            store: handler.store().clone(),
            handler,
            projections,
            sessions,
            keys,
            limiter: limiter(&config, Arc::new(SystemMonotonic)),
            operator_key_hash: auth::token_hash(operator_key.trim()),
            subscribers: Arc::new(tokio::sync::Semaphore::new(config.subscribers_max)),
            config,
            shutdown,
            directory: None,
            dev_directory: None,
            transparency: None,
        })
    }

    /// Keeps the sessions in the file at `path` (in the data directory, beside the
    /// credential store): those found there that have not expired are loaded, and every
    /// change is written back, so that sessions survive a restart. A damaged file is a
    /// warning and an empty table.
    pub fn with_sessions_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.sessions = Sessions::open(
            path,
            self.config.session_ttl,
            self.config.sessions_max,
            self.handler.clock().clone(),
        );
        self
    }

    /// Reads the time of the attempt limiter from `clock` (tests move it by hand). Forgets
    /// the failures counted so far.
    pub fn with_limiter_clock(mut self, clock: Arc<dyn Monotonic>) -> Self {
        self.limiter = limiter(&self.config, clock);
        self
    }

    /// Runs `work` on the blocking pool: Argon2id takes tens of milliseconds, and session
    /// changes write their file.
    pub(crate) async fn off_workers<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&AppState) -> T + Send + 'static,
    ) -> Result<T, problem::Problem> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|error| {
                tracing::error!(%error, "a blocking task failed");
                problem::Problem::internal()
            })
    }

    /// Trusts the issuers of `verifier` for directory-proven identities, and serves
    /// `dev_directory`'s documents and token endpoint under `/dev-directory` when given.
    pub fn with_directory(
        mut self,
        verifier: Arc<directory::Verifier>,
        dev_directory: Option<Arc<directory::DevDirectory>>,
    ) -> Self {
        self.directory = Some(verifier);
        self.dev_directory = dev_directory;
        self
    }

    /// Serves the verifiable history kept by `transparency`: checkpoints, proofs and tiles,
    /// and the leaf index and canonical bytes of every event of the feed and its pages.
    pub fn with_transparency(mut self, transparency: transparency::Transparency) -> Self {
        self.transparency = Some(transparency);
        self
    }

    /// The store the server runs on.
    pub fn store_handle(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// The auditor and service keys, for other doors (the KurrentDB protocol) that accept
    /// the same keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.keys
    }

    /// Whether `secret` is a key the read policy lets follow the event feed, for other doors
    /// (the KurrentDB protocol) that serve the same events.
    pub fn feed_key(&self, secret: &str) -> bool {
        self.keys.resolve(secret).is_some_and(|info| {
            let principal = match info.kind {
                KeyKind::Auditor => Principal::Auditor(info),
                KeyKind::Service => Principal::Service(info),
            };
            policy::may_follow_feed(&principal)
        })
    }

    /// Whether the read models say this user was removed (a removed user's sessions stop
    /// working at once).
    pub fn user_removed(&self, user: domain::UserId) -> bool {
        let projections = self.projections.read();
        projections
            .at(None)
            .ok()
            .and_then(|view| view.user_info_of(user).value.map(|u| u.removed.is_some()))
            .unwrap_or(false)
    }
}

/// The attempt limiter `config` describes.
fn limiter(config: &ServerConfig, clock: Arc<dyn Monotonic>) -> AttemptLimiter {
    let backoff = |failures_free| BackoffConfig {
        failures_free,
        delay_initial: config.attempt_delay_initial,
        delay_max: config.attempt_delay_max,
        forget_after: config.attempt_failures_forget_after,
        keys_max: config.attempt_keys_max,
    };
    AttemptLimiter::new(
        backoff(config.attempt_failures_free),
        backoff(config.address_failures_free),
        clock,
    )
}

/// The header limits of [`ServerConfig`], for the middleware that enforces them.
#[derive(Clone, Copy)]
struct HeaderLimits {
    bytes_max: usize,
    count_max: usize,
}

/// Refuses a request whose header fields exceed the configured limits with a `431`
/// problem. hyper refuses larger ones still by itself, with a bare `431`; this limit sits
/// below hyper's so that a client meets a problem detail.
async fn header_limits(
    axum::extract::State(limits): axum::extract::State<HeaderLimits>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.count_max || bytes > limits.bytes_max {
        return problem::Problem::of_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .detail(format!(
                "at most {} header fields of {} bytes in all",
                limits.count_max, limits.bytes_max
            ))
            .into_response();
    }
    next.run(request).await
}

/// The router of the whole API.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.body_bytes_max;
    let header_limits = HeaderLimits {
        bytes_max: state.config.header_bytes_max,
        count_max: state.config.headers_max,
    };
    let routes = if state.dev_directory.is_some() {
        routes::router().merge(routes::dev_directory_router())
    } else {
        routes::router()
    };
    routes
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            header_limits,
            self::header_limits,
        ))
        // Outside the routes and the limits, so that whatever they answer is a problem.
        .layer(axum::middleware::map_response(
            problem::every_error_is_a_problem,
        ))
        // Logs method, path, status and latency per request; headers (credentials) are not
        // logged at any level this layer uses.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// Serves the API on `listener` until `shutdown` completes, then stops taking connections,
/// ends the event feeds and waits for requests in flight: a command whose response was
/// sent is durable, and one in flight completes before the server returns.
///
/// Each connection is HTTP/1.1 with the header read timeout of [`ServerConfig`]; at most
/// `connections_max` are served at once (the next is accepted when one closes). Handlers
/// see the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let config = state.config.clone();
    let router = router(state);
    let connections = Arc::new(tokio::sync::Semaphore::new(config.connections_max.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // hyper's own limits sit above the configured ones, so that a request a little
        // over them meets the router's 431 problem; past these hyper answers a bare 431
        // itself, having read no more than this much.
        .max_buf_size((config.header_bytes_max * 4).max(HYPER_BUFFER_BYTES_MIN))
        .max_headers(config.headers_max * 2);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The permit is taken before accepting, so that past the bound connections wait in
        // the kernel's backlog rather than in memory here.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, request).await }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients that vanish end here; nothing the server must act on.
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The smallest read buffer hyper accepts.
const HYPER_BUFFER_BYTES_MIN: usize = 8192;

/// How long to wait after a failed `accept` before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
