//! The verifiable history through the real `serve` and the command line: an auditor takes
//! checkpoints, exports and audits offline; proofs from HTTP verify with tlog's verifier; a
//! flipped byte of an export line, a checkpoint or a tile is caught by `audit` or `verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use common::{OPERATOR_KEY, Server};
#[cfg(feature = "kurrentdb")]
use common::{STORE_ADMIN_KEY, start_door};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn ledger(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run csp-ledger")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn hash(value: &Value) -> tlog::Hash {
    tlog::parse_hash(value.as_str().unwrap()).unwrap()
}

fn hashes(value: &Value) -> Vec<tlog::Hash> {
    value.as_array().unwrap().iter().map(hash).collect()
}

async fn text(server: &Server, path: &str) -> (StatusCode, String, String) {
    text_at(&server.base, path).await
}

async fn text_at(base: &str, path: &str) -> (StatusCode, String, String) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// Waits for a published checkpoint of exactly `size` records (the server publishes every
/// few milliseconds in these tests); bounded so that a broken publisher fails the test.
async fn checkpoint_of(server: &Server, key: &tlog::VerifierKey, size: u64) -> String {
    checkpoint_at(&server.base, key, size).await
}

async fn checkpoint_at(base: &str, key: &tlog::VerifierKey, size: u64) -> String {
    for _ in 0..2000 {
        let (status, _, note) = text_at(base, "/v1/checkpoint").await;
        if status == StatusCode::OK && tlog::open_checkpoint(&note, key).unwrap().size == size {
            return note;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no checkpoint of size {size} was published");
}

fn onboard_provider(number: &str) -> Value {
    json!({"type": "onboard_provider", "tenant_id": uuid::Uuid::now_v7(), "tenant_country": "US",
        "partner_number": number, "legal_name": format!("Provider {number}"), "countries_served": ["US"],
        "support": {"email": format!("support@{number}.example"), "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Ada Admin", "email": format!("ada@{number}.example")}})
}

async fn onboard(server: &Server, number: &str) -> Value {
    server.ok(OPERATOR_KEY, onboard_provider(number)).await
}

#[tokio::test]
async fn an_auditor_takes_checkpoints_exports_and_audits_offline_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = ledger(&data, &["--json", "demo"]);
    assert!(demo.status.success());
    let head = serde_json::from_str::<Value>(&stdout(&demo)).unwrap()["head_position"]
        .as_u64()
        .unwrap();

    let server = Server::start_with(
        &data,
        &[
            "--checkpoint-interval-ms",
            "5",
            "--checkpoint-origin",
            "ledger.test/csp",
        ],
    );
    let (status, content_type, verifier) = text(&server, "/v1/checkpoint/verifier-key").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"));
    let key = tlog::VerifierKey::parse(verifier.trim()).unwrap();
    assert_eq!(key.name(), "ledger.test/csp");

    // The tree follows the demo's log; a first checkpoint covers it all.
    let older_size = head + 1;
    let older = checkpoint_of(&server, &key, older_size).await;
    let (_, content_type, _) = text(&server, "/v1/checkpoint").await;
    assert!(content_type.starts_with("text/plain"));

    // Appends move the tree on; a later checkpoint extends the first.
    let onboarded = onboard(&server, "2000001").await;
    let newer_size = onboarded["position"].as_u64().unwrap() + 1;
    let newer = checkpoint_of(&server, &key, newer_size).await;
    let (_, consistency) = server
        .get(
            &format!("/v1/proofs/consistency?from={older_size}&to={newer_size}"),
            "",
        )
        .await;
    assert_eq!(consistency["from"], older_size);
    assert_eq!(consistency["to"], newer_size);
    let (_, newer_checkpoint) =
        tlog::check_signed_consistency(&older, &newer, &key, &hashes(&consistency["proof"]))
            .unwrap();

    // Every event of a page carries its leaf index and canonical bytes; their inclusion
    // proofs from HTTP verify against the signed root.
    let (status, page) = server
        .get("/v1/events/page?from=0&limit=1000", OPERATOR_KEY)
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, newer_size);
    for event in events {
        let position = event["position"].as_u64().unwrap();
        assert_eq!(
            event["leaf_index"], position,
            "the file log's leaf index is its position"
        );
        let record = b64(event["record"].as_str().unwrap());
        let (status, proof) = server
            .get(
                &format!("/v1/proofs/inclusion?position={position}&size={newer_size}"),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        assert_eq!(hash(&proof["leaf_hash"]), tlog::leaf_hash(&record));
        tlog::verify_inclusion(
            &tlog::leaf_hash(&record),
            proof["leaf_index"].as_u64().unwrap(),
            proof["tree_size"].as_u64().unwrap(),
            &hashes(&proof["proof"]),
            &newer_checkpoint.root,
        )
        .unwrap();
    }

    // So does every event of the SSE feed.
    let mut feed = server
        .client
        .get(server.url("/v1/events?from=0"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let mut received = String::new();
    let first = loop {
        let chunk = feed.chunk().await.unwrap().expect("the feed goes on");
        received.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(line) = received.lines().find(|line| line.starts_with("data:"))
            && received.contains("\n\n")
        {
            break serde_json::from_str::<Value>(line.trim_start_matches("data:").trim()).unwrap();
        }
    };
    drop(feed);
    assert_eq!(first["leaf_index"], 0);
    assert_eq!(first["record"], events[0]["record"]);

    // Bad parameters are problems, like everywhere else.
    for (path, status, rule) in [
        (
            "/v1/proofs/inclusion?position=x&size=1",
            400,
            "invalid-query",
        ),
        ("/v1/proofs/inclusion?position=1", 400, "invalid-query"),
        (
            "/v1/proofs/inclusion?position=1&size=999999",
            404,
            "not-in-tree",
        ),
        (
            "/v1/proofs/inclusion?position=999999&size=1",
            404,
            "not-in-tree",
        ),
        (
            "/v1/proofs/inclusion?position=5&size=2",
            400,
            "invalid-proof-request",
        ),
        (
            "/v1/proofs/consistency?from=0&to=2",
            400,
            "invalid-proof-request",
        ),
        (
            "/v1/proofs/consistency?from=3&to=2",
            400,
            "invalid-proof-request",
        ),
        ("/tile/0/0001", 400, "invalid-tile-path"),
        ("/tile/0/000.p/255", 404, "not-found"),
    ] {
        let (got, body) = server.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        assert_eq!(body["rule"], rule, "{path}: {body}");
    }
    // Tiles at their C2SP paths: the first leaf hashes.
    let tile = server
        .client
        .get(server.url("/tile/0/000.p/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(tile.status(), StatusCode::OK);
    let tile = tile.bytes().await.unwrap();
    assert_eq!(
        &tile[..32],
        &tlog::leaf_hash(&b64(events[0]["record"].as_str().unwrap()))
    );
    // The OpenAPI document lists the routes.
    let (_, document) = server
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    for path in [
        "/v1/checkpoint",
        "/v1/checkpoint/verifier-key",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
        "/tile/{path}",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path}");
    }
    let http_inclusion = server
        .get(
            &format!("/v1/proofs/inclusion?position=3&size={newer_size}"),
            "",
        )
        .await
        .1;
    server.stop();

    // The command line gives the same checkpoint, key and proofs from the data directory.
    let files = dir.path();
    let checkpoint = ledger(&data, &["checkpoint"]);
    assert!(checkpoint.status.success());
    assert_eq!(stdout(&checkpoint), newer);
    assert_eq!(
        stdout(&ledger(&data, &["checkpoint", "--verifier-key"])).trim(),
        verifier.trim()
    );
    let prove = ledger(
        &data,
        &[
            "prove",
            "inclusion",
            "--position",
            "3",
            "--size",
            &newer_size.to_string(),
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&prove)).unwrap(),
        http_inclusion
    );
    let prove = ledger(
        &data,
        &[
            "prove",
            "consistency",
            "--from",
            &older_size.to_string(),
            "--to",
            &newer_size.to_string(),
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&prove)).unwrap(),
        consistency
    );
    let verify = ledger(&data, &["--json", "verify"]);
    let report: Value = serde_json::from_str(&stdout(&verify)).unwrap();
    assert!(verify.status.success(), "{report}");
    assert_eq!(report["tree"]["intact"], true, "{report}");

    // The auditor's session: two checkpoints, an export, a consistency proof; offline.
    std::fs::write(files.join("older.txt"), &older).unwrap();
    std::fs::write(files.join("newer.txt"), &newer).unwrap();
    std::fs::write(files.join("consistency.json"), consistency.to_string()).unwrap();
    std::fs::write(files.join("key.txt"), &verifier).unwrap();
    let export = stdout(&ledger(&data, &["export"]));
    std::fs::write(files.join("export.jsonl"), &export).unwrap();
    let audit = |checkpoint: &str, export: &str, extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--checkpoint",
            checkpoint,
            "--verifier-key",
            verifier.trim(),
        ];
        args.extend_from_slice(extra);
        args.push(export);
        let output = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
            .current_dir(files)
            .args(&args)
            .output()
            .unwrap();
        (output.status.success(), stdout(&output))
    };
    let (ok, said) = audit(
        "newer.txt",
        "export.jsonl",
        &[
            "--older-checkpoint",
            "older.txt",
            "--consistency-proof",
            "consistency.json",
        ],
    );
    assert!(ok, "{said}");
    assert!(said.contains("audit ok"), "{said}");
    // The older checkpoint vouches for the export's first records only.
    let (ok, said) = audit("older.txt", "export.jsonl", &[]);
    assert!(ok, "{said}");
    assert!(said.contains("later records are not covered"), "{said}");
    // The key may be given as a file.
    let (ok, said) = {
        let output = ledger(
            &data,
            &[
                "audit",
                "--checkpoint",
                files.join("newer.txt").to_str().unwrap(),
                "--verifier-key",
                files.join("key.txt").to_str().unwrap(),
                files.join("export.jsonl").to_str().unwrap(),
            ],
        );
        (output.status.success(), stdout(&output))
    };
    assert!(ok, "{said}");

    // A flipped byte of an export line's payload: the line no longer matches its record.
    let lines: Vec<&str> = export.lines().collect();
    let mut line: Value = serde_json::from_str(lines[4]).unwrap();
    let hex = line["payload_msgpack_hex"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if &hex[..1] == "8" { "9" } else { "8" }, &hex[1..]);
    line["payload_msgpack_hex"] = json!(flipped);
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[4] = line.to_string();
    std::fs::write(files.join("tampered.jsonl"), tampered.join("\n")).unwrap();
    let (ok, said) = audit("newer.txt", "tampered.jsonl", &[]);
    assert!(!ok);
    assert!(said.contains("line 5"), "{said}");
    assert!(said.contains("position 4"), "{said}");

    // A flipped byte of a record (its bytes and the line changed alike): the root fails.
    let mut line: Value = serde_json::from_str(lines[7]).unwrap();
    let mut record = b64(line["record"].as_str().unwrap());
    let last = record.len() - 1;
    record[last] ^= 0x01;
    let event = store::codec::decode_body(&record).unwrap();
    let mut forged = server::render::event_json_in_tree(&event, Some(7));
    forged["record"] = json!(base64::engine::general_purpose::STANDARD.encode(&record));
    line = forged;
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[7] = line.to_string();
    std::fs::write(files.join("forged.jsonl"), tampered.join("\n")).unwrap();
    let (ok, said) = audit("newer.txt", "forged.jsonl", &[]);
    assert!(!ok);
    assert!(
        said.contains("do not rebuild the checkpoint's root"),
        "{said}"
    );

    // A dropped line: named by its leaf index.
    let mut dropped: Vec<&str> = lines.clone();
    dropped.remove(2);
    std::fs::write(files.join("dropped.jsonl"), dropped.join("\n")).unwrap();
    let (ok, said) = audit("newer.txt", "dropped.jsonl", &[]);
    assert!(!ok);
    assert!(
        said.contains("line 3") && said.contains("leaf index 3 where 2"),
        "{said}"
    );

    // A flipped byte of the checkpoint: its signature fails.
    let forged_checkpoint =
        newer.replacen(&newer_size.to_string(), &(newer_size + 1).to_string(), 1);
    std::fs::write(files.join("forged-checkpoint.txt"), forged_checkpoint).unwrap();
    let (ok, said) = audit("forged-checkpoint.txt", "export.jsonl", &[]);
    assert!(!ok);
    assert!(said.contains("checkpoint forged-checkpoint.txt"), "{said}");

    // A consistency proof that does not prove: refused.
    let mut bad_proof = consistency.clone();
    bad_proof["proof"][0] = json!(tlog::encode_hash(&[7u8; 32]));
    std::fs::write(files.join("bad-consistency.json"), bad_proof.to_string()).unwrap();
    let (ok, said) = audit(
        "newer.txt",
        "export.jsonl",
        &[
            "--older-checkpoint",
            "older.txt",
            "--consistency-proof",
            "bad-consistency.json",
        ],
    );
    assert!(!ok);
    assert!(said.contains("consistency proof"), "{said}");

    // A flipped byte of a tile: `verify` names it.
    let tile = data
        .join("tlog/tile/0/000.p")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&tile, bytes).unwrap();
    let verify = ledger(&data, &["--json", "verify"]);
    assert!(!verify.status.success());
    let report: Value = serde_json::from_str(&stdout(&verify)).unwrap();
    assert_eq!(report["intact"], true, "the log itself is intact");
    assert_eq!(report["tree"]["intact"], false);
    assert!(
        report["tree"]["problem"]
            .as_str()
            .unwrap()
            .contains("tile/0/000.p/"),
        "{report}"
    );

    // serve rebuilds the damaged tiles from the log, and the tree still gives the signed root.
    let server = Server::start_with(&data, &["--checkpoint-interval-ms", "5"]);
    // A command's answer carries its receipt: a checkpoint including its events, and their
    // inclusion proofs in it.
    let (status, recorded) = server
        .call(
            reqwest::Method::POST,
            "/v1/commands?receipt=true",
            Some(OPERATOR_KEY),
            Some(onboard_provider("2000002")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let receipt = &recorded["receipt"];
    let latest = receipt["checkpoint"]
        .as_str()
        .expect("a receipt")
        .to_string();
    let latest_checkpoint = tlog::open_checkpoint(&latest, &key).unwrap();
    let latest_size = latest_checkpoint.size;
    let first_position = recorded["events"][0]["position"].as_u64().unwrap();
    let (_, page) = server
        .get(
            &format!("/v1/events/page?from={first_position}"),
            OPERATOR_KEY,
        )
        .await;
    let records = receipt["records"].as_array().unwrap();
    assert_eq!(records.len(), recorded["events"].as_array().unwrap().len());
    for (record, event) in records.iter().zip(page["events"].as_array().unwrap()) {
        assert_eq!(record["position"], event["position"]);
        let leaf = tlog::leaf_hash(&b64(event["record"].as_str().unwrap()));
        assert_eq!(hash(&record["leaf_hash"]), leaf);
        tlog::verify_inclusion(
            &leaf,
            record["leaf_index"].as_u64().unwrap(),
            latest_size,
            &hashes(&record["proof"]),
            &latest_checkpoint.root,
        )
        .unwrap();
    }
    let (status, refused) = server
        .call(
            reqwest::Method::POST,
            "/v1/commands?receipt=maybe",
            Some(OPERATOR_KEY),
            Some(onboard_provider("2000003")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["rule"], "invalid-query");
    let (_, proof) = server
        .get(
            &format!("/v1/proofs/consistency?from={newer_size}&to={latest_size}"),
            "",
        )
        .await;
    tlog::check_signed_consistency(&newer, &latest, &key, &hashes(&proof["proof"])).unwrap();
    server.stop();
    assert!(ledger(&data, &["verify"]).status.success());
}

/// A second ledger on KurrentDB (the first ledger's own door) keeps its own tree over the
/// same records: on that backend too, every record's leaf is its canonical bytes in the
/// order the ledger reads it (the door's records, less the writer lease's bookkeeping), its
/// proofs verify and its checkpoints are consistent.
#[cfg(feature = "kurrentdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kurrentdb_through_the_ledgers_own_door_the_tree_is_over_the_same_records_and_proves_it()
{
    let dir = tempfile::tempdir().unwrap();
    let door_data = dir.path().join("door");
    assert!(ledger(&door_data, &["demo"]).status.success());
    let (mut door, door_base, grpc, authority) = start_door(&door_data);
    let url = format!("esdb://admin:{STORE_ADMIN_KEY}@{grpc}?tls=true&tlsCaFile={authority}");
    let kurrent = Server::start_with(
        &dir.path().join("kurrent"),
        &["--store", &url, "--checkpoint-interval-ms", "5"],
    );
    let key_of = |text: String| tlog::VerifierKey::parse(text.trim()).unwrap();
    let door_key = key_of(text_at(&door_base, "/v1/checkpoint/verifier-key").await.2);
    let kurrent_key = key_of(text(&kurrent, "/v1/checkpoint/verifier-key").await.2);

    // A command through the ledger on KurrentDB: its events land in the door's log.
    let (status, recorded) = kurrent
        .call(
            reqwest::Method::POST,
            "/v1/commands?receipt=true",
            Some(OPERATOR_KEY),
            Some(onboard_provider("3000001")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let receipt = &recorded["receipt"];
    let checkpoint =
        tlog::open_checkpoint(receipt["checkpoint"].as_str().unwrap(), &kurrent_key).unwrap();
    for record in receipt["records"].as_array().unwrap() {
        tlog::verify_inclusion(
            &hash(&record["leaf_hash"]),
            record["leaf_index"].as_u64().unwrap(),
            checkpoint.size,
            &hashes(&record["proof"]),
            &checkpoint.root,
        )
        .unwrap();
    }

    // The door's tree is over its whole log, which also holds the writer lease's bookkeeping
    // (the KurrentDB ledger's lease takes and heartbeats); the KurrentDB ledger's tree is over
    // the ledger's own events as it reads them. Those are the door's records with the
    // lease's taken out, byte for byte and in order, so both trees are over the same
    // records and the door's checkpoint covers every one of them.
    let size = checkpoint.size;
    let is_lease = |event: &Value| {
        event["stream"]
            .as_str()
            .unwrap()
            .starts_with("csp-ledger-writer-")
    };
    let mut door_ledger_records = Vec::new();
    for attempt in 0.. {
        // The door publishes its checkpoints on its own schedule, and its log grows with the
        // lease's heartbeats: wait for one that covers every record of the KurrentDB ledger.
        let (_, _, note) = text_at(&door_base, "/v1/checkpoint").await;
        let door_checkpoint = tlog::open_checkpoint(&note, &door_key).unwrap();
        let client = reqwest::Client::new();
        let door_page: Value = client
            .get(format!(
                "{door_base}/v1/events/page?from=0&limit={}",
                door_checkpoint.size
            ))
            .bearer_auth(OPERATOR_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let door_events = door_page["events"].as_array().unwrap();
        assert_eq!(door_events.len() as u64, door_checkpoint.size);
        let leaves: Vec<Vec<u8>> = door_events
            .iter()
            .map(|event| b64(event["record"].as_str().unwrap()))
            .collect();
        assert_eq!(
            tlog::Tree::rebuild(tlog::MemoryTileStore::new(), &leaves)
                .unwrap()
                .root(),
            door_checkpoint.root
        );
        door_ledger_records = door_events
            .iter()
            .filter(|event| !is_lease(event))
            .map(|event| event["record"].clone())
            .collect();
        if door_ledger_records.len() as u64 >= size {
            assert!(
                door_events.iter().any(is_lease),
                "the writer lease was taken through the door"
            );
            break;
        }
        assert!(
            attempt < 500,
            "no door checkpoint covers the ledger's records"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Every event of the KurrentDB ledger's pages carries its leaf index and record; a
    // proof by position verifies with the record's bytes.
    let (status, page) = kurrent
        .get("/v1/events/page?from=0&limit=1000", OPERATOR_KEY)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, size);
    let kurrent_records: Vec<Value> = events.iter().map(|event| event["record"].clone()).collect();
    assert_eq!(kurrent_records, door_ledger_records[..size as usize]);
    for (index, event) in events.iter().enumerate().step_by(7) {
        assert_eq!(event["leaf_index"], index as u64);
        let position = event["position"].as_u64().unwrap();
        let (status, proof) = kurrent
            .get(
                &format!("/v1/proofs/inclusion?position={position}&size={size}"),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        tlog::verify_inclusion(
            &tlog::leaf_hash(&b64(event["record"].as_str().unwrap())),
            index as u64,
            size,
            &hashes(&proof["proof"]),
            &checkpoint.root,
        )
        .unwrap();
    }
    kurrent.stop();
    assert!(door.stop());
}
