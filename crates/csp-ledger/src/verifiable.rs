//! The verifiable history on the command line: `serve`'s checkpoint flags and the start of
//! the tree's follower, `checkpoint`, `prove`, the offline `audit` of an export, and the
//! tile check of `verify`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use store::EventStore;
use transparency::{ConsistencyProof, KeySource, Layout, Transparency, TransparencyConfig};

use crate::DataDir;

/// The key name a generated signing key gets when no origin is given.
const DEFAULT_KEY_NAME: &str = "csp-ledger";

/// `serve`'s flags for the signed checkpoints.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Shortest time between two signed checkpoints, in milliseconds; one is published only
    /// when records were appended since the last.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_interval_ms: u64,
    /// The checkpoints' origin line (by convention a schema-less URL naming the log, e.g.
    /// `ledger.example.com/csp`); default: the signing key's name. A key generated at first
    /// start is named after it.
    #[arg(long)]
    pub checkpoint_origin: Option<String>,
    /// A signing key file (Go's note signer format, `PRIVATE+KEY+…`); default: the key in
    /// the data directory's `tlog/checkpoint.key`, generated at first start (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub checkpoint_key_file: Option<PathBuf>,
}

impl DataDir {
    /// The Merkle tree's directory: tiles, kept checkpoints, the generated signing key.
    pub fn tree(&self) -> Layout {
        Layout::new(self.root().join("tlog"))
    }
}

/// Starts keeping the tree over `store` and publishing checkpoints (for `serve`).
pub async fn start(
    data: &DataDir,
    args: &CheckpointArgs,
    store: Arc<dyn EventStore>,
) -> anyhow::Result<Transparency> {
    let key = match &args.checkpoint_key_file {
        Some(path) => KeySource::File(path.clone()),
        None => KeySource::Generated {
            name: args
                .checkpoint_origin
                .clone()
                .unwrap_or_else(|| DEFAULT_KEY_NAME.to_string()),
        },
    };
    let config = TransparencyConfig {
        directory: data.tree().dir().to_path_buf(),
        key,
        origin: args.checkpoint_origin.clone(),
        publish_interval: Duration::from_millis(args.checkpoint_interval_ms.max(1)),
    };
    Transparency::start(store, config)
        .await
        .context("starting the Merkle tree of the log")
}

/// At `serve`'s clean stop: a last checkpoint, and the tiles synced so that the next start
/// reopens the tree from them (a failure only costs a rebuild from the log then).
pub async fn stop(tree: &Transparency) {
    if let Err(error) = tree.close().await {
        tracing::warn!(%error, "closing the Merkle tree: the next start rebuilds it from the log");
    }
}

/// `checkpoint`: the latest signed checkpoint (or, with `--verifier-key`, the key).
pub fn checkpoint(data: &DataDir, verifier_key: bool) -> anyhow::Result<ExitCode> {
    let layout = data.tree();
    if verifier_key {
        println!("{}", transparency::offline::verifier_key(&layout)?);
        return Ok(ExitCode::SUCCESS);
    }
    let latest = transparency::offline::latest(&layout)?.with_context(|| {
        format!(
            "no checkpoint in {}: serve publishes them",
            layout.checkpoints().display()
        )
    })?;
    print!("{}", latest.note);
    Ok(ExitCode::SUCCESS)
}

/// What `prove` proves.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Prove {
    /// The inclusion proof of the record at a position in the tree of a size.
    Inclusion {
        /// The record's log position.
        #[arg(long)]
        position: u64,
        /// The tree size (a checkpoint's).
        #[arg(long)]
        size: u64,
    },
    /// The consistency proof between two tree sizes.
    Consistency {
        /// The older tree size.
        #[arg(long)]
        from: u64,
        /// The newer tree size.
        #[arg(long)]
        to: u64,
    },
}

