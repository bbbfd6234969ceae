//! The ledger's verifiable history (SPEC §3.1) wired to its store: a follower keeps the
//! `tlog` tree over the log, a publisher signs and keeps checkpoints, and proofs are
//! answered by log position.
//!
//! `tlog` knows no backend and `store` no tree; this crate is the glue between them, off
//! the append path: the follower reads the log through [`store::EventStore::subscribe_all`]
//! as the read models do, so an append never waits for a hash of the tree.
//!
//! # The tree over the log
//!
//! - Leaf `i` is the `i`-th record of the log as the ledger reads it, in order; its bytes
//!   are the record's canonical bytes ([`record_bytes`]: [`store::codec::encode_body`], the
//!   bytes the hash chain covers). On the embedded log leaf `i` is position `i`; on KurrentDB
//!   positions have gaps, and the follower keeps the position of every leaf in memory.
//! - The tiles are kept under the tree's directory (`DATA/tlog/tile/…`, C2SP tlog-tiles),
//!   written at each publication, before the checkpoint is signed, but synced only every
//!   minute and at a clean stop ([`Transparency::close`]): a full tile is completed every 256
//!   records, and two fsyncs each would halve the log's own durable throughput. After a
//!   sync, `DATA/tlog/tiles-synced.json` records the tree state they give.
//! - Every published checkpoint is kept in `DATA/tlog/checkpoints.jsonl` (see [`kept`]),
//!   synced before it is served.
//!
//! # At start
//!
//! The last synced state says where the tree's tiles are durable. When its leaves are dense
//! (positions `0..size`, the embedded log) the tree is reopened from its tiles at that size
//! and checked against that state's root, and the follower resumes after it. Otherwise (a
//! first start, a crash since the last sync, missing or damaged tiles, or a backend with
//! position gaps, whose leaf map is not kept on disk) the tree is rebuilt by following the
//! log from its start. Either way, when the tree passes the size of the last kept checkpoint
//! its root there is compared with the signed one (the earlier checkpoints are of prefixes
//! of the same tree): a difference means the log is not the one that was signed, and
//! publishing stops (an error is logged) rather than sign a fork.

pub mod kept;
mod leaves;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::FutureExt as _;
use serde_json::{Value, json};
use store::{EventFilter, EventStore, Position, RecordedEvent, StoreError, SubscribeFrom};
use tlog::{Checkpoint, DirTileStore, Hash, KeyKind, SigningKey, TileId, TlogError, Tree};
use tokio::sync::watch;

pub use kept::{Layout, Published, Synced};
use leaves::LeafMap;

/// Events the follower appends to the tree under one lock.
const FOLLOW_BATCH_EVENTS: usize = 4096;

/// How long the follower waits before following again after the store failed.
const FOLLOW_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How often the tiles written are synced (and at a clean stop): rarely, since by then the
/// kernel has written most of them back and their fsyncs cost little; and at most this many
/// files wait for it.
const TILES_SYNC_INTERVAL: Duration = Duration::from_secs(60);
const TILES_UNSYNCED_MAX: usize = 65_536;

/// The canonical bytes of a record: the leaf's bytes (and the bytes the hash chain covers).
pub fn record_bytes(event: &RecordedEvent) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(store::codec::body_len(event));
    store::codec::encode_body(event, &mut bytes);
    bytes
}

