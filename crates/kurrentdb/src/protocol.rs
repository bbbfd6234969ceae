//! KurrentDB's gRPC client protocol, served over any [`EventStore`], so that KurrentDB's
//! official clients (Rust, Python, .NET, Java, Node, Go) can read and follow the ledger.
//!
//! Served: `Streams.Read` (a stream or `$all`, both directions, counts, subscriptions with
//! stream or event-type filters, checkpoints and caught-up signals), `Streams.Append`,
//! `Streams.BatchAppend` (a concurrency error carries KurrentDB's `WrongExpectedVersion`
//! details in both), the persistent-subscription and projection services as a server
//! without any answers them (empty listings, `NOT_FOUND` for one by name; see the
//! `listings` module) and `ServerFeatures.GetSupportedMethods`, which advertises these.
//! Everything else (deletes, creating persistent subscriptions or projections, users,
//! gossip, operations) answers `UNIMPLEMENTED`: never a wrong answer.
//!
//! TLS: [`ProtocolConfig::tls`] (see [`crate::tls`]); official clients send credentials only
//! over TLS.
//!
//! JSON: payloads are the store's MessagePack; a reader that asks for JSON by its connection
//! name gets them converted by the embedding program ([`JsonView`]), with the record's hash;
//! appends may send JSON (content type `application/json`), which the [`AppendCheck`]
//! converts or refuses ([`Proposed::json`]).
//!
//! Authentication is HTTP Basic (`authorization: Basic …`), checked by the caller's
//! [`ProtocolAuth`]: reads need a [`Principal::Reader`] or [`Principal::StoreAdmin`];
//! appends need a [`Principal::StoreAdmin`], because appends through this door bypass the
//! domain's rules (migration and tooling only). `ServerFeatures` needs no credentials, as on
//! KurrentDB, since clients call it before they authenticate anything.
//!
//! Positions: an event at ledger position `p` is served at `$all` position
//! (commit `p`, prepare `p`). As on KurrentDB, a forward `$all` read from a position includes
//! the event there, a backward read starts before it, and a subscription from a position
//! starts after it.
//!
//! The chain value in served metadata: the inner store keeps its own chain (and `verify`s
//! it); this server derives, for every event, the KurrentDB-style chain value
//! ([`crate::envelope::chain_after`]) over the served log, so that [`crate::KurrentStore`]'s
//! `verify` works through this endpoint. It costs 40 bytes of memory per event in the log.

// `tonic::Status` is the error type every gRPC handler must return; boxing it in the helpers
// would only be unboxed again at the handler boundary.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use fancy_regex::Regex;
use futures::{Stream, StreamExt};
use store::codec::{ChainValue, GENESIS_CHAIN};
use store::{
    Direction, EVENTS_PER_APPEND_MAX, EventFilter, EventStore, ExpectedRevision, NewEvent,
    Position, ReadFrom, RecordedEvent, StoreError, StreamName, SubscribeFrom, SubscriptionItem,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::envelope::{self, CONTENT_TYPE, EnvelopeMetadata};
use crate::lease::{self, LeaseRecord, Takes};

/// Code generated from the `.proto` files in `protos/` (copied from the `eventstore` crate).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod generated {
    /// `event_store.client` and its sub-packages.
    pub mod event_store {
        /// `event_store.client`.
        pub mod client {
            include!(concat!(env!("OUT_DIR"), "/event_store.client.rs"));
            /// `event_store.client.streams`.
            pub mod streams {
                include!(concat!(env!("OUT_DIR"), "/event_store.client.streams.rs"));
            }
            /// `event_store.client.server_features`.
            pub mod server_features {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.server_features.rs"
                ));
            }
            /// `event_store.client.persistent_subscriptions`.
            pub mod persistent_subscriptions {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.persistent_subscriptions.rs"
                ));
            }
            /// `event_store.client.projections`.
            pub mod projections {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.projections.rs"
                ));
            }
        }
    }
    /// `google.rpc`.
    pub mod google {
        /// `google.rpc`.
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        }
    }
}

use generated::event_store::client as proto;
use proto::persistent_subscriptions::persistent_subscriptions_server::PersistentSubscriptionsServer;
use proto::projections::projections_server::ProjectionsServer;
use proto::server_features::server_features_server::{ServerFeatures, ServerFeaturesServer};
use proto::server_features::{SupportedMethod, SupportedMethods};
use proto::streams::streams_server::{Streams, StreamsServer};
use proto::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq,
    ReadResp, TombstoneReq, TombstoneResp, append_req, append_resp, batch_append_req,
    batch_append_resp, read_req, read_resp,
};

/// Events read from the store per page while serving a read.
const READ_PAGE_EVENTS: usize = 512;
/// Responses buffered per read or subscription before the server waits for the client.
const RESPONSE_BUFFER_ITEMS: usize = 256;
/// Longest wait for the chain index to reach an event that the store already returned.
const CHAIN_WAIT: Duration = Duration::from_secs(10);
/// The KurrentDB server version advertised: the protocol level these stubs come from (the
/// `caught_up` subscription message needs 23.10 or later in clients).
const ADVERTISED_SERVER_VERSION: &str = "24.10.0";
/// The checkpoint window when a filter asks for none (`count`), as KurrentDB uses.
const CHECKPOINT_WINDOW_DEFAULT: u32 = 32;

/// Who a request is from, as far as this protocol cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Principal {
    /// May read and subscribe (auditors, downstream services).
    Reader,
    /// May also append, bypassing the domain's rules (the operator's store-admin key).
    StoreAdmin,
}

type CheckFn = dyn Fn(&str, &str) -> Option<Principal> + Send + Sync;

/// The Basic-authentication check: user name and password in, principal out (`None`:
/// refused).
#[derive(Clone)]
pub struct ProtocolAuth {
    check: Arc<CheckFn>,
}

impl ProtocolAuth {
    /// Uses `check(user, password)` for every request; wire it to the credential store.
    pub fn new(check: impl Fn(&str, &str) -> Option<Principal> + Send + Sync + 'static) -> Self {
        Self {
            check: Arc::new(check),
        }
    }

    /// A fixed table of keys: `readers` may read; `store_admin`, if given, may also append.
    /// Passwords are compared in constant time.
    pub fn from_keys(
        readers: Vec<(String, String)>,
        store_admin: Option<(String, String)>,
    ) -> Self {
        Self::new(move |user, password| {
            let matches = |(u, p): &(String, String)| {
                constant_time_eq(u.as_bytes(), user.as_bytes())
                    & constant_time_eq(p.as_bytes(), password.as_bytes())
            };
            if store_admin.as_ref().is_some_and(matches) {
                Some(Principal::StoreAdmin)
            } else if readers.iter().any(matches) {
                Some(Principal::Reader)
            } else {
                None
            }
        })
    }

