//! The read policy (SPEC §6.1) over HTTP, route by route: every route of the OpenAPI
//! document × every principal (no credentials, operator, auditor, service, each partner role,
//! a customer admin, a directory user who is not a global admin) × every relation (own,
//! partnered now, partnered before, invited only, removed, unrelated competitor, unknown),
//! the expected answer in one table. A route of the OpenAPI document without a row fails
//! the test. The world is the demo's seed story (`csp-ledger demo`), where the audit of
//! issue 17 found the holes; each finding has its rows (marked `#N`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use common::{OPERATOR_KEY, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The principals, in the order of a row's expected statuses.
const PRINCIPALS: [&str; 13] = [
    "none",        // no credentials
    "operator",    // the operator key
    "auditor",     // an auditor key
    "service",     // a service key
    "nw-admin",    // Northwind (provider) global admin
    "nw-sales",    // Northwind sales agent
    "co-admin",    // Contoso (reseller) global admin
    "co-agent",    // Contoso admin agent
    "co-helpdesk", // Contoso helpdesk agent
    "co-users",    // Contoso user management admin
    "ts-admin",    // Tailspin (provider; its partnership with Contoso ended) global admin
    "alpine",      // Alpine Ski House's customer admin (a directory token of its global admin)
    "dir-user",    // a directory user of Alpine's tenant who is not its global admin
];

/// One row: a request and the status each principal gets, in [`PRINCIPALS`] order.
struct Row {
    /// The OpenAPI operation it covers (`METHOD /path/{param}`).
    route: &'static str,
    /// What the row is about (the relation, and the finding it closes).
    case: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    expected: [u16; 13],
}

struct World {
    server: Server,
    tokens: HashMap<&'static str, String>,
    ids: HashMap<String, String>,
}

impl World {
    fn id(&self, name: &str) -> &str {
        self.ids
            .get(name)
            .unwrap_or_else(|| panic!("no id for {name}"))
    }

    async fn send(
        &self,
        principal: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.tokens.get(principal).map(String::as_str);
        self.server.call(method, path, token, body).await
    }

