//! The command line's readers run beside a live `serve` on the same data directory: they
//! open the log read-only (no lock), see what the server recorded, and `tail` follows it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{OPERATOR_KEY, Server, payload};
use serde_json::{Value, json};

fn ledger(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run csp-ledger")
}

/// Runs the command line and returns its standard output, which must be a success.
fn ok(data: &Path, args: &[&str]) -> String {
    let output = ledger(data, args);
    assert!(
        output.status.success(),
        "{args:?} failed beside serve: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A `tail` process, killed when dropped (also when the test fails).
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn onboard_provider(number: &str) -> Value {
    json!({"type": "onboard_provider", "tenant_id": uuid::Uuid::now_v7(), "tenant_country": "US",
        "partner_number": number, "legal_name": format!("Provider {number}"), "countries_served": ["US"],
        "support": {"email": format!("support@{number}.example"), "phone": "+1 555 0100", "website": null},
        "first_admin": {"full_name": "Ada Admin", "email": format!("ada@{number}.example")}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_history_export_replay_verify_and_tail_run_beside_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(ledger(data, &["demo"]).status.success());
    let server = Server::start(data);
    let recorded = server.ok(OPERATOR_KEY, onboard_provider("5000001")).await;
    let partner = payload(&recorded, 0, "partner_id");
    let events = recorded["events"].as_array().unwrap();
    let position = events[events.len() - 1]["position"].as_u64().unwrap();

    // A follower started now sees the server's next records as they are recorded.
    let mut tail = Follower(
        Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
            .arg("--data")
            .arg(data)
            .args([
                "--json",
                "tail",
                "--from",
                &position.to_string(),
                "--type",
                "ProviderOnboarded",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut tailed = BufReader::new(tail.0.stdout.take().unwrap());

    // Every reader sees what the running server recorded, and none is locked out.
    let answer: Value = serde_json::from_str(&ok(
        data,
        &["--json", "query", "partner", "--partner", &partner],
    ))
    .unwrap();
    assert_eq!(answer["answer"]["partner_number"], "5000001", "{answer}");
    let history = ok(data, &["--json", "history", &partner]);
    assert!(history.contains("ProviderOnboarded"), "{history}");
    let export = ok(data, &["export", "--format", "jsonl"]);
    assert_eq!(export.lines().count() as u64, position + 1);
    let elsewhere = dir.path().join("replayed.checkpoint");
    ok(
        data,
        &[
            "--json",
            "replay",
            "--checkpoint",
            elsewhere.to_str().unwrap(),
        ],
    );
    assert!(elsewhere.exists());
    ok(data, &["verify"]);

    // The server goes on recording; the follower prints it.
    let second = server.ok(OPERATOR_KEY, onboard_provider("5000002")).await;
    let second_partner = payload(&second, 0, "partner_id");
    let mut line = String::new();
    tailed.read_line(&mut line).unwrap();
    assert!(line.contains(&second_partner), "{line}");
    drop(tail);

    // Nothing the readers did stopped the server from recording.
    server.ok(OPERATOR_KEY, onboard_provider("5000003")).await;
    server.stop();
}