/// `prove …`: the proof as JSON, the HTTP API's shape, from the tiles of the latest kept
/// checkpoint (sizes up to it).
pub fn prove(data: &DataDir, what: &Prove) -> anyhow::Result<ExitCode> {
    let (tree, latest) = transparency::offline::tree(&data.tree())
        .context("opening the Merkle tree at the latest checkpoint")?;
    let answer = match *what {
        Prove::Inclusion { position, size } => {
            // The embedded log's positions are its leaf indexes (checked by `offline::tree`).
            let proof = tree
                .inclusion_proof(position, size)
                .with_context(|| beyond(size, latest.size))?;
            transparency::InclusionProof {
                leaf_index: position,
                tree_size: size,
                leaf_hash: tree.leaf_hash(position)?,
                proof,
            }
            .to_json()
        }
        Prove::Consistency { from, to } => {
            if from == 0 || from > to {
                bail!("no consistency proof from size {from} to size {to}: 0 < from <= to");
            }
            ConsistencyProof {
                from,
                to,
                proof: tree
                    .consistency_proof(from, to)
                    .with_context(|| beyond(to, latest.size))?,
            }
            .to_json()
        }
    };
    println!("{answer}");
    Ok(ExitCode::SUCCESS)
}

fn beyond(asked: u64, latest: u64) -> String {
    format!("proving for tree size {asked} (the latest checkpoint is of size {latest})")
}

/// `audit`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct AuditArgs {
    /// The signed checkpoint (a file holding the note, as `checkpoint` or
    /// `GET /v1/checkpoint` gives it).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// The log's verifier key (`<name>+<id>+<base64>`), or a file holding it.
    #[arg(long, value_name = "KEY")]
    pub verifier_key: String,
    /// An older signed checkpoint of the same log: the export's first records must give
    /// its root too, and with --consistency-proof the newer one must extend it.
    #[arg(long, value_name = "FILE")]
    pub older_checkpoint: Option<PathBuf>,
    /// A consistency proof (JSON, as `prove consistency` or `GET /v1/proofs/consistency`
    /// give it) from the older checkpoint's size to the newer one's.
    #[arg(long, value_name = "FILE", requires = "older_checkpoint")]
    pub consistency_proof: Option<PathBuf>,
    /// The export (`export --format jsonl`), from position 0.
    pub export: PathBuf,
}

/// Why the audit failed, naming the first line or proof at fault.
fn fail(what: String) -> anyhow::Result<ExitCode> {
    println!("audit failed: {what}");
    Ok(ExitCode::FAILURE)
}

