//! `serve --kurrentdb-listen`: KurrentDB's official client reads the ledger through the
//! protocol door with an auditor key, cannot append with it, and appends only with the
//! store-admin key.

#![cfg(feature = "kurrentdb")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use store::{Direction, EventStore, ExpectedRevision, NewEvent, ReadFrom, StreamName};
use uuid::Uuid;

const OPERATOR_KEY: &str = "test-operator-key-0123456789abcdef";
const STORE_ADMIN_KEY: &str = "test-store-admin-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_reads_with_an_auditor_key_and_appends_only_as_store_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kurrentdb-listen",
            "127.0.0.1:0",
        ])
        .env("CSP_LEDGER_OPERATOR_KEY", OPERATOR_KEY)
        .env("CSP_LEDGER_STORE_ADMIN_KEY", STORE_ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("csp-ledger listening on ")
        .unwrap()
        .to_string();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let grpc = line
        .trim()
        .strip_prefix("csp-ledger kurrentdb protocol on ")
        .unwrap()
        .to_string();

    let http = reqwest::Client::new();
    let issued: Value = http
        .post(format!("{base}/v1/keys"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({"kind": "auditor", "name": "audit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auditor = issued["key"].as_str().unwrap().to_string();
    let onboard = json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US",
        "partner_number": "2000001", "legal_name": "Northwind", "countries_served": ["US"],
        "support": {"email": "support@northwind.example", "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Admin", "email": "admin@northwind.example"}});
    let response = http
        .post(format!("{base}/v1/commands"))
        .bearer_auth(OPERATOR_KEY)
        .header("idempotency-key", Uuid::now_v7().to_string())
        .json(&onboard)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    // The auditor reads $all through the door: the same events the ledger recorded.
    let reader = kurrentdb::KurrentStore::connect(
        &format!("esdb://auditor:{auditor}@{grpc}?tls=false"),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    let events = reader
        .read_all(ReadFrom::Start, Direction::Forwards, 100)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types[0], "ProviderOnboarded", "{types:?}");
    assert!(types.contains(&"UserAdded"));

    // A migration tool appends a domain event (the ledger must be able to read what it is
    // given: the door bypasses the rules, not the vocabulary).
    let sample = domain::sample_events()
        .into_iter()
        .find(|e| e.event_type() == "EnrollmentStarted")
        .unwrap();
    let domain::Event::EnrollmentStarted(started) = &sample else {
        unreachable!()
    };
    let stream = StreamName::new(format!("partner-{}", started.partner_id.uuid())).unwrap();
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: sample.event_type().into(),
        schema_version: sample.schema_version(),
        recorded_at: chrono::Utc::now(),
        actor: r#"{"kind":"operator"}"#.into(),
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        payload: sample.encode().unwrap(),
    };
    assert!(
        reader
            .append(&stream, ExpectedRevision::NoStream, vec![event.clone()])
            .await
            .is_err(),
        "an auditor key cannot append"
    );
    let wrong = kurrentdb::KurrentStore::connect(
        &format!("esdb://auditor:not-a-key@{grpc}?tls=false"),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    assert!(wrong.head().await.is_err(), "an unknown key reads nothing");

    let admin = kurrentdb::KurrentStore::connect(
        &format!("esdb://admin:{STORE_ADMIN_KEY}@{grpc}?tls=false"),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    // What the ledger cannot read is refused before anything is written: an unknown type,
    // a payload that does not decode, a foreign actor, a stream that is not the ledger's.
    let unknown = NewEvent {
        event_type: "Happened".into(),
        ..event.clone()
    };
    let garbled = NewEvent {
        payload: vec![0xc1],
        ..event.clone()
    };
    let foreign_actor = NewEvent {
        actor: "kurrentdb:admin".into(),
        ..event.clone()
    };
    let elsewhere = StreamName::new("billing-2026").unwrap();
    for (stream, proposed) in [
        (&stream, unknown),
        (&stream, garbled),
        (&stream, foreign_actor),
        (&elsewhere, event.clone()),
    ] {
        let refused = admin
            .append(stream, ExpectedRevision::Any, vec![proposed])
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("refused"), "{refused}");
    }
    assert_eq!(
        reader.head().await.unwrap().unwrap(),
        events.last().unwrap().position,
        "nothing was appended"
    );
    admin
        .append(&stream, ExpectedRevision::NoStream, vec![event])
        .await
        .unwrap();
    let head = reader.head().await.unwrap().unwrap();
    assert_eq!(head.0, events.last().unwrap().position.0 + 1);
    // Recorded as what it is: the actor it names, asserted by the door, not proven.
    let migrated = reader
        .read_all(ReadFrom::At(head.0), Direction::Forwards, 1)
        .await
        .unwrap();
    let actor: serde_json::Value = serde_json::from_str(&migrated[0].actor).unwrap();
    assert_eq!(actor["kind"], "operator", "{actor}");
    assert_eq!(
        actor["proven_by"],
        serde_json::json!({"method": "asserted", "by": "kurrentdb-door"}),
        "{actor}"
    );
    // The server's own read models took the migrated event in.
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(ready.is_success());

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