/// Why the tree could not be set up or a checkpoint published.
#[derive(Debug, thiserror::Error)]
pub enum TransparencyError {
    /// The signing key could not be read, generated or used.
    #[error("the checkpoint signing key: {0}")]
    Key(#[source] tlog::NoteError),
    /// The kept checkpoints are not readable.
    #[error("the kept checkpoints in {path}: {reason}")]
    Checkpoints {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file of the tree could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The tree or its tiles failed.
    #[error(transparent)]
    Tree(#[from] TlogError),
    /// The tree does not give a kept checkpoint's root: the log is not the one signed.
    #[error(
        "the log no longer gives the root signed at tree size {size}: refusing to publish a fork"
    )]
    Forked {
        /// The kept checkpoint's size.
        size: u64,
    },
}

/// Why a proof was not given: the request's fault (the first four) or the tree's.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// No record at this position is in the tree (yet).
    #[error("no record at position {0} is in the tree")]
    UnknownPosition(u64),
    /// The size asked for is beyond the tree.
    #[error("tree size {asked} is beyond the tree's {size} records")]
    BeyondTree {
        /// The size asked for.
        asked: u64,
        /// The tree's size.
        size: u64,
    },
    /// The record is not in the tree of the size asked for.
    #[error("the record at leaf {index} is not in a tree of {size} records")]
    NotInTree {
        /// Its leaf index.
        index: u64,
        /// The size asked for.
        size: u64,
    },
    /// A consistency proof from 0 or to a smaller size.
    #[error("no consistency proof from size {from} to size {to}: 0 < from <= to")]
    BadRange {
        /// The older size.
        from: u64,
        /// The newer size.
        to: u64,
    },
    /// A tile or the tile store failed.
    #[error("the tree failed: {0}")]
    Tree(TlogError),
}

impl ProofError {
    /// Whether the request, not the tree, is at fault.
    pub fn is_request_error(&self) -> bool {
        !matches!(self, Self::Tree(_))
    }
}

impl From<TlogError> for ProofError {
    fn from(error: TlogError) -> Self {
        match error {
            TlogError::BeyondTree { asked, size } => Self::BeyondTree { asked, size },
            TlogError::LeafOutOfRange { index, size } => Self::NotInTree { index, size },
            TlogError::BadConsistencyRange { from, to } => Self::BadRange { from, to },
            other => Self::Tree(other),
        }
    }
}

/// Why a receipt was not given.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The command recorded nothing (there is nothing to prove).
    #[error("the command recorded no events")]
    NothingRecorded,
    /// No checkpoint including the records was published in time.
    #[error("no checkpoint including the records was published in time")]
    NotYet,
    /// A proof failed.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// An RFC 9162 inclusion proof of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The record's leaf index.
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// SHA-256(0x00 ‖ the record's canonical bytes).
    pub leaf_hash: Hash,
    /// The audit path, leaf to root.
    pub proof: Vec<Hash>,
}

impl InclusionProof {
    /// `{"leaf_index", "tree_size", "leaf_hash", "proof": [...]}`, hashes in standard base64.
    pub fn to_json(&self) -> Value {
        json!({
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": tlog::encode_hash(&self.leaf_hash),
            "proof": hashes_json(&self.proof),
        })
    }

    /// Reads [`InclusionProof::to_json`]'s shape; the error says which field is wrong.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        Ok(Self {
            leaf_index: u64_field(value, "leaf_index")?,
            tree_size: u64_field(value, "tree_size")?,
            leaf_hash: value["leaf_hash"]
                .as_str()
                .and_then(tlog::parse_hash)
                .ok_or("leaf_hash is not a base64 hash")?,
            proof: hashes_field(value, "proof")?,
        })
    }
}

/// An RFC 9162 consistency proof between two tree sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof.
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    /// `{"from", "to", "proof": [...]}`, hashes in standard base64.
    pub fn to_json(&self) -> Value {
        json!({"from": self.from, "to": self.to, "proof": hashes_json(&self.proof)})
    }

    /// Reads [`ConsistencyProof::to_json`]'s shape; the error says which field is wrong.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        Ok(Self {
            from: u64_field(value, "from")?,
            to: u64_field(value, "to")?,
            proof: hashes_field(value, "proof")?,
        })
    }
}

fn hashes_json(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(tlog::encode_hash).collect()
}

fn u64_field(value: &Value, name: &str) -> Result<u64, String> {
    value[name]
        .as_u64()
        .ok_or_else(|| format!("{name} is not a non-negative integer"))
}

fn hashes_field(value: &Value, name: &str) -> Result<Vec<Hash>, String> {
    value[name]
        .as_array()
        .ok_or_else(|| format!("{name} is not an array"))?
        .iter()
        .enumerate()
        .map(|(i, hash)| {
            hash.as_str()
                .and_then(tlog::parse_hash)
                .ok_or_else(|| format!("{name}[{i}] is not a base64 hash"))
        })
        .collect()
}

