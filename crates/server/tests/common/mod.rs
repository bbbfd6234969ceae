//! A server on a loopback port over an in-memory store, and a client that speaks HTTP/1.1
//! by hand: the edge tests need to send what no well-behaved client sends (half a header, a
//! slow body, oversized header fields) and to see the bytes that come back.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use credentials::{CredentialStore, HashCost};
use handler::{CommandHandler, HandlerConfig, SystemClock};
use projections::{Runner, RunnerConfig};
use serde_json::Value;
use server::{ApiKeys, AppState, ServerConfig};
use store::{EventStore, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The operator key of every test server.
pub const OPERATOR_KEY: &str = "test-operator-key-0123456789abcdef";

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its shared state.
    pub state: Arc<AppState>,
    /// Its credential store.
    pub credentials: Arc<CredentialStore>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _runner: Runner,
}

impl TestServer {
    /// Starts a server with `config` on a free loopback port.
    pub async fn start(config: ServerConfig) -> TestServer {
        Self::start_with(config, |state| state).await
    }

    /// Starts a server with `config` whose state `finish` completes (a manual limiter
    /// clock, a sessions file).
    pub async fn start_with(
        config: ServerConfig,
        finish: impl FnOnce(AppState) -> AppState,
    ) -> TestServer {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let credentials = Arc::new(CredentialStore::in_memory(HashCost::Minimal).unwrap());
        let handler = Arc::new(
            CommandHandler::new(
                store.clone(),
                credentials.clone(),
                Arc::new(SystemClock),
                HandlerConfig::default(),
            )
            .await
            .unwrap(),
        );
        let runner = Runner::start(store, RunnerConfig::default()).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(finish(
            AppState::new(
                handler,
                runner.handle(),
                ApiKeys::in_memory(),
                OPERATOR_KEY,
                config,
                stopped.clone(),
            )
            .unwrap(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut shutdown = stopped;
        let task = tokio::spawn(server::serve(listener, state.clone(), async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }));
        TestServer {
            address,
            state,
            credentials,
            stop,
            task,
            _runner: runner,
        }
    }

    /// Sends `raw` on a new connection and reads the answer until the server closes it.
    pub async fn exchange(&self, raw: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.address).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        Reply::parse(&bytes)
    }

    /// A request with `Connection: close`, the operator key and an optional JSON body.
    pub async fn request(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, path, Some(OPERATOR_KEY), body).await
    }

    /// A request with `Connection: close`, an optional bearer token and an optional JSON
    /// body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
        if let Some(bearer) = bearer {
            raw.push_str(&format!("authorization: Bearer {bearer}\r\n"));
        }
        if let Some(body) = body {
            raw.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            raw.push_str("\r\n");
        }
        self.exchange(raw.as_bytes()).await
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Reply {
    /// The status code (0: the server sent nothing).
    pub status: u16,
    /// Header fields, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as sent (responses here are not chunked unless said so).
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses the bytes of one response.
    pub fn parse(bytes: &[u8]) -> Reply {
        let split = bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let body = bytes.get(split + 4..).unwrap_or_default().to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The value of a header field.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }

    /// Asserts this is an RFC 9457 problem of `status` and `rule`; returns its body.
    pub fn assert_problem(&self, status: u16, rule: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let problem = self.json();
        assert_eq!(problem["status"], status, "{problem}");
        assert_eq!(problem["type"], format!("/problems/{rule}"), "{problem}");
        assert_eq!(problem["rule"], rule, "{problem}");
        problem
    }
}
