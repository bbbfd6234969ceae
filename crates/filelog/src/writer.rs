//! The writer thread: group commit of appends, segment roll-over, and publishing the head.
//!
//! All appends go through one thread so that the log has one order and one file offset. The
//! thread takes every request waiting in its bounded queue, decides each against the index
//! plus the requests before it in the same batch (`store::plan_append`), encodes them into one
//! buffer, writes it once and syncs it once. Only then does it add the records to the index,
//! publish the new head and answer: an acknowledged append is durable, and readers never see
//! a record that is not.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use store::codec::ChainValue;
use store::{
    AppendPlan, AppendResult, ExpectedRevision, LogTail, NewEvent, Position, RecordedEvent,
    StoreError, StreamName, monotonic_recorded_at, plan_append,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::Shared;
use crate::format::{self, HEADER_BYTES, SegmentHeader};
use crate::index::{Location, SegmentHandle};

/// The longest a group commit waits for the writers of the previous one to come back.
const GROUP_COMMIT_WAIT_MAX: Duration = Duration::from_micros(200);
/// How often it looks for them meanwhile.
const GROUP_COMMIT_POLL: Duration = Duration::from_micros(20);

/// One append waiting for the writer.
pub(crate) struct Request {
    pub stream: StreamName,
    pub expected: ExpectedRevision,
    pub events: Vec<NewEvent>,
    /// For a pipelined submission: what the log must end with when its turn comes.
    pub after: Option<LogTail>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The state only the writer thread touches.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub log_dir: PathBuf,
    pub segment_bytes_max: u64,
    pub batch_bytes_max: usize,
    /// The segment appended to, opened for writing.
    pub active_file: File,
    /// Bytes in the active segment (header and acknowledged records).
    pub active_len: u64,
    /// Index of the active segment in the index's segment list.
    pub active_segment: u32,
    /// Position of the next record.
    pub next_position: u64,
    /// Chain value after the last record.
    pub chain: ChainValue,
    /// Recorded-at of the last record, to keep it non-decreasing.
    pub last_recorded_at: Option<DateTime<Utc>>,
    /// Why the store refuses writes after a failed write or sync (`None`: healthy).
    pub failed: Option<String>,
    /// The data directory's lock, held as long as the writer runs.
    pub _lock: File,
}

/// A run of encoded records bound for one segment.
struct Chunk {
    /// `Some`: the chunk starts a new segment with this header.
    new_segment: Option<SegmentHeader>,
    /// Range of the batch buffer holding the chunk's bytes (for a new segment, the header
    /// is written in front of them).
    bytes: std::ops::Range<usize>,
}

/// What a request of a batch will be answered, once the batch is durable.
struct Outcome {
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
    result: Result<AppendResult, StoreError>,
}

/// A record added by the batch, to be put in the index once durable.
struct Added {
    stream: StreamName,
    revision: u64,
    event_id: Uuid,
    location: Location,
}

impl Writer {
    /// Runs until every sender is gone and the queue is drained.
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut buffer = Vec::new();
        let mut previous_requests = 0usize;
        while let Some(first) = requests.blocking_recv() {
            let mut bytes = request_bytes(&first);
            let mut batch = vec![first];
            let wait_until = Instant::now() + GROUP_COMMIT_WAIT_MAX;
            // Group commit: everything already waiting shares this write and sync, up to a
            // bound on the batch's size so that one batch cannot take all memory.
            while bytes < self.batch_bytes_max {
                match requests.try_recv() {
                    Ok(request) => {
                        bytes += request_bytes(&request);
                        batch.push(request);
                    }
                    // The writers answered by the previous commit are usually about to send
                    // their next appends. When fewer are here than were in that commit, wait
                    // a moment (far less than a sync) so that one sync serves them all
                    // instead of splitting them over two. A lone writer never waits.
                    Err(_) if batch.len() < previous_requests && Instant::now() < wait_until => {
                        std::thread::sleep(GROUP_COMMIT_POLL);
                    }
                    Err(_) => break,
                }
            }
            previous_requests = batch.len();
            self.commit(batch, &mut buffer);
            // Do not keep a huge buffer from one large batch for the life of the store.
            if buffer.capacity() > 4 * self.batch_bytes_max {
                buffer = Vec::new();
            }
        }
    }

    fn commit(&mut self, batch: Vec<Request>, buffer: &mut Vec<u8>) {
        if let Some(reason) = &self.failed {
            for request in batch {
                let _ = request.reply.send(Err(failed_error(reason)));
            }
            return;
        }
        buffer.clear();
        let planned = self.plan(batch, buffer);
        if planned.chunks.is_empty() {
            // Nothing new to write: retries and conflicts only, about durable records.
            for outcome in planned.outcomes {
                let _ = outcome.reply.send(outcome.result);
            }
            return;
        }
        let mut new_segments = Vec::new();
        if let Err(error) = self.write_chunks(&planned.chunks, buffer, &mut new_segments) {
            let reason = format!("{error}");
            tracing::error!(%reason, "log write failed; the store refuses further writes");
            // After a failed write or fsync the file's state is unknown; the only safe course
            // is to stop writing. Reopening the store recovers from what is on disk.
            self.failed = Some(reason.clone());
            for outcome in planned.outcomes {
                let _ = outcome.reply.send(Err(StoreError::io(
                    "appending to the log",
                    io::Error::new(error.kind(), reason.clone()),
                )));
            }
            return;
        }
        self.next_position = planned.next_position;
        self.chain = planned.chain;
        self.last_recorded_at = planned.last_recorded_at;
        let head = {
            let mut index = self
                .shared
                .index
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            index.segments.extend(new_segments);
            for added in planned.added {
                index.push(
                    added.stream.as_str(),
                    added.revision,
                    added.event_id,
                    added.location,
                );
            }
            assert_eq!(index.len(), self.next_position);
            index.len().checked_sub(1).map(Position)
        };
        self.shared.head.send_replace(head);
        for outcome in planned.outcomes {
            let _ = outcome.reply.send(outcome.result);
        }
    }

    /// Decides every request of the batch and encodes the new records into `buffer`.
    fn plan(&self, batch: Vec<Request>, buffer: &mut Vec<u8>) -> Planned {
        let index = self
            .shared
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let base_position = index.len();
        assert_eq!(base_position, self.next_position);
        let mut planned = Planned {
            outcomes: Vec::with_capacity(batch.len()),
            added: Vec::new(),
            chunks: Vec::new(),
            next_position: self.next_position,
            chain: self.chain,
            last_recorded_at: self.last_recorded_at,
        };
        // Positions appended to each stream by earlier requests of this batch: later requests
        // must see them, exactly as if the earlier ones had been committed alone.
        let mut pending: HashMap<StreamName, Vec<u64>> = HashMap::new();
        let mut pending_ids: Vec<Uuid> = Vec::new();
        // Bytes of the segment being filled: the active one, then any started by this batch.
        let mut segment_len = self.active_len;
        let mut segment = self.active_segment;
        let mut chunk_start = 0;
        let mut chunk_header: Option<SegmentHeader> = None;
        for request in batch {
            let committed = index.stream(request.stream.as_str());
            let appended = pending.get(&request.stream).map_or(&[][..], Vec::as_slice);
            let position_at = |revision: u64| -> Option<u64> {
                let revision = usize::try_from(revision).ok()?;
                match revision.checked_sub(committed.len()) {
                    None => committed.get(revision).copied(),
                    Some(at) => appended.get(at).copied(),
                }
            };
            let event_id_at = |position: u64| -> Uuid {
                match position.checked_sub(base_position) {
                    None => index.event_ids[position as usize],
                    Some(at) => pending_ids[at as usize],
                }
            };
            let current = (committed.len() + appended.len()).checked_sub(1);
            if let Some(expected) = request.after {
                // The log as it will end once the earlier requests of the batch are written.
                let actual = planned
                    .next_position
                    .checked_sub(1)
                    .map_or(LogTail::Empty, |last| LogTail::Last {
                        position: Position(last),
                        event_id: event_id_at(last),
                    });
                if actual != expected {
                    planned.outcomes.push(Outcome {
                        reply: request.reply,
                        result: Err(StoreError::TailMoved { expected, actual }),
                    });
                    continue;
                }
            }
            let plan = plan_append(
                &request.stream,
                current.map(|revision| revision as u64),
                request.expected,
                &request.events,
                |revision| position_at(revision).map(event_id_at),
            );
            let count = request.events.len() as u64;
            let result = match plan {
                Err(error) => Err(error),
                Ok(AppendPlan::AlreadyAppended { first_revision }) => {
                    let positions = (first_revision..first_revision + count)
                        .map(|revision| position_at(revision).map(Position))
                        .collect::<Option<Vec<_>>>();
                    assert!(positions.is_some(), "plan_append matched these revisions");
                    Ok(AppendResult {
                        revision: first_revision + count - 1,
                        positions: positions.unwrap_or_default(),
                    })
                }
                Ok(AppendPlan::Append { first_revision }) => {
                    let mut positions = Vec::with_capacity(request.events.len());
                    for (event, revision) in request.events.into_iter().zip(first_revision..) {
                        let position = planned.next_position;
                        let recorded_at =
                            monotonic_recorded_at(event.recorded_at, planned.last_recorded_at);
                        let event_id = event.event_id;
                        let recorded = RecordedEvent::place(
                            event,
                            request.stream.clone(),
                            revision,
                            Position(position),
                            recorded_at,
                        );
                        let record_len =
                            (format::FRAME_BYTES + store::codec::body_len(&recorded)) as u64;
                        let chunk_len = (buffer.len() - chunk_start) as u64;
                        let segment_has_records =
                            segment_len > HEADER_BYTES as u64 || chunk_len > 0;
                        if segment_has_records
                            && segment_len + chunk_len + record_len > self.segment_bytes_max
                        {
                            // Roll over: close the chunk for the full segment and start one
                            // for a new segment that begins with this record.
                            if chunk_len > 0 || chunk_header.is_some() {
                                planned.chunks.push(Chunk {
                                    new_segment: chunk_header.take(),
                                    bytes: chunk_start..buffer.len(),
                                });
                            }
                            chunk_start = buffer.len();
                            chunk_header = Some(SegmentHeader {
                                first_position: position,
                                carried_chain: planned.chain,
                            });
                            segment_len = HEADER_BYTES as u64;
                            segment += 1;
                        }
                        let offset = segment_len + (buffer.len() - chunk_start) as u64;
                        planned.chain = format::encode_record(&recorded, &planned.chain, buffer);
                        let added = Added {
                            stream: recorded.stream,
                            revision,
                            event_id,
                            location: Location {
                                offset,
                                frame_len: record_len as u32,
                                segment,
                            },
                        };
                        pending
                            .entry(added.stream.clone())
                            .or_default()
                            .push(position);
                        pending_ids.push(event_id);
                        planned.added.push(added);
                        planned.last_recorded_at = Some(recorded_at);
                        planned.next_position += 1;
                        positions.push(Position(position));
                    }
                    Ok(AppendResult {
                        revision: first_revision + count - 1,
                        positions,
                    })
                }
            };
            planned.outcomes.push(Outcome {
                reply: request.reply,
                result,
            });
        }
        if buffer.len() > chunk_start || chunk_header.is_some() {
            planned.chunks.push(Chunk {
                new_segment: chunk_header,
                bytes: chunk_start..buffer.len(),
            });
        }
        planned
    }

    /// Writes and syncs every chunk in order, starting new segments as planned.
    fn write_chunks(
        &mut self,
        chunks: &[Chunk],
        buffer: &[u8],
        new_segments: &mut Vec<Arc<SegmentHandle>>,
    ) -> io::Result<()> {
        for chunk in chunks {
            let bytes = &buffer[chunk.bytes.clone()];
            match &chunk.new_segment {
                None => {
                    self.active_file.write_all_at(bytes, self.active_len)?;
                    // Acknowledged means durable: one fdatasync for the whole chunk.
                    self.active_file.sync_data()?;
                    self.active_len += bytes.len() as u64;
                }
                Some(header) => {
                    // The previous segment was synced by its own chunk (or an earlier batch)
                    // before this one is created, so only the last segment can ever hold a
                    // torn write.
                    let (file, handle) = create_segment(&self.log_dir, header, bytes)?;
                    self.active_file = file;
                    self.active_len = (HEADER_BYTES + bytes.len()) as u64;
                    self.active_segment += 1;
                    new_segments.push(handle);
                }
            }
        }
        Ok(())
    }
}