    pub(crate) fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("credentials required (Basic)"))?;
        let text = header
            .to_str()
            .map_err(|_| Status::unauthenticated("malformed authorization header"))?;
        let encoded = text
            .strip_prefix("Basic ")
            .ok_or_else(|| Status::unauthenticated("only Basic authentication is supported"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
        (self.check)(user, password).ok_or_else(|| Status::unauthenticated("bad credentials"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One event proposed through the door, before anything is written.
#[derive(Clone, Debug)]
pub struct Proposed {
    /// The event as the door built it: the proposer's envelope metadata when it sent one,
    /// otherwise the door's defaults (actor `kurrentdb:{user}`, the time of arrival).
    pub event: NewEvent,
    /// Whether the proposer sent envelope metadata (actor, ids, time) of its own.
    pub enveloped: bool,
    /// Whether the payload is JSON (content type `application/json`, the clients' default)
    /// rather than the ledger's MessagePack: the check converts it, or refuses it.
    pub json: bool,
    /// The writer-lease epoch its metadata carries (see [`crate::lease`]), which the door
    /// checks against the lease before anything is written.
    pub lease_epoch: Option<u64>,
}

type AdmitFn = dyn Fn(&StreamName, Vec<Proposed>) -> Result<Vec<NewEvent>, String> + Send + Sync;

/// What the door lets into the store: every append's events pass it, all together, before
/// anything is written; a refusal refuses the whole append with `INVALID_ARGUMENT` and
/// nothing is appended. The program that embeds the door states its own events' rules here
/// (the ledger decodes each as a domain event and records how its actor was established).
#[derive(Clone)]
pub struct AppendCheck {
    admit: Arc<AdmitFn>,
}

impl AppendCheck {
    /// Uses `admit(stream, proposed)` for every append: the events to write, or why not.
    pub fn new(
        admit: impl Fn(&StreamName, Vec<Proposed>) -> Result<Vec<NewEvent>, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            admit: Arc::new(admit),
        }
    }

    /// Every event as proposed (a JSON payload kept as sent): for a store that holds no
    /// domain of its own (this crate's protocol tests).
    pub fn any() -> Self {
        Self::new(|_, proposed| Ok(proposed.into_iter().map(|p| p.event).collect()))
    }

    fn admit(&self, stream: &StreamName, proposed: Vec<Proposed>) -> Result<Vec<NewEvent>, Status> {
        // The writer lease's own events are this crate's, checked here, whatever the
        // embedding program admits.
        if lease::is_lease_stream(stream.as_str()) {
            return proposed
                .into_iter()
                .map(|p| {
                    lease::check_event(stream.as_str(), &p.event.event_type, &p.event.payload)
                        .map(|_| p.event)
                        .map_err(|reason| {
                            Status::invalid_argument(format!("refused, nothing appended: {reason}"))
                        })
                })
                .collect();
        }
        (self.admit)(stream, proposed).map_err(|reason| {
            Status::invalid_argument(format!("refused, nothing appended: {reason}"))
        })
    }
}

/// Settings of the protocol server.
#[derive(Clone)]
pub struct ProtocolConfig {
    /// Who may do what.
    pub auth: ProtocolAuth,
    /// What appends may write.
    pub append_check: AppendCheck,
    /// Serve TLS with this certificate chain and private key (PEM); `None`: plain text, for
    /// loopback or behind a TLS terminator. Some official clients (Python's) send credentials
    /// only over TLS.
    pub tls: Option<TlsIdentity>,
    /// How events are offered as JSON to readers that ask for it (see [`JsonView`]); `None`:
    /// every reader gets the stored MessagePack.
    pub json_view: Option<JsonView>,
}

type JsonFn = dyn Fn(&RecordedEvent) -> Option<Vec<u8>> + Send + Sync;

/// An event's payload as JSON, for readers that ask for JSON: the program that embeds the
/// door knows its payloads (this crate does not decode them). `None` for an event it cannot
/// convert, which is then served as stored.
///
/// A reader asks for JSON by its connection name, which every official client sends from
/// the connection string's `connectionName`: `json`, or any name ending in `+json`
/// (`billing+json`). Its events then carry content type `application/json` and, in their
/// custom metadata, `recordSha256`, the hash of the record's canonical bytes, which the JSON
/// data no longer are.
#[derive(Clone)]
pub struct JsonView {
    convert: Arc<JsonFn>,
}

impl JsonView {
    /// Uses `convert(event)` for every event served to a reader that asks for JSON.
    pub fn new(
        convert: impl Fn(&RecordedEvent) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            convert: Arc::new(convert),
        }
    }
}

/// The content type of JSON payloads.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Whether the request's connection name asks for JSON (see [`JsonView`]).
fn asks_for_json<T>(request: &Request<T>) -> bool {
    request
        .metadata()
        .get("connection-name")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|name| name == "json" || name.ends_with("+json"))
}

pub use crate::tls::TlsIdentity;

/// Serves the KurrentDB client protocol for `store` on `listener` (over TLS when
/// [`ProtocolConfig::tls`] is given, plain-text HTTP/2 otherwise) until `shutdown` completes. Open reads and
/// subscriptions are ended at shutdown.
pub async fn serve(
    store: Arc<dyn EventStore>,
    listener: TcpListener,
    config: ProtocolConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // A TLS identity that cannot be used fails the start, before anything runs.
    let acceptor = match &config.tls {
        Some(identity) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(identity).map_err(ServeError::Tls)?,
        )),
        None => None,
    };
    let (stop_sender, stop) = watch::channel(false);
    let chains = ChainIndex::start(store.clone(), stop.clone());
    let streams = StreamsService {
        store,
        auth: config.auth.clone(),
        append_check: config.append_check.clone(),
        json_view: config.json_view.clone(),
        chains,
        fence: Arc::new(tokio::sync::Mutex::new(())),
        stop,
    };
    // Official clients do not set TCP_NODELAY and send a request in several small writes,
    // so each request would wait ~40 ms for this side's delayed ACK; `QuickAck` answers at
    // once. Our own replies go out without Nagle delays too.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.map(|connection| {
            if let Err(error) = connection.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY on a protocol connection");
            }
            QuickAck(connection)
        })
    });
    let router = tonic::transport::Server::builder()
        .add_service(StreamsServer::new(streams))
        .add_service(ServerFeaturesServer::new(FeaturesService))
        .add_service(PersistentSubscriptionsServer::new(
            crate::listings::PersistentSubscriptionsService {
                auth: config.auth.clone(),
            },
        ))
        .add_service(ProjectionsServer::new(
            crate::listings::ProjectionsService {
                auth: config.auth.clone(),
            },
        ));
    let shutdown = async move {
        shutdown.await;
        // Long-lived subscriptions would otherwise hold the graceful shutdown open.
        stop_sender.send_replace(true);
    };
    let result = match acceptor {
        None => {
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        Some(acceptor) => {
            let handshaken = handshakes(incoming, acceptor);
            router
                .serve_with_incoming_shutdown(handshaken, shutdown)
                .await
        }
    };
    result.map_err(ServeError::Transport)
}

