//! The embedded event store of csp-ledger: an append-only, segmented, hash-chained file log
//! with group commit.
//!
//! [`FileStore`] implements [`store::EventStore`] on a data directory of the local disk. An
//! append is acknowledged only once its bytes are `fdatasync`ed; concurrent appends share one
//! write and one sync (group commit) through a single writer thread. An in-memory index,
//! rebuilt at open, answers reads without scanning the log. [`verify_dir`] checks a log
//! offline, without taking the writer's lock, and [`FileStore::open_read_only`] reads one
//! beside its writer (following its appends if asked), without the lock either.
//!
//! # The data directory
//!
//! ```text
//! <dir>/LOCK                          held with an exclusive lock by the one writer process
//! <dir>/log/00000000000000000000.seg  segments, named by the position of their first record
//! <dir>/log/00000000000000052311.seg  (20 decimal digits), in position order
//! ```
//!
//! Positions are dense: 0, 1, 2, … across segments. A segment is filled up to
//! [`FileStoreConfig::segment_bytes_max`] (a record larger than that gets a segment of its
//! own); the next record starts a new segment. Only the last segment is ever written to.
//!
//! # Segment header (64 bytes)
//!
//! All integers are little-endian.
//!
//! | offset | bytes | field                                                              |
//! |--------|-------|--------------------------------------------------------------------|
//! | 0      | 8     | magic `CSPLEDG\0`                                                  |
//! | 8      | 4     | segment format version, currently 1                                |
//! | 12     | 4     | reserved, zero                                                     |
//! | 16     | 8     | position of the segment's first record (same as the file name)    |
//! | 24     | 32    | chain value carried in: that of the previous segment's last record (32 zero bytes in the first segment) |
//! | 56     | 4     | CRC32C (Castagnoli) of bytes 0..56                                 |
//! | 60     | 4     | reserved, zero                                                     |
//!
//! # Record frame (40 bytes + body)
//!
//! Records follow the header back to back, with no padding.
//!
//! | offset  | bytes | field                                                             |
//! |---------|-------|-------------------------------------------------------------------|
//! | 0       | 4     | body length *n*                                                   |
//! | 4       | 4     | CRC32C over bytes 0..4, then the body, then the chain value        |
//! | 8       | *n*   | body: the canonical encoding of `store::codec` (format version, position, revision, ids, recorded-at, schema version, stream, type, actor, payload) |
//! | 8 + *n* | 32    | chain value: SHA-256(previous record's chain value ‖ body)        |
//!
//! The CRC finds torn and flipped bytes cheaply; the chain makes the log tamper-evident:
//! changing, removing or reordering a record changes every chain value after it.
//!
//! # Recovery
//!
//! Open reads every segment, checks each header and each record's CRC and position, and
//! rebuilds the index. A broken frame at the very end of the last segment, with no valid frame
//! after it, is what a crash mid-write leaves: it was never acknowledged, so it is cut off
//! (the file is truncated) and logged with `tracing::warn!`. A last segment whose header is
//! incomplete and holds nothing else (a crash while creating it) is removed the same way. Any
//! other problem — a bad CRC or length with valid records after it, a record out of sequence,
//! a wrong carried chain, a missing segment — is [`store::StoreError::Corrupt`] naming the
//! position, file and byte offset. Nothing is dropped silently.
//!
//! Open trusts the stored chain values once their CRCs match, so that it stays fast;
//! [`FileStore::verify`](store::EventStore::verify) and [`verify_dir`] recompute the whole
//! chain.

mod follow;
mod format;
mod index;
mod scan;
mod writer;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use store::codec::{self, GENESIS_CHAIN};
use store::{
    AppendResult, Damage, Direction, EventFilter, EventStore, ExpectedRevision, LogTail, NewEvent,
    PendingAppend, Position, ReadFrom, RecordedEvent, StoreError, StreamName, SubscribeFrom,
    Subscription, VerifyReport, catch_up, validate_batch,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::format::{HEADER_BYTES, SegmentHeader};
use crate::index::{Index, SegmentHandle};
use crate::scan::{ScanOptions, ScanOutcome};
use crate::writer::{Request, Writer};

/// How a [`FileStore`] lays out and batches its log.
#[derive(Clone, Debug)]
pub struct FileStoreConfig {
    /// A segment is closed once the next record would take it past this size. Small values
    /// are for tests; large segments mean fewer files.
    pub segment_bytes_max: u64,
    /// Appends that may wait for the writer at once; further appends wait for room
    /// (back-pressure instead of an unbounded queue).
    pub queue_requests_max: usize,
    /// The writer stops adding waiting appends to a group commit once it holds about this
    /// many bytes of events.
    pub batch_bytes_max: usize,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes_max: 64 * 1024 * 1024,
            queue_requests_max: 4096,
            batch_bytes_max: 16 * 1024 * 1024,
        }
    }
}

