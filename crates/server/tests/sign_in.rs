//! Signing in over HTTP, as an attacker would try it: an unknown account costs the same work
//! and gets the same answer as a wrong password; a password change or reset ends the user's
//! other sessions; wrong guesses are throttled, and the right password gets through once the
//! short wait has passed. The limiter's clock is moved by hand: nothing here sleeps or times.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Reply, TestServer};
use serde_json::{Value, json};
use server::ServerConfig;
use server::auth::limiter::ManualMonotonic;

const EMAIL: &str = "nora@northwind.example";
const PASSWORD: &str = "nora-chosen-password";

/// A provider onboarded by the operator, whose first admin has changed its temporary
/// password and signed the partner agreement.
struct World {
    server: TestServer,
    clock: Arc<ManualMonotonic>,
    partner: String,
    /// The admin's session.
    token: String,
}

/// Two failures of an account are free; then waits of 1 s, 2 s, … up to a minute.
async fn world() -> World {
    let clock = Arc::new(ManualMonotonic::new());
    let limiter_clock = clock.clone();
    let server = TestServer::start_with(
        ServerConfig {
            attempt_failures_free: 2,
            ..ServerConfig::default()
        },
        move |state| state.with_limiter_clock(limiter_clock),
    )
    .await;
    let onboarded = command(&server, common::OPERATOR_KEY, json!({
        "type": "onboard_provider", "tenant_id": uuid::Uuid::now_v7(), "tenant_country": "US",
        "partner_number": "1000001", "legal_name": "Northwind Distribution", "countries_served": ["US"],
        "support": {"email": "support@northwind.example", "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Nora Admin", "email": EMAIL}}))
    .await;
    let partner = onboarded["events"][0]["payload"]["partner_id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = first_sign_in(&server, EMAIL, &temporary_password(&onboarded), PASSWORD).await;
    command(
        &server,
        &token,
        json!({"type": "sign_partner_agreement", "partner_id": partner, "agreement_version": "2026-01"}),
    )
    .await;
    World {
        server,
        clock,
        partner,
        token,
    }
}

/// Issues a command that must be recorded; returns the outcome.
async fn command(server: &TestServer, token: &str, command: Value) -> Value {
    let reply = server
        .call(
            "POST",
            "/v1/commands",
            Some(token),
            Some(&command.to_string()),
        )
        .await;
    assert_eq!(reply.status, 201, "{command} -> {reply:?}");
    reply.json()
}

fn temporary_password(outcome: &Value) -> String {
    outcome["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|secret| secret["kind"] == "temporary_password")
        .and_then(|secret| secret["password"].as_str())
        .expect("a temporary password")
        .to_string()
}

async fn sign_in(server: &TestServer, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password}).to_string();
    server
        .call("POST", "/v1/auth/sign-in", None, Some(&body))
        .await
}

/// Signs in and returns the session's token.
async fn session(server: &TestServer, email: &str, password: &str) -> String {
    let reply = sign_in(server, email, password).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["token"].as_str().unwrap().to_string()
}

async fn change_password(server: &TestServer, token: &str, current: &str, new: &str) -> Reply {
    let body = json!({"current_password": current, "new_password": new}).to_string();
    server
        .call("POST", "/v1/auth/change-password", Some(token), Some(&body))
        .await
}

/// Signs in with a temporary password and changes it; returns the full token.
async fn first_sign_in(server: &TestServer, email: &str, temporary: &str, new: &str) -> String {
    let token = session(server, email, temporary).await;
    let reply = change_password(server, &token, temporary, new).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["token"].as_str().unwrap().to_string()
}

/// The status of a read that any signed-in user of the partner may make.
async fn read_status(world: &World, token: &str) -> u16 {
    world
        .server
        .call(
            "GET",
            &format!("/v1/queries/partner?partner={}", world.partner),
            Some(token),
            None,
        )
        .await
        .status
}

/// The seconds a `429` answer says to wait, checked against its problem body.
fn retry_after(reply: &Reply) -> u64 {
    let problem = reply.assert_problem(429, "too-many-attempts");
    let seconds: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(problem["retry_after_seconds"], seconds);
    seconds
}

