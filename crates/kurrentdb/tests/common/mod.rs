//! Test helpers: csp-ledger's KurrentDB endpoint over an in-memory store, in process.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use kurrentdb::protocol::{self, AppendCheck, Principal, ProtocolAuth, ProtocolConfig};
use store::EventStore;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The store-admin key of the test endpoints.
pub const ADMIN: (&str, &str) = ("admin", "admin-secret");
/// A reader key of the test endpoints.
pub const READER: (&str, &str) = ("auditor", "auditor-secret");

/// A running endpoint; dropping it shuts the server down.
pub struct Endpoint {
    /// Where it listens.
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Serves `store` on a fresh loopback port.
    pub async fn start(store: Arc<dyn EventStore>) -> Self {
        Self::start_at(
            store,
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        )
        .await
    }

    /// Serves `store` on `address` (reusing it right after an earlier endpoint there stopped).
    pub async fn start_at(store: Arc<dyn EventStore>, address: SocketAddr) -> Self {
        Self::start_with(store, address, None).await
    }

    /// Serves `store` on `address`, over TLS when `tls` is given.
    pub async fn start_with(
        store: Arc<dyn EventStore>,
        address: SocketAddr,
        tls: Option<protocol::TlsIdentity>,
    ) -> Self {
        let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
        socket
            .set_reuseaddr(true)
            .unwrap_or_else(|e| panic!("reuseaddr: {e}"));
        socket
            .bind(address)
            .unwrap_or_else(|e| panic!("bind {address}: {e}"));
        let listener: TcpListener = socket.listen(64).unwrap_or_else(|e| panic!("listen: {e}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local addr: {e}"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let config = ProtocolConfig {
            auth: auth(),
            append_check: AppendCheck::any(),
            tls,
            json_view: None,
        };
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.await;
            };
            if let Err(error) = protocol::serve(store, listener, config, stopped).await {
                panic!("endpoint failed: {error}");
            }
        });
        Self {
            address,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server and waits until it has let go of its port and connections.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// A connection string for the official clients, as `user`.
    pub fn url(&self, (user, password): (&str, &str)) -> String {
        format!("esdb://{user}:{password}@{}?tls=false", self.address)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The keys the test endpoints accept.
pub fn auth() -> ProtocolAuth {
    ProtocolAuth::new(|user, password| match (user, password) {
        (u, p) if (u, p) == ADMIN => Some(Principal::StoreAdmin),
        (u, p) if (u, p) == READER => Some(Principal::Reader),
        _ => None,
    })
}
