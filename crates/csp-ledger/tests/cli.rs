//! The command line, run as a user would: demo, verify (intact and damaged), apply, export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

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

fn demo(data: &Path) -> Value {
    let output = ledger(data, &["--json", "demo"]);
    assert!(
        output.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout(&output)).expect("demo --json prints one JSON object")
}

#[test]
fn demo_writes_a_verified_story_and_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let parties = demo(dir.path());
    assert_eq!(parties["providers"].as_array().unwrap().len(), 2);
    assert_eq!(parties["resellers"].as_array().unwrap().len(), 3);
    assert!(parties["customers"].as_array().unwrap().len() >= 5);
    assert!(parties["refusals"].as_array().unwrap().len() >= 5);
    let head = parties["head_position"].as_u64().unwrap();
    assert_eq!(parties["records_verified"].as_u64().unwrap(), head + 1);

    let again = ledger(dir.path(), &["demo"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));
}

#[test]
fn verify_passes_on_a_good_log_and_names_the_first_bad_position_after_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let ok = ledger(dir.path(), &["--json", "verify"]);
    assert!(ok.status.success());
    let report: Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(report["intact"], true);

    // Find the record at position 10 in the export and flip a byte inside its payload.
    let export = ledger(dir.path(), &["export", "--from", "10", "--to", "10"]);
    let event: Value = serde_json::from_str(stdout(&export).lines().next().unwrap()).unwrap();
    let payload = hex_decode(event["payload_msgpack_hex"].as_str().unwrap());
    let segment = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes
        .windows(payload.len())
        .position(|w| w == payload.as_slice())
        .expect("the payload is in the segment");
    bytes[at + payload.len() / 2] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();

    let damaged = ledger(dir.path(), &["--json", "verify"]);
    assert!(!damaged.status.success());
    let report: Value = serde_json::from_str(&stdout(&damaged)).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["damage"]["position"], 10);
    assert_eq!(report["records_intact"], 10);
}

