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

/// A `csp-ledger serve` with the door, as its first lines on stdout announce it.
struct Door {
    child: std::process::Child,
    base: String,
    grpc: String,
    /// The generated certificate authority's path, when the door generated one.
    authority: Option<String>,
}

impl Door {
    fn start(data: &std::path::Path, extra: &[&str]) -> Door {
        let mut child = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
            .arg("--data")
            .arg(data)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--kurrentdb-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("CSP_LEDGER_OPERATOR_KEY", OPERATOR_KEY)
            .env("CSP_LEDGER_STORE_ADMIN_KEY", STORE_ADMIN_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut next = |prefix: &str| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim().strip_prefix(prefix).map(str::to_string)
        };
        let base = next("csp-ledger listening on ").unwrap();
        let grpc = next("csp-ledger kurrentdb protocol on ").unwrap();
        let authority = if extra.contains(&"--kurrentdb-tls-cert") {
            None
        } else {
            Some(next("csp-ledger kurrentdb certificate authority ").unwrap())
        };
        Door {
            child,
            base,
            grpc,
            authority,
        }
    }

    /// A connection string over TLS, trusting the generated authority when there is one.
    fn url(&self, user: &str, password: &str, verify: Option<&str>) -> String {
        match verify {
            Some(authority) => format!(
                "esdb://{user}:{password}@{}?tls=true&tlsCaFile={authority}",
                self.grpc
            ),
            None => format!(
                "esdb://{user}:{password}@{}?tls=true&tlsVerifyCert=false",
                self.grpc
            ),
        }
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

/// Waits until `/readyz` says the read models have caught up with the log (they follow it
/// asynchronously), with no unreadable event.
async fn assert_ready(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready after 20 s: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An auditor key issued by the operator.
async fn issue_auditor_key(base: &str) -> String {
    let issued: Value = reqwest::Client::new()
        .post(format!("{base}/v1/keys"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({"kind": "auditor", "name": "audit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    issued["key"].as_str().unwrap().to_string()
}

/// A provider onboarded through the HTTP API: its events in its own streams.
async fn onboard_provider(base: &str) {
    let onboard = json!({"type": "onboard_provider", "tenant_id": Uuid::now_v7(), "tenant_country": "US",
        "partner_number": "2000001", "legal_name": "Northwind", "countries_served": ["US"],
        "support": {"email": "support@northwind.example", "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Admin", "email": "admin@northwind.example"}});
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/commands"))
        .bearer_auth(OPERATOR_KEY)
        .header("idempotency-key", Uuid::now_v7().to_string())
        .json(&onboard)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_reads_with_an_auditor_key_and_appends_only_as_store_admin() {
    let dir = tempfile::tempdir().unwrap();
    let door = Door::start(dir.path(), &[]);
    let authority = door.authority.clone().unwrap();
    let base = door.base.clone();

    let auditor = issue_auditor_key(&base).await;
    onboard_provider(&base).await;

    // The auditor reads $all through the door: the same events the ledger recorded.
    // Over TLS, verifying the door against the authority it generated.
    let reader = kurrentdb::KurrentStore::connect(
        &door.url("auditor", &auditor, Some(&authority)),
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
        &door.url("auditor", "not-a-key", None),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    assert!(wrong.head().await.is_err(), "an unknown key reads nothing");

    let admin = kurrentdb::KurrentStore::connect(
        &door.url("admin", STORE_ADMIN_KEY, None),
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
    assert_ready(&base).await;

    // Plain text reaches nothing: the door speaks TLS only.
    let plain = kurrentdb::KurrentStore::connect(
        &format!("esdb://auditor:{auditor}@{}?tls=false", door.grpc),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    assert!(
        plain.head().await.is_err(),
        "a plain-text client reads nothing"
    );
    door.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_door_generates_its_certificate_once_and_keeps_its_key_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let door = Door::start(dir.path(), &[]);
    let authority = door.authority.clone().unwrap();
    let tls_dir = dir.path().join("kurrentdb-tls");
    assert_eq!(
        std::path::Path::new(&authority),
        tls_dir.join("authority.pem")
    );
    let key_mode = std::fs::metadata(tls_dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        key_mode & 0o777,
        0o600,
        "the private key is the owner's alone"
    );
    let first = std::fs::read(tls_dir.join("certificate.pem")).unwrap();
    door.stop();

    // A restart serves the same certificate, so that clients given the authority keep it.
    let door = Door::start(dir.path(), &[]);
    assert_eq!(door.authority.as_deref(), Some(authority.as_str()));
    assert_eq!(
        std::fs::read(tls_dir.join("certificate.pem")).unwrap(),
        first
    );
    let reader = kurrentdb::KurrentStore::connect(
        &door.url("admin", STORE_ADMIN_KEY, Some(&authority)),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    assert_eq!(
        reader.head().await.unwrap(),
        None,
        "an empty ledger, over TLS"
    );
    door.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_serves_the_certificate_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let generated = kurrentdb::tls::GeneratedTls::generate(&["127.0.0.1".into()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (certificate, key, authority) = (
        files.path().join("door.pem"),
        files.path().join("door.key"),
        files.path().join("ca.pem"),
    );
    std::fs::write(&certificate, &generated.identity.certificate_pem).unwrap();
    std::fs::write(&key, &generated.identity.private_key_pem).unwrap();
    std::fs::write(&authority, &generated.authority_pem).unwrap();
    let door = Door::start(
        dir.path(),
        &[
            "--kurrentdb-tls-cert",
            certificate.to_str().unwrap(),
            "--kurrentdb-tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        !dir.path().join("kurrentdb-tls").exists(),
        "nothing generated"
    );
    let reader = kurrentdb::KurrentStore::connect(
        &door.url("admin", STORE_ADMIN_KEY, Some(authority.to_str().unwrap())),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    assert_eq!(reader.head().await.unwrap(), None);
    door.stop();
}

#[test]
fn a_door_off_loopback_without_a_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kurrentdb-listen",
            "0.0.0.0:0",
        ])
        .env("CSP_LEDGER_OPERATOR_KEY", OPERATOR_KEY)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--kurrentdb-tls-cert"), "{stderr}");
    assert!(!dir.path().join("kurrentdb-tls").exists());
}

/// The official Node.js client (`@kurrent/kurrentdb-client` from npm, in tests/kurrentdb-node,
/// installed there by `.ci/run` with `npm ci`) against a real `serve`: over TLS verified
/// against the generated authority, with credentials; see tests/kurrentdb-node/door.mjs for
/// what it checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the npm packages .ci/run installs (tests/kurrentdb-node, npm ci)"]
async fn official_node_client_reads_subscribes_appends_and_is_refused_a_foreign_event() {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/kurrentdb-node/door.mjs");
    let dir = tempfile::tempdir().unwrap();
    let door = Door::start(dir.path(), &[]);
    let auditor = issue_auditor_key(&door.base).await;
    onboard_provider(&door.base).await;
    // Two events a migration tool could bring, of one partner's stream, as the ledger's
    // envelope metadata describes them (the actor the ledger reads, the ids, the time).
    let events: Vec<Value> = domain::sample_events()
        .into_iter()
        .filter(|e| matches!(e.event_type(), "EnrollmentStarted" | "MpnProfilesObserved"))
        .map(|sample| {
            let metadata = json!({
                "$correlationId": Uuid::now_v7(), "$causationId": Uuid::now_v7(),
                "schemaVersion": sample.schema_version(), "actor": r#"{"kind":"operator"}"#,
                "commandId": Uuid::now_v7(), "recordedAt": chrono::Utc::now(),
            });
            json!({
                "type": sample.event_type(),
                "data": base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    sample.encode().unwrap()
                ),
                "metadata": metadata,
            })
        })
        .collect();
    assert_eq!(events.len(), 2);
    let samples = domain::sample_events();
    let Some(domain::Event::EnrollmentStarted(started)) = samples.first() else {
        panic!("the first sample is an enrollment")
    };
    let stream = format!("partner-{}", started.partner_id.uuid());
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .env("DOOR", &door.grpc)
        .env("CA_FILE", door.authority.as_deref().unwrap())
        .env("AUDITOR_KEY", &auditor)
        .env("ADMIN_KEY", STORE_ADMIN_KEY)
        .env("MIGRATED_STREAM", &stream)
        .env("MIGRATED_EVENTS", serde_json::to_string(&events).unwrap())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the Node.js client finishes within 120 s")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("node official client: ok"),
        "Node.js client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The ledger itself took the migrated events in, and stays ready.
    assert_ready(&door.base).await;
    door.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_asking_for_json_gets_json_tied_to_the_log_and_json_appends_are_admitted() {
    use eventstore::{AppendToStreamOptions, Client, EventData, ReadAllOptions, StreamPosition};
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let door = Door::start(dir.path(), &[]);
    let authority = door.authority.clone().unwrap();
    let auditor = issue_auditor_key(&door.base).await;
    onboard_provider(&door.base).await;
    let plain = kurrentdb::KurrentStore::connect(
        &door.url("auditor", &auditor, Some(&authority)),
        kurrentdb::KurrentStoreConfig::default(),
    )
    .unwrap();
    let recorded = plain
        .read_all(ReadFrom::Start, Direction::Forwards, 100)
        .await
        .unwrap();
    assert!(!recorded.is_empty());

    // The connection name asks for JSON.
    let connect = |user: &str, key: &str| {
        let url = format!(
            "{}&connectionName=json",
            door.url(user, key, Some(&authority))
        );
        Client::new(url.parse().unwrap()).unwrap()
    };
    let json_reader = connect("auditor", &auditor);
    let read_json = |client: Client| async move {
        let options = ReadAllOptions::default()
            .forwards()
            .position(StreamPosition::Start)
            .max_count(100);
        let mut stream = client.read_all(&options).await.unwrap();
        let mut events = Vec::new();
        while let Some(resolved) = stream.next().await.unwrap() {
            events.push(resolved.event.expect("an event, not a link"));
        }
        events
    };
    let served = read_json(json_reader.clone()).await;
    assert_eq!(served.len(), recorded.len());
    for (json, stored) in served.iter().zip(&recorded) {
        assert_eq!(json.id, stored.event_id);
        assert!(json.is_json, "{} is served as JSON", stored.event_type);
        assert_eq!(json.metadata["content-type"], "application/json");
        let event =
            domain::Event::decode(&stored.event_type, stored.schema_version, &stored.payload)
                .unwrap();
        let expected: Value =
            serde_json::from_slice(&handler::payload_to_json(&event).unwrap()).unwrap();
        assert_eq!(json.as_json::<Value>().unwrap(), expected);
        // The record's canonical bytes, which the JSON no longer is, by their hash.
        let metadata: Value = serde_json::from_slice(&json.custom_metadata).unwrap();
        let mut body = Vec::new();
        store::codec::encode_body(stored, &mut body);
        assert_eq!(
            metadata["recordSha256"],
            store::codec::chain_hex(&sha2::Sha256::digest(&body).into()),
        );
    }

    // A JSON append of a ledger event type is converted to MessagePack and admitted.
    let admin = connect("admin", STORE_ADMIN_KEY);
    let samples = domain::sample_events();
    let sample = &samples[0];
    let domain::Event::EnrollmentStarted(started) = sample else {
        panic!("the first sample is an enrollment")
    };
    let stream = format!("partner-{}", started.partner_id.uuid());
    let payload: Value =
        serde_json::from_slice(&handler::payload_to_json(sample).unwrap()).unwrap();
    let envelope = json!({
        "$correlationId": Uuid::now_v7(), "$causationId": Uuid::now_v7(),
        "schemaVersion": sample.schema_version(), "actor": r#"{"kind":"operator"}"#,
        "commandId": Uuid::now_v7(), "recordedAt": chrono::Utc::now(),
    });
    let id = Uuid::now_v7();
    let event = EventData::json(sample.event_type(), &payload)
        .unwrap()
        .id(id)
        .metadata_as_json(&envelope)
        .unwrap();
    let options =
        AppendToStreamOptions::default().expected_revision(eventstore::ExpectedRevision::NoStream);
    let garbled = EventData::json(sample.event_type(), &json!({"partner_id": 7}))
        .unwrap()
        .metadata_as_json(&envelope)
        .unwrap();
    let refused = admin
        .append_to_stream(stream.as_str(), &options, garbled)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("JSON payload"), "{refused}");
    admin
        .append_to_stream(stream.as_str(), &options, event)
        .await
        .unwrap();
    let stored = plain
        .read_stream(
            &StreamName::new(stream).unwrap(),
            ReadFrom::At(0),
            Direction::Forwards,
            1,
        )
        .await
        .unwrap();
    assert_eq!(stored[0].event_id, id);
    let decoded = domain::Event::decode(
        &stored[0].event_type,
        stored[0].schema_version,
        &stored[0].payload,
    )
    .unwrap();
    assert_eq!(&decoded, sample, "kept as the ledger's MessagePack");
    assert_ready(&door.base).await;
    door.stop();
}
