//! KurrentDB's official Python client (`kurrentdbclient`, from PyPI) against csp-ledger's
//! KurrentDB endpoint: append, read a stream and `$all`, catch up a subscription.
//!
//! The client lives in a virtual environment that `.ci/run` creates at `target/pyenv` (set
//! `CSP_LEDGER_PYENV` to use another), so the test is ignored by default and `.ci/run` runs
//! it with `--ignored`; it connects over TLS with credentials, verifying the certificate.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use store::MemoryStore;

use common::{ADMIN, Endpoint, READER};

fn python() -> PathBuf {
    let pyenv = std::env::var_os("CSP_LEDGER_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv"));
    let python = pyenv.join("bin/python");
    assert!(
        python.exists(),
        "no Python virtual environment with kurrentdbclient at {} (run .ci/run, or set CSP_LEDGER_PYENV)",
        pyenv.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python virtual environment with kurrentdbclient that .ci/run installs"]
async fn official_python_client_appends_reads_and_subscribes() {
    let python = python();
    // The Python client sends credentials only over TLS, so this endpoint serves TLS with a
    // certificate generated for 127.0.0.1, which the client verifies against its authority.
    let generated = kurrentdb::tls::GeneratedTls::generate(&["127.0.0.1".into()])
        .unwrap_or_else(|e| panic!("generating a test certificate: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let cert = dir.path().join("authority.pem");
    std::fs::write(&cert, &generated.authority_pem)
        .unwrap_or_else(|e| panic!("write {}: {e}", cert.display()));
    let tls = generated.identity;
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