    async fn answer(&self, principal: &str, path: &str) -> Value {
        let (status, body) = self.send(principal, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{principal} {path}: {body}");
        body
    }
}

/// The demo's story in a fresh data directory, served with the development directory.
async fn world() -> (tempfile::TempDir, World) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(dir.path())
        .args(["--json", "demo"])
        .output()
        .unwrap();
    assert!(output.status.success(), "demo failed: {output:?}");
    let demo: Value = serde_json::from_slice(&output.stdout).unwrap();
    let server = Server::start(dir.path());
    let mut ids = HashMap::new();
    for org in demo["providers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(demo["resellers"].as_array().unwrap())
    {
        let short = org["name"].as_str().unwrap().split(' ').next().unwrap();
        ids.insert(
            short.to_lowercase(),
            org["partner_id"].as_str().unwrap().to_string(),
        );
        ids.insert(
            format!("{}-number", short.to_lowercase()),
            org["partner_number"].as_str().unwrap().to_string(),
        );
    }
    for customer in demo["customers"].as_array().unwrap() {
        let short = customer["name"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let short = short.trim_end_matches("'s").to_lowercase();
        ids.insert(
            short.clone(),
            customer["customer_id"].as_str().unwrap().to_string(),
        );
        ids.insert(
            format!("{short}-tenant"),
            customer["tenant_id"].as_str().unwrap().to_string(),
        );
    }
    let password = demo["demo_password"].as_str().unwrap();
    let mut tokens: HashMap<&'static str, String> = HashMap::new();
    tokens.insert("operator", OPERATOR_KEY.to_string());
    for (principal, name) in [
        ("nw-admin", "Northwind Distribution Admin"),
        ("nw-sales", "Sam Sales"),
        ("co-admin", "Contoso Cloud Admin"),
        ("co-agent", "Avery Agent"),
        ("co-helpdesk", "Hana Helpdesk"),
        ("co-users", "Uma Usermanager"),
        ("ts-admin", "Tailspin Supply Admin"),
    ] {
        let person = demo["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no demo user {name}"));
        ids.insert(
            principal.to_string(),
            person["user_id"].as_str().unwrap().to_string(),
        );
        let (status, session) = server
            .sign_in(person["email"].as_str().unwrap(), password)
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {session}");
        tokens.insert(principal, session["token"].as_str().unwrap().to_string());
    }
    for (principal, kind) in [("auditor", "auditor"), ("service", "service")] {
        let (status, issued) = server
            .call(
                Method::POST,
                "/v1/keys",
                Some(OPERATOR_KEY),
                Some(json!({"kind": kind, "name": kind})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        tokens.insert(principal, issued["key"].as_str().unwrap().to_string());
    }
    let alpine_tenant: Uuid = ids["alpine-tenant"].parse().unwrap();
    tokens.insert(
        "alpine",
        server
            .directory_token_for(
                json!({"tenant_id": alpine_tenant, "email": "admin@alpine.example"}),
            )
            .await,
    );
    tokens.insert(
        "dir-user",
        server
            .directory_token_for(json!({"tenant_id": alpine_tenant, "email": "staff@alpine.example", "global_admin": false}))
            .await,
    );
    // Invited only: Tailspin invites Fabrikam, which never answers.
    let world = World {
        server,
        tokens,
        ids,
    };
    let (status, body) = world
        .send("ts-admin", Method::POST, "/v1/commands", Some(json!({"type": "invite_reseller",
            "provider_id": world.id("tailspin"), "reseller_partner_number": world.id("fabrikam-number")})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    world.server.caught_up().await;
    (dir, world)
}

/// The routes of the OpenAPI document, as `METHOD /path`.
async fn documented_routes(world: &World) -> BTreeSet<String> {
    let document = world.answer("none", "/openapi.json").await;
    let mut routes = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes
}

fn rows(w: &World) -> Vec<Row> {
    let get = |route: &'static str, case: &'static str, path: String, expected: [u16; 13]| Row {
        route,
        case,
        method: Method::GET,
        path,
        body: None,
        expected,
    };
    let query = |case: &'static str, what: String, expected: [u16; 13]| {
        get(
            "GET /v1/queries/{what}",
            case,
            format!("/v1/queries/{what}"),
            expected,
        )
    };
    let history = |case: &'static str, target: String, expected: [u16; 13]| {
        get(
            "GET /v1/history/{target}",
            case,
            format!("/v1/history/{target}"),
            expected,
        )
    };
    let id = |name: &str| w.id(name).to_string();
    let unknown = Uuid::now_v7().to_string();
    let (alpine, margie, litware, coho) = (id("alpine"), id("margie"), id("litware"), id("coho"));
    let (northwind, tailspin, contoso, fabrikam) = (
        id("northwind"),
        id("tailspin"),
        id("contoso"),
        id("fabrikam"),
    );
    let hana = id("co-helpdesk");
    #[rustfmt::skip]
    let rows = vec![
        //                                                                                    none  op  aud  svc nwA nwS coA coAg coH coU tsA alp dirU
        get("GET /healthz", "anyone", "/healthz".into(),                                      [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /readyz", "anyone", "/readyz".into(),                                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /openapi.json", "anyone", "/openapi.json".into(),                            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        // The verifiable history is public (`policy::may_read_tree`): hashes and signatures.
        get("GET /v1/checkpoint", "anyone", "/v1/checkpoint".into(),                          [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /checkpoint", "anyone", "/checkpoint".into(),                                [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /v1/checkpoint/verifier-key", "anyone", "/v1/checkpoint/verifier-key".into(),
                                                                                              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /v1/proofs/inclusion", "anyone", "/v1/proofs/inclusion?position=0&size=1".into(),
                                                                                              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /v1/proofs/consistency", "anyone", "/v1/proofs/consistency?from=1&to=2".into(),
                                                                                              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /tile/{path}", "anyone", "/tile/0/000.p/1".into(),                           [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        get("GET /v1/verify", "operator and auditors", "/v1/verify".into(),                   [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        get("GET /v1/keys", "operator", "/v1/keys".into(),                                    [401, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        get("GET /v1/events/page", "the feed: operator, auditors, services", "/v1/events/page?limit=5".into(),
                                                                                              [401, 200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        // Reseller of record: own and shared (Alpine: Contoso and Northwind, partnered now).
        query("own customer, shared with a current partner", format!("reseller-of-record?customer={alpine}"),
                                                                                              [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 200, 403]),
        query("#3 of record, partnership ended (Margie: Contoso and Tailspin)", format!("reseller-of-record?customer={margie}"),
                                                                                              [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 200, 403, 403]),
        query("#3 removed by the customer: its own entries only (Litware removed Contoso)", format!("reseller-of-record?customer={litware}"),
                                                                                              [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 403, 403, 403]),
        query("a competitor's customer (Coho: Fabrikam and Northwind)", format!("reseller-of-record?customer={coho}"),
                                                                                              [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        query("unknown customer", format!("reseller-of-record?customer={unknown}"),          [401, 404, 404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        query("ordering pairs, own customer", format!("ordering-pairs?customer={alpine}"),   [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 200, 403]),
        query("ordering pairs, competitor's customer", format!("ordering-pairs?customer={coho}"),
                                                                                              [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        query("admin access, own customer", format!("admin-access?customer={alpine}"),       [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 200, 403]),
        query("#3 admin access after removal: its own entries only", format!("admin-access?customer={litware}"),
                                                                                              [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 403, 403, 403]),
        query("admin access, of record across an ended partnership", format!("admin-access?customer={margie}"),
                                                                                              [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 200, 403, 403]),
        // May-order: only a pair naming the caller's own partner, across a current partnership.
        query("may-order, own pair", format!("may-order?provider={northwind}&customer={alpine}&reseller={contoso}"),
                                                                                              [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 200, 403]),
        query("may-order across an ended partnership: the partners' own past", format!("may-order?provider={tailspin}&customer={margie}&reseller={contoso}"),
                                                                                              [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 200, 403, 403]),
        query("#4 may-order probing an unknown reseller", format!("may-order?provider={northwind}&customer={alpine}&reseller={unknown}"),
                                                                                              [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        query("#4 may-order probing a provider as reseller", format!("may-order?provider={northwind}&customer={alpine}&reseller={tailspin}"),
                                                                                              [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        query("may-order, a competitor's pair", format!("may-order?provider={northwind}&customer={coho}&reseller={fabrikam}"),
                                                                                              [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        // Shared customers: only across a current partnership of the caller's partner.
        query("shared customers, current partnership", format!("shared-customers?provider={northwind}&reseller={contoso}"),
                                                                                              [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 403, 403]),
        query("#4 shared customers, ended partnership", format!("shared-customers?provider={tailspin}&reseller={contoso}"),
                                                                                              [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        query("#4 shared customers of others", format!("shared-customers?provider={northwind}&reseller={fabrikam}"),
                                                                                              [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        // The partner's own lists.
        query("own customers", format!("customers?partner={contoso}"),                       [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 403, 403, 403]),
        query("own indirect providers", format!("providers?reseller={contoso}"),             [401, 200, 200, 403, 403, 403, 200, 200, 403, 200, 403, 403, 403]),
        query("own indirect resellers", format!("resellers?provider={northwind}"),           [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        query("own tenant's admin access", format!("tenant-admin-access?reseller={contoso}"), [401, 200, 200, 403, 403, 403, 200, 200, 403, 200, 403, 403, 403]),
        // Partner profiles: own, a current counterpart's standing, nothing else.
        query("own partner; a current partner's standing", format!("partner?partner={contoso}"),
                                                                                              [401, 200, 200, 403, 200, 200, 200, 200, 403, 200, 403, 403, 403]),
        query("#2 invited only (Tailspin invited Fabrikam)", format!("partner?partner={fabrikam}"),
                                                                                              [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        query("partnered before", format!("partner?partner={tailspin}"),                     [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403]),
        query("unknown partner", format!("partner?partner={unknown}"),                       [401, 404, 404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        // Users: only with manage users (a user may read itself).
        query("#5 users of own partner", format!("users?partner={contoso}"),                 [401, 200, 200, 403, 403, 403, 200, 403, 403, 200, 403, 403, 403]),
        query("#5 one user (Hana, helpdesk)", format!("user?user={hana}"),                   [401, 200, 200, 403, 403, 403, 200, 403, 200, 200, 403, 403, 403]),
        query("#5 a user's capability", format!("can?user={hana}&capability=view_customers"), [401, 200, 200, 403, 403, 403, 200, 403, 200, 200, 403, 403, 403]),
        // History, filtered per reader; a reader that sees nothing of it gets 403.
        history("own partner (filtered by capability)", contoso.clone(),                     [401, 200, 200, 403, 200, 200, 200, 200, 200, 200, 200, 403, 403]),
        history("#2 invited only: the invitation, nothing else", fabrikam.clone(),           [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 200, 403, 403]),
        history("a partner's own stream (profile, users) is its own", format!("partner-{fabrikam}"),
                                                                                              [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        history("#5 a user's history", hana.clone(),                                         [401, 200, 200, 403, 403, 403, 200, 403, 200, 200, 403, 403, 403]),
        history("own customer", alpine.clone(),                                              [401, 200, 200, 403, 200, 200, 200, 200, 200, 403, 403, 200, 403]),
        history("#3 removed: own past events only", litware.clone(),                         [401, 200, 200, 403, 403, 403, 200, 200, 200, 403, 403, 403, 403]),
        history("a competitor's customer", coho.clone(),                                     [401, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 403, 403]),
        history("an ended partnership's stream", format!("partnership-{tailspin}-{contoso}"), [401, 200, 200, 403, 403, 403, 200, 200, 200, 200, 200, 403, 403]),
        history("unknown", unknown.clone(),                                                  [401, 404, 404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        history("a stream name nobody knows", "no-such-stream".into(),                       [401, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
    ];
    rows
}

/// Requests that change what they touch get rows of their own, sent by the principals that
/// cannot change anything with them (and one that can, with a request refused by a rule), so
/// that the table's other rows still run on the same world.
fn write_rows(w: &World) -> Vec<Row> {
    let post =
        |route: &'static str, case: &'static str, path: &str, body: Value, expected: [u16; 13]| {
            Row {
                route,
                case,
                method: Method::POST,
                path: path.to_string(),
                body: Some(body),
                expected,
            }
        };
    let coho = w.id("coho").to_string();
    let fabrikam = w.id("fabrikam").to_string();
    #[rustfmt::skip]
    let rows = vec![
        //                                                                                    none  op  aud  svc nwA nwS coA coAg coH coU tsA alp dirU
        // #1 a customer admin acts only on its own tenant's customer.
        post("POST /v1/commands", "#1 a customer admin on another tenant's customer", "/v1/commands",
            json!({"type": "remove_delegated_admin", "customer_id": coho, "partner_id": fabrikam}),
                                                                                              [401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        post("POST /v1/auth/sign-in", "a wrong password", "/v1/auth/sign-in",
            json!({"email": "admin@contoso.example", "password": "not-the-password"}),       [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
        post("POST /v1/auth/change-password", "a wrong current password", "/v1/auth/change-password",
            json!({"current_password": "not-the-password", "new_password": "another-long-password"}),
                                                                                              [401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        post("POST /v1/auth/invitation", "#1 an invitation that does not exist", "/v1/auth/invitation",
            json!({"invitation_id": Uuid::now_v7(), "token": "guess"}),                       [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
        post("POST /v1/enrollments", "#6 only a global admin's directory token enrolls, and only its own tenant", "/v1/enrollments",
            json!({"password": "a-long-enough-password", "organization_name": "Alpine Resale", "tenant_country": "US"}),
                                                                                              [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 201, 401]),
        post("POST /v1/verifications", "a verification link that does not exist", "/v1/verifications",
            json!({"partner_id": Uuid::now_v7(), "token": "guess"}),                          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        post("POST /v1/keys", "only the operator issues keys", "/v1/keys",
            json!({"kind": "auditor", "name": "table"}),                                      [401, 201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        post("POST /dev-directory/token", "the development directory mints for anyone (loopback only)", "/dev-directory/token",
            json!({"tenant_id": Uuid::now_v7()}),                                             [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        post("POST /v1/auth/sign-out", "no session: nothing to end", "/v1/auth/sign-out", json!({}),
                                                                                              [204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204]),
    ];
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_principal_as_the_policy_says() {
    let (_dir, w) = world().await;
    let mut rows = rows(&w);
    rows.extend(write_rows(&w));
    rows.push(Row {
        route: "DELETE /v1/keys/{id}",
        case: "only the operator revokes keys (this one does not exist)",
        method: Method::DELETE,
        path: format!("/v1/keys/{}", Uuid::now_v7()),
        body: None,
        expected: [
            401, 404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403,
        ],
    });
    rows.push(Row {
        route: "GET /v1/events",
        case: "the feed: operator, auditors, services",
        method: Method::GET,
        path: "/v1/events".into(),
        body: None,
        expected: [
            401, 200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403,
        ],
    });

    let documented = documented_routes(&w).await;
    let covered: BTreeSet<String> = rows.iter().map(|row| row.route.to_string()).collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the table: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "rows for routes the document does not list: {stale:?}"
    );

    let mut wrong = Vec::new();
    for row in &rows {
        for (principal, expected) in PRINCIPALS.iter().zip(row.expected) {
            // Sign-in ignores the bearer (and a dozen failures in a row would be throttled);
            // sign-out with a session would end it for the rows after. A token-less call
            // covers each.
            let credential_free = ["POST /v1/auth/sign-in", "POST /v1/auth/sign-out"];
            if credential_free.contains(&row.route) && *principal != "none" {
                continue;
            }
            let status = if row.route == "GET /v1/events" {
                // The feed streams; its status is all this row needs.
                let mut request = w.server.client.get(w.server.url(&row.path));
                if let Some(token) = w.tokens.get(principal) {
                    request = request.bearer_auth(token);
                }
                request.send().await.unwrap().status()
            } else {
                w.send(principal, row.method.clone(), &row.path, row.body.clone())
                    .await
                    .0
            };
            if status.as_u16() != expected {
                wrong.push(format!(
                    "{} [{}] as {principal}: {status}, expected {expected}",
                    row.path, row.case
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} answers differ from the policy:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// What scoped answers contain: each finding's leak is checked in the answer itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_answers_show_only_the_readers_relationships() {
    let (_dir, w) = world().await;
    let partners_of = |answer: &Value| -> BTreeSet<String> {
        answer["answer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|of| of["partner"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |name: &str| w.id(name).to_string();
    let margie = format!("/v1/queries/reseller-of-record?customer={}", id("margie"));
    // #3 Across the ended partnership each side sees itself only.
    assert_eq!(
        partners_of(&w.answer("co-admin", &margie).await),
        BTreeSet::from([id("contoso")])
    );
    assert_eq!(
        partners_of(&w.answer("ts-admin", &margie).await),
        BTreeSet::from([id("tailspin")])
    );
    assert_eq!(
        partners_of(&w.answer("operator", &margie).await),
        BTreeSet::from([id("contoso"), id("tailspin")])
    );
    // #3 Tailspin does not see Contoso's delegated admin on Margie's Travel.
    let access = w
        .answer(
            "ts-admin",
            &format!(
                "/v1/queries/admin-access?customer={}&explain=true",
                id("margie")
            ),
        )
        .await;
    assert_eq!(access["answer"]["delegated_admin"], json!([]), "{access}");
    assert!(!access.to_string().contains(&id("contoso")), "{access}");
    // Shared with a current partner: Contoso sees Northwind on Alpine, and both admins.
    let alpine = format!("/v1/queries/reseller-of-record?customer={}", id("alpine"));
    assert_eq!(
        partners_of(&w.answer("co-agent", &alpine).await),
        BTreeSet::from([id("contoso"), id("northwind")])
    );
    // A counterpart's standing, not its internals.
    let contoso = w
        .answer(
            "nw-admin",
            &format!("/v1/queries/partner?partner={}", id("contoso")),
        )
        .await;
    assert_eq!(
        contoso["answer"]["status"]["status"], "authorized",
        "{contoso}"
    );
    assert!(
        contoso["answer"].get("legal_profile").is_none(),
        "{contoso}"
    );
    assert!(contoso["answer"].get("tenant_id").is_none(), "{contoso}");

    let types = |history: &Value| -> Vec<String> {
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    // #5 Without manage users, no user's email, name or roles through history.
    // (A user reads its own events.)
    let users_shown = |history: &Value| -> BTreeSet<String> {
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                let t = e["event_type"].as_str().unwrap();
                t.starts_with("User") || t.starts_with("TemporaryPassword")
            })
            .map(|e| e["payload"]["user_id"].as_str().unwrap().to_string())
            .collect()
    };
    let own = w
        .answer("co-agent", &format!("/v1/history/{}", id("contoso")))
        .await;
    assert_eq!(
        users_shown(&own),
        BTreeSet::from([id("co-agent")]),
        "{:?}",
        types(&own)
    );
    let managed = w
        .answer("co-users", &format!("/v1/history/{}", id("contoso")))
        .await;
    assert!(users_shown(&managed).len() > 3, "{:?}", types(&managed));
    // #2 An invitation is not a relationship: Tailspin reads its invitation of Fabrikam, and
    // nothing else of Fabrikam's.
    let invited = w
        .answer("ts-admin", &format!("/v1/history/{}", id("fabrikam")))
        .await;
    assert_eq!(types(&invited), ["IndirectResellerInvited"], "{invited}");
    // A current partner reads Contoso's history as far as it is shared: no users, nothing of
    // Tailspin's partnership, nothing of Litware, Margie or Wide World.
    let partnered = w
        .answer("nw-admin", &format!("/v1/history/{}", id("contoso")))
        .await;
    let text = partnered.to_string();
    for hidden in ["tailspin", "litware", "margie"] {
        assert!(
            !text.contains(&id(hidden)),
            "{hidden} leaked to Northwind: {:?}",
            types(&partnered)
        );
    }
    assert!(
        users_shown(&partnered)
            .iter()
            .all(|user| *user == id("nw-admin"))
    );
    // #3 A removed relationship leaves Contoso its own past events with Litware, ending with
    // the removal, and positions as in the log.
    let removed = w
        .answer("co-admin", &format!("/v1/history/{}", id("litware")))
        .await;
    assert_eq!(
        types(&removed).last().map(String::as_str),
        Some("ResellerRelationshipRemoved"),
        "{removed}"
    );
    let everything = w
        .answer("operator", &format!("/v1/history/{}", id("litware")))
        .await;
    let positions = |history: &Value| -> Vec<u64> {
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect()
    };
    for position in positions(&removed) {
        assert!(positions(&everything).contains(&position));
    }
    // #2 invite_reseller answers alike for an unknown number and one that cannot be invited.
    let invite = |number: &str| json!({"type": "invite_reseller", "provider_id": id("northwind"), "reseller_partner_number": number});
    let (unknown_status, unknown) = w
        .send(
            "nw-admin",
            Method::POST,
            "/v1/commands",
            Some(invite("99999999")),
        )
        .await;
    let (provider_status, provider) = w
        .send(
            "nw-admin",
            Method::POST,
            "/v1/commands",
            Some(invite(w.id("tailspin-number"))),
        )
        .await;
    let (own_status, own_number) = w
        .send(
            "nw-admin",
            Method::POST,
            "/v1/commands",
            Some(invite(w.id("northwind-number"))),
        )
        .await;
    assert_eq!(unknown_status, provider_status);
    assert_eq!(unknown_status, own_status);
    assert_eq!(unknown["type"], provider["type"], "{unknown} vs {provider}");
    assert_eq!(
        unknown["type"], own_number["type"],
        "{unknown} vs {own_number}"
    );
}
