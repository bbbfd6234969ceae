//! `csp-ledger`: the ledger's command-line program over the embedded store.

mod apply;
mod demo;
mod query;
mod render;
mod serve;
mod verifiable;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use credentials::{CredentialStore, HashCost};
use filelog::{FileStore, FileStoreConfig};
use handler::{CommandHandler, HandlerConfig, SystemClock};
use store::{Direction, EventFilter, EventStore, Position, ReadFrom, SubscribeFrom};

/// mimalloc rather than the system's malloc: rebuilding the read models allocates millions
/// of small values, which it serves markedly faster (see `benches/projections`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events read per page by commands that walk the log.
const PAGE_EVENTS: usize = 4096;

/// The CSP relationship ledger.
#[derive(Parser)]
#[command(name = "csp-ledger", version, about, long_about = None)]
struct Cli {
    /// The data directory (event log and credential store).
    #[arg(
        long,
        global = true,
        env = "CSP_LEDGER_DATA",
        default_value = "./csp-ledger-data"
    )]
    data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Serve the HTTP API (commands, queries, history, event feed) until SIGINT/SIGTERM.
    Serve {
        #[command(flatten)]
        args: serve::ServeArgs,
        /// Log format: text or json.
        #[arg(long, default_value = "text")]
        log_format: LogFormat,
    },
    /// Write a realistic demo history (the seed story) into an empty data directory.
    Demo {
        /// Then serve it (needs an operator key, as `serve` does).
        #[arg(long)]
        serve: bool,
        #[command(flatten)]
        args: serve::ServeArgs,
    },
    /// Answer a query of the read models (now, or --as-of a position or time), --explain'ed.
    Query {
        #[command(flatten)]
        args: query::QueryArgs,
    },
    /// Rebuild every projection from the log, with progress, and save a checkpoint.
    Replay {
        /// Where to save it: by default the checkpoint `serve` starts from. Beside a
        /// running `serve`, give another path (that one is the server's to write).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Apply JSON Lines of commands: {"command_id", "actor", "command"} per line.
    Apply {
        /// The file to read, or `-` for standard input.
        file: String,
        /// Go on after a refused command (the exit code is still non-zero).
        #[arg(long)]
        keep_going: bool,
    },
    /// Check every record and the whole hash chain (exit 1 with the first bad position),
    /// and the Merkle tree's tiles against the log and the latest signed checkpoint.
    Verify,
    /// Print the latest signed checkpoint (a C2SP signed note) that serve published.
    Checkpoint {
        /// Print the verifier key checkpoints are checked with instead.
        #[arg(long)]
        verifier_key: bool,
    },
    /// Print an inclusion or consistency proof (JSON) from the tree's tiles.
    Prove {
        #[command(subcommand)]
        what: verifiable::Prove,
    },
    /// Check a signed checkpoint, an export and proofs offline, with only the verifier key
    /// (exit 1 naming the first failing line or proof).
    Audit {
        #[command(flatten)]
        args: verifiable::AuditArgs,
    },
    /// The events of a stream, or of every stream naming an id, in order.
    History {
        /// A stream name (`partner-…`) or an id that stream names contain.
        target: String,
    },
    /// Export events of a position or time range as JSON Lines or CSV.
    Export {
        /// First position or RFC 3339 time (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Last position or RFC 3339 time (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Follow new events live.
    Tail {
        /// `start`, `end` (default), or a position to continue after.
        #[arg(long, default_value = "end")]
        from: String,
        /// Only events of this type (repeatable).
        #[arg(long = "type")]
        event_types: Vec<String>,
        /// Only events of streams starting with this prefix (repeatable).
        #[arg(long = "stream-prefix")]
        stream_prefixes: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// Logs go to stderr (stdout is for results). The server logs at `info` by default, other
/// commands at `warn`; `RUST_LOG` overrides both.
fn init_logs(cli: &Cli) {
    let (default_level, json) = match &cli.command {
        Commands::Serve { log_format, .. } => ("info", matches!(log_format, LogFormat::Json)),
        Commands::Demo { serve: true, .. } => ("info", false),
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli);
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data = DataDir(cli.data.clone());
    match cli.command {
        Commands::Serve { args, .. } => serve::run(&data, &args).await,
        Commands::Demo { serve, mut args } => {
            let code = demo::run(&data, cli.json).await?;
            if serve && code == ExitCode::SUCCESS {
                // The demo's customers and enrolling tenants prove themselves through the
                // development directory (on a loopback address only, as serve checks).
                args.dev_directory = true;
                serve::run(&data, &args).await
            } else {
                Ok(code)
            }
        }
        Commands::Query { args } => query::query(&data, &args, cli.json).await,
        Commands::Replay { checkpoint } => {
            let checkpoint = checkpoint.unwrap_or_else(|| data.projections_checkpoint());
            query::replay(&data, &checkpoint, cli.json).await
        }
        Commands::Apply { file, keep_going } => {
            apply::run(&data, &file, keep_going, cli.json).await
        }
        Commands::Verify => verify(&data, cli.json),
        Commands::Checkpoint { verifier_key } => verifiable::checkpoint(&data, verifier_key),
        Commands::Prove { what } => verifiable::prove(&data, &what),
        Commands::Audit { args } => verifiable::audit(&args, cli.json),
        Commands::History { target } => history(&data, &target, cli.json).await,
        Commands::Export { from, to, format } => export(&data, from, to, format).await,
        Commands::Tail {
            from,
            event_types,
            stream_prefixes,
        } => {
            let filter = EventFilter {
                event_types,
                stream_prefixes,
            };
            tail(&data, &from, filter, cli.json).await
        }
    }
}

/// How often a following reader (`tail`) looks for the writer's new records.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The layout of a data directory.
pub struct DataDir(PathBuf);

impl DataDir {
    /// The event log's directory (the store keeps its segments under `log/` and its lock
    /// file here).
    pub fn log(&self) -> &Path {
        &self.0
    }

    /// The credential store's file.
    pub fn credentials(&self) -> PathBuf {
        self.0.join("credentials.json")
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Opens the embedded store for writing (takes the directory's lock).
    pub fn open_store(&self) -> anyhow::Result<Arc<FileStore>> {
        std::fs::create_dir_all(self.log())
            .with_context(|| format!("creating {}", self.log().display()))?;
        FileStore::open(self.log(), FileStoreConfig::default())
            .with_context(|| format!("opening the event log in {}", self.log().display()))
    }

    /// Opens the embedded log for reading only: beside a running `serve` (it takes no lock)
    /// or without one. Following, it keeps up with what the writer appends.
    pub fn open_reader(&self, follow: bool) -> anyhow::Result<Arc<FileStore>> {
        FileStore::open_read_only(self.log(), follow.then_some(FOLLOW_INTERVAL))
            .with_context(|| format!("reading the event log in {}", self.log().display()))
    }

    /// The read models' checkpoint file.
    pub fn projections_checkpoint(&self) -> PathBuf {
        self.0.join("projections.checkpoint")
    }

    /// The file of auditor and service keys (hashes only).
    pub fn api_keys(&self) -> PathBuf {
        self.0.join("api-keys.json")
    }

    /// The file of signed-in sessions (token hashes only), kept by `serve` across restarts.
    pub fn sessions(&self) -> PathBuf {
        self.0.join("sessions.json")
    }

    /// Opens the store, the credential store and a command handler over them.
    pub async fn open_handler(&self) -> anyhow::Result<CommandHandler<FileStore>> {
        let store = self.open_store()?;
        self.open_handler_over(store).await
    }

    /// A command handler over an open store (of any backend).
    pub async fn open_handler_over<S: EventStore + ?Sized>(
        &self,
        store: Arc<S>,
    ) -> anyhow::Result<CommandHandler<S>> {
        let credentials = CredentialStore::open(self.credentials(), HashCost::Standard)
            .context("opening the credential store")?;
        CommandHandler::new(
            store,
            Arc::new(credentials),
            Arc::new(SystemClock),
            HandlerConfig::default(),
        )
        .await
        .context("loading the ledger state from the log")
    }
}

fn verify(data: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let mut faults = Vec::new();
    let mut foreign = 0u64;
    // The tiles are checked in the same pass over the log, on a thread of their own.
    let mut tree_check = verifiable::TreeCheck::start(data)?;
    let report = filelog::verify_dir_visiting(data.log(), |recorded| {
        if let Some(check) = &mut tree_check {
            check.record(recorded);
        }
        match handler::read_event(recorded) {
            handler::LogEntry::Fault(fault) => faults.push(fault),
            handler::LogEntry::Foreign => foreign += 1,
            handler::LogEntry::Event(..) => {}
        }
    })
    .with_context(|| format!("verifying {}", data.log().display()))?;
    let tree = tree_check.map(verifiable::TreeCheck::finish);
    let tree_intact = tree.as_ref().is_none_or(|tree| tree.problem.is_none());
    let chain = store::codec::chain_hex(&report.chain);
    if json {
        let damage = report.damage.as_ref().map(|damage| {
            serde_json::json!({
                "position": damage.position,
                "file": damage.file,
                "offset": damage.offset,
                "reason": damage.reason,
            })
        });
        println!(
            "{}",
            serde_json::json!({
                "intact": report.damage.is_none(),
                "records_intact": report.records_intact,
                "last_position": report.last_position.map(|p| p.0),
                "chain": chain,
                "damage": damage,
                "unreadable": faults.iter().map(handler::Fault::to_json).collect::<Vec<_>>(),
                "foreign_events": foreign,
                "tree": tree.as_ref().map(verifiable::TreeReport::to_json),
            })
        );
    } else if let Some(damage) = &report.damage {
        println!("log damaged: {damage}");
        println!(
            "{} records intact before it; chain there {chain}",
            report.records_intact
        );
    } else {
        println!(
            "log intact: {} records, hash chain verified, head {}",
            report.records_intact,
            report
                .last_position
                .map_or("(empty)".to_string(), |p| p.to_string())
        );
        println!("chain value {chain}");
    }
    if !json {
        // The log is intact either way: these are records this binary cannot read, which
        // the ledger passes over (and refuses commands on their streams).
        for fault in &faults {
            println!(
                "unreadable event at position {} in {} ({} v{}): {}",
                fault.position, fault.stream, fault.event_type, fault.schema_version, fault.reason
            );
        }
        if foreign > 0 {
            println!("{foreign} events of other streams passed over");
        }
        match &tree {
            None => println!("merkle tree: no checkpoint published yet (serve publishes them)"),
            Some(tree) => match &tree.problem {
                None => println!(
                    "merkle tree intact: {} tile{} match the log, whose first {} records give the latest checkpoint's root",
                    tree.tiles_checked,
                    if tree.tiles_checked == 1 { "" } else { "s" },
                    tree.checkpoint_size.unwrap_or_default()
                ),
                Some(problem) => println!("merkle tree damaged: {problem}"),
            },
        }
    }
    Ok(if report.damage.is_none() && tree_intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn history(data: &DataDir, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = data.open_reader(false)?;
    let mut out = std::io::stdout().lock();
    let mut found = 0usize;
    let mut from = ReadFrom::Start;
    loop {
        let page = store
            .read_all(from, Direction::Forwards, PAGE_EVENTS)
            .await?;
        let Some(last) = page.last() else { break };
        from = ReadFrom::At(last.position.0 + 1);
        for event in page
            .iter()
            .filter(|e| e.stream.as_str() == target || e.stream.as_str().contains(target))
        {
            found += 1;
            if json {
                writeln!(out, "{}", render::event_json(event))?;
            } else {
                writeln!(out, "{}", render::event_line(event))?;
            }
        }
    }
    if found == 0 {
        bail!("no events for {target:?}: not a stream name nor an id in one");
    }
    Ok(ExitCode::SUCCESS)
}

/// A bound of an export range: a global position or an instant.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Position(u64),
    Time(DateTime<Utc>),
}

fn parse_bound(text: &str) -> anyhow::Result<Bound> {
    if let Ok(position) = text.parse::<u64>() {
        return Ok(Bound::Position(position));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| Bound::Time(time.with_timezone(&Utc)))
        .with_context(|| format!("{text:?} is neither a position nor an RFC 3339 time"))
}

async fn export(
    data: &DataDir,
    from: Option<String>,
    to: Option<String>,
    format: ExportFormat,
) -> anyhow::Result<ExitCode> {
    let from = from.as_deref().map(parse_bound).transpose()?;
    let to = to.as_deref().map(parse_bound).transpose()?;
    let store = data.open_reader(false)?;
    let mut csv_writer = csv::Writer::from_writer(std::io::stdout().lock());
    let mut jsonl = std::io::BufWriter::new(std::io::stdout());
    if matches!(format, ExportFormat::Csv) {
        csv_writer.write_record(render::CSV_COLUMNS)?;
    }
    let mut read_from = match from {
        Some(Bound::Position(position)) => ReadFrom::At(position),
        _ => ReadFrom::Start,
    };
    'pages: loop {
        let page = store
            .read_all(read_from, Direction::Forwards, PAGE_EVENTS)
            .await?;
        let Some(last) = page.last() else { break };
        read_from = ReadFrom::At(last.position.0 + 1);
        for event in &page {
            if let Some(Bound::Time(since)) = from
                && event.recorded_at < since
            {
                continue;
            }
            let past_end = match to {
                Some(Bound::Position(until)) => event.position.0 > until,
                Some(Bound::Time(until)) => event.recorded_at > until,
                None => false,
            };
            if past_end {
                break 'pages;
            }
            match format {
                ExportFormat::Jsonl => {
                    // The embedded log's positions are its records' leaf indexes.
                    let line = server::render::event_json_in_tree(event, Some(event.position.0));
                    writeln!(jsonl, "{line}")?;
                }
                ExportFormat::Csv => csv_writer.write_record(render::event_row(event))?,
            }
        }
    }
    csv_writer.flush()?;
    jsonl.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn tail(
    data: &DataDir,
    from: &str,
    filter: EventFilter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let from =
        match from {
            "start" => SubscribeFrom::Start,
            "end" => SubscribeFrom::End,
            position => SubscribeFrom::After(Position(position.parse().with_context(|| {
                format!("--from {position:?}: expected start, end or a position")
            })?)),
        };
    let store = data.open_reader(true)?;
    let mut subscription = store.subscribe_all(from, filter);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            item = subscription.next_event() => {
                let Some(event) = item else { return Ok(ExitCode::SUCCESS) };
                let event = event?;
                if json {
                    println!("{}", render::event_json(&event));
                } else {
                    println!("{}", render::event_line(&event));
                }
            }
        }
    }
}
