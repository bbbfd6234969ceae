//! Directory-proven identities against a real OpenID provider that this project did not
//! write: the certified `oidc-provider` npm package (tests/oidc-provider, installed by
//! `.ci/run` with `npm ci`), started on loopback, issuing RS256 JWT access tokens with
//! Entra ID's claims. The real `csp-ledger serve` trusts it with `--oidc-issuer`.
//!
//! A valid token is accepted and its tenant and subject are what the ledger records; a token
//! of another tenant, of another audience, an expired one, an unsigned one, one signed by a
//! key the issuer never published, one of a user who is not global admin, and a request
//! where only the body names the tenant are each refused with the same 401 problem; a key
//! rotation at the issuer is followed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{OPERATOR_KEY, Server, link_token, payload, temporary_password};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const AUDIENCE: &str = "urn:csp-ledger";

/// The OpenID provider process.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider/provider.mjs")
    }

    /// Starts the provider on `port` (0: a free one) and waits until it serves.
    fn start(port: u16) -> Provider {
        let mut child = Command::new("node")
            .arg(Self::script())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node tests/oidc-provider/provider.mjs (run npm ci there first)");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let issuer = loop {
            line.clear();
            assert!(
                reader
                    .read_line(&mut line)
                    .expect("read the provider's output")
                    > 0,
                "the OpenID provider exited before listening (is tests/oidc-provider installed?)"
            );
            if let Some(issuer) = line.trim().strip_prefix("oidc-provider listening on ") {
                break issuer.to_string();
            }
        };
        Provider { child, issuer }
    }

    fn port(&self) -> u16 {
        self.issuer.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// An access token for `client` (one person of one tenant) and `resource` (audience).
    async fn token(&self, client: &str, resource: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", "ledger"),
            ])
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body: Value = response.json().await.expect("token response");
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn ledger(dir: &std::path::Path, provider: &Provider) -> Server {
    Server::start_with(
        dir,
        &[
            "--oidc-issuer",
            &provider.issuer,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-keys-refetch-seconds",
            "0",
            "--oidc-leeway-seconds",
            "0",
        ],
    )
}

fn enrollment() -> Value {
    json!({"password": "tenant-a-admin-password", "organization_name": "Tenant A Cloud", "tenant_country": "US"})
}

/// A token that is not signed at all (`alg: none`), claiming tenant A's global admin.
fn unsigned(issuer: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "tid": TENANT_A, "oid": Uuid::now_v7(),
        "wids": [directory::GLOBAL_ADMIN_ROLE], "email": "admin@tenant-a.example",
        "exp": chrono::Utc::now().timestamp() + 600});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.")
}

/// A well-formed token naming the provider as issuer, signed by a key it never published.
fn foreign_signed(issuer: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let forger =
        directory::DevDirectory::load_or_create(&dir.path().join("key.pem"), issuer, AUDIENCE)
            .unwrap();
    let request: directory::DevTokenRequest = serde_json::from_value(
        json!({"tenant_id": TENANT_A, "email": "admin@tenant-a.example", "name": "Forger"}),
    )
    .unwrap();
    forger.mint(&request, chrono::Utc::now()).unwrap()
}

