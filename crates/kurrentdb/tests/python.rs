//! KurrentDB's official Python client (`kurrentdbclient`, from PyPI) against csp-ledger's
//! KurrentDB endpoint: append, read a stream and `$all`, catch up a subscription.
//!
//! The client lives in a virtual environment that `.ci/run` creates at `target/pyenv`; set
//! `CSP_LEDGER_PYENV` to use another. The test is ignored in a plain `cargo test`; `.ci/run`
//! runs it with `--ignored` once it has made the environment.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use store::MemoryStore;

use common::{ADMIN, Endpoint, READER};

fn python() -> Option<PathBuf> {
    let pyenv = std::env::var_os("CSP_LEDGER_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv"));
    let python = pyenv.join("bin/python");
    python.exists().then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python environment with kurrentdbclient that .ci/run makes"]
async fn official_python_client_appends_reads_and_subscribes() {
    let python = python().unwrap_or_else(|| {
        panic!("no Python virtual environment with kurrentdbclient (run .ci/run, or set CSP_LEDGER_PYENV)")
    });
    // The Python client sends credentials only over TLS, so this endpoint serves TLS with a
    // throw-away self-signed certificate for 127.0.0.1.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(output) if output.status.success() => {}
        other => panic!("openssl could not make a test certificate: {other:?}"),
    }
    let read = |path: &PathBuf| {
        std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    let tls = kurrentdb::TlsIdentity {
        certificate_pem: read(&cert),
        private_key_pem: read(&key),
    };
    let address = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = Endpoint::start_with(Arc::new(MemoryStore::new()), address, Some(tls)).await;
    let url = |(user, password): (&str, &str)| {
        format!(
            "kurrentdb://{user}:{password}@{}?tls=true&tlsCaFile={}",
            endpoint.address,
            cert.display()
        )
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/official_client.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .env("ENDPOINT_ADMIN_URL", url(ADMIN))
        .env("ENDPOINT_READER_URL", url(READER))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("the Python client did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("python official client: ok"),
        "{stdout}\n{stderr}"
    );
}
