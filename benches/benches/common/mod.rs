//! What the benchmarks share: the means of the last measured samples (for the ratios and
//! figures they print), their event, stream, runtime and temporary directory.

// Each benchmark uses the part it needs.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use store::{NewEvent, StreamName};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Payload bytes of every benchmark event.
pub const PAYLOAD_BYTES: usize = 200;

/// Per-iteration means measured so far, by benchmark.
static MEANS: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Keeps the latest call's mean: criterion's last calls are its measured samples.
pub fn record_mean(name: &'static str, iterations: u64, elapsed: Duration) {
    let mut means = MEANS.lock().unwrap_or_else(|p| p.into_inner());
    means.retain(|(n, _)| *n != name);
    means.push((name, elapsed.as_secs_f64() / iterations.max(1) as f64));
}

/// The mean seconds per iteration of `name`'s last sample.
pub fn mean(name: &str) -> Option<f64> {
    let means = MEANS.lock().unwrap_or_else(|p| p.into_inner());
    means.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

/// A benchmark event whose payload depends on `n`.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "BenchHappened".into(),
        schema_version: 1,
        recorded_at: chrono::Utc::now(),
        actor: "bench-op".into(),
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        payload: (0..PAYLOAD_BYTES).map(|i| (i as u64 ^ n) as u8).collect(),
    }
}

/// One of 1,000 streams.
pub fn stream(n: u64) -> StreamName {
    StreamName::new(format!("partner-{:03}", n % 1000)).unwrap_or_else(|e| panic!("{e}"))
}

/// The runtime of the program on this machine's two cores.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// A temporary directory on the same disk as the build (not a tmpfs).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap_or_else(|e| panic!("temp dir: {e}"))
}
