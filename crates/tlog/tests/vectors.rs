//! Conformance with the RFC 6962 / RFC 9162 proof vectors of transparency-dev/merkle in
//! `tests/vectors/rfc6962/` (a copy of the shared vectors, Apache-2.0, their LICENSE beside
//! them, so that a clean clone has them): every `wantErr: false` case verifies, every
//! `wantErr: true` case is refused.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tlog::{Hash, parse_hash, verify_consistency, verify_inclusion, verify_subtree_inclusion};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc6962")
}

fn cases(kind: &str) -> Vec<(PathBuf, serde_json::Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&vectors_dir().join(kind), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            (path, value)
        })
        .collect()
}

/// A hash of the vectors: the empty string or a wrong length is not a hash, and a verifier
/// given one refuses the case.
fn hash(text: &str) -> Option<Hash> {
    parse_hash(text)
}

fn hashes(list: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    list.iter().flatten().map(|text| hash(text)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubtreeInclusion {
    leaf_idx: u64,
    start: u64,
    end: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

/// Cases this verifier answers otherwise, with the reason. transparency-dev's verifier takes
/// roots as opaque byte strings, so for equal sizes it accepts two equal 12-byte "roots";
/// here a root is a 32-byte SHA-256 hash, and a 12-byte string is refused when it is read.
const KNOWN_DIFFERENCES: &[&str] =
    &["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"];

fn check_all<T: for<'de> Deserialize<'de>>(
    kind: &str,
    want_err: impl Fn(&T) -> bool,
    verifies: impl Fn(&T) -> bool,
) -> usize {
    let cases = cases(kind);
    assert!(
        !cases.is_empty(),
        "no vectors under {kind}: are tests/vectors/rfc6962 checked out?"
    );
    let mut failures = Vec::new();
    for (path, value) in &cases {
        let case: T = match serde_json::from_value(value.clone()) {
            Ok(case) => case,
            Err(error) => panic!("{}: {error}", path.display()),
        };
        let known = KNOWN_DIFFERENCES.iter().any(|name| path.ends_with(name));
        if (verifies(&case) == want_err(&case)) != known {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong: {failures:#?}",
        failures.len(),
        cases.len()
    );
    cases.len()
}

#[test]
fn every_inclusion_vector() {
    let count = check_all(
        "inclusion",
        |case: &Inclusion| case.want_err,
        |case| {
            let (Some(root), Some(leaf), Some(proof)) =
                (hash(&case.root), hash(&case.leaf_hash), hashes(&case.proof))
            else {
                return false;
            };
            verify_inclusion(&leaf, case.leaf_idx, case.tree_size, &proof, &root).is_ok()
        },
    );
    assert_eq!(count, 98);
}

#[test]
fn every_consistency_vector() {
    let count = check_all(
        "consistency",
        |case: &Consistency| case.want_err,
        |case| {
            let (Some(root1), Some(root2), Some(proof)) =
                (hash(&case.root1), hash(&case.root2), hashes(&case.proof))
            else {
                return false;
            };
            verify_consistency(case.size1, case.size2, &proof, &root1, &root2).is_ok()
        },
    );
    assert_eq!(count, 98);
}

#[test]
fn every_subtree_inclusion_vector() {
    let count = check_all(
        "subtreeinclusion",
        |case: &SubtreeInclusion| case.want_err,
        |case| {
            let (Some(root), Some(leaf), Some(proof)) =
                (hash(&case.root), hash(&case.leaf_hash), hashes(&case.proof))
            else {
                return false;
            };
            verify_subtree_inclusion(&leaf, case.leaf_idx, case.start, case.end, &proof, &root)
                .is_ok()
        },
    );
    assert_eq!(count, 204);
}
