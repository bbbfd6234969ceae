//! The published formats in `schemas/` agree with the code, and every golden sample of every
//! version still decodes.
//!
//! `schemas/events/v{N}/{Type}.schema.json` is the JSON Schema of an event type's payload at
//! version N; `schemas/events/v{N}/{Type}.msgpack` a golden MessagePack payload of it;
//! `schemas/commands.schema.json` the command JSON. When a change to the code is deliberate
//! (a new event type, a new version), regenerate with
//! `CSP_LEDGER_BLESS=1 cargo test -p tests --test schemas` and commit the new files. Golden
//! samples of existing versions are never rewritten: they are the promise that old data
//! stays readable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use domain::{EVENT_TYPES, Event, event_schemas, sample_events};

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("schemas")
}

fn blessing() -> bool {
    std::env::var_os("CSP_LEDGER_BLESS").is_some()
}

fn pretty(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    text
}

/// Compares `path` with `expected`, or writes it when blessing.
fn check_file(path: &Path, expected: &[u8], problems: &mut Vec<String>) {
    match std::fs::read(path) {
        Ok(actual) if actual == expected => {}
        _ if blessing() => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, expected).unwrap();
        }
        Ok(_) => problems.push(format!("{} differs from the code", path.display())),
        Err(_) => problems.push(format!("{} is missing", path.display())),
    }
}

fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "schemas/ and the code disagree:\n  {}\nIf the change is deliberate, run `CSP_LEDGER_BLESS=1 cargo test -p tests --test schemas` and commit schemas/.",
        problems.join("\n  ")
    );
}

#[test]
fn event_schemas_match_the_code() {
    let dir = schemas_dir().join("events");
    let mut problems = Vec::new();
    let mut published = BTreeSet::new();
    for (event_type, schema) in event_schemas() {
        let path = dir
            .join(format!("v{}", event_type.version))
            .join(format!("{}.schema.json", event_type.name));
        check_file(&path, pretty(&schema).as_bytes(), &mut problems);
        published.insert(path);
    }
    // A schema file for a type or version the code no longer has is a broken promise too,
    // unless it is an older version (kept forever, with its golden sample).
    for entry in walk(&dir) {
        if entry.extension().is_some_and(|e| e == "json") && !published.contains(&entry) {
            let name = entry
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".schema.json", "");
            let version: u16 = entry
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            match EVENT_TYPES.iter().find(|t| t.name == name) {
                Some(current) if version < current.version => {}
                _ => problems.push(format!(
                    "{} names no event type of the code",
                    entry.display()
                )),
            }
        }
    }
    report(problems);
}

#[test]
fn command_schema_matches_the_code() {
    let mut problems = Vec::new();
    check_file(
        &schemas_dir().join("commands.schema.json"),
        pretty(&domain::command_schema()).as_bytes(),
        &mut problems,
    );
    report(problems);
}

#[test]
fn every_current_version_has_a_golden_sample_equal_to_the_code() {
    let dir = schemas_dir().join("events");
    let samples = sample_events();
    assert_eq!(
        samples.len(),
        EVENT_TYPES.len(),
        "one sample per event type"
    );
    let mut problems = Vec::new();
    for sample in &samples {
        let path = dir
            .join(format!("v{}", sample.schema_version()))
            .join(format!("{}.msgpack", sample.event_type()));
        let bytes = sample.encode().unwrap();
        // Golden samples are written once and never rewritten: only a missing one is blessed.
        match std::fs::read(&path) {
            Ok(stored) if stored == bytes => {}
            Ok(_) => problems.push(format!(
                "{} no longer matches the encoding of the sample; a released version's bytes must not change",
                path.display()
            )),
            Err(_) if blessing() => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            Err(_) => problems.push(format!("{} is missing", path.display())),
        }
    }
    report(problems);
}

#[test]
fn every_golden_sample_of_every_version_decodes() {
    let dir = schemas_dir().join("events");
    let samples = sample_events();
    let mut decoded = 0;
    for path in walk(&dir) {
        if path.extension().is_none_or(|e| e != "msgpack") {
            continue;
        }
        let event_type = path.file_stem().unwrap().to_string_lossy().into_owned();
        let version: u16 = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} is not under a v{{N}} folder", path.display()));
        let bytes = std::fs::read(&path).unwrap();
        let event = Event::decode(&event_type, version, &bytes)
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
        assert_eq!(event.event_type(), event_type);
        // A sample of the current version decodes to exactly the code's sample; older ones
        // are upcast, so only their type is checked.
        if let Some(sample) = samples.iter().find(|s| s.event_type() == event_type)
            && sample.schema_version() == version
        {
            assert_eq!(&event, sample, "{}", path.display());
        }
        decoded += 1;
    }
    assert!(
        decoded >= EVENT_TYPES.len(),
        "only {decoded} golden samples found"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}
