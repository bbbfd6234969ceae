//! Proofs and signed checkpoints of this crate, verified by implementations this project did
//! not write (npm packages pinned in `tests/tlog-crosscheck/package-lock.json`): every
//! genuine one is accepted, every tampered one refused. `.ci/run` installs them; by hand:
//! `(cd tests/tlog-crosscheck && npm ci)`, then `cargo test -p tlog --test crosscheck -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tlog::{Checkpoint, KeyKind, MemoryTileStore, SigningKey, Tree, encode_hash, leaf_hash};

const NAME: &str = "ledger.example.com/csp";

fn crosscheck_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tlog-crosscheck")
}

fn record(i: u64) -> Vec<u8> {
    format!("{{\"position\":{i},\"type\":\"PartnerRegistered\"}}").into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hashes(list: &[tlog::Hash]) -> Vec<String> {
    list.iter().map(encode_hash).collect()
}

/// Runs the outside verifiers over `cases` and returns their verdicts.
fn outside_verdicts(cases: &[Value]) -> Result<Vec<bool>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("cases.json");
    std::fs::write(&input, serde_json::to_vec(cases)?)?;
    let output = Command::new("node")
        .arg(crosscheck_dir().join("verify.js"))
        .arg(&input)
        .current_dir(crosscheck_dir())
        .output()?;
    if !output.status.success() {
        return Err(format!("node failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

#[test]
#[ignore = "needs node and the npm packages of tests/tlog-crosscheck that .ci/run installs"]
fn outside_verifiers_accept_our_proofs_and_checkpoints_and_refuse_tampered_ones()
-> Result<(), Box<dyn std::error::Error>> {
    let key = SigningKey::from_seed(NAME, KeyKind::Ed25519, &[11; 32])?;
    let vkey = key.verifier().to_string();
    let mut tree = Tree::new(MemoryTileStore::new());
    for i in 0..1030 {
        tree.append(&record(i));
    }
    tree.flush()?;
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let mut case = |value: Value, verifies: bool| {
        cases.push(value);
        expected.push(verifies);
    };

    case(json!({"kind": "vkey", "vkey": vkey}), true);
    // Our key id with another public key.
    let other = SigningKey::from_seed(NAME, KeyKind::Ed25519, &[12; 32])?.verifier();
    let other_key = [&[0x01u8][..], &other.public_key()].concat();
    let mismatched = format!("{NAME}+{:08x}+{}", key.id(), b64(&other_key));
    case(json!({"kind": "vkey", "vkey": mismatched}), false);

    let sizes: Vec<u64> = (1..=33).chain([255, 256, 257, 511, 1024, 1030]).collect();
    for &size in &sizes {
        let root = tree.root_at(size)?;
        let indexes: Vec<u64> = if size <= 33 {
            (0..size).collect()
        } else {
            vec![0, 1, size / 2, size - 2, size - 1]
        };
        for index in indexes {
            let proof = tree.inclusion_proof(index, size)?;
            let leaf = leaf_hash(&record(index));
            let genuine = json!({"kind": "inclusion", "leaf": encode_hash(&leaf), "index": index,
                "size": size, "root": encode_hash(&root), "proof": hashes(&proof)});
            case(genuine.clone(), true);
            let mut other_leaf = leaf;
            other_leaf[0] ^= 1;
            let mut tampered = genuine.clone();
            tampered["leaf"] = json!(encode_hash(&other_leaf));
            case(tampered, false);
            if !proof.is_empty() {
                let mut changed = proof.clone();
                changed[proof.len() / 2][31] ^= 0x40;
                let mut tampered = genuine.clone();
                tampered["proof"] = json!(hashes(&changed));
                case(tampered, false);
            }
            if index + 1 < size {
                let mut tampered = genuine.clone();
                tampered["index"] = json!(index + 1);
                case(tampered, false);
            }
        }
        for &from in sizes.iter().filter(|&&from| from < size) {
            let old_root = tree.root_at(from)?;
            let proof = tree.consistency_proof(from, size)?;
            let genuine = json!({"kind": "consistency", "size1": from, "size2": size,
                "root1": encode_hash(&old_root), "root2": encode_hash(&root), "proof": hashes(&proof)});
            case(genuine.clone(), true);
            let mut changed = proof.clone();
            changed[0][0] ^= 1;
            let mut tampered = genuine.clone();
            tampered["proof"] = json!(hashes(&changed));
            case(tampered, false);
            let mut tampered = genuine.clone();
            tampered["root1"] = json!(encode_hash(&root));
            case(tampered, false);
        }
    }

    // Signed checkpoints, checked by Sigstore's verifier with the inclusion of a record.
    for (size, index) in [(1u64, 0u64), (7, 3), (256, 255), (1030, 517)] {
        let checkpoint = Checkpoint::new(NAME, size, tree.root_at(size)?);
        let note = key.sign_checkpoint(&checkpoint)?;
        let proof = tree.inclusion_proof(index, size)?;
        let genuine = json!({"kind": "signed-inclusion", "vkey": vkey, "note": note,
            "size": size, "index": index, "record": b64(&record(index)), "proof": hashes(&proof)});
        case(genuine.clone(), true);
        // A checkpoint signed by another key, or with a changed size, root or signature.
        let forged = SigningKey::from_seed(NAME, KeyKind::Ed25519, &[13; 32])?
            .sign_checkpoint(&checkpoint)?;
        let mut tampered = genuine.clone();
        tampered["note"] = json!(forged);
        case(tampered, false);
        let mut tampered = genuine.clone();
        tampered["note"] =
            json!(note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1));
        case(tampered, false);
        let signature_at = note.len() - 10;
        let mut bytes = note.clone().into_bytes();
        bytes[signature_at] = if bytes[signature_at] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let mut tampered = genuine.clone();
        tampered["note"] = json!(String::from_utf8(bytes)?);
        case(tampered, false);
        let mut tampered = genuine.clone();
        tampered["record"] = json!(b64(&record(index + 1)));
        case(tampered, false);
    }

    let verdicts = outside_verdicts(&cases)?;
    assert_eq!(verdicts.len(), expected.len());
    let wrong: Vec<&Value> = cases
        .iter()
        .zip(verdicts.iter().zip(&expected))
        .filter(|(_, (verdict, expected))| verdict != expected)
        .map(|(case, _)| case)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases judged otherwise: {:#?}",
        wrong.len(),
        cases.len(),
        &wrong[..wrong.len().min(5)]
    );
    Ok(())
}