async fn enroll(server: &Server, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, "/v1/enrollments", token, Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node.js and tests/oidc-provider's npm packages (npm ci); .ci/run provides both"]
async fn tokens_of_a_real_openid_provider_prove_tenants_and_nothing_else_does() {
    let provider = Provider::start(0);
    let dir = tempfile::tempdir().unwrap();
    let server = ledger(dir.path(), &provider);

    // Refusals, each the same 401 problem, and none writes anything.
    let head = server.head().await;
    let other_audience = provider.token("tenant-a-admin", "urn:another-api").await;
    let not_global_admin = provider.token("tenant-a-user", AUDIENCE).await;
    let short = provider.token("tenant-a-short", AUDIENCE).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut refusals = Vec::new();
    for (case, token) in [
        ("another audience", other_audience),
        ("not a global admin", not_global_admin),
        ("expired", short),
        ("unsigned (alg none)", unsigned(&provider.issuer)),
        ("signed by an unknown key", foreign_signed(&provider.issuer)),
    ] {
        let (status, body) = enroll(&server, Some(&token), enrollment()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        refusals.push((case, body));
    }
    // Only the body names the tenant (the old shape of the request).
    let mut named = enrollment();
    named["tenant_id"] = json!(TENANT_A);
    named["admin_email"] = json!("admin@tenant-a.example");
    named["admin_name"] = json!("Impostor");
    let (status, body) = enroll(&server, None, named).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    refusals.push(("tenant named by the body", body));
    for (case, body) in &refusals {
        assert_eq!(
            body, &refusals[0].1,
            "{case} answers another 401 than the others"
        );
    }
    assert_eq!(
        server.head().await,
        head,
        "a refused enrollment wrote an event"
    );

    // A valid token: the tenant and the admin are the token's.
    let admin_a = provider.token("tenant-a-admin", AUDIENCE).await;
    let (status, started) = enroll(&server, Some(&admin_a), enrollment()).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let partner = started["partner_id"].as_str().unwrap().to_string();
    let (status, info) = server
        .query(OPERATOR_KEY, &format!("partner?partner={partner}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["answer"]["tenant_id"], json!(TENANT_A));
    let (status, history) = server
        .get(&format!("/v1/history/partner-{partner}"), OPERATOR_KEY)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let actor = &history["events"][0]["actor"];
    assert_eq!(actor["kind"], "tenant_admin", "{actor}");
    assert_eq!(actor["email"], "admin@tenant-a.example", "{actor}");
    assert_eq!(
        actor["proven_by"],
        json!({"method": "directory_token", "issuer": provider.issuer, "subject": "a0000000-0000-4000-8000-0000000000a1"}),
        "{actor}"
    );

    // A customer invitation opened by tenant A's admin binds the session to tenant A; tenant
    // B's admin cannot use the same link once A accepted.
    let onboarded = server
        .ok(OPERATOR_KEY, json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US",
            "partner_number": "1000001", "legal_name": "Northwind", "countries_served": ["US"],
            "support": {"email": "support@northwind.example", "phone": "+1 555 0100", "website": null},
            "first_admin": {"full_name": "Nora Admin", "email": "nora@northwind.example"}}))
        .await;
    let northwind = payload(&onboarded, 0, "partner_id");
    let nora = server
        .first_sign_in(
            "nora@northwind.example",
            &temporary_password(&onboarded),
            "nora-chosen-password",
        )
        .await;
    server
        .ok(&nora, json!({"type": "sign_partner_agreement", "partner_id": northwind, "agreement_version": "2026-01"}))
        .await;
    let invited = server
        .ok(&nora, json!({"type": "invite_customer", "partner_id": northwind, "customer_email": "it@tenant-b.example"}))
        .await;
    let invitation = payload(&invited, 0, "invitation_id");
    let open = |token: String| {
        let body = json!({"invitation_id": invitation, "token": link_token(&invited)});
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    "/v1/auth/invitation",
                    Some(&token),
                    Some(body),
                )
                .await
        }
    };
    let admin_b = provider.token("tenant-b-admin", AUDIENCE).await;
    let (status, session) = open(admin_b.clone()).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["tenant_id"], "bbbbbbbb-0000-4000-8000-00000000000b");
    let customer_admin = session["token"].as_str().unwrap().to_string();
    let accepted = server
        .ok(
            &customer_admin,
            json!({"type": "accept_customer_invitation", "invitation_id": invitation,
            "company_name": "Tenant B Inc", "primary_domain": "tenant-b.example", "country": "US"}),
        )
        .await;
    let customer = payload(&accepted, 0, "customer_id");
    let (status, body) = open(provider.token("tenant-a-admin", AUDIENCE).await).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another tenant opened an accepted link: {body}"
    );
    assert_eq!(body, refusals[0].1);
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/auth/invitation",
            None,
            Some(json!({"invitation_id": invitation,
            "token": link_token(&invited), "tenant_id": "bbbbbbbb-0000-4000-8000-00000000000b"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "only the body named the tenant: {body}"
    );

    // The directory token itself is the customer's admin, for its own tenant only.
    let (status, answer) = server
        .query(&admin_b, &format!("reseller-of-record?customer={customer}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["answer"][0]["partner"], json!(northwind));
    let admin_a = provider.token("tenant-a-admin", AUDIENCE).await;
    let (status, _) = server
        .query(&admin_a, &format!("reseller-of-record?customer={customer}"))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another tenant's admin read the customer"
    );

    // Key rotation at the issuer: the provider restarts on the same port with a new key;
    // its new tokens name a key id the ledger has not seen, and the ledger fetches the keys
    // again.
    let port = provider.port();
    provider.stop();
    let provider = Provider::start(port);
    let rotated = provider.token("tenant-b-admin", AUDIENCE).await;
    let (status, session) = open(rotated).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a token signed by the rotated key: {session}"
    );
    // A token of the retired key no longer verifies: its key is gone from the JWKS.
    let (status, _) = open(admin_b).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    server.stop();
    provider.stop();
}
