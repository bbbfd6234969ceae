//! The command handler on the file log (issue 20): `submit_order` from one submitter and from
//! 64 at once, beside a raw write + fdatasync loop on the same disk in the same run, and the
//! same commands through a store that does not pipeline (one command at a time, as before
//! the pipeline), so that the gain is measured side by side.
//!
//! The world is the demo's (`csp-ledger demo`, built here with the bench profile): Sam of
//! Northwind submits orders for Alpine Ski House through Contoso.
//!
//! `cargo bench -p benches --bench handler`.

/// The program's allocator, so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{mean, record_mean, runtime};
use credentials::{CredentialStore, HashCost};
use criterion::{Criterion, Throughput, criterion_main};
use domain::commands::{OrderLine, SubmitOrder};
use domain::types::ProductFamily;
use domain::{Actor, CustomerId, PartnerId, Proof, UserId};
use filelog::{FileStore, FileStoreConfig};
use handler::{CommandHandler, CommandRequest, HandlerConfig, SystemClock};
use store::{
    AppendResult, Direction, EventFilter, EventStore, ExpectedRevision, NewEvent, Position,
    ReadFrom, RecordedEvent, StoreError, StreamName, SubscribeFrom, Subscription, VerifyReport,
};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Concurrent submitters.
const SUBMITTERS: usize = 64;
/// Bytes of one `OrderSubmitted` record on disk, about: for the raw loop.
const RECORD_BYTES: usize = 900;

/// The store, hiding that it pipelines: the handler then appends one command at a time.
struct Serial(Arc<FileStore>);

#[async_trait::async_trait]
impl EventStore for Serial {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.0.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from, direction, limit).await
    }
    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(from, direction, limit).await
    }
    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.0.stream_revision(stream).await
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.0.head().await
    }
    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription {
        self.0.clone().subscribe_all(from, filter)
    }
    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.0.verify().await
    }
}

/// Who orders what, from the demo's answer.
#[derive(Clone, Copy)]
struct Order {
    sam: UserId,
    provider: PartnerId,
    reseller: PartnerId,
    customer: CustomerId,
}

impl Order {
    fn request(&self) -> CommandRequest {
        CommandRequest {
            command_id: Uuid::now_v7(),
            actor: Actor::user(self.sam),
            proof: Proof::SignIn,
            command: SubmitOrder {
                provider_id: self.provider,
                customer_id: self.customer,
                reseller_id: self.reseller,
                lines: vec![OrderLine {
                    offer_id: "CFQ7TTC0LH18:0001".into(),
                    product_family: ProductFamily::Azure,
                    quantity: 1,
                }],
            }
            .into(),
            correlation_id: None,
        }
    }
}

/// Builds the binary with this profile and runs its demo into `data`.
fn demo(data: &Path) -> Order {
    let built = Process::new(env!("CARGO"))
        .args([
            "build",
            "--profile",
            "bench",
            "-p",
            "csp-ledger",
            "--message-format=json",
            "--quiet",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cargo build: {e}"));
    assert!(built.status.success(), "cargo build -p csp-ledger failed");
    let binary: PathBuf = String::from_utf8_lossy(&built.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "csp-ledger")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no csp-ledger executable in cargo's messages"));
    let output = Process::new(binary)
        .arg("--data")
        .arg(data)
        .args(["--json", "demo"])
        .output()
        .unwrap_or_else(|e| panic!("csp-ledger demo: {e}"));
    assert!(output.status.success(), "csp-ledger demo failed");
    let story: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("demo json: {e}"));
    let named = |list: &str, name: &str, field: &str| -> Uuid {
        story[list]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["name"] == name))
            .and_then(|item| item[field].as_str())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in the demo's {list}"))
    };
    let sam = story["users"]
        .as_array()
        .and_then(|users| {
            users
                .iter()
                .find(|user| user["email"] == "sam@northwinddistribution.example")
        })
        .and_then(|user| user["user_id"].as_str())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("Sam not in the demo's users"));
    Order {
        sam: UserId(sam),
        provider: PartnerId(named("providers", "Northwind Distribution", "partner_id")),
        reseller: PartnerId(named("resellers", "Contoso Cloud", "partner_id")),
        customer: CustomerId(named("customers", "Alpine Ski House", "customer_id")),
    }
}

