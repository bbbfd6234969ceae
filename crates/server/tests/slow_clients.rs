//! Clients that are slow or many do not hold the server: a header that never completes
//! closes its connection, a body that never completes is refused with a `408` problem, and
//! past `connections_max` further connections wait until one closes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{OPERATOR_KEY, Reply, TestServer};
use server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Far longer than any deadline configured here: a test that reaches it has hung.
const HUNG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_header_that_never_completes_closes_the_connection() {
    let server = TestServer::start(ServerConfig {
        header_read_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let read = timeout(HUNG, stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the connection was still open after {HUNG:?}");
    // Whatever was said before closing, it was not an answer to the half-sent request.
    let reply = Reply::parse(&bytes);
    assert_ne!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_deadline() {
    let server = TestServer::start(ServerConfig {
        header_read_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let mut bytes = Vec::new();
    let read = timeout(HUNG, stream.read_to_end(&mut bytes)).await;
    assert!(
        read.is_ok(),
        "an idle connection stayed open after {HUNG:?}"
    );
}

#[tokio::test]
async fn a_body_that_never_completes_is_a_408_problem() {
    let server = TestServer::start(ServerConfig {
        body_read_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!(
        "POST /v1/commands HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {OPERATOR_KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"comm"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    timeout(HUNG, stream.read_to_end(&mut bytes))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    let reply = Reply::parse(&bytes);
    reply.assert_problem(408, "body-read-timeout");
    assert_eq!(reply.header("connection"), Some("close"), "{reply:?}");
}

#[tokio::test]
async fn past_the_connection_bound_a_connection_waits_for_one_to_close() {
    let server = TestServer::start(ServerConfig {
        connections_max: 1,
        ..ServerConfig::default()
    })
    .await;
    // The one connection allowed, kept open and idle.
    let holder = TcpStream::connect(server.address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut waiting = TcpStream::connect(server.address).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let early = timeout(Duration::from_millis(500), waiting.read_to_end(&mut bytes)).await;
    assert!(
        early.is_err(),
        "served past the bound: {:?}",
        Reply::parse(&bytes)
    );

    drop(holder);
    timeout(HUNG, waiting.read_to_end(&mut bytes))
        .await
        .expect("the waiting connection was never served")
        .unwrap();
    assert_eq!(Reply::parse(&bytes).status, 200);
}