/// Reads of more records than this run on tokio's blocking pool; smaller ones read inline.
///
/// A small read is a few `pread`s from the page cache (microseconds), cheaper than the hop to
/// another thread; a large one may take milliseconds and would stall the runtime's workers.
const INLINE_READ_RECORDS_MAX: u64 = 64;
/// Bytes read by one `pread` at most, so that a large read does not need a buffer as large
/// as itself.
const READ_RUN_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The state the writer thread and the readers share.
pub(crate) struct Shared {
    /// Everything acknowledged.
    pub index: RwLock<Index>,
    /// The last acknowledged position, published after every durable append.
    pub head: watch::Sender<Option<Position>>,
    /// The data directory.
    pub dir: PathBuf,
}

/// The embedded durable event store: a segmented, hash-chained log in a data directory.
///
/// One process at a time may open a directory (it holds the directory's lock while open).
/// Dropping the store, or [`FileStore::close`], finishes the queued appends and stops the
/// writer.
pub struct FileStore {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Opened by [`FileStore::open_read_only`]: appends are refused, and the follower (if
    /// it follows) reads what the writer appends.
    read_only: bool,
    follower: Mutex<Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl FileStore {
    /// Opens (or creates) the store in `dir`: takes the directory's lock, recovers the log
    /// (cutting off a torn tail, refusing damage) and rebuilds the index.
    ///
    /// Fails with [`StoreError::Locked`] if another store has the directory open, and with
    /// [`StoreError::Corrupt`] if the log is damaged anywhere but a torn tail.
    pub fn open(
        dir: impl AsRef<Path>,
        config: FileStoreConfig,
    ) -> Result<Arc<FileStore>, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if config.segment_bytes_max <= HEADER_BYTES as u64 {
            return Err(StoreError::Invalid(format!(
                "segment_bytes_max must exceed the {HEADER_BYTES}-byte segment header"
            )));
        }
        if config.queue_requests_max == 0 || config.batch_bytes_max == 0 {
            return Err(StoreError::Invalid(
                "queue_requests_max and batch_bytes_max must be positive".into(),
            ));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(&dir)?;
        let log_dir = format::log_dir(&dir);
        if !log_dir.exists() {
            std::fs::create_dir(&log_dir)
                .and_then(|()| writer::sync_dir(&dir))
                .map_err(|e| StoreError::io(format!("creating {}", log_dir.display()), e))?;
        }

        let (mut index, outcome, last_recorded_at) = rebuild_index(&log_dir)?;
        let outcome = repair_tail(outcome, &mut index)?;
        // Open a read handle for every intact segment, and the last one for writing too.
        for segment in &outcome.segments {
            let file = File::open(&segment.path)
                .map_err(|e| StoreError::io(format!("opening {}", segment.path.display()), e))?;
            index.segments.push(Arc::new(SegmentHandle {
                path: segment.path.clone(),
                file,
            }));
        }
        let (active_file, active_len) = match outcome.segments.last() {
            Some(segment) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&segment.path)
                    .map_err(|e| {
                        StoreError::io(format!("opening {}", segment.path.display()), e)
                    })?;
                (file, segment.valid_len)
            }
            None => {
                let header = SegmentHeader {
                    first_position: 0,
                    carried_chain: GENESIS_CHAIN,
                };
                let (file, handle) = writer::create_segment(&log_dir, &header, &[])
                    .map_err(|e| StoreError::io("creating the first segment", e))?;
                index.segments.push(handle);
                (file, HEADER_BYTES as u64)
            }
        };
        let next_position = index.len();
        let head = next_position.checked_sub(1).map(Position);
        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            head: watch::channel(head).0,
            dir,
        });
        let active_segment = {
            let index = read_index(&shared);
            assert!(!index.segments.is_empty());
            (index.segments.len() - 1) as u32
        };
        let writer = Writer {
            shared: Arc::clone(&shared),
            log_dir,
            segment_bytes_max: config.segment_bytes_max,
            batch_bytes_max: config.batch_bytes_max,
            active_file,
            active_len,
            active_segment,
            next_position,
            chain: outcome.chain,
            last_recorded_at,
            failed: None,
            _lock: lock,
        };
        let (sender, receiver) = mpsc::channel(config.queue_requests_max);
        let handle = std::thread::Builder::new()
            .name("filelog-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::io("starting the writer thread", e))?;
        Ok(Arc::new(FileStore {
            shared,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            read_only: false,
            follower: Mutex::new(None),
        }))
    }

    /// Opens the log in `dir` for reading only, beside the process that writes it (or
    /// without one): takes no lock, changes nothing, refuses appends with
    /// [`StoreError::NotWriter`]. With `follow`, a thread looks for the writer's new
    /// records every `follow` and publishes them to reads and subscriptions; without it the
    /// store holds what the log held at open.
    ///
    /// An incomplete record at the end (a write in progress, or a crash's leftover that the
    /// writer's next open cuts off) is left unread; any other damage is
    /// [`StoreError::Corrupt`] at open, and stops the following before the damaged record
    /// later (logged once).
    pub fn open_read_only(
        dir: impl AsRef<Path>,
        follow: Option<std::time::Duration>,
    ) -> Result<Arc<FileStore>, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let log_dir = follow::existing_log_dir(&dir)?;
        let mut follower = follow::Follower::new(log_dir);
        let mut index = Index::default();
        if let Some(damage) = follower.step(&mut index)? {
            return Err(StoreError::Corrupt(damage));
        }
        let head = index.len().checked_sub(1).map(Position);
        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            head: watch::channel(head).0,
            dir,
        });
        let follower = match follow {
            Some(interval) => {
                let (stop, stopped) = std::sync::mpsc::channel();
                let shared = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("filelog-follower".into())
                    .spawn(move || follow::run(follower, shared, interval, stopped))
                    .map_err(|e| StoreError::io("starting the follower thread", e))?;
                Some((stop, handle))
            }
            None => None,
        };
        Ok(Arc::new(FileStore {
            shared,
            sender: Mutex::new(None),
            writer: Mutex::new(None),
            read_only: true,
            follower: Mutex::new(follower),
        }))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Stops accepting appends, waits until the queued ones are durable and answered, and
    /// stops the writer (releasing the directory's lock). Reads keep working. Blocks the
    /// calling thread for at most one group commit.
    pub fn close(&self) {
        if let Some((stop, handle)) = lock_ignoring_poison(&self.follower).take() {
            drop(stop);
            if handle.join().is_err() {
                tracing::error!("the filelog follower thread panicked");
            }
        }
        let sender = lock_ignoring_poison(&self.sender).take();
        drop(sender);
        if let Some(handle) = lock_ignoring_poison(&self.writer).take()
            && handle.join().is_err()
        {
            tracing::error!("the filelog writer thread panicked");
        }
    }

    /// Puts an append in the writer's queue, which the writer takes in order; the future
    /// resolves with the writer's answer once the append is durable.
    async fn enqueue(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: Option<LogTail>,
    ) -> Result<PendingAppend, StoreError> {
        validate_batch(&events)?;
        let sender = self.sender()?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request {
                stream: stream.clone(),
                expected,
                events,
                after,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Box::pin(async move {
            answer.await.map_err(|_| StoreError::Closed)?
        }))
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        if self.read_only {
            return Err(StoreError::NotWriter(format!(
                "the log in {} is open read-only here; the process that holds its lock records",
                self.shared.dir.display()
            )));
        }
        lock_ignoring_poison(&self.sender)
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// Reads the planned runs and returns their records in `direction` (runs are ascending).
    async fn execute_reads(
        runs: Vec<Run>,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let count: usize = runs.iter().map(|run| run.records.len()).sum();
        let mut events = if count as u64 <= INLINE_READ_RECORDS_MAX {
            read_runs(&runs)?
        } else {
            tokio::task::spawn_blocking(move || read_runs(&runs))
                .await
                .map_err(|e| StoreError::io("reading the log", std::io::Error::other(e)))??
        };
        if direction == Direction::Backwards {
            events.reverse();
        }
        Ok(events)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl EventStore for FileStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.enqueue(stream, expected, events, None).await?.await
    }

    fn pipelines_appends(&self) -> bool {
        true
    }

    async fn submit(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: LogTail,
    ) -> Result<PendingAppend, StoreError> {
        self.enqueue(stream, expected, events, Some(after)).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let runs = {
            let index = read_index(&self.shared);
            let positions = index.stream(stream.as_str());
            let range = index::select(positions.len() as u64, from, direction, limit);
            let positions = &positions[range.start as usize..range.end as usize];
            plan_runs(&index, positions.iter().copied())
        };
        Self::execute_reads(runs, direction).await
    }

    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let runs = {
            let index = read_index(&self.shared);
            plan_runs(&index, index::select(index.len(), from, direction, limit))
        };
        Self::execute_reads(runs, direction).await
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        let index = read_index(&self.shared);
        Ok((index.stream(stream.as_str()).len() as u64).checked_sub(1))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(read_index(&self.shared).len().checked_sub(1).map(Position))
    }

    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription {
        let head = self.shared.head.subscribe();
        catch_up(self, head, from, filter)
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // Only acknowledged records: bytes past them may be a batch being written right now.
        let records = read_index(&self.shared).len();
        let log_dir = format::log_dir(&self.shared.dir);
        tokio::task::spawn_blocking(move || verify_log(&log_dir, Some(records)))
            .await
            .map_err(|e| StoreError::io("verifying the log", std::io::Error::other(e)))?
    }
}