/// `audit`: checks, with no access to the ledger, the checkpoint's signature, the export's
/// records against it (each line's fields against its canonical bytes, then the Merkle root
/// of the bytes), an older checkpoint's root on the export's prefix, and a consistency
/// proof from the older checkpoint to the newer.
pub fn audit(args: &AuditArgs, json_output: bool) -> anyhow::Result<ExitCode> {
    let key_text = match tlog::VerifierKey::parse(args.verifier_key.trim()) {
        Ok(_) => args.verifier_key.trim().to_string(),
        Err(_) => std::fs::read_to_string(&args.verifier_key)
            .with_context(|| {
                format!(
                    "--verifier-key {:?} is neither a verifier key nor a readable file",
                    args.verifier_key
                )
            })?
            .trim()
            .to_string(),
    };
    let key = tlog::VerifierKey::parse(&key_text).context("the verifier key")?;
    let read_note = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let newer_note = read_note(&args.checkpoint)?;
    let newer = match tlog::open_checkpoint(&newer_note, &key) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return fail(format!("checkpoint {}: {error}", args.checkpoint.display())),
    };
    let older = match &args.older_checkpoint {
        Some(path) => match tlog::open_checkpoint(&read_note(path)?, &key) {
            Ok(checkpoint) if checkpoint.size > newer.size => {
                return fail(format!(
                    "older checkpoint {} is of size {}, larger than the checkpoint's {}",
                    path.display(),
                    checkpoint.size,
                    newer.size
                ));
            }
            Ok(checkpoint) => Some(checkpoint),
            Err(error) => return fail(format!("older checkpoint {}: {error}", path.display())),
        },
        None => None,
    };
    if let (Some(older), Some(path)) = (&older, &args.consistency_proof) {
        let proof: Value = serde_json::from_str(&read_note(path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let proof = ConsistencyProof::from_json(&proof)
            .map_err(|error| anyhow::anyhow!("consistency proof {}: {error}", path.display()))?;
        if (proof.from, proof.to) != (older.size, newer.size) {
            return fail(format!(
                "consistency proof {} is from {} to {}, the checkpoints are of sizes {} and {}",
                path.display(),
                proof.from,
                proof.to,
                older.size,
                newer.size
            ));
        }
        if let Err(error) = tlog::check_consistency(older, &newer, &proof.proof) {
            return fail(format!("consistency proof {}: {error}", path.display()));
        }
    }
    let file = std::fs::File::open(&args.export)
        .with_context(|| format!("opening {}", args.export.display()))?;
    let mut range = tlog::CompactRange::new();
    let mut later_lines = 0u64;
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = number + 1;
        let line = line.with_context(|| format!("reading {}", args.export.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        if range.size() == newer.size {
            // The checkpoint vouches for its first `size` records only.
            later_lines += 1;
            continue;
        }
        let record = match check_line(&line, range.size()) {
            Ok(record) => record,
            Err(reason) => return fail(format!("line {number}: {reason}")),
        };
        range.push(tlog::leaf_hash(&record));
        if let Some(older) = &older
            && range.size() == older.size
            && range.root() != older.root
        {
            return fail(format!(
                "the export's first {} records (to line {number}) do not give the older checkpoint's root: a record's bytes differ from the log's",
                older.size
            ));
        }
    }
    if range.size() < newer.size {
        return fail(format!(
            "the export ends after {} records; the checkpoint covers {}",
            range.size(),
            newer.size
        ));
    }
    if range.root() != newer.root {
        return fail(format!(
            "the {} records do not rebuild the checkpoint's root: a record's bytes differ from the log's although each line agrees with its own bytes; `prove inclusion` (or GET /v1/proofs/inclusion) for a record tells whether it is the log's",
            newer.size
        ));
    }
    if json_output {
        println!(
            "{}",
            json!({
                "ok": true,
                "origin": newer.origin,
                "tree_size": newer.size,
                "records_checked": newer.size,
                "later_records_not_covered": later_lines,
                "older_checkpoint_size": older.as_ref().map(|c| c.size),
                "consistency_checked": args.consistency_proof.is_some(),
            })
        );
    } else {
        println!(
            "audit ok: {} records match the checkpoint of {} (size {}, signed by {})",
            newer.size,
            newer.origin,
            newer.size,
            key.name()
        );
        if let Some(older) = &older {
            println!(
                "the older checkpoint (size {}) is a prefix of it{}",
                older.size,
                if args.consistency_proof.is_some() {
                    ", and its consistency proof verifies"
                } else {
                    ""
                }
            );
        }
        if later_lines > 0 {
            println!("{later_lines} later records are not covered by this checkpoint");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks one export line: its leaf index is the next one, its `record` is base64 of
/// canonical bytes, and the line's envelope fields are those bytes'. Returns the bytes.
fn check_line(line: &str, expected_index: u64) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let value: Value = serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let position = value["position"].as_u64();
    let at = |reason: String| match position {
        Some(position) => format!("the event at position {position}: {reason}"),
        None => reason,
    };
    let index = value["leaf_index"]
        .as_u64()
        .ok_or_else(|| at("no leaf_index".into()))?;
    if index != expected_index {
        return Err(at(format!(
            "leaf index {index} where {expected_index} is next: the export skips, repeats or reorders records"
        )));
    }
    let record = value["record"]
        .as_str()
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| at("no record, or it is not base64".into()))?;
    let event = store::codec::decode_body(&record)
        .map_err(|reason| at(format!("the record is not a canonical record: {reason}")))?;
    // The line as the ledger renders the event from these bytes; every field it shows must
    // be the same, so that what a reader reads is what the tree commits to.
    let rendered = server::render::event_json(&event);
    for field in [
        "position",
        "stream",
        "revision",
        "event_id",
        "event_type",
        "schema_version",
        "recorded_at",
        "actor",
        "command_id",
        "correlation_id",
        "causation_id",
        "payload",
        "payload_msgpack_hex",
    ] {
        if value[field] != rendered[field] {
            return Err(at(format!(
                "its {field} is {} but its record says {}",
                value[field], rendered[field]
            )));
        }
    }
    Ok(record)
}

/// What `verify` found of the tree.
pub struct TreeReport {
    /// The kept checkpoint the tiles were checked at (`None`: none published yet).
    pub checkpoint_size: Option<u64>,
    /// Tiles compared.
    pub tiles_checked: u64,
    /// The first problem, if any.
    pub problem: Option<String>,
}

impl TreeReport {
    /// As JSON, for `verify --json`.
    pub fn to_json(&self) -> Value {
        json!({
            "checkpoint_size": self.checkpoint_size,
            "tiles_checked": self.tiles_checked,
            "intact": self.problem.is_none(),
            "problem": self.problem,
        })
    }
}

/// The tile check of `verify`: fed the log's records in order, it compares the stored tiles
/// of the latest kept checkpoint's tree with the tree those records give, and that tree's
/// root with the signed one.
pub struct TreeCheck {
    size: u64,
    sender: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    fed: u64,
    worker: Option<std::thread::JoinHandle<Result<tlog::TileCheck, tlog::TlogError>>>,
    root: tlog::Hash,
}

/// Records handed to the checking thread ahead of it.
const TREE_CHECK_QUEUE: usize = 1024;

impl TreeCheck {
    /// Starts checking against the latest kept checkpoint (`None`: none was published).
    pub fn start(data: &DataDir) -> anyhow::Result<Option<Self>> {
        let layout = data.tree();
        let Some(latest) = transparency::offline::latest(&layout)? else {
            return Ok(None);
        };
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(TREE_CHECK_QUEUE);
        let dir = layout.dir().to_path_buf();
        let worker =
            std::thread::spawn(move || tlog::verify_tiles(&tlog::DirTileStore::new(dir), receiver));
        Ok(Some(Self {
            size: latest.size,
            sender: Some(sender),
            fed: 0,
            worker: Some(worker),
            root: latest.root,
        }))
    }

    /// The next record of the log.
    pub fn record(&mut self, event: &store::RecordedEvent) {
        if self.fed >= self.size {
            return;
        }
        self.fed += 1;
        if let Some(sender) = &self.sender
            && sender.send(transparency::record_bytes(event)).is_err()
        {
            // The checker stopped early; its error is reported by `finish`.
            self.sender = None;
        }
    }

    /// The outcome.
    pub fn finish(mut self) -> TreeReport {
        self.sender = None;
        let outcome = self.worker.take().map(|worker| worker.join());
        let mut report = TreeReport {
            checkpoint_size: Some(self.size),
            tiles_checked: 0,
            problem: None,
        };
        let check = match outcome {
            Some(Ok(Ok(check))) => check,
            Some(Ok(Err(error))) => {
                report.problem = Some(format!("reading the tiles: {error}"));
                return report;
            }
            _ => {
                report.problem = Some("the tile check failed".into());
                return report;
            }
        };
        report.tiles_checked = check.tiles_checked;
        report.problem = if self.fed < self.size {
            Some(format!(
                "the log has {} records; the latest checkpoint covers {}",
                self.fed, self.size
            ))
        } else if let Some(bad) = check.first_bad {
            Some(format!(
                "tile {} is {:?} (serve rebuilds the tiles from the log at start)",
                bad.id.path(),
                bad.problem
            ))
        } else if check.root != self.root {
            Some(format!(
                "the log's first {} records do not give the root the latest checkpoint signed",
                self.size
            ))
        } else {
            None
        };
        report
    }
}