/// Where the signing key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// The tree directory's `checkpoint.key`, generated at first start with this name.
    Generated {
        /// The key name (a schema-less URL by convention, e.g. `ledger.example.com/csp`).
        name: String,
    },
    /// A signing key file given by the operator (Go's note signer format).
    File(PathBuf),
}

/// Settings of [`Transparency::start`].
#[derive(Clone, Debug)]
pub struct TransparencyConfig {
    /// The tree's directory (`DATA/tlog`): tiles, kept checkpoints, the generated key.
    pub directory: PathBuf,
    /// The signing key.
    pub key: KeySource,
    /// The checkpoints' origin line; `None`: the key's name (the C2SP convention).
    pub origin: Option<String>,
    /// Shortest time between two checkpoints; one is published only when the tree grew.
    pub publish_interval: Duration,
}

struct Shared {
    tree: RwLock<Tree<Arc<DirTileStore>>>,
    /// The tree's tile store, synced apart from the tree's lock.
    tiles: Arc<DirTileStore>,
    /// When the tiles were last synced; `None` while a sync runs.
    last_sync: std::sync::Mutex<Option<std::time::Instant>>,
    leaves: RwLock<LeafMap>,
    /// Leaves in the tree (the map may be a batch ahead).
    followed: watch::Sender<u64>,
    latest: watch::Sender<Option<Arc<Published>>>,
    layout: Layout,
    key: SigningKey,
    origin: String,
    /// The follower has caught up with the log once: checkpoints of a tree being rebuilt
    /// would be true but of no use.
    caught_up: AtomicBool,
    /// Wakes the publisher when the follower first catches up, so that the first
    /// checkpoint does not wait for the next interval.
    first_caught_up: tokio::sync::Notify,
    /// The tree disagrees with a kept checkpoint: nothing more is signed.
    forked: AtomicBool,
}

/// The running verifiable history: cheap to clone, shared by the server's routes.
#[derive(Clone)]
pub struct Transparency {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Transparency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transparency")
            .field("origin", &self.shared.origin)
            .field("size", &*self.shared.followed.borrow())
            .finish()
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Writers replace whole values or append; a panic mid-write leaves what was there.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Transparency {
    /// Loads (or generates) the key, opens or rebuilds the tree, and starts the follower and
    /// the publisher on the current tokio runtime. They run until the store closes.
    pub async fn start(
        store: Arc<dyn EventStore>,
        config: TransparencyConfig,
    ) -> Result<Self, TransparencyError> {
        let layout = Layout::new(&config.directory);
        std::fs::create_dir_all(layout.dir()).map_err(|source| TransparencyError::Io {
            context: format!("creating {}", layout.dir().display()),
            source,
        })?;
        let key = match &config.key {
            KeySource::Generated { name } => {
                SigningKey::load_or_generate(&layout.key(), name, KeyKind::Ed25519)
            }
            KeySource::File(path) => SigningKey::load(path),
        }
        .map_err(TransparencyError::Key)?;
        let origin = config
            .origin
            .clone()
            .unwrap_or_else(|| key.name().to_string());
        // Signed and read back once now, so that an origin no checkpoint can carry (empty, a
        // newline) or a key that cannot sign notes (a witness's) is refused at start, not at
        // every publication.
        let probe = Checkpoint::new(origin.clone(), 0, tlog::EMPTY_ROOT);
        let note = key
            .sign_checkpoint(&probe)
            .map_err(TransparencyError::Key)?;
        if tlog::open_checkpoint(&note, &key.verifier()).ok().as_ref() != Some(&probe) {
            return Err(TransparencyError::Key(
                tlog::NoteError::MalformedCheckpoint("the origin must be one non-empty line"),
            ));
        }
        let verifier = key.verifier().to_string();
        atomic_file::replace(
            &layout.verifier_key(),
            format!("{verifier}\n").as_bytes(),
            atomic_file::Access::Public,
        )
        .map_err(|source| TransparencyError::Io {
            context: format!("writing {}", layout.verifier_key().display()),
            source,
        })?;
        let latest = kept::read_last(&layout.checkpoints())?.map(Arc::new);
        let tiles = Arc::new(DirTileStore::deferred(layout.dir()));
        let (tree, leaves, from) = open_tree(&layout, &tiles);
        let size = tree.size();
        let shared = Arc::new(Shared {
            tree: RwLock::new(tree),
            tiles,
            last_sync: std::sync::Mutex::new(Some(std::time::Instant::now())),
            leaves: RwLock::new(leaves),
            followed: watch::Sender::new(size),
            latest: watch::Sender::new(latest),
            layout,
            key,
            origin,
            caught_up: AtomicBool::new(false),
            first_caught_up: tokio::sync::Notify::new(),
            forked: AtomicBool::new(false),
        });
        tracing::info!(
            verifier_key = %verifier,
            origin = %shared.origin,
            tree_size = size,
            "signing checkpoints (give auditors the verifier key)"
        );
        tokio::spawn(follow(shared.clone(), store, from));
        tokio::spawn(publish_every(shared.clone(), config.publish_interval));
        Ok(Self { shared })
    }

    /// The verifier key auditors check checkpoints with (`<name>+<id>+<base64 key>`).
    pub fn verifier_key(&self) -> String {
        self.shared.key.verifier().to_string()
    }

    /// The checkpoints' origin.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The latest published checkpoint.
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.shared.latest.borrow().clone()
    }