/// Checks every record's CRC and the whole hash chain of the log in the data directory `dir`,
/// without taking the writer's lock (so it works while a store has the directory open, and
/// on a copy). Reports the first damage in [`VerifyReport::damage`]; a torn tail, which
/// opening the store would cut off, is reported as damage too, saying so.
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport, StoreError> {
    verify_log(&format::log_dir(dir.as_ref()), None)
}

/// [`verify_dir`], handing each intact record to `visit` in log order as it is checked (an
/// auditor's further checks: which events this code can read).
pub fn verify_dir_visiting(
    dir: impl AsRef<Path>,
    mut visit: impl FnMut(&RecordedEvent),
) -> Result<VerifyReport, StoreError> {
    verify_log_visiting(&format::log_dir(dir.as_ref()), None, &mut |record| {
        visit(&store::codec::decode_body(record.body)?);
        Ok(())
    })
}

fn verify_log(log_dir: &Path, records_max: Option<u64>) -> Result<VerifyReport, StoreError> {
    verify_log_visiting(log_dir, records_max, &mut |_| Ok(()))
}

fn verify_log_visiting(
    log_dir: &Path,
    records_max: Option<u64>,
    visit: &mut dyn FnMut(scan::RecordView<'_>) -> Result<(), String>,
) -> Result<VerifyReport, StoreError> {
    let options = ScanOptions {
        check_chain: true,
        records_max,
    };
    let outcome = scan::scan(log_dir, &options, visit)?;
    let damage = outcome.stop.map(|stop| {
        let mut damage = stop.damage;
        if stop.torn_tail {
            damage.reason = format!(
                "{} — an incomplete last record, as a crash mid-write leaves; opening the store cuts it off",
                damage.reason
            );
        }
        damage
    });
    Ok(VerifyReport {
        records_intact: outcome.records_intact,
        last_position: outcome.records_intact.checked_sub(1).map(Position),
        chain: outcome.chain,
        damage,
    })
}

/// Takes the data directory's exclusive lock.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    use fs4::fs_std::FileExt as _;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    // `flock` locks belong to the open file description, so a second open in this process is
    // refused just like one from another process.
    match file.try_lock_exclusive() {
        Ok(true) => Ok(file),
        Ok(false) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(e) => Err(StoreError::io(format!("locking {}", path.display()), e)),
    }
}