async fn handler_over<S: EventStore + ?Sized>(store: Arc<S>) -> Arc<CommandHandler<S>> {
    let credentials = CredentialStore::in_memory(HashCost::Minimal)
        .unwrap_or_else(|e| panic!("credentials: {e}"));
    Arc::new(
        CommandHandler::new(
            store,
            Arc::new(credentials),
            Arc::new(SystemClock),
            HandlerConfig::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("handler: {e}")),
    )
}

/// Submits `iterations` orders from `submitters` tasks at once; returns the time taken.
fn submit<S: EventStore + ?Sized>(
    runtime: &Runtime,
    handler: &Arc<CommandHandler<S>>,
    order: Order,
    submitters: usize,
    iterations: u64,
) -> Duration {
    let each = iterations.div_ceil(submitters as u64);
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..submitters)
            .map(|_| {
                let handler = handler.clone();
                tokio::spawn(async move {
                    for _ in 0..each {
                        handler
                            .handle(order.request())
                            .await
                            .unwrap_or_else(|e| panic!("submit_order: {e}"));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap_or_else(|e| panic!("{e}"));
        }
        // The time of the `iterations` commands criterion asked for.
        start
            .elapsed()
            .mul_f64(iterations as f64 / (each * submitters as u64) as f64)
    })
}

fn handler_benches(c: &mut Criterion) {
    let runtime = runtime();
    let dir = common::temp_dir("handler-bench-");
    let data = dir.path().join("data");
    let order = demo(&data);
    let store =
        FileStore::open(&data, FileStoreConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let pipelined = runtime.block_on(handler_over(store.clone()));
    let serial = runtime.block_on(handler_over(Arc::new(Serial(store.clone()))));

    let mut group = c.benchmark_group("handler");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(dir.path().join("raw"))
            .unwrap_or_else(|e| panic!("{e}"));
        let record = vec![0x5a_u8; RECORD_BYTES];
        let mut offset = 0u64;
        group.bench_function("raw_fdatasync", |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    file.write_all_at(&record, offset)
                        .unwrap_or_else(|e| panic!("{e}"));
                    file.sync_data().unwrap_or_else(|e| panic!("{e}"));
                    offset += RECORD_BYTES as u64;
                }
                let elapsed = start.elapsed();
                record_mean("raw_fdatasync", iterations, elapsed);
                elapsed
            })
        });
    }
    group.bench_function("submit_order_single", |b| {
        b.iter_custom(|iterations| {
            let elapsed = submit(&runtime, &pipelined, order, 1, iterations);
            record_mean("submit_order_single", iterations, elapsed);
            elapsed
        })
    });
    group.bench_function("submit_order_64", |b| {
        b.iter_custom(|iterations| {
            let elapsed = submit(&runtime, &pipelined, order, SUBMITTERS, iterations);
            record_mean("submit_order_64", iterations, elapsed);
            elapsed
        })
    });
    group.bench_function("submit_order_64_serial", |b| {
        b.iter_custom(|iterations| {
            let elapsed = submit(&runtime, &serial, order, SUBMITTERS, iterations);
            record_mean("submit_order_64_serial", iterations, elapsed);
            elapsed
        })
    });
    group.finish();
    if let (Some(single), Some(raw)) = (mean("submit_order_single"), mean("raw_fdatasync")) {
        eprintln!(
            "handler/submit_order_single: {:.0} µs vs raw write+fdatasync {:.0} µs: {:.2}× (target ≤ 1.5×)",
            single * 1e6,
            raw * 1e6,
            single / raw
        );
    }
    for (name, target) in [
        ("submit_order_64", "target ≥ 100,000"),
        (
            "submit_order_64_serial",
            "one command at a time, for comparison",
        ),
    ] {
        if let Some(mean) = mean(name) {
            eprintln!("handler/{name}: {:.0} commands/s ({target})", 1.0 / mean);
        }
    }
}

// `criterion_group!` makes an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::handler_benches);
}
criterion_main!(group::benches);