/// TLS handshakes in flight at once; more connections wait to be accepted.
const HANDSHAKES_MAX: usize = 256;
/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections of `incoming` after their TLS handshakes, each done in a task of its
/// own so that a slow client holds up no other.
fn handshakes(
    incoming: impl Stream<Item = std::io::Result<QuickAck>> + Send + 'static,
    acceptor: tokio_rustls::TlsAcceptor,
) -> impl Stream<Item = std::io::Result<TlsConnection>> {
    let (sender, receiver) = mpsc::channel(HANDSHAKES_MAX);
    let permits = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    tokio::spawn(async move {
        let mut incoming = std::pin::pin!(incoming);
        loop {
            // The server dropping its end (shutdown) ends the accepting too.
            let accepted = tokio::select! {
                accepted = incoming.next() => accepted,
                _ = sender.closed() => return,
            };
            let connection = match accepted {
                Some(Ok(connection)) => connection,
                Some(Err(error)) => {
                    tracing::debug!(%error, "accepting a protocol connection");
                    continue;
                }
                None => return,
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(connection)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(TlsConnection(Box::new(stream)))).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake of a protocol connection failed");
                    }
                    Err(_) => tracing::debug!("TLS handshake of a protocol connection timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// A protocol connection over TLS.
struct TlsConnection(Box<tokio_rustls::server::TlsStream<QuickAck>>);

impl tokio::io::AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

/// A connection that re-arms TCP_QUICKACK after every read (Linux clears it as it goes).
struct QuickAck(tokio::net::TcpStream);

impl QuickAck {
    fn rearm(&self) {
        #[cfg(target_os = "linux")]
        {
            // Best effort: without it the protocol is only slower, never wrong.
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
    }
}

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if polled.is_ready() {
            self.rearm();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for QuickAck {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

/// Binds `address` and serves on it; see [`serve`].
pub async fn serve_addr(
    store: Arc<dyn EventStore>,
    address: SocketAddr,
    config: ProtocolConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })?;
    serve(store, listener, config, shutdown).await
}

/// The protocol server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening address could not be bound.
    #[error("KurrentDB protocol server: cannot listen on {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("KurrentDB protocol server: transport failed")]
    Transport(#[source] tonic::transport::Error),
    /// The TLS identity could not be used.
    #[error("KurrentDB protocol server: TLS")]
    Tls(#[source] crate::tls::TlsError),
}

/// Chain values of the served log, computed by following the store (see the module docs).
struct ChainIndex {
    entries: RwLock<Vec<(u64, ChainValue)>>,
    /// The writer lease's takes, for the epoch each served event was written under.
    takes: RwLock<Takes>,
    indexed: watch::Receiver<Option<u64>>,
}

impl ChainIndex {
    fn start(store: Arc<dyn EventStore>, mut stop: watch::Receiver<bool>) -> Arc<Self> {
        let (indexed_sender, indexed) = watch::channel(None);
        let index = Arc::new(Self {
            entries: RwLock::new(Vec::new()),
            takes: RwLock::new(Takes::default()),
            indexed,
        });
        let follower = index.clone();
        tokio::spawn(async move {
            let mut subscription = store.subscribe_all(SubscribeFrom::Start, EventFilter::all());
            let mut chain = GENESIS_CHAIN;
            loop {
                let item = tokio::select! {
                    item = subscription.next() => item,
                    _ = stop.wait_for(|stopped| *stopped) => return,
                };
                match item {
                    Some(Ok(SubscriptionItem::Event(event)))
                        if lease::is_lease_stream(event.stream.as_str()) =>
                    {
                        // The lease's bookkeeping is outside the chain, as readers see it.
                        if event.event_type == lease::TAKEN
                            && let Ok(record) = LeaseRecord::from_bytes(&event.payload)
                        {
                            follower
                                .takes
                                .write()
                                .unwrap_or_else(|poisoned| poisoned.into_inner())
                                .add(event.position.0, record.epoch);
                        }
                        indexed_sender.send_replace(Some(event.position.0));
                    }
                    Some(Ok(SubscriptionItem::Event(event))) => {
                        chain = envelope::chain_after(&chain, &event);
                        follower.write().push((event.position.0, chain));
                        indexed_sender.send_replace(Some(event.position.0));
                    }
                    Some(Ok(SubscriptionItem::CaughtUp { .. })) => {}
                    Some(Err(error)) => {
                        tracing::error!(%error, "chain index stopped following the store");
                        return;
                    }
                    None => return,
                }
            }
        });
        index
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, ChainValue)>> {
        // Pushes are single statements; a poisoned lock still holds a consistent vector.
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer-lease epoch in force at `position` (call after [`Self::chain_at`] of it, which
    /// waits until the index got there).
    fn epoch_at(&self, position: u64) -> u64 {
        self.takes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .epoch_at(position)
    }

    async fn chain_at(&self, position: u64) -> Result<ChainValue, Status> {
        let mut indexed = self.indexed.clone();
        let reached = tokio::time::timeout(
            CHAIN_WAIT,
            indexed.wait_for(|at| at.is_some_and(|at| at >= position)),
        )
        .await;
        if !matches!(reached, Ok(Ok(_))) {
            return Err(Status::unavailable("chain index is behind the log"));
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = entries
            .binary_search_by_key(&position, |(p, _)| *p)
            .map_err(|_| Status::internal(format!("no chain value for position {position}")))?;
        Ok(entries[index].1)
    }
}

struct FeaturesService;

#[tonic::async_trait]
impl ServerFeatures for FeaturesService {
    async fn get_supported_methods(
        &self,
        _request: Request<()>,
    ) -> Result<Response<SupportedMethods>, Status> {
        // Clients look a method up as `/{service}/{method}`, lowercased; some (Node's) fall
        // back to KurrentDB's HTTP API for a listing not advertised here.
        let method = |service: &str, name: &str, features: &[&str]| SupportedMethod {
            method_name: name.into(),
            service_name: service.into(),
            features: features.iter().map(|f| f.to_string()).collect(),
        };
        let streams = "event_store.client.streams.streams";
        let persistent = "event_store.client.persistent_subscriptions.persistentsubscriptions";
        let projections = "event_store.client.projections.projections";
        Ok(Response::new(SupportedMethods {
            methods: vec![
                method(streams, "read", &[]),
                method(streams, "append", &[]),
                method(streams, "batchappend", &[]),
                // The four the Rust client needs before it lists over gRPC at all.
                method(persistent, "list", &["stream", "all"]),
                method(persistent, "getinfo", &["stream", "all"]),
                method(persistent, "replayparked", &["stream", "all"]),
                method(persistent, "restartsubsystem", &[]),
                method(projections, "statistics", &[]),
            ],
            event_store_server_version: ADVERTISED_SERVER_VERSION.into(),
        }))
    }
}

struct StreamsService {
    store: Arc<dyn EventStore>,
    auth: ProtocolAuth,
    append_check: AppendCheck,
    json_view: Option<JsonView>,
    chains: Arc<ChainIndex>,
    /// Held across the lease check and the append it admits (see [`fenced_append`]).
    fence: Arc<tokio::sync::Mutex<()>>,
    stop: watch::Receiver<bool>,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Streams for StreamsService {
    type ReadStream = ResponseStream<ReadResp>;
    type BatchAppendStream = ResponseStream<BatchAppendResp>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        self.auth.principal(&request)?;
        let json = self.json_view.clone().filter(|_| asks_for_json(&request));
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| Status::invalid_argument("read without options"))?;
        let plan = ReadPlan::from_options(options)?;
        let (sender, receiver) = mpsc::channel(RESPONSE_BUFFER_ITEMS);
        let task = ReadTask {
            store: self.store.clone(),
            chains: self.chains.clone(),
            sender,
            plan,
            json,
        };
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let sender = task.sender.clone();
            let outcome = tokio::select! {
                outcome = task.run() => outcome,
                _ = stop.wait_for(|stopped| *stopped) => Err(Status::unavailable("server is shutting down")),
            };
            if let Err(status) = outcome {
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        let principal = self.auth.principal(&request)?;
        require_admin(principal)?;
        let actor = actor_of(&request);
        let mut messages = request.into_inner();
        let options = match messages.message().await? {
            Some(AppendReq {
                content: Some(append_req::Content::Options(options)),
            }) => options,
            _ => {
                return Err(Status::invalid_argument(
                    "an append starts with its options",
                ));
            }
        };
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = match options.expected_stream_revision {
            Some(append_req::options::ExpectedStreamRevision::Revision(revision)) => {
                ExpectedRevision::Exact(revision)
            }
            Some(append_req::options::ExpectedStreamRevision::NoStream(())) => {
                ExpectedRevision::NoStream
            }
            Some(append_req::options::ExpectedStreamRevision::Any(())) | None => {
                ExpectedRevision::Any
            }
            Some(append_req::options::ExpectedStreamRevision::StreamExists(())) => {
                ExpectedRevision::StreamExists
            }
        };
        let mut events = Vec::new();
        while let Some(message) = messages.message().await? {
            let Some(append_req::Content::ProposedMessage(proposed)) = message.content else {
                return Err(Status::invalid_argument(
                    "an append sends its options only once",
                ));
            };
            if events.len() == EVENTS_PER_APPEND_MAX {
                return Err(Status::invalid_argument(format!(
                    "an append holds at most {EVENTS_PER_APPEND_MAX} events"
                )));
            }
            events.push(new_event(
                proposed.id,
                &proposed.metadata,
                &proposed.custom_metadata,
                proposed.data.to_vec(),
                &actor,
            )?);
        }
        let epoch = lease_epoch_of(&events)?;
        let events = self.append_check.admit(&stream, events)?;
        let appended = fenced_append(&self.store, &self.fence, &stream, expected, events, epoch);
        let result = match appended.await? {
            Ok(result) => append_resp::Result::Success(append_resp::Success {
                current_revision_option: Some(
                    append_resp::success::CurrentRevisionOption::CurrentRevision(result.revision),
                ),
                position_option: Some(match result.positions.last() {
                    Some(position) => {
                        append_resp::success::PositionOption::Position(append_resp::Position {
                            commit_position: position.0,
                            prepare_position: position.0,
                        })
                    }
                    None => append_resp::success::PositionOption::NoPosition(()),
                }),
            }),
            Err(StoreError::WrongExpectedRevision {
                expected, actual, ..
            }) => {
                append_resp::Result::WrongExpectedVersion(wrong_expected_version(expected, actual))
            }
            Err(error) => return Err(status_of(error)),
        };
        Ok(Response::new(AppendResp {
            result: Some(result),
        }))
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        let principal = self.auth.principal(&request)?;
        require_admin(principal)?;
        let actor = actor_of(&request);
        let mut requests = request.into_inner();
        let store = self.store.clone();
        let check = self.append_check.clone();
        let fence = self.fence.clone();
        let (sender, receiver) = mpsc::channel(RESPONSE_BUFFER_ITEMS);
        tokio::spawn(async move {
            // Batches are collected per correlation id until `is_final`, then appended in
            // one store append, so a batch is all-or-nothing.
            let mut pending: HashMap<Uuid, PendingBatch> = HashMap::new();
            loop {
                let message = match requests.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                let response =
                    batch_step(&store, &check, &fence, &actor, &mut pending, message).await;
                let Some(response) = response else { continue };
                if sender.send(response).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn delete(&self, _request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        Err(Status::unimplemented(
            "the ledger is append-only: streams are never deleted",
        ))
    }

    async fn tombstone(
        &self,
        _request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        Err(Status::unimplemented(
            "the ledger is append-only: streams are never deleted",
        ))
    }
}

/// The one writer-lease epoch an append's events carry.
fn lease_epoch_of(events: &[Proposed]) -> Result<Option<u64>, Status> {
    let epoch = events.first().and_then(|p| p.lease_epoch);
    if events.iter().any(|p| p.lease_epoch != epoch) {
        return Err(Status::invalid_argument(
            "refused, nothing appended: the events of one append carry different writer-lease epochs",
        ));
    }
    Ok(epoch)
}

/// Appends unless the writer lease forbids it (see [`crate::lease`]): a ledger append is
/// admitted only under the epoch of the lease's current take, or without one while no lease
/// was ever taken; checked and appended under one lock, so no take comes in between. The
/// lease's own events are guarded by their expected revisions.
async fn fenced_append(
    store: &Arc<dyn EventStore>,
    fence: &tokio::sync::Mutex<()>,
    stream: &StreamName,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
    epoch: Option<u64>,
) -> Result<Result<store::AppendResult, StoreError>, Status> {
    let _fenced = fence.lock().await;
    if !lease::is_lease_stream(stream.as_str()) {
        let lease_stream = StreamName::new(lease::LEASE_STREAM)
            .map_err(|error| Status::internal(error.to_string()))?;
        let last = store
            .read_stream(&lease_stream, ReadFrom::End, Direction::Backwards, 1)
            .await
            .map_err(status_of)?;
        let (latest, held) = match last.first() {
            None => (0, false),
            Some(event) => {
                let record = LeaseRecord::from_bytes(&event.payload).map_err(Status::internal)?;
                (record.epoch, event.event_type == lease::TAKEN)
            }
        };
        let epoch = epoch.unwrap_or(0);
        if epoch != latest || (latest > 0 && !held) {
            let now = if held {
                format!("epoch {latest} holds it")
            } else if latest > 0 {
                format!("it was released at epoch {latest}")
            } else {
                "it was never taken".to_string()
            };
            return Err(Status::failed_precondition(format!(
                "{}: an append under epoch {epoch} is refused, {now}; nothing appended",
                lease::FENCE_REFUSAL
            )));
        }
    }
    Ok(store.append(stream, expected, events).await)
}

fn require_admin(principal: Principal) -> Result<(), Status> {
    if principal == Principal::StoreAdmin {
        Ok(())
    } else {
        Err(Status::permission_denied(
            "appends need the store-admin key; readers may only read",
        ))
    }
}

/// The actor recorded for events appended through this door when their metadata names none.
fn actor_of<T>(request: &Request<T>) -> String {
    let user = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|text| text.split_once(':').map(|(user, _)| user.to_string()))
        .unwrap_or_default();
    format!("kurrentdb:{user}")
}

/// A batch being collected: its options, its events so far, and why it is already refused.
#[derive(Default)]
struct PendingBatch {
    options: Option<batch_append_req::Options>,
    events: Vec<Proposed>,
    refused: Option<Status>,
}

/// One message of a batch-append stream; a response when it ends a batch. A batch's own
/// failure is answered in the batch's response (with the details clients unpack), so the
/// other batches of the stream go on; only a message that names no batch ends the stream.
async fn batch_step(
    store: &Arc<dyn EventStore>,
    check: &AppendCheck,
    fence: &tokio::sync::Mutex<()>,
    actor: &str,
    pending: &mut HashMap<Uuid, PendingBatch>,
    message: BatchAppendReq,
) -> Option<Result<BatchAppendResp, Status>> {
    let correlation = match uuid_of(message.correlation_id.as_ref()) {
        Ok(id) => id,
        Err(status) => return Some(Err(status)),
    };
    let entry = pending.entry(correlation).or_default();
    if message.options.is_some() {
        entry.options = message.options;
    }
    for proposed in message.proposed_messages {
        if entry.refused.is_some() {
            break;
        }
        if entry.events.len() == EVENTS_PER_APPEND_MAX {
            entry.refused = Some(Status::invalid_argument(format!(
                "a batch holds at most {EVENTS_PER_APPEND_MAX} events"
            )));
            entry.events.clear();
            break;
        }
        match new_event(
            proposed.id,
            &proposed.metadata,
            &proposed.custom_metadata,
            proposed.data.to_vec(),
            actor,
        ) {
            Ok(event) => entry.events.push(event),
            Err(status) => {
                entry.refused = Some(status);
                entry.events.clear();
            }
        }
    }
    if !message.is_final {
        return None;
    }
    let batch = pending.remove(&correlation)?;
    let correlation_id = message.correlation_id;
    let Some(options) = batch.options else {
        return Some(Ok(batch_refused(
            correlation_id,
            None,
            Status::invalid_argument("a batch without options"),
        )));
    };
    if let Some(status) = batch.refused {
        return Some(Ok(batch_refused(correlation_id, Some(options), status)));
    }
    use batch_append_req::options::ExpectedStreamPosition as Requested;
    let expected = match options.expected_stream_position {
        Some(Requested::StreamPosition(revision)) => ExpectedRevision::Exact(revision),
        Some(Requested::NoStream(())) => ExpectedRevision::NoStream,
        Some(Requested::StreamExists(())) => ExpectedRevision::StreamExists,
        Some(Requested::Any(())) | None => ExpectedRevision::Any,
    };
    let admitted = stream_name(options.stream_identifier.as_ref()).and_then(|stream| {
        let epoch = lease_epoch_of(&batch.events)?;
        Ok((check.admit(&stream, batch.events)?, stream, epoch))
    });
    let (events, stream, epoch) = match admitted {
        Ok(admitted) => admitted,
        Err(status) => return Some(Ok(batch_refused(correlation_id, Some(options), status))),
    };
    let appended = match fenced_append(store, fence, &stream, expected, events, epoch).await {
        Ok(appended) => appended,
        Err(status) => return Some(Ok(batch_refused(correlation_id, Some(options), status))),
    };
    let result = match appended {
        Ok(result) => batch_append_resp::Result::Success(batch_append_resp::Success {
            current_revision_option: Some(
                batch_append_resp::success::CurrentRevisionOption::CurrentRevision(result.revision),
            ),
            position_option: Some(match result.positions.last() {
                Some(position) => {
                    batch_append_resp::success::PositionOption::Position(proto::AllStreamPosition {
                        commit_position: position.0,
                        prepare_position: position.0,
                    })
                }
                None => batch_append_resp::success::PositionOption::NoPosition(()),
            }),
        }),
        Err(
            ref error @ StoreError::WrongExpectedRevision {
                expected, actual, ..
            },
        ) => {
            // Clients unpack these details into their own concurrency error (Node's
            // `WrongExpectedVersionError`, Python's `WrongCurrentVersionError`), as KurrentDB
            // sends them; without them they raise a bare error.
            batch_append_resp::Result::Error(generated::google::rpc::Status {
                code: tonic::Code::FailedPrecondition as i32,
                message: error.to_string(),
                details: Some(batch_wrong_expected_version(expected, actual)),
            })
        }
        Err(error) => {
            return Some(Ok(batch_refused(
                correlation_id,
                Some(options),
                status_of(error),
            )));
        }
    };
    Some(Ok(BatchAppendResp {
        correlation_id,
        result: Some(result),
        stream_identifier: options.stream_identifier,
        expected_stream_position: Some(echoed_position(options.expected_stream_position)),
    }))
}

/// The expected position a batch asked for, as its response echoes it.
fn echoed_position(
    requested: Option<batch_append_req::options::ExpectedStreamPosition>,
) -> batch_append_resp::ExpectedStreamPosition {
    use batch_append_req::options::ExpectedStreamPosition as Requested;
    use batch_append_resp::ExpectedStreamPosition as Echoed;
    match requested {
        Some(Requested::StreamPosition(revision)) => Echoed::StreamPosition(revision),
        Some(Requested::NoStream(())) => Echoed::NoStream(()),
        Some(Requested::StreamExists(())) => Echoed::StreamExists(()),
        Some(Requested::Any(())) | None => Echoed::Any(()),
    }
}

/// A batch's refusal as its response. The status always carries details, since clients
/// read them without looking first (Node's fails on a status without any): a refused
/// request is KurrentDB's `BadRequest` with the reason, anything else `Unknown`.
fn batch_refused(
    correlation_id: Option<proto::Uuid>,
    options: Option<batch_append_req::Options>,
    status: Status,
) -> BatchAppendResp {
    let details = match status.code() {
        tonic::Code::InvalidArgument => prost_types::Any {
            type_url: format!("{TYPE_URL_PREFIX}event_store.client.BadRequest"),
            value: prost::Message::encode_to_vec(&proto::BadRequest {
                message: status.message().to_string(),
            }),
        },
        _ => prost_types::Any {
            type_url: format!("{TYPE_URL_PREFIX}event_store.client.Unknown"),
            value: prost::Message::encode_to_vec(&proto::Unknown {}),
        },
    };
    let (stream_identifier, expected) = match options {
        Some(options) => (
            options.stream_identifier,
            Some(echoed_position(options.expected_stream_position)),
        ),
        None => (None, None),
    };
    BatchAppendResp {
        correlation_id,
        result: Some(batch_append_resp::Result::Error(
            generated::google::rpc::Status {
                code: status.code() as i32,
                message: status.message().to_string(),
                details: Some(details),
            },
        )),
        stream_identifier,
        expected_stream_position: expected,
    }
}

/// The prefix of the type URLs under which KurrentDB packs a status's details.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// A batch append's concurrency error as the `details` of its status: the shared
/// `event_store.client.WrongExpectedVersion` message, packed as a `google.protobuf.Any`.
fn batch_wrong_expected_version(
    expected: ExpectedRevision,
    actual: Option<u64>,
) -> prost_types::Any {
    use proto::wrong_expected_version::{
        CurrentStreamRevisionOption, ExpectedStreamPositionOption,
    };
    let details = proto::WrongExpectedVersion {
        current_stream_revision_option: Some(match actual {
            Some(revision) => CurrentStreamRevisionOption::CurrentStreamRevision(revision),
            None => CurrentStreamRevisionOption::CurrentNoStream(()),
        }),
        expected_stream_position_option: Some(match expected {
            ExpectedRevision::Exact(revision) => {
                ExpectedStreamPositionOption::ExpectedStreamPosition(revision)
            }
            ExpectedRevision::Any => ExpectedStreamPositionOption::ExpectedAny(()),
            ExpectedRevision::StreamExists => {
                ExpectedStreamPositionOption::ExpectedStreamExists(())
            }
            ExpectedRevision::NoStream => ExpectedStreamPositionOption::ExpectedNoStream(()),
        }),
    };
    prost_types::Any {
        type_url: format!("{TYPE_URL_PREFIX}event_store.client.WrongExpectedVersion"),
        value: prost::Message::encode_to_vec(&details),
    }
}

fn wrong_expected_version(
    expected: ExpectedRevision,
    actual: Option<u64>,
) -> append_resp::WrongExpectedVersion {
    use append_resp::wrong_expected_version::{
        CurrentRevisionOption, CurrentRevisionOption2060, ExpectedRevisionOption,
        ExpectedRevisionOption2060,
    };
    append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(match actual {
            Some(revision) => CurrentRevisionOption2060::CurrentRevision2060(revision),
            None => CurrentRevisionOption2060::NoStream2060(()),
        }),
        expected_revision_option_20_6_0: Some(match expected {
            ExpectedRevision::Exact(revision) => {
                ExpectedRevisionOption2060::ExpectedRevision2060(revision)
            }
            ExpectedRevision::StreamExists => ExpectedRevisionOption2060::StreamExists2060(()),
            ExpectedRevision::Any | ExpectedRevision::NoStream => {
                ExpectedRevisionOption2060::Any2060(())
            }
        }),
        current_revision_option: Some(match actual {
            Some(revision) => CurrentRevisionOption::CurrentRevision(revision),
            None => CurrentRevisionOption::CurrentNoStream(()),
        }),
        expected_revision_option: Some(match expected {
            ExpectedRevision::Exact(revision) => ExpectedRevisionOption::ExpectedRevision(revision),
            ExpectedRevision::Any => ExpectedRevisionOption::ExpectedAny(()),
            ExpectedRevision::StreamExists => ExpectedRevisionOption::ExpectedStreamExists(()),
            ExpectedRevision::NoStream => ExpectedRevisionOption::ExpectedNoStream(()),
        }),
    }
}

fn status_of(error: StoreError) -> Status {
    match error {
        StoreError::Invalid(message) => Status::invalid_argument(message),
        StoreError::Unavailable(message) => Status::unavailable(message),
        StoreError::Closed => Status::unavailable("store is closed"),
        StoreError::NotWriter(message) => Status::failed_precondition(message),
        other => Status::internal(other.to_string()),
    }
}

fn stream_name(identifier: Option<&proto::StreamIdentifier>) -> Result<StreamName, Status> {
    let identifier = identifier.ok_or_else(|| Status::invalid_argument("no stream named"))?;
    let text = std::str::from_utf8(&identifier.stream_name)
        .map_err(|_| Status::invalid_argument("stream name is not UTF-8"))?;
    StreamName::new(text).map_err(|error| Status::invalid_argument(error.to_string()))
}

fn uuid_of(id: Option<&proto::Uuid>) -> Result<Uuid, Status> {
    match id.and_then(|id| id.value.as_ref()) {
        Some(proto::uuid::Value::Structured(parts)) => Ok(Uuid::from_u128(
            (u128::from(parts.most_significant_bits as u64) << 64)
                | u128::from(parts.least_significant_bits as u64),
        )),
        Some(proto::uuid::Value::String(text)) => text
            .parse()
            .map_err(|_| Status::invalid_argument(format!("bad event id {text:?}"))),
        None => Err(Status::invalid_argument("an event needs an id")),
    }
}

/// A proposed event to a store event. Envelope fields missing from the custom metadata (a
/// client that is not csp-ledger) get defaults: schema version 1, the authenticated user as
/// actor, now as recorded-at, and the event's own id as command, correlation and causation
/// id. Metadata the store could not keep is refused rather than dropped.
fn new_event(
    id: Option<proto::Uuid>,
    system: &HashMap<String, String>,
    custom: &[u8],
    payload: Vec<u8>,
    actor: &str,
) -> Result<Proposed, Status> {
    let event_id = uuid_of(id.as_ref())?;
    let event_type = system
        .get("type")
        .cloned()
        .ok_or_else(|| Status::invalid_argument("an event needs a type"))?;
    let json = match system.get("content-type").map(String::as_str) {
        Some(CONTENT_TYPE) => false,
        Some(JSON_CONTENT_TYPE) => true,
        other => {
            return Err(Status::invalid_argument(format!(
                "ledger payloads are MessagePack ({CONTENT_TYPE}) or JSON ({JSON_CONTENT_TYPE}), got {other:?}"
            )));
        }
    };
    let metadata = if custom.is_empty() {
        None
    } else {
        Some(EnvelopeMetadata::from_bytes(custom).map_err(Status::invalid_argument)?)
    };
    let enveloped = metadata.is_some();
    let lease_epoch = metadata.as_ref().and_then(|metadata| metadata.lease_epoch);
    let event = match metadata {
        Some(metadata) => NewEvent {
            event_id,
            event_type,
            schema_version: metadata.schema_version,
            recorded_at: metadata.recorded_at,
            actor: metadata.actor,
            command_id: metadata.command_id,
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            payload,
        },
        None => NewEvent {
            event_id,
            event_type,
            schema_version: 1,
            recorded_at: chrono::Utc::now(),
            actor: actor.to_string(),
            command_id: event_id,
            correlation_id: event_id,
            causation_id: event_id,
            payload,
        },
    };
    Ok(Proposed {
        event,
        enveloped,
        json,
        lease_epoch,
    })
}

/// What a read asks for, checked.
struct ReadPlan {
    target: Target,
    backwards: bool,
    /// `None`: a subscription.
    count: Option<u64>,
    filter: Option<ProtocolFilter>,
    structured_ids: bool,
}

enum Target {
    Stream {
        name: Result<StreamName, Vec<u8>>,
        from: StreamFrom,
    },
    All {
        from: AllFrom,
    },
}

#[derive(Clone, Copy)]
enum StreamFrom {
    Start,
    End,
    Revision(u64),
}

#[derive(Clone, Copy)]
enum AllFrom {
    Start,
    End,
    Position(u64),
}

/// A server-side filter of `$all`: on stream names or event types, by regex and/or prefixes.
struct ProtocolFilter {
    on_stream: bool,
    regex: Option<Regex>,
    prefixes: Vec<String>,
    /// Events considered between two checkpoints.
    checkpoint_every: u64,
}

impl ProtocolFilter {
    fn matches(&self, event: &RecordedEvent) -> bool {
        let subject = if self.on_stream {
            event.stream.as_str()
        } else {
            event.event_type.as_str()
        };
        // A regex that gives up (backtracking limit) matches nothing: better to hold an event
        // back than to deliver one the filter may have excluded.
        let by_regex = self
            .regex
            .as_ref()
            .is_none_or(|regex| regex.is_match(subject).unwrap_or(false));
        let by_prefix = self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|prefix| subject.starts_with(prefix.as_str()));
        by_regex && by_prefix
    }
}

impl ReadPlan {
    fn from_options(options: read_req::Options) -> Result<Self, Status> {
        use read_req::options::{
            CountOption, FilterOption, StreamOption, all_options::AllOption,
            filter_options::Filter, filter_options::Window, stream_options::RevisionOption,
            uuid_option::Content,
        };
        let target = match options.stream_option {
            Some(StreamOption::Stream(stream)) => {
                let raw = stream
                    .stream_identifier
                    .map(|id| id.stream_name.to_vec())
                    .unwrap_or_default();
                let name = std::str::from_utf8(&raw)
                    .ok()
                    .and_then(|text| StreamName::new(text).ok())
                    .ok_or(raw);
                let from = match stream.revision_option {
                    Some(RevisionOption::Revision(revision)) => StreamFrom::Revision(revision),
                    Some(RevisionOption::End(())) => StreamFrom::End,
                    Some(RevisionOption::Start(())) | None => StreamFrom::Start,
                };
                Target::Stream { name, from }
            }
            Some(StreamOption::All(all)) => {
                let from = match all.all_option {
                    Some(AllOption::Position(position)) => {
                        AllFrom::Position(position.commit_position)
                    }
                    Some(AllOption::End(())) => AllFrom::End,
                    Some(AllOption::Start(())) | None => AllFrom::Start,
                };
                Target::All { from }
            }
            None => {
                return Err(Status::invalid_argument(
                    "read of neither a stream nor $all",
                ));
            }
        };
        if options.resolve_links {
            // The ledger writes no link events, so there is nothing to resolve; the flag
            // changes nothing and is accepted.
        }
        let count = match options.count_option {
            Some(CountOption::Count(count)) => Some(count),
            Some(CountOption::Subscription(_)) => None,
            None => {
                return Err(Status::invalid_argument(
                    "read without a count or subscription",
                ));
            }
        };
        let backwards =
            options.read_direction == read_req::options::ReadDirection::Backwards as i32;
        if count.is_none() && backwards {
            return Err(Status::invalid_argument("subscriptions go forwards"));
        }
        let filter = match options.filter_option {
            Some(FilterOption::Filter(filter)) => {
                let (on_stream, expression) = match filter.filter {
                    Some(Filter::StreamIdentifier(expression)) => (true, expression),
                    Some(Filter::EventType(expression)) => (false, expression),
                    None => return Err(Status::invalid_argument("filter without an expression")),
                };
                let regex = if expression.regex.is_empty() {
                    None
                } else {
                    Some(Regex::new(&expression.regex).map_err(|error| {
                        Status::invalid_argument(format!("bad filter regex: {error}"))
                    })?)
                };
                let window = match filter.window {
                    Some(Window::Max(max)) => max.max(1),
                    Some(Window::Count(())) | None => CHECKPOINT_WINDOW_DEFAULT,
                };
                let multiplier = filter.checkpoint_interval_multiplier.max(1);
                Some(ProtocolFilter {
                    on_stream,
                    regex,
                    prefixes: expression.prefix,
                    checkpoint_every: u64::from(window) * u64::from(multiplier),
                })
            }
            Some(FilterOption::NoFilter(())) | None => None,
        };
        if filter.is_some() && matches!(target, Target::Stream { .. }) {
            return Err(Status::invalid_argument("filters apply to $all only"));
        }
        let structured_ids = matches!(
            options.uuid_option.and_then(|option| option.content),
            Some(Content::Structured(()))
        );
        Ok(Self {
            target,
            backwards,
            count,
            filter,
            structured_ids,
        })
    }
}

struct ReadTask {
    store: Arc<dyn EventStore>,
    chains: Arc<ChainIndex>,
    sender: mpsc::Sender<Result<ReadResp, Status>>,
    plan: ReadPlan,
    /// Set when the reader asked for JSON and the door offers it.
    json: Option<JsonView>,
}

/// The client went away: stop quietly.
struct Gone;

impl ReadTask {
    async fn run(self) -> Result<(), Status> {
        match self.go().await {
            Ok(()) | Err(Ok(Gone)) => Ok(()),
            Err(Err(status)) => Err(status),
        }
    }

    async fn go(&self) -> Result<(), Result<Gone, Status>> {
        if self.plan.count.is_none() {
            self.send(read_resp::Content::Confirmation(
                read_resp::SubscriptionConfirmation {
                    subscription_id: Uuid::new_v4().to_string(),
                },
            ))
            .await?;
            return self.subscribe().await;
        }
        let count = self.plan.count.unwrap_or_default();
        match &self.plan.target {
            Target::Stream { name, from } => self.read_stream(name, *from, count).await,
            Target::All { from } => self.read_all(*from, count).await,
        }
    }

    async fn send(&self, content: read_resp::Content) -> Result<(), Result<Gone, Status>> {
        self.sender
            .send(Ok(ReadResp {
                content: Some(content),
            }))
            .await
            .map_err(|_| Ok(Gone))
    }

    async fn send_event(&self, event: RecordedEvent) -> Result<(), Result<Gone, Status>> {
        let (chain, epoch) = if lease::is_lease_stream(event.stream.as_str()) {
            (None, 0)
        } else {
            let chain = self.chains.chain_at(event.position.0).await.map_err(Err)?;
            (Some(chain), self.chains.epoch_at(event.position.0))
        };
        let content = read_resp::Content::Event(read_event(
            event,
            chain.as_ref(),
            epoch,
            self.plan.structured_ids,
            self.json.as_ref(),
        ));
        self.send(content).await
    }

    async fn read_stream(
        &self,
        name: &Result<StreamName, Vec<u8>>,
        from: StreamFrom,
        count: u64,
    ) -> Result<(), Result<Gone, Status>> {
        let not_found = |raw: Vec<u8>| {
            read_resp::Content::StreamNotFound(read_resp::StreamNotFound {
                stream_identifier: Some(proto::StreamIdentifier {
                    stream_name: raw.into(),
                }),
            })
        };
        let stream = match name {
            Ok(stream) => stream,
            // A name the ledger cannot hold (a `$` system stream, say) names nothing here.
            Err(raw) => return self.send(not_found(raw.clone())).await,
        };
        let exists = self
            .store
            .stream_revision(stream)
            .await
            .map_err(store_status)?;
        if exists.is_none() {
            return self
                .send(not_found(stream.as_str().as_bytes().to_vec()))
                .await;
        }
        let direction = if self.plan.backwards {
            Direction::Backwards
        } else {
            Direction::Forwards
        };
        let mut next = match from {
            StreamFrom::Start => ReadFrom::At(0),
            StreamFrom::End => ReadFrom::End,
            StreamFrom::Revision(revision) => ReadFrom::At(revision),
        };
        let mut left = count;
        while left > 0 {
            let page_len = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(READ_PAGE_EVENTS);
            let page = self
                .store
                .read_stream(stream, next, direction, page_len)
                .await
                .map_err(store_status)?;
            let Some(last) = page.last() else { break };
            next = match direction {
                Direction::Forwards => ReadFrom::At(last.revision + 1),
                Direction::Backwards => match last.revision.checked_sub(1) {
                    Some(revision) => ReadFrom::At(revision),
                    None => ReadFrom::At(u64::MAX),
                },
            };
            let done =
                page.len() < page_len || (direction == Direction::Backwards && last.revision == 0);
            for event in page {
                left -= 1;
                self.send_event(event).await?;
            }
            if done {
                break;
            }
        }
        Ok(())
    }

    async fn read_all(&self, from: AllFrom, count: u64) -> Result<(), Result<Gone, Status>> {
        let direction = if self.plan.backwards {
            Direction::Backwards
        } else {
            Direction::Forwards
        };
        // KurrentDB's rules: forwards from a position includes it; backwards starts before it.
        let mut next = match (from, direction) {
            (AllFrom::Start, Direction::Forwards) => ReadFrom::Start,
            (AllFrom::End, Direction::Forwards) => return Ok(()),
            (AllFrom::Position(p), Direction::Forwards) => ReadFrom::At(p),
            (AllFrom::Start, Direction::Backwards) => return Ok(()),
            (AllFrom::End, Direction::Backwards) => ReadFrom::End,
            (AllFrom::Position(p), Direction::Backwards) => match p.checked_sub(1) {
                Some(before) => ReadFrom::At(before),
                None => return Ok(()),
            },
        };
        let mut left = count;
        while left > 0 {
            let page = self
                .store
                .read_all(next, direction, READ_PAGE_EVENTS)
                .await
                .map_err(store_status)?;
            let Some(last) = page.last() else { break };
            let done = page.len() < READ_PAGE_EVENTS;
            // Backwards past position 0 there is nothing more; the page is still sent.
            let after_page = match direction {
                Direction::Forwards => Some(ReadFrom::At(last.position.0 + 1)),
                Direction::Backwards => last.position.0.checked_sub(1).map(ReadFrom::At),
            };
            for event in page {
                if self
                    .plan
                    .filter
                    .as_ref()
                    .is_some_and(|filter| !filter.matches(&event))
                {
                    continue;
                }
                self.send_event(event).await?;
                left -= 1;
                if left == 0 {
                    return Ok(());
                }
            }
            match after_page {
                Some(after) if !done => next = after,
                _ => break,
            }
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<(), Result<Gone, Status>> {
        let (from, stream_after) = match &self.plan.target {
            Target::All { from } => (
                match from {
                    AllFrom::Start => SubscribeFrom::Start,
                    AllFrom::End => SubscribeFrom::End,
                    AllFrom::Position(p) => SubscribeFrom::After(Position(*p)),
                },
                None,
            ),
            Target::Stream { name, from } => {
                let Ok(stream) = name else {
                    // Nothing can ever be appended to a name the ledger cannot hold; the
                    // subscription stays open and quiet, like one to a stream not yet written.
                    self.send(read_resp::Content::CaughtUp(read_resp::CaughtUp {}))
                        .await?;
                    return std::future::pending().await;
                };
                let (from, after) = match from {
                    StreamFrom::Start => (SubscribeFrom::Start, None),
                    StreamFrom::End => (SubscribeFrom::End, None),
                    StreamFrom::Revision(revision) => (SubscribeFrom::Start, Some(*revision)),
                };
                (from, Some((stream.clone(), after)))
            }
        };
        let mut subscription = self.store.clone().subscribe_all(from, EventFilter::all());
        let mut considered = 0u64;
        while let Some(item) = subscription.next().await {
            match item.map_err(store_status)? {
                SubscriptionItem::Event(event) => {
                    let wanted = match &stream_after {
                        Some((stream, after)) => {
                            event.stream == *stream
                                && after.is_none_or(|after| event.revision > after)
                        }
                        None => self
                            .plan
                            .filter
                            .as_ref()
                            .is_none_or(|filter| filter.matches(&event)),
                    };
                    let position = event.position.0;
                    if wanted {
                        self.send_event(event).await?;
                    }
                    if let Some(filter) = &self.plan.filter {
                        considered += 1;
                        if considered.is_multiple_of(filter.checkpoint_every) {
                            self.send(checkpoint(position)).await?;
                        }
                    }
                }
                SubscriptionItem::CaughtUp { head } => {
                    if let (Some(_), Some(head)) = (&self.plan.filter, head) {
                        self.send(checkpoint(head.0)).await?;
                    }
                    self.send(read_resp::Content::CaughtUp(read_resp::CaughtUp {}))
                        .await?;
                }
            }
        }
        Err(Err(Status::unavailable("the store closed")))
    }
}

fn checkpoint(position: u64) -> read_resp::Content {
    read_resp::Content::Checkpoint(read_resp::Checkpoint {
        commit_position: position,
        prepare_position: position,
    })
}

fn store_status(error: StoreError) -> Result<Gone, Status> {
    Err(status_of(error))
}

fn read_event(
    event: RecordedEvent,
    chain: Option<&ChainValue>,
    epoch: u64,
    structured_ids: bool,
    json: Option<&JsonView>,
) -> read_resp::ReadEvent {
    let mut metadata = EnvelopeMetadata::of(&event, chain);
    // The door admitted it only under the epoch then in force, which is what a KurrentDB
    // server would have kept from the writer's metadata.
    metadata.lease_epoch = (epoch > 0).then_some(epoch);
    let mut content_type = CONTENT_TYPE;
    let mut data = None;
    if let Some(view) = json {
        metadata.record_sha256 = Some(EnvelopeMetadata::record_sha256_of(&event));
        data = (view.convert)(&event);
        if data.is_some() {
            content_type = JSON_CONTENT_TYPE;
        }
    }
    let metadata = metadata.to_bytes();
    let id = if structured_ids {
        let value = event.event_id.as_u128();
        proto::uuid::Value::Structured(proto::uuid::Structured {
            most_significant_bits: (value >> 64) as u64 as i64,
            least_significant_bits: value as u64 as i64,
        })
    } else {
        proto::uuid::Value::String(event.event_id.to_string())
    };
    // KurrentDB's `created` is in 100-nanosecond ticks since the Unix epoch.
    let ticks = event.recorded_at.timestamp_nanos_opt().unwrap_or_default() / 100;
    let system = HashMap::from([
        ("type".to_string(), event.event_type.clone()),
        ("content-type".to_string(), content_type.to_string()),
        ("created".to_string(), ticks.to_string()),
    ]);
    let position = event.position.0;
    read_resp::ReadEvent {
        event: Some(read_resp::read_event::RecordedEvent {
            id: Some(proto::Uuid { value: Some(id) }),
            stream_identifier: Some(proto::StreamIdentifier {
                stream_name: event.stream.as_str().as_bytes().to_vec().into(),
            }),
            stream_revision: event.revision,
            prepare_position: position,
            commit_position: position,
            metadata: system,
            custom_metadata: metadata.into(),
            data: data.unwrap_or(event.payload).into(),
        }),
        link: None,
        position: Some(read_resp::read_event::Position::CommitPosition(position)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_concurrency_error_carries_wrong_expected_version_details() {
        use proto::wrong_expected_version::{
            CurrentStreamRevisionOption, ExpectedStreamPositionOption,
        };
        let any = batch_wrong_expected_version(ExpectedRevision::Exact(3), Some(5));
        // Clients find the message by the name after the URL's last slash.
        assert_eq!(
            any.type_url.rsplit('/').next(),
            Some("event_store.client.WrongExpectedVersion")
        );
        let details = <proto::WrongExpectedVersion as prost::Message>::decode(any.value.as_slice());
        let details = details.unwrap_or_else(|e| panic!("decode: {e}"));
        assert_eq!(
            details.current_stream_revision_option,
            Some(CurrentStreamRevisionOption::CurrentStreamRevision(5))
        );
        assert_eq!(
            details.expected_stream_position_option,
            Some(ExpectedStreamPositionOption::ExpectedStreamPosition(3))
        );
        let details = <proto::WrongExpectedVersion as prost::Message>::decode(
            batch_wrong_expected_version(ExpectedRevision::StreamExists, None)
                .value
                .as_slice(),
        )
        .unwrap_or_else(|e| panic!("decode: {e}"));
        assert_eq!(
            details.current_stream_revision_option,
            Some(CurrentStreamRevisionOption::CurrentNoStream(()))
        );
        assert_eq!(
            details.expected_stream_position_option,
            Some(ExpectedStreamPositionOption::ExpectedStreamExists(()))
        );
    }
}