/// Scans the log and rebuilds the index (without segment handles, opened after repair).
fn rebuild_index(
    log_dir: &Path,
) -> Result<(Index, ScanOutcome, Option<DateTime<Utc>>), StoreError> {
    let mut index = Index::default();
    let mut last_recorded_at_nanos = None;
    let options = ScanOptions {
        check_chain: false,
        records_max: None,
    };
    let outcome = scan::scan(log_dir, &options, |record| {
        // The segment handles are opened after the scan (and the repair of a torn tail).
        index.push_scanned(&record)?;
        last_recorded_at_nanos = Some(record.fields.recorded_at_nanos);
        Ok(())
    })?;
    let last_recorded_at = last_recorded_at_nanos.map(DateTime::<Utc>::from_timestamp_nanos);
    Ok((index, outcome, last_recorded_at))
}

/// Cuts off a torn tail (logging it) and refuses any other damage.
fn repair_tail(mut outcome: ScanOutcome, index: &mut Index) -> Result<ScanOutcome, StoreError> {
    let Some(stop) = outcome.stop.take() else {
        return Ok(outcome);
    };
    if !stop.torn_tail {
        return Err(StoreError::Corrupt(stop.damage));
    }
    assert_eq!(stop.segment + 1, outcome.segments.len());
    assert_eq!(index.len(), outcome.records_intact);
    let segment = &outcome.segments[stop.segment];
    let io_error = |e| {
        StoreError::io(
            format!("cutting off the torn tail of {}", segment.path.display()),
            e,
        )
    };
    if segment.valid_len == 0 {
        tracing::warn!(
            file = %segment.path.display(),
            reason = %stop.damage.reason,
            "removing a segment whose header was never completely written (a crash while creating it)"
        );
        std::fs::remove_file(&segment.path).map_err(io_error)?;
        if let Some(parent) = segment.path.parent() {
            writer::sync_dir(parent).map_err(io_error)?;
        }
        outcome.segments.pop();
    } else {
        let file = OpenOptions::new()
            .write(true)
            .open(&segment.path)
            .map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        tracing::warn!(
            file = %segment.path.display(),
            position = outcome.records_intact,
            offset = segment.valid_len,
            bytes_cut = file_len.saturating_sub(segment.valid_len),
            reason = %stop.damage.reason,
            "cutting off an incomplete record at the end of the log (a crash mid-write; it was never acknowledged)"
        );
        file.set_len(segment.valid_len).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
    }
    Ok(outcome)
}

