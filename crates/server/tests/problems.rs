//! Every error the server answers is an RFC 9457 problem, whichever layer refuses: the
//! router (404, 405), the extractors (bad path, bad query, bad JSON, wrong media type), the
//! limits (413, 431).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use server::ServerConfig;

async fn server() -> TestServer {
    TestServer::start(ServerConfig {
        body_bytes_max: 256,
        header_bytes_max: 2048,
        headers_max: 16,
        ..ServerConfig::default()
    })
    .await
}

#[tokio::test]
async fn unknown_paths_are_404_problems() {
    let server = server().await;
    server
        .request("GET", "/v1/nowhere", None)
        .await
        .assert_problem(404, "not-found");
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let server = server().await;
    let reply = server.request("DELETE", "/v1/commands", None).await;
    reply.assert_problem(405, "method-not-allowed");
    assert_eq!(reply.header("allow"), Some("POST"), "{reply:?}");
}

#[tokio::test]
async fn bad_path_parameters_are_400_problems() {
    let server = server().await;
    server
        .request("DELETE", "/v1/keys/not-a-uuid", None)
        .await
        .assert_problem(400, "invalid-path");
    // Percent-encoded bytes that are not UTF-8.
    server
        .request("GET", "/v1/history/%FF%FE", None)
        .await
        .assert_problem(400, "invalid-path");
}

#[tokio::test]
async fn bad_query_strings_are_400_problems() {
    let server = server().await;
    server
        .request("GET", "/v1/events/page?from=soon", None)
        .await
        .assert_problem(400, "invalid-query");
}

#[tokio::test]
async fn bad_bodies_are_problems() {
    let server = server().await;
    server
        .request("POST", "/v1/commands", Some("{not json"))
        .await
        .assert_problem(400, "invalid-json");
    let oversized = format!("{{\"type\": \"{}\"}}", "x".repeat(400));
    let reply = server
        .request("POST", "/v1/commands", Some(&oversized))
        .await;
    reply.assert_problem(413, "body-too-large");
    let plain = format!(
        "POST /v1/commands HTTP/1.1\r\nhost: test\r\nconnection: close\r\nauthorization: Bearer {}\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n{{}}",
        common::OPERATOR_KEY
    );
    server
        .exchange(plain.as_bytes())
        .await
        .assert_problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn oversized_headers_are_431_problems() {
    let server = server().await;
    let long = format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\nx-padding: {}\r\n\r\n",
        "a".repeat(4096)
    );
    server
        .exchange(long.as_bytes())
        .await
        .assert_problem(431, "headers-too-large");
    let mut many = String::from("GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for n in 0..20 {
        many.push_str(&format!("x-field-{n}: {n}\r\n"));
    }
    many.push_str("\r\n");
    server
        .exchange(many.as_bytes())
        .await
        .assert_problem(431, "headers-too-large");
    // Within the limits the same request is served.
    let reply = server.request("GET", "/healthz", None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}