    /// Waits up to `wait` for a checkpoint of at least `size` records to be published.
    pub async fn checkpoint_covering(&self, size: u64, wait: Duration) -> Option<Arc<Published>> {
        let mut latest = self.shared.latest.subscribe();
        let found = tokio::time::timeout(
            wait,
            latest.wait_for(|p| p.as_ref().is_some_and(|p| p.size >= size)),
        )
        .await;
        match found {
            Ok(Ok(published)) => published.clone(),
            _ => None,
        }
    }

    /// Records in the tree.
    pub fn size(&self) -> u64 {
        *self.shared.followed.borrow()
    }

    /// The leaf index of the record at `position`, once the follower has put it in the tree.
    pub fn leaf_index(&self, position: u64) -> Option<u64> {
        let size = self.size();
        read(&self.shared.leaves)
            .index_of(position)
            .filter(|index| *index < size)
    }

    /// [`Transparency::leaf_index`], waiting up to `wait` for the follower to reach
    /// `position` (it follows the log a moment behind the appends).
    pub async fn leaf_index_waiting(&self, position: u64, wait: Duration) -> Option<u64> {
        if let Some(index) = self.leaf_index(position) {
            return Some(index);
        }
        let mut followed = self.shared.followed.subscribe();
        let reached = tokio::time::timeout(wait, async {
            loop {
                let last = {
                    let size = *followed.borrow_and_update();
                    size.checked_sub(1)
                        .and_then(|index| read(&self.shared.leaves).position_of(index))
                };
                if last.is_some_and(|last| last >= position) {
                    return;
                }
                if followed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        reached.ok().and_then(|()| self.leaf_index(position))
    }

    /// The inclusion proof of the record at log `position` in the tree of `size` records.
    pub fn inclusion_proof(&self, position: u64, size: u64) -> Result<InclusionProof, ProofError> {
        let index = self
            .leaf_index(position)
            .ok_or(ProofError::UnknownPosition(position))?;
        let tree = read(&self.shared.tree);
        if index >= size {
            return Err(ProofError::NotInTree { index, size });
        }
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            proof: tree.inclusion_proof(index, size)?,
            leaf_hash: tree.leaf_hash(index)?,
        })
    }

    /// The consistency proof from the tree of `from` records to the tree of `to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof, ProofError> {
        if from == 0 || from > to {
            return Err(ProofError::BadRange { from, to });
        }
        let proof = read(&self.shared.tree).consistency_proof(from, to)?;
        Ok(ConsistencyProof { from, to, proof })
    }

    /// The bytes of a tile as the tree has it now (`None`: not that wide yet).
    pub fn tile(&self, id: TileId) -> Result<Option<Vec<u8>>, ProofError> {
        Ok(read(&self.shared.tree).tile(id)?)
    }

