//! The edges of the HTTP API: bodies refused without touching the log, authentication
//! failures, the operator key requirement, keys and their revocation, sign-in rate limits,
//! the OpenAPI document, and the event feed resumed with `Last-Event-ID`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{OPERATOR_KEY, Server};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

fn onboard(n: u32) -> Value {
    json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US",
        "partner_number": format!("{}", 2_000_000 + n), "legal_name": format!("Provider {n}"), "countries_served": ["US"],
        "support": {"email": format!("support@p{n}.example"), "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Admin", "email": format!("admin@p{n}.example")}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_without_touching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let send = async |body: Vec<u8>, content_type: &str| {
        let response = server
            .client
            .post(server.url("/v1/commands"))
            .bearer_auth(OPERATOR_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let media = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(media, "application/problem+json");
        (status, problem["rule"].as_str().unwrap().to_string())
    };
    assert_eq!(
        send(b"{not json".to_vec(), "application/json").await,
        (400, "invalid-json".into())
    );
    let mut unknown_field = onboard(1);
    unknown_field["first_admin"]["shoe_size"] = json!(44);
    assert_eq!(
        send(unknown_field.to_string().into_bytes(), "application/json").await,
        (400, "invalid-json".into())
    );
    assert_eq!(
        send(
            br#"{"type": "launch_rockets"}"#.to_vec(),
            "application/json"
        )
        .await,
        (400, "invalid-json".into())
    );
    let mut oversized = onboard(2);
    oversized["legal_name"] = json!("x".repeat(200 * 1024));
    // The rest of an oversized body is never read, so the server closes that connection
    // and says so: a client must not send its next request into it.
    let refused = server
        .client
        .post(server.url("/v1/commands"))
        .bearer_auth(OPERATOR_KEY)
        .header("content-type", "application/json")
        .body(oversized.to_string().into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        refused
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
    assert_eq!(
        send(oversized.to_string().into_bytes(), "application/json").await,
        (413, "body-too-large".into())
    );
    assert_eq!(
        send(onboard(3).to_string().into_bytes(), "text/plain").await,
        (415, "unsupported-media-type".into())
    );
    assert_eq!(server.head().await, None, "nothing reached the log");

    // No credentials, wrong credentials: the same 401.
    let (status, problem) = server
        .call(Method::POST, "/v1/commands", None, Some(onboard(4)))
        .await;
    assert_eq!(
        (status, problem["rule"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = server.command("not-a-key", onboard(4)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.command(OPERATOR_KEY, onboard(4)).await;
    assert_eq!(status, StatusCode::CREATED);

    // A retried command id records nothing new.
    let key = Uuid::now_v7().to_string();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = server
            .client
            .post(server.url("/v1/commands"))
            .bearer_auth(OPERATOR_KEY)
            .header("idempotency-key", &key)
            .json(&onboard(5))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [201, 200]);

    // Auditor keys read, never write, and stop working once revoked.
    let (status, issued) = server
        .call(
            Method::POST,
            "/v1/keys",
            Some(OPERATOR_KEY),
            Some(json!({"kind": "auditor", "name": "audit"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let auditor = issued["key"].as_str().unwrap().to_string();
    let (status, verified) = server.get("/v1/verify", &auditor).await;
    assert_eq!(
        (status, &verified["intact"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(
        server.command(&auditor, onboard(6)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .call(
                Method::POST,
                "/v1/keys",
                Some(&auditor),
                Some(json!({"kind": "auditor", "name": "me too"}))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let text = std::fs::read_to_string(dir.path().join("api-keys.json")).unwrap();
    assert!(!text.contains(&auditor), "keys are stored hashed");
    let id = issued["info"]["id"].as_str().unwrap();
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &format!("/v1/keys/{id}"),
                Some(OPERATOR_KEY),
                None
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.get("/v1/verify", &auditor).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Wrong guesses are throttled, at a known account or not, and at an invitation link.
    throttled(async || server.sign_in("admin@p4.example", "wrong password!").await).await;
    let directory = server
        .directory_token(Uuid::now_v7(), "admin@guesser.example")
        .await;
    let invitation = Uuid::now_v7();
    throttled(async || {
        server
            .call(
                Method::POST,
                "/v1/auth/invitation",
                Some(&directory),
                Some(json!({"invitation_id": invitation, "token": "guess"})),
            )
            .await
    })
    .await;

    // The OpenAPI document embeds the domain's command schema.
    let (status, document) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["components"]["schemas"]["Command"].is_object());
    assert!(document["paths"]["/v1/events"].is_object());
    server.stop();
}

/// Five wrong guesses are free, and each one past them makes the next attempt wait (1 s,
/// then 2 s, 4 s…): `guess` answers 401 six times, then 429 with a `Retry-After` (a stalled
/// machine may let one more through before the wait is met).
async fn throttled(guess: impl AsyncFn() -> (StatusCode, Value)) {
    for _ in 0..6 {
        assert_eq!(guess().await.0, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..3 {
        let (status, problem) = guess().await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(problem["type"], "/problems/too-many-attempts", "{problem}");
            assert!(problem["retry_after_seconds"].as_u64().unwrap() > 0);
            return;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    panic!("nine wrong guesses in a row were never throttled");
}

#[test]
fn serve_refuses_to_start_without_an_operator_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CSP_LEDGER_OPERATOR_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no operator key"));
    let short = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CSP_LEDGER_OPERATOR_KEY", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
}

/// One SSE frame.
#[derive(Debug, Default)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    comment: Option<String>,
}

/// Reads frames from an SSE response until `until` says stop; returns them.
async fn read_frames(
    response: reqwest::Response,
    mut until: impl FnMut(&[Frame]) -> bool,
) -> Vec<Frame> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut frames = Vec::new();
    while !until(&frames) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("the feed keeps delivering")
            .expect("the feed is open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let raw: String = text.drain(..end + 2).collect();
            let mut frame = Frame::default();
            for line in raw.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    frame.id = id.parse().ok();
                } else if let Some(event) = line.strip_prefix("event: ") {
                    frame.event = Some(event.to_string());
                } else if let Some(comment) = line.strip_prefix(':') {
                    frame.comment = Some(comment.trim().to_string());
                }
            }
            frames.push(frame);
            if until(&frames) {
                break;
            }
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resuming_with_last_event_id_gets_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--heartbeat-seconds", "1"]);
    for n in 0..20 {
        server.ok(OPERATOR_KEY, onboard(n)).await;
    }
    let head = server.head().await.unwrap();
    let (_, issued) = server
        .call(
            Method::POST,
            "/v1/keys",
            Some(OPERATOR_KEY),
            Some(json!({"kind": "service", "name": "notifier"})),
        )
        .await;
    let service = issued["key"].as_str().unwrap().to_string();

    // Partner users may not follow the feed.
    let (status, _) = server.get("/v1/events", "nobody").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // First connection: read half of the log, then drop the connection mid-stream.
    let response = server
        .client
        .get(server.url("/v1/events"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let half = head / 2;
    let first = read_frames(response, |frames| {
        frames.last().and_then(|f| f.id) == Some(half)
    })
    .await;
    let mut ids: Vec<u64> = first.iter().filter_map(|f| f.id).collect();
    let last_seen = *ids.last().unwrap();

    // Reconnect with Last-Event-ID; more events arrive live while it catches up.
    let response = server
        .client
        .get(server.url("/v1/events"))
        .bearer_auth(&service)
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .unwrap();
    for n in 20..25 {
        server.ok(OPERATOR_KEY, onboard(n)).await;
    }
    let new_head = server.head().await.unwrap();
    let second = read_frames(response, |frames| {
        frames.last().and_then(|f| f.id) == Some(new_head)
            && frames.iter().any(|f| {
                f.comment
                    .as_deref()
                    .is_some_and(|c| c.starts_with("caught up"))
            })
    })
    .await;
    ids.extend(second.iter().filter_map(|f| f.id));
    let expected: Vec<u64> = (0..=new_head).collect();
    assert_eq!(ids, expected, "every event exactly once, in order");

    // Filters by type and stream prefix; heartbeats while idle.
    let response = server
        .client
        .get(server.url("/v1/events?types=UserAdded&stream_prefixes=partner-"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    let filtered = read_frames(response, |frames| {
        frames
            .iter()
            .any(|f| f.comment.as_deref() == Some("heartbeat"))
    })
    .await;
    let types: Vec<&str> = filtered.iter().filter_map(|f| f.event.as_deref()).collect();
    assert_eq!(types.len(), 25);
    assert!(types.iter().all(|t| *t == "UserAdded"));

    // Pages for batch consumers.
    let (status, page) = server.get("/v1/events/page?from=3&limit=4", &service).await;
    assert_eq!(status, StatusCode::OK);
    let positions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [3, 4, 5, 6]);
    assert_eq!(page["next_from"], 7);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart_and_their_file_holds_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let onboarded = server.ok(OPERATOR_KEY, onboard(9)).await;
    let partner = common::payload(&onboarded, 0, "partner_id");
    let token = server
        .first_sign_in(
            "admin@p9.example",
            &common::temporary_password(&onboarded),
            "p9-admin-password",
        )
        .await;
    let (status, _) = server
        .sign_in("admin@p9.example", "p9-admin-password")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, ended) = server
        .sign_in("admin@p9.example", "p9-admin-password")
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = ended["token"].as_str().unwrap().to_string();
    let (status, _) = server
        .call(Method::POST, "/v1/auth/sign-out", Some(&ended), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();

    let file = dir.path().join("sessions.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token) && !text.contains(&ended), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let server = Server::start(dir.path());
    let read = format!("/v1/queries/partner?partner={partner}");
    assert_eq!(server.get(&read, &token).await.0, StatusCode::OK);
    // A session ended before the restart stays ended.
    assert_eq!(server.get(&read, &ended).await.0, StatusCode::UNAUTHORIZED);
    server.stop();
}