#[test]
fn apply_records_commands_reports_refusals_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("commands.jsonl");
    let onboard = r#"{"command_id":"0195a000-0000-7000-8000-000000000001","actor":{"kind":"operator"},"command":{"type":"onboard_provider","tenant_id":"5e1d0000-0000-4000-8000-000000000001","tenant_country":"US","partner_number":"1000001","legal_name":"Northwind","countries_served":["US"],"support":{"email":"support@northwind.example","phone":"+1 555 0100","website":null},"first_admin":{"full_name":"Nora Admin","email":"nora@northwind.example"}}}"#;
    let duplicate = r#"{"command_id":"0195a000-0000-7000-8000-000000000002","actor":{"kind":"operator"},"command":{"type":"onboard_provider","tenant_id":"5e1d0000-0000-4000-8000-000000000002","tenant_country":"US","partner_number":"1000001","legal_name":"Northwind again","countries_served":["US"],"support":{"email":"support@northwind.example","phone":"+1 555 0100","website":null},"first_admin":{"full_name":"Other Admin","email":"other@northwind.example"}}}"#;
    std::fs::write(&file, format!("{onboard}\n{duplicate}\n")).unwrap();
    let data = dir.path().join("data");

    let first = ledger(&data, &["--json", "apply", file.to_str().unwrap()]);
    assert!(
        !first.status.success(),
        "the duplicate partner number is refused"
    );
    let lines: Vec<Value> = stdout(&first)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2]["summary"],
        serde_json::json!({"recorded": 1, "refused": 1, "replayed": 0})
    );
    assert_eq!(lines[0]["status"], "recorded");
    assert_eq!(lines[0]["secrets"][0]["kind"], "temporary_password");
    assert_eq!(lines[1]["status"], "refused");
    assert!(
        lines[1]["rule"]
            .as_str()
            .unwrap()
            .contains("partner-number")
    );

    let recorded = lines[0]["events"].as_array().unwrap().len();
    assert_eq!(
        stdout(&ledger(&data, &["export"])).lines().count(),
        recorded
    );

    // Applying the same file again records nothing new: the first line is a replay.
    let second = ledger(
        &data,
        &["--json", "apply", "--keep-going", file.to_str().unwrap()],
    );
    let lines: Vec<Value> = stdout(&second)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "replayed");
    assert_eq!(lines[0]["secrets"].as_array().unwrap().len(), 0);
    assert_eq!(
        lines[2]["summary"],
        serde_json::json!({"recorded": 0, "refused": 1, "replayed": 1})
    );
    let export = ledger(&data, &["export"]);
    assert_eq!(
        stdout(&export).lines().count(),
        recorded,
        "nothing new was appended"
    );

    // A malformed line is refused before anything is applied from it.
    std::fs::write(&file, "{\"command_id\": 1}\n").unwrap();
    let bad = ledger(&data, &["apply", file.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1"));
}

#[test]
fn export_round_trips_every_event_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let parties = demo(dir.path());
    let head = parties["head_position"].as_u64().unwrap();
    let jsonl = stdout(&ledger(dir.path(), &["export"]));
    let events: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len() as u64, head + 1);
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["position"].as_u64().unwrap(), index as u64);
        let bytes = hex_decode(event["payload_msgpack_hex"].as_str().unwrap());
        let decoded = domain::Event::decode(
            event["event_type"].as_str().unwrap(),
            event["schema_version"].as_u64().unwrap() as u16,
            &bytes,
        )
        .unwrap();
        let mut json = serde_json::to_value(&decoded).unwrap();
        json.as_object_mut().unwrap().remove("type");
        assert_eq!(json, event["payload"], "payload JSON matches the bytes");
        assert_eq!(
            decoded.encode().unwrap(),
            bytes,
            "re-encoding gives the same bytes"
        );
    }
    let csv = stdout(&ledger(dir.path(), &["export", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.records().count() as u64, head + 1);

    // A time range: everything up to the first event's time includes it.
    let first_time = events[0]["recorded_at"].as_str().unwrap();
    let until_first = stdout(&ledger(dir.path(), &["export", "--to", first_time]));
    assert!(until_first.lines().count() >= 1);
    let bad = ledger(dir.path(), &["export", "--from", "yesterday"]);
    assert!(!bad.status.success());
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Many lines in flight at once are still decided in file order: a line that collides with
/// the one before it is refused, never the earlier one, and every answer is printed in order.
#[test]
fn apply_decides_lines_in_order_with_many_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("commands.jsonl");
    let line = |n: u32, number: u32| {
        format!(
            r#"{{"command_id":"0195a000-0000-7000-8000-{n:012}","actor":{{"kind":"operator"}},"command":{{"type":"onboard_provider","tenant_id":"5e1d0000-0000-4000-8000-{n:012}","tenant_country":"US","partner_number":"{number}","legal_name":"Provider {n}","countries_served":["US"],"support":{{"email":"support@p{n}.example","phone":"+1 555 0100","website":null}},"first_admin":{{"full_name":"Admin {n}","email":"admin@p{n}.example"}}}}}}"#
        )
    };
    let mut text = String::new();
    for n in 1..=300u32 {
        // Every tenth line takes the partner number of the line before it.
        let number = if n % 10 == 0 {
            1_000_000 + n - 1
        } else {
            1_000_000 + n
        };
        text.push_str(&line(n, number));
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let data = dir.path().join("data");
    let applied = ledger(
        &data,
        &["--json", "apply", "--keep-going", file.to_str().unwrap()],
    );
    assert!(!applied.status.success(), "30 lines are refused");
    let lines: Vec<Value> = stdout(&applied)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 301);
    for (index, answer) in lines[..300].iter().enumerate() {
        let n = index + 1;
        assert_eq!(answer["line"], n);
        let expected = if n % 10 == 0 { "refused" } else { "recorded" };
        assert_eq!(answer["status"], expected, "line {n}: {answer}");
    }
    assert_eq!(
        lines[300]["summary"],
        serde_json::json!({"recorded": 270, "refused": 30, "replayed": 0})
    );
}

/// A temporary password change carries no password, so `apply` cannot record it: the log
/// would say the password changed while the credential store still holds the temporary one.
#[test]
fn apply_refuses_a_password_change_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("commands.jsonl");
    let change = r#"{"command_id":"0195a000-0000-7000-8000-000000000009","actor":{"kind":"user","user_id":"0195a000-0000-7000-8000-0000000000aa"},"command":{"type":"change_temporary_password","partner_id":"0195a000-0000-7000-8000-0000000000bb"}}"#;
    std::fs::write(&file, format!("{change}\n")).unwrap();
    let data = dir.path().join("data");
    let applied = ledger(&data, &["--json", "apply", file.to_str().unwrap()]);
    assert!(!applied.status.success());
    let lines: Vec<Value> = stdout(&applied)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "refused", "{lines:?}");
    assert_eq!(lines[0]["rule"], "password-change-needs-sign-in");
    assert_eq!(stdout(&ledger(&data, &["export"])).lines().count(), 0);
}