    /// A command's receipt: waits up to `wait` for the tree to take the records at
    /// `positions` and for a checkpoint that includes them, then gives the checkpoint and
    /// each record's inclusion proof in it:
    /// `{"checkpoint": <signed note>, "tree_size", "records": [{"position", "leaf_index",
    /// "tree_size", "leaf_hash", "proof"}]}`.
    pub async fn receipt(&self, positions: &[u64], wait: Duration) -> Result<Value, ReceiptError> {
        let deadline = tokio::time::Instant::now() + wait;
        let Some(&last) = positions.iter().max() else {
            return Err(ReceiptError::NothingRecorded);
        };
        let index = self
            .leaf_index_waiting(last, wait)
            .await
            .ok_or(ReceiptError::NotYet)?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let published = self
            .checkpoint_covering(index + 1, left)
            .await
            .ok_or(ReceiptError::NotYet)?;
        let records = positions
            .iter()
            .map(|&position| {
                let proof = self.inclusion_proof(position, published.size)?;
                let mut json = proof.to_json();
                json["position"] = json!(position);
                Ok(json)
            })
            .collect::<Result<Vec<Value>, ProofError>>()?;
        Ok(json!({
            "checkpoint": published.note,
            "tree_size": published.size,
            "records": records,
        }))
    }

    /// At a clean stop: publishes a last checkpoint if the tree grew, and syncs the tiles,
    /// so that the next start reopens the tree from them instead of rebuilding it.
    pub async fn close(&self) -> Result<(), TransparencyError> {
        self.publish().await?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || sync_tiles(&shared))
            .await
            .map_err(|error| TransparencyError::Io {
                context: "syncing the tiles".into(),
                source: std::io::Error::other(error.to_string()),
            })??;
        Ok(())
    }

    /// Publishes a checkpoint now if the tree grew since the last one (the publisher does
    /// this every interval).
    pub async fn publish(&self) -> Result<Option<Arc<Published>>, TransparencyError> {
        publish_if_grown(&self.shared).await
    }
}

/// The tree as its tiles were last synced, or an empty one to be rebuilt by following the
/// log from its start; with the leaf map and where to follow from.
fn open_tree(
    layout: &Layout,
    tiles: &Arc<DirTileStore>,
) -> (Tree<Arc<DirTileStore>>, LeafMap, SubscribeFrom) {
    match kept::read_synced(&layout.synced()) {
        Some(synced) if synced.size > 0 && synced.dense() => {
            match Tree::open_verified(tiles.clone(), synced.size, &synced.root) {
                Ok(tree) => {
                    return (
                        tree,
                        LeafMap::dense(synced.size),
                        SubscribeFrom::After(Position(synced.size - 1)),
                    );
                }
                Err(error) => tracing::warn!(
                    %error,
                    size = synced.size,
                    "the tiles do not reopen the tree they were synced with: rebuilding it from the log"
                ),
            }
        }
        Some(synced) if synced.size > 0 => tracing::info!(
            size = synced.size,
            "the log's positions are not its leaf indexes (KurrentDB): rebuilding the tree and its leaf map from the log"
        ),
        Some(_) => {}
        None => tracing::info!(
            "no record of synced tiles (first start, or a crash): building the tree from the log"
        ),
    }
    // Tiles are derived data: whatever is there is replaced as the tree is rebuilt, and a
    // stale wider partial tile must not shadow a rebuilt narrower one.
    for dir in ["tile", "nodes"].map(|name| layout.dir().join(name)) {
        if let Err(error) = std::fs::remove_dir_all(&dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, dir = %dir.display(), "removing the old tiles");
        }
    }
    (
        Tree::new(tiles.clone()),
        LeafMap::default(),
        SubscribeFrom::Start,
    )
}