/// The result of planning a batch.
struct Planned {
    outcomes: Vec<Outcome>,
    added: Vec<Added>,
    chunks: Vec<Chunk>,
    next_position: u64,
    chain: ChainValue,
    last_recorded_at: Option<DateTime<Utc>>,
}

/// Creates a segment file holding `header` then `records`, durably (file and directory
/// entry), and opens a read handle for the index.
pub(crate) fn create_segment(
    log_dir: &Path,
    header: &SegmentHeader,
    records: &[u8],
) -> io::Result<(File, Arc<SegmentHandle>)> {
    let path = log_dir.join(format::segment_file_name(header.first_position));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + records.len());
    bytes.extend_from_slice(&header.encode());
    bytes.extend_from_slice(records);
    file.write_all_at(&bytes, 0)?;
    file.sync_data()?;
    sync_dir(log_dir)?;
    let reader = File::open(&path)?;
    Ok((file, Arc::new(SegmentHandle { path, file: reader })))
}

/// Makes a directory's entries durable (a new or removed file).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The error every append gets once the store has stopped writing.
fn failed_error(reason: &str) -> StoreError {
    StoreError::io(
        "the store stopped accepting appends after a failed write; reopen it to recover",
        io::Error::other(reason.to_string()),
    )
}

/// A rough size of a request, to bound a batch.
fn request_bytes(request: &Request) -> usize {
    request
        .events
        .iter()
        .map(|event| format::RECORD_BYTES_MIN + event.payload.len() + event.actor.len())
        .sum()
}