/// A contiguous byte range of one segment holding consecutive records.
struct Run {
    segment: Arc<SegmentHandle>,
    offset: u64,
    bytes: u64,
    /// (position, frame length) of each record in the run, in order.
    records: Vec<(u64, u32)>,
}

/// Groups the records at `positions` (ascending) into runs of adjacent bytes.
fn plan_runs(index: &Index, positions: impl Iterator<Item = u64>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for position in positions {
        let location = index.locations[position as usize];
        if let Some(run) = runs.last_mut()
            && Arc::ptr_eq(&run.segment, &index.segments[location.segment as usize])
            && run.offset + run.bytes == location.offset
            && run.bytes + u64::from(location.frame_len) <= READ_RUN_BYTES_MAX
        {
            run.bytes += u64::from(location.frame_len);
            run.records.push((position, location.frame_len));
            continue;
        }
        runs.push(Run {
            segment: Arc::clone(&index.segments[location.segment as usize]),
            offset: location.offset,
            bytes: u64::from(location.frame_len),
            records: vec![(position, location.frame_len)],
        });
    }
    runs
}

/// Reads and decodes the records of `runs`, checking each CRC right after reading.
fn read_runs(runs: &[Run]) -> Result<Vec<RecordedEvent>, StoreError> {
    thread_local! {
        // Reused across reads on the same thread: a fresh multi-megabyte buffer per read
        // would be page-faulted in and zeroed by the kernel every time.
        static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buffer = BUFFER.take();
    let result = read_runs_into(runs, &mut buffer);
    BUFFER.set(buffer);
    result
}

fn read_runs_into(runs: &[Run], buffer: &mut Vec<u8>) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(runs.iter().map(|run| run.records.len()).sum());
    for run in runs {
        buffer.resize(run.bytes as usize, 0);
        run.segment
            .file
            .read_exact_at(buffer, run.offset)
            .map_err(|e| StoreError::io(format!("reading {}", run.segment.path.display()), e))?;
        let mut at = 0usize;
        for &(position, frame_len) in &run.records {
            let damage = |reason: String| {
                StoreError::Corrupt(Damage {
                    position: Some(position),
                    file: Some(run.segment.path.clone()),
                    offset: Some(run.offset + at as u64),
                    reason,
                })
            };
            let frame = &buffer[at..at + frame_len as usize];
            match format::check_frame(frame) {
                Ok(len) if len == frame.len() => {}
                Ok(_) => return Err(damage("record length changed since it was written".into())),
                Err(reason) => return Err(damage(reason)),
            }
            let event = codec::decode_body(format::split_frame(frame).body).map_err(damage)?;
            if event.position.0 != position {
                return Err(damage(format!(
                    "record holds position {}, expected {position}",
                    event.position
                )));
            }
            events.push(event);
            at += frame_len as usize;
        }
    }
    Ok(events)
}

fn read_index(shared: &Shared) -> std::sync::RwLockReadGuard<'_, Index> {
    // The writer changes the index only by pushing complete entries, so a panic elsewhere
    // cannot leave it half-updated: a poisoned lock is still consistent.
    shared
        .index
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The index for changing it (the writer thread, or a read-only store's follower).
pub(crate) fn lock_index(shared: &Shared) -> std::sync::RwLockWriteGuard<'_, Index> {
    shared
        .index
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