/// Follows the log into the tree until the store closes, resubscribing after a failure.
async fn follow(shared: Arc<Shared>, store: Arc<dyn EventStore>, mut from: SubscribeFrom) {
    loop {
        let mut subscription = store.clone().subscribe_all(from, EventFilter::all());
        loop {
            let Some(first) = subscription.next().await else {
                return;
            };
            let mut items = vec![first];
            // What the subscription already holds (a page of catch-up) goes in under one lock.
            while items.len() < FOLLOW_BATCH_EVENTS {
                match subscription.next().now_or_never() {
                    Some(Some(item)) => items.push(item),
                    _ => break,
                }
            }
            let mut events = Vec::with_capacity(items.len());
            let mut caught_up = false;
            let mut failure = None;
            for item in items {
                match item {
                    Ok(store::SubscriptionItem::Event(event)) => events.push(event),
                    Ok(store::SubscriptionItem::CaughtUp { .. }) => caught_up = true,
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            if let Some(last) = events.last() {
                from = SubscribeFrom::After(last.position);
            }
            append(&shared, &events);
            if caught_up && !shared.caught_up.swap(true, Ordering::AcqRel) {
                shared.first_caught_up.notify_one();
            }
            match failure {
                None => {}
                Some(StoreError::Closed) => return,
                Some(error) => {
                    tracing::error!(%error, "the tree's follower lost the log; following again");
                    tokio::time::sleep(FOLLOW_RETRY_PAUSE).await;
                    break;
                }
            }
        }
    }
}

/// Appends `events` to the tree (hashed before the lock is taken) and checks the kept
/// checkpoints the tree passes.
fn append(shared: &Shared, events: &[RecordedEvent]) {
    if events.is_empty() {
        return;
    }
    let mut bytes = Vec::new();
    let mut leaves = Vec::with_capacity(events.len());
    for event in events {
        bytes.clear();
        store::codec::encode_body(event, &mut bytes);
        leaves.push((event.position.0, tlog::leaf_hash(&bytes)));
    }
    {
        let mut map = write(&shared.leaves);
        leaves.retain(|(position, _)| {
            let placed = map.push(*position);
            if !placed {
                // Positions strictly increase in log order; a store that breaks this is a bug,
                // and the record is left out rather than given a second leaf.
                tracing::error!(position, "the log delivered a position out of order");
            }
            placed
        });
    }
    let (before, after) = {
        let mut tree = write(&shared.tree);
        let before = tree.size();
        for (_, leaf) in &leaves {
            tree.append_leaf_hash(*leaf);
        }
        (before, tree.size())
    };
    check_kept(shared, before, after);
    shared.followed.send_replace(after);
}

/// Compares the tree's root with the last kept checkpoint's when the tree passes its size
/// (after a rebuild, or a reopening at an earlier synced state): the earlier checkpoints'
/// roots follow, being those of prefixes of the same tree.
fn check_kept(shared: &Shared, before: u64, after: u64) {
    let Some(latest) = shared.latest.borrow().clone() else {
        return;
    };
    if latest.size <= before || latest.size > after {
        return;
    }
    match read(&shared.tree).root_at(latest.size) {
        Ok(root) if root == latest.root => {}
        Ok(_) => {
            shared.forked.store(true, Ordering::Release);
            tracing::error!("{}", TransparencyError::Forked { size: latest.size });
        }
        Err(error) => {
            tracing::error!(%error, size = latest.size, "checking the last kept checkpoint")
        }
    }
}

async fn publish_every(shared: Arc<Shared>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.first_caught_up.notified() => {}
        }
        if let Err(error) = publish_if_grown(&shared).await {
            tracing::error!(%error, "publishing a checkpoint");
        }
        let due = shared
            .last_sync
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|last| last.elapsed() >= TILES_SYNC_INTERVAL)
            || shared.tiles.unsynced_files() >= TILES_UNSYNCED_MAX;
        if due {
            let shared = shared.clone();
            // In the background: the fsyncs take no lock of the tree's.
            tokio::task::spawn_blocking(move || {
                if let Err(error) = sync_tiles(&shared) {
                    tracing::error!(%error, "syncing the tiles");
                }
            });
        }
    }
}