#[tokio::test]
async fn an_unknown_account_costs_one_verification_and_answers_as_a_wrong_password_does() {
    let world = world().await;
    let long = "x".repeat(10_000);
    let mut answers = Vec::new();
    for (email, password) in [
        (EMAIL, "a wrong password"),
        (EMAIL, long.as_str()),
        ("nobody@northwind.example", "a wrong password"),
        ("nobody@northwind.example", long.as_str()),
        ("not an email", "a wrong password"),
    ] {
        let before = world.server.credentials.verifications();
        let reply = sign_in(&world.server, email, password).await;
        assert_eq!(
            world.server.credentials.verifications(),
            before + 1,
            "one Argon2id verification for {email} with {} bytes",
            password.len()
        );
        reply.assert_problem(401, "unauthorized");
        answers.push((
            reply.status,
            reply.header("content-type").map(str::to_string),
            reply.body,
        ));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_and_the_right_one_gets_through_after_the_wait() {
    let world = world().await;
    for _ in 0..2 {
        sign_in(&world.server, EMAIL, "a wrong password")
            .await
            .assert_problem(401, "unauthorized");
    }
    let mut waits = Vec::new();
    for _ in 0..8 {
        sign_in(&world.server, EMAIL, "a wrong password")
            .await
            .assert_problem(401, "unauthorized");
        // While the wait lasts, even the right password is refused, and costs nothing.
        let wait = retry_after(&sign_in(&world.server, EMAIL, PASSWORD).await);
        waits.push(wait);
        world.clock.advance(Duration::from_secs(wait));
    }
    // Each failure doubles the wait, up to a minute: never a lockout.
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    session(&world.server, EMAIL, PASSWORD).await;
    // A success starts the count again: the free failures are free again.
    for _ in 0..2 {
        sign_in(&world.server, EMAIL, "a wrong password")
            .await
            .assert_problem(401, "unauthorized");
    }
    session(&world.server, EMAIL, PASSWORD).await;
}

#[tokio::test]
async fn an_unknown_account_is_throttled_as_a_known_one_is() {
    let world = world().await;
    for email in [EMAIL, "nobody@northwind.example"] {
        for _ in 0..3 {
            sign_in(&world.server, email, "a wrong password")
                .await
                .assert_problem(401, "unauthorized");
        }
        let refused = sign_in(&world.server, email, "a wrong password").await;
        assert_eq!(retry_after(&refused), 1, "{email}");
    }
}

#[tokio::test]
async fn change_password_s_current_password_is_throttled() {
    let world = world().await;
    for _ in 0..3 {
        change_password(
            &world.server,
            &world.token,
            "a wrong password",
            "a new good password",
        )
        .await
        .assert_problem(403, "wrong-current-password");
    }
    let refused =
        change_password(&world.server, &world.token, PASSWORD, "a new good password").await;
    let wait = retry_after(&refused);
    assert_eq!(wait, 1);
    world.clock.advance(Duration::from_secs(wait));
    let changed =
        change_password(&world.server, &world.token, PASSWORD, "a new good password").await;
    assert_eq!(changed.status, 200, "{changed:?}");
    session(&world.server, EMAIL, "a new good password").await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_of_the_user() {
    let world = world().await;
    let other = session(&world.server, EMAIL, PASSWORD).await;
    let caller = session(&world.server, EMAIL, PASSWORD).await;
    for token in [&world.token, &other, &caller] {
        assert_eq!(read_status(&world, token).await, 200);
    }
    let changed = change_password(&world.server, &caller, PASSWORD, "a new good password").await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let fresh = changed.json()["token"].as_str().unwrap().to_string();
    // The caller's own token is replaced by the fresh one in the answer.
    for token in [&world.token, &other, &caller] {
        assert_eq!(read_status(&world, token).await, 401);
    }
    assert_eq!(read_status(&world, &fresh).await, 200);
}

#[tokio::test]
async fn a_reset_or_a_removal_ends_the_user_s_sessions_and_no_one_else_s() {
    let world = world().await;
    let added = command(
        &world.server,
        &world.token,
        json!({"type": "add_user", "partner_id": world.partner, "full_name": "Sam Agent",
            "email": "sam@northwind.example", "agent_role": "admin_agent", "admin_role": null}),
    )
    .await;
    let sam = added["events"][0]["payload"]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = first_sign_in(
        &world.server,
        "sam@northwind.example",
        &temporary_password(&added),
        "sam-chosen-password",
    )
    .await;
    let second = session(
        &world.server,
        "sam@northwind.example",
        "sam-chosen-password",
    )
    .await;
    for token in [&first, &second] {
        assert_eq!(read_status(&world, token).await, 200);
    }

    let reset = command(
        &world.server,
        &world.token,
        json!({"type": "reset_temporary_password", "partner_id": world.partner, "user_id": sam}),
    )
    .await;
    for token in [&first, &second] {
        assert_eq!(read_status(&world, token).await, 401);
    }
    assert_eq!(read_status(&world, &world.token).await, 200);
    let temporary = session(
        &world.server,
        "sam@northwind.example",
        &temporary_password(&reset),
    )
    .await;

    command(
        &world.server,
        &world.token,
        json!({"type": "remove_user", "partner_id": world.partner, "user_id": sam}),
    )
    .await;
    let body = json!({"current_password": temporary_password(&reset), "new_password": "sam-other-password"})
        .to_string();
    let reply = world
        .server
        .call(
            "POST",
            "/v1/auth/change-password",
            Some(&temporary),
            Some(&body),
        )
        .await;
    reply.assert_problem(401, "unauthorized");
    assert_eq!(read_status(&world, &world.token).await, 200);
}
