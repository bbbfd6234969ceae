//! The seed story over HTTP against the real `csp-ledger serve`: enrollment through review,
//! users and first sign-in, provider authorization, both kinds of customer invitation,
//! orders allowed and refused, the partnership ended, a relationship removed; as-of queries
//! giving the earlier answers; role denials of the matrix; read scoping; and a restart that
//! keeps everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{OPERATOR_KEY, Server, link_token, payload, temporary_password};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

fn support(domain: &str) -> Value {
    json!({"email": format!("support@{domain}"), "phone": "+1 555 0100", "website": null})
}

fn token_hash(token: &str) -> Value {
    serde_json::to_value(domain::SecretHash::of(token.as_bytes())).unwrap()
}

struct Partners {
    northwind: String,
    contoso: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let op = OPERATOR_KEY;

    // §2.3.1 The operator onboards a provider; its first admin has a temporary password and
    // may do nothing but change it.
    let onboarded = server
        .ok(op, json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US",
            "partner_number": "1000001", "legal_name": "Northwind Distribution", "countries_served": ["US"],
            "support": support("northwind.example"),
            "first_admin": {"full_name": "Nora Admin", "email": "nora@northwind.example"}}))
        .await;
    let northwind = payload(&onboarded, 0, "partner_id");
    let temporary = temporary_password(&onboarded);
    let (status, session) = server.sign_in("nora@northwind.example", &temporary).await;
    assert_eq!(status, StatusCode::OK);
    let temporary_token = session["token"].as_str().unwrap().to_string();
    let sign = |partner: &str| json!({"type": "sign_partner_agreement", "partner_id": partner, "agreement_version": "2026-01"});
    server
        .refused(
            &temporary_token,
            sign(&northwind),
            403,
            "temporary-password-not-changed",
        )
        .await;
    let (status, _) = server
        .get("/v1/queries/partner?partner=x", &temporary_token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let nora = server
        .first_sign_in("nora@northwind.example", &temporary, "nora-chosen-password")
        .await;
    server.ok(&nora, sign(&northwind)).await;

    // §2.1 A reseller enrolls: its admin chooses a password at the start.
    // The tenant and its admin are the directory token's, never the body's.
    let contoso_tenant = Uuid::now_v7();
    let contoso_directory = server
        .directory_token_for(json!({"tenant_id": contoso_tenant, "email": "ada@contoso.example", "name": "Ada Admin"}))
        .await;
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/enrollments",
            None,
            Some(json!({"password": "contoso-admin-password",
            "organization_name": "Contoso Cloud", "tenant_country": "US"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, started) = server
        .call(
            Method::POST,
            "/v1/enrollments",
            Some(&contoso_directory),
            Some(json!({"password": "contoso-admin-password",
            "organization_name": "Contoso Cloud", "tenant_country": "US"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let contoso = started["partner_id"].as_str().unwrap().to_string();
    let tenant_admin = started["session"]["token"].as_str().unwrap().to_string();
    server
        .ok(op, json!({"type": "record_mpn_profiles", "partner_id": contoso, "profiles": [
            {"partner_number": "4000001", "organization_name": "Contoso Cloud", "country": "US", "active": true},
            {"partner_number": "4000002", "organization_name": "Contoso (old)", "country": "US", "active": false}]}))
        .await;
    server
        .refused(
            &tenant_admin,
            json!({"type": "link_mpn_profile", "partner_id": contoso, "partner_number": "4000002"}),
            422,
            "mpn-profile-inactive",
        )
        .await;
    server
        .ok(
            &tenant_admin,
            json!({"type": "link_mpn_profile", "partner_id": contoso, "partner_number": "4000001"}),
        )
        .await;
    let profile = |contact: &str| {
        json!({"type": "submit_legal_profile", "partner_id": contoso, "profile": {
        "legal_name": "Contoso Cloud Ltd",
        "address": {"lines": ["1 Main Street"], "city": "Springfield", "region": null, "postal_code": "12345", "country": "US"},
        "primary_contact": {"name": "Pat Contact", "email": contact, "phone": null},
        "support": support("contoso.example")}})
    };
    server
        .refused(
            &tenant_admin,
            profile("pat@gmail.com"),
            422,
            "webmail-primary-contact",
        )
        .await;
    server
        .ok(&tenant_admin, profile("pat@contoso.example"))
        .await;
    let requested = server
        .ok(
            &tenant_admin,
            json!({"type": "request_primary_contact_verification", "partner_id": contoso}),
        )
        .await;
    let (status, wrong) = server
        .call(
            Method::POST,
            "/v1/verifications",
            None,
            Some(json!({"partner_id": contoso, "token": "not-the-token"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{wrong}");
    let (status, verified) = server
        .call(
            Method::POST,
            "/v1/verifications",
            None,
            Some(json!({"partner_id": contoso, "token": link_token(&requested)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{verified}");
    // The operator rejects, the admin fixes and resubmits, the review completes.
    server
        .ok(op, json!({"type": "reject_enrollment", "partner_id": contoso, "reason": "support phone unreachable"}))
        .await;
    server
        .ok(
            &tenant_admin,
            json!({"type": "resubmit_enrollment", "partner_id": contoso}),
        )
        .await;
    for step in ["email_ownership", "email_domain", "employment", "business"] {
        server
            .ok(
                op,
                json!({"type": "complete_review_step", "partner_id": contoso, "step": step}),
            )
            .await;
    }
    server
        .refused(
            &tenant_admin,
            json!({"type": "authorize_enrollment", "partner_id": contoso}),
            403,
            "actor-not-allowed",
        )
        .await;
    server
        .ok(
            op,
            json!({"type": "authorize_enrollment", "partner_id": contoso}),
        )
        .await;
    // The enrolling admin signs in with the password chosen at enrollment: now the first
    // user, a global admin, with no temporary password.
    let (status, session) = server
        .sign_in("ada@contoso.example", "contoso-admin-password")
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["principal"], "user");
    assert_eq!(session["must_change_password"], false);
    let ada = session["token"].as_str().unwrap().to_string();
    server.ok(&ada, sign(&contoso)).await;

    // §2.2 Users with roles; each changes its temporary password at first sign-in.
    let add =
        async |by: &str, partner: &str, name: &str, email: &str, agent: Value, admin: Value| {
            let added = server
            .ok(
                by,
                json!({"type": "add_user", "partner_id": partner, "full_name": name, "email": email,
                "agent_role": agent, "admin_role": admin}),
            )
            .await;
            let id = payload(&added, 0, "user_id");
            let token = server
                .first_sign_in(
                    email,
                    &temporary_password(&added),
                    &format!("{name} password!"),
                )
                .await;
            (id, token)
        };
    let (avery_id, avery) = add(
        &ada,
        &contoso,
        "Avery Agent",
        "avery@contoso.example",
        json!("admin_agent"),
        Value::Null,
    )
    .await;
    let (_, hana) = add(
        &ada,
        &contoso,
        "Hana Helpdesk",
        "hana@contoso.example",
        json!("helpdesk_agent"),
        Value::Null,
    )
    .await;
    let (_, uma) = add(
        &ada,
        &contoso,
        "Uma Usermanager",
        "uma@contoso.example",
        Value::Null,
        json!("user_management_admin"),
    )
    .await;
    let (_, sam) = add(
        &nora,
        &northwind,
        "Sam Sales",
        "sam@northwind.example",
        json!("sales_agent"),
        Value::Null,
    )
    .await;
    let partners = Partners { northwind, contoso };
    denials_of_the_matrix(&server, &partners, &avery, &avery_id, &hana, &uma, &sam).await;

    // §2.3 The provider invites the reseller; the reseller's global admin authorizes it.
    let invited = server
        .ok(&sam, json!({"type": "invite_reseller", "provider_id": partners.northwind, "reseller_partner_number": "4000001"}))
        .await;
    let authorize = |consent: bool| {
        json!({"type": "authorize_indirect_provider", "provider_id": partners.northwind,
        "reseller_id": partners.contoso, "token_hash": token_hash(&link_token(&invited)), "consent": consent})
    };
    let problem = server
        .refused(&avery, authorize(true), 403, "missing-capability")
        .await;
    assert_eq!(problem["capability"], "authorize_indirect_provider");
    server
        .refused(&ada, authorize(false), 400, "consent-required")
        .await;
    server.ok(&ada, authorize(true)).await;

    // §2.4 A reseller-only invitation and one naming the provider, each accepted by the
    // customer's global admin through the link.
    let (litware, litware_admin) =
        invite_and_accept(&server, &avery, &partners.contoso, None, "Litware").await;
    let (alpine, alpine_admin) = invite_and_accept(
        &server,
        &avery,
        &partners.contoso,
        Some(&partners.northwind),
        "Alpine Ski House",
    )
    .await;

    // §2.5 Orders: allowed for Alpine, refused for Litware (Northwind is not of record).
    let order = |customer: &str| {
        json!({"type": "submit_order", "provider_id": partners.northwind, "customer_id": customer,
        "reseller_id": partners.contoso, "lines": [{"offer_id": "CFQ7TTC0LH18:0001", "product_family": "office365", "quantity": 25}]})
    };
    let ordered = server.ok(&sam, order(&alpine)).await;
    let allowed_at = ordered["position"].as_u64().unwrap();
    server
        .refused(&sam, order(&litware), 422, "provider-not-of-record")
        .await;
    server
        .refused(&avery, order(&alpine), 403, "user-not-in-partner")
        .await;
    let may_order = format!(
        "may-order?provider={}&customer={alpine}&reseller={}",
        partners.northwind, partners.contoso
    );
    let (status, answer) = server
        .query(
            &sam,
            &format!("{may_order}&min_position={allowed_at}&explain=true"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["answer"]["allowed"], true);
    assert_eq!(answer["position"].as_u64(), Some(allowed_at));
    let because: Vec<&str> = answer["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for needed in [
        "ProviderOnboarded",
        "EnrollmentAuthorized",
        "PartnerAgreementSigned",
        "IndirectProviderAuthorized",
        "ResellerRelationshipAccepted",
    ] {
        assert!(
            because.contains(&needed),
            "{needed} explains the answer: {answer}"
        );
    }

    // History moves on: the partnership ends, Litware removes Contoso.
    let ended = server
        .ok(&ada, json!({"type": "end_partnership", "provider_id": partners.northwind, "reseller_id": partners.contoso, "reason": "not renewed"}))
        .await;
    let ended_at = ended["position"].as_u64().unwrap();
    server
        .refused(&sam, order(&alpine), 422, "partnership-not-active")
        .await;
    let (_, answer) = server
        .query(
            &sam,
            &format!("{may_order}&min_position={ended_at}&explain=true"),
        )
        .await;
    assert_eq!(answer["answer"]["allowed"], false, "{answer}");
    assert_eq!(
        answer["answer"]["denial"]["refusal"],
        "partnership-not-active"
    );
    assert_eq!(answer["explanation"][0]["event_type"], "PartnershipEnded");
    let (_, before) = server
        .query(&sam, &format!("{may_order}&as_of={allowed_at}"))
        .await;
    assert_eq!(
        before["answer"]["allowed"], true,
        "as of the order, it was allowed"
    );
    assert_eq!(before["position"].as_u64(), Some(allowed_at));

    server
        .refused(&alpine_admin, json!({"type": "remove_reseller_relationship", "customer_id": alpine, "partner_id": partners.contoso}), 422, "active-subscriptions")
        .await;
    let removed = server
        .ok(&litware_admin, json!({"type": "remove_reseller_relationship", "customer_id": litware, "partner_id": partners.contoso}))
        .await;
    let removed_at = removed["position"].as_u64().unwrap();
    let (_, now) = server
        .query(
            &avery,
            &format!("reseller-of-record?customer={litware}&min_position={removed_at}"),
        )
        .await;
    assert_eq!(now["answer"], json!([]), "{now}");
    let (_, then) = server
        .query(
            &avery,
            &format!(
                "reseller-of-record?customer={litware}&as_of={}",
                removed_at - 1
            ),
        )
        .await;
    assert_eq!(
        then["answer"][0]["partner"],
        partners.contoso.as_str(),
        "{then}"
    );

    read_scoping(
        &server,
        &partners,
        &litware,
        &alpine,
        &alpine_admin,
        &ada,
        &hana,
        &uma,
        &sam,
    )
    .await;

    // A restart keeps everything: the log, the credentials, the answers.
    let head = server.head().await;
    let data = server.data.clone();
    server.stop();
    let server = Server::start(&data);
    assert_eq!(server.head().await, head);
    let (status, session) = server
        .sign_in("sam@northwind.example", "Sam Sales password!")
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let sam = session["token"].as_str().unwrap().to_string();
    let (_, again) = server
        .query(
            &sam,
            &format!(
                "{may_order}&as_of={allowed_at}&min_position={}",
                head.unwrap()
            ),
        )
        .await;
    assert_eq!(again["answer"], before["answer"]);
    let (status, _) = server
        .sign_in("ada@contoso.example", "contoso-admin-password")
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop();
}

async fn invite_and_accept(
    server: &Server,
    by: &str,
    reseller: &str,
    provider: Option<&str>,
    name: &str,
) -> (String, String) {
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let invited = server
        .ok(by, json!({"type": "invite_customer", "partner_id": reseller, "customer_email": format!("it@{slug}.example"), "provider_id": provider}))
        .await;
    let invitation = payload(&invited, 0, "invitation_id");
    let tenant = Uuid::now_v7();
    let directory = server
        .directory_token(tenant, &format!("admin@{slug}.example"))
        .await;
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/auth/invitation",
            Some(&directory),
            Some(json!({"invitation_id": invitation, "token": "guess"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, session) = server
        .call(
            Method::POST,
            "/v1/auth/invitation",
            Some(&directory),
            Some(json!({"invitation_id": invitation, "token": link_token(&invited)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let admin = session["token"].as_str().unwrap().to_string();
    let accepted = server
        .ok(&admin, json!({"type": "accept_customer_invitation", "invitation_id": invitation, "company_name": name,
            "primary_domain": format!("{slug}.example"), "country": "US"}))
        .await;
    (payload(&accepted, 0, "customer_id"), admin)
}

/// Every denial of the permission matrix that applies to the command endpoint: a 403 naming
/// the rule (and the missing capability), and nothing appended.
async fn denials_of_the_matrix(
    server: &Server,
    partners: &Partners,
    avery: &str,
    avery_id: &str,
    hana: &str,
    uma: &str,
    sam: &str,
) {
    let contoso = &partners.contoso;
    let invite = json!({"type": "invite_customer", "partner_id": contoso, "customer_email": "it@nowhere.example", "provider_id": null});
    for token in [hana, uma] {
        let problem = server
            .refused(token, invite.clone(), 403, "missing-capability")
            .await;
        assert_eq!(problem["capability"], "invite_customers");
    }
    let add = json!({"type": "add_user", "partner_id": contoso, "full_name": "X", "email": "x@contoso.example", "agent_role": null, "admin_role": null});
    for token in [avery, hana] {
        let problem = server
            .refused(token, add.clone(), 403, "missing-capability")
            .await;
        assert_eq!(problem["capability"], "manage_users");
    }
    server
        .refused(uma, json!({"type": "change_user_roles", "partner_id": contoso, "user_id": avery_id, "agent_role": "admin_agent", "admin_role": "global_admin"}), 403, "global-admin-grant-requires-global-admin")
        .await;
    server
        .refused(avery, json!({"type": "sign_partner_agreement", "partner_id": contoso, "agreement_version": "2026-02"}), 403, "global-admin-required")
        .await;
    server
        .refused(sam, json!({"type": "add_user", "partner_id": contoso, "full_name": "X", "email": "y@contoso.example", "agent_role": null, "admin_role": null}), 403, "user-not-in-partner")
        .await;
    server
        .refused(sam, json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US", "partner_number": "1000009",
            "legal_name": "X", "countries_served": [], "support": support("x.example"), "first_admin": {"full_name": "X", "email": "x@x.example"}}), 403, "actor-not-allowed")
        .await;
    // Auditor and service keys never write.
    let (_, issued) = server
        .call(
            Method::POST,
            "/v1/keys",
            Some(OPERATOR_KEY),
            Some(json!({"kind": "auditor", "name": "audit firm"})),
        )
        .await;
    let auditor = issued["key"].as_str().unwrap();
    server.refused(auditor, invite, 403, "forbidden").await;
}

/// Who may read what: partner users within their relationships and capabilities, customers
/// their own; every "no" the same 403 whether the thing exists or not.
#[allow(clippy::too_many_arguments)]
async fn read_scoping(
    server: &Server,
    partners: &Partners,
    litware: &str,
    alpine: &str,
    alpine_admin: &str,
    ada: &str,
    hana: &str,
    uma: &str,
    sam: &str,
) {
    // Northwind never had Litware as a customer; an unknown id looks the same.
    let (status, known) = server
        .query(sam, &format!("reseller-of-record?customer={litware}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, unknown) = server
        .query(
            sam,
            &format!("reseller-of-record?customer={}", Uuid::now_v7()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(known, unknown, "no existence oracle");
    let (status, _) = server
        .query(sam, &format!("reseller-of-record?customer={alpine}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get(&format!("/v1/history/{litware}"), sam).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Contoso had Litware: still visible to it after the removal ("has or had").
    let (status, history) = server.get(&format!("/v1/history/{litware}"), ada).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        history["events"].as_array().unwrap().len() >= 2,
        "{history}"
    );
    // Users are for user managers; customers for those who may view them.
    let users = format!("users?partner={}", partners.contoso);
    assert_eq!(server.query(hana, &users).await.0, StatusCode::FORBIDDEN);
    let (status, listed) = server.query(uma, &users).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["answer"].as_array().unwrap().len(), 4);
    assert_eq!(
        server
            .query(uma, &format!("customers?partner={}", partners.contoso))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .query(hana, &format!("customers?partner={}", partners.contoso))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .query(sam, &format!("users?partner={}", partners.contoso))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // A customer's admin sees its own relationships only.
    assert_eq!(
        server
            .query(
                alpine_admin,
                &format!("reseller-of-record?customer={alpine}")
            )
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .query(
                alpine_admin,
                &format!("reseller-of-record?customer={litware}")
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Auditors read everything; services follow the event feed and nothing else (SPEC §6.1).
    let (_, issued) = server
        .call(
            Method::POST,
            "/v1/keys",
            Some(OPERATOR_KEY),
            Some(json!({"kind": "service", "name": "crm"})),
        )
        .await;
    let service = issued["key"].as_str().unwrap();
    assert_eq!(
        server
            .query(service, &format!("reseller-of-record?customer={litware}"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/v1/events/page?limit=1", service).await.0,
        StatusCode::OK
    );
    assert_eq!(
        server.query(ada, "no-such-query").await.0,
        StatusCode::BAD_REQUEST
    );
}