/// Writes the tiles, syncs every tile file written since the last sync, then records the
/// tree state they give, so that the next start reopens the tree from them. One sync at a
/// time: a second caller while one runs does nothing.
fn sync_tiles(shared: &Shared) -> Result<Option<Synced>, TransparencyError> {
    {
        let mut last = shared
            .last_sync
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.take().is_none() {
            return Ok(None);
        }
    }
    let outcome = (|| {
        let (size, root) = {
            let mut tree = write(&shared.tree);
            tree.flush()?;
            (tree.size(), tree.root())
        };
        let last_position = size
            .checked_sub(1)
            .and_then(|index| read(&shared.leaves).position_of(index));
        shared.tiles.sync().map_err(TlogError::from)?;
        let synced = Synced {
            size,
            root,
            last_position,
        };
        kept::write_synced(&shared.layout.synced(), &synced)?;
        Ok(Some(synced))
    })();
    *shared
        .last_sync
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(std::time::Instant::now());
    outcome
}

/// Writes the tiles, signs a checkpoint of the tree's size and keeps it, when the tree grew
/// (or nothing was published yet) and the follower has caught up once.
async fn publish_if_grown(
    shared: &Arc<Shared>,
) -> Result<Option<Arc<Published>>, TransparencyError> {
    if !shared.caught_up.load(Ordering::Acquire) {
        return Ok(None);
    }
    if shared.forked.load(Ordering::Acquire) {
        let size = shared.latest.borrow().as_ref().map_or(0, |p| p.size);
        return Err(TransparencyError::Forked { size });
    }
    let size = *shared.followed.borrow();
    if shared
        .latest
        .borrow()
        .as_ref()
        .is_some_and(|p| p.size >= size)
    {
        return Ok(None);
    }
    let shared = shared.clone();
    // Tiles are written and synced, and the checkpoint file synced: blocking work.
    tokio::task::spawn_blocking(move || publish_now(&shared))
        .await
        .map_err(|error| TransparencyError::Io {
            context: "publishing a checkpoint".into(),
            source: std::io::Error::other(error.to_string()),
        })?
}

fn publish_now(shared: &Shared) -> Result<Option<Arc<Published>>, TransparencyError> {
    let (size, root) = {
        let mut tree = write(&shared.tree);
        tree.flush()?;
        (tree.size(), tree.root())
    };
    let last_position = size
        .checked_sub(1)
        .and_then(|index| read(&shared.leaves).position_of(index));
    let checkpoint = Checkpoint::new(shared.origin.clone(), size, root);
    let note = shared
        .key
        .sign_checkpoint(&checkpoint)
        .map_err(TransparencyError::Key)?;
    let published = Published {
        size,
        root,
        last_position,
        note,
    };
    kept::append(&shared.layout.checkpoints(), &published)?;
    let published = Arc::new(published);
    shared.latest.send_replace(Some(published.clone()));
    Ok(Some(published))
}

/// The tree at rest, for the command line while `serve` runs or not: the kept checkpoints
/// and the tiles, read without the log's lock.
pub mod offline {
    use super::*;

    /// The latest kept checkpoint (`None`: none was published yet).
    pub fn latest(layout: &Layout) -> Result<Option<Published>, TransparencyError> {
        kept::read_last(&layout.checkpoints())
    }

    /// The verifier key `serve` wrote at its last start.
    pub fn verifier_key(layout: &Layout) -> Result<String, TransparencyError> {
        std::fs::read_to_string(layout.verifier_key())
            .map(|text| text.trim().to_string())
            .map_err(|source| TransparencyError::Io {
                context: format!(
                    "reading {} (written by serve at start)",
                    layout.verifier_key().display()
                ),
                source,
            })
    }

    /// The tree of the latest kept checkpoint, from its tiles, checked against its root.
    /// Only for logs whose positions are the leaf indexes (the embedded log).
    pub fn tree(layout: &Layout) -> Result<(Tree<DirTileStore>, Published), TransparencyError> {
        let latest = latest(layout)?.ok_or_else(|| TransparencyError::Checkpoints {
            path: layout.checkpoints().display().to_string(),
            reason: "no checkpoint published yet (serve publishes them)".into(),
        })?;
        if !latest.dense() {
            return Err(TransparencyError::Checkpoints {
                path: layout.checkpoints().display().to_string(),
                reason: "this log's positions are not leaf indexes: ask the server".into(),
            });
        }
        let tree = Tree::open_verified(DirTileStore::new(layout.dir()), latest.size, &latest.root)?;
        Ok((tree, latest))
    }
}

#[cfg(test)]
mod tests;
