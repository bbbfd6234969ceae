//! Reading the log in order: the index rebuild at open, `verify()` and `verify_dir`, and a
//! read-only store following a live writer (a scan resumed where the previous one stopped).
//!
//! One scanner serves all of them so that open, following and verification agree on what
//! damage is. The
//! scanner stops at the first problem and says whether it looks like a torn tail (the last
//! frame of the last segment is broken and nothing valid follows it: a crash mid-write) or
//! damage in the middle (everything else).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use store::codec::{self, ChainValue, GENESIS_CHAIN};
use store::{Damage, StoreError};

use crate::format::{
    self, HEADER_BYTES, SegmentHeader, check_frame, parse_segment_file_name, split_frame,
};

/// What a scan checks.
pub(crate) struct ScanOptions {
    /// Recompute the hash chain and decode every body (verification); otherwise trust the
    /// stored chain values after checking each CRC (open, which must be fast).
    pub check_chain: bool,
    /// Check only records at positions below this (a live store's acknowledged head);
    /// `None`: everything on disk.
    pub records_max: Option<u64>,
}

/// Where a scan resumes: just after the records an earlier scan accepted. Only the segment
/// it stopped in and the ones after it are read again.
#[derive(Clone, Debug)]
pub(crate) struct Resume {
    /// Index of that segment among the log's segments.
    pub segment_index: usize,
    /// The position its file name gives.
    pub first_position: u64,
    /// Its path.
    pub path: PathBuf,
    /// Bytes of it already accepted (header and intact records).
    pub valid_len: u64,
    /// Records accepted so far (positions `0..records_intact`).
    pub records_intact: u64,
    /// Chain value after the last of them.
    pub chain: ChainValue,
}

/// A record the scan accepted, handed to the visitor.
pub(crate) struct RecordView<'a> {
    /// Index of the segment among the log's segments (in [`ScanOutcome::segments`], less
    /// [`ScanOutcome::segment_base`]).
    pub segment: u32,
    /// Byte offset of the frame in the segment file.
    pub offset: u64,
    /// Length of the whole frame.
    pub frame_len: u32,
    /// The body's fields the index needs.
    pub fields: format::BodyFields<'a>,
    /// The whole canonical body.
    pub body: &'a [u8],
}

/// A segment file the scan read.
pub(crate) struct ScannedSegment {
    /// Its path.
    pub path: PathBuf,
    /// The position of its first record, as its file name gives it.
    pub first_position: u64,
    /// Bytes of header and intact records.
    pub valid_len: u64,
}

/// Where and why a scan stopped early.
pub(crate) struct Stop {
    /// The damage, naming the first bad position.
    pub damage: Damage,
    /// Whether it looks like a torn tail: the broken frame is the last thing in the last
    /// segment, so a crash mid-write explains it.
    pub torn_tail: bool,
    /// Index of the segment holding it (in [`ScanOutcome::segments`], which includes it).
    pub segment: usize,
}

/// The result of a scan.
pub(crate) struct ScanOutcome {
    /// Every segment read, in order (a segment with a torn header is included); a resumed
    /// scan starts with the segment it resumed in.
    pub segments: Vec<ScannedSegment>,
    /// The log's index of `segments[0]`: 0, or [`Resume::segment_index`].
    pub segment_base: usize,
    /// Records found intact (positions `0..records_intact`).
    pub records_intact: u64,
    /// Chain value after the last intact record.
    pub chain: ChainValue,
    /// The first problem, if any.
    pub stop: Option<Stop>,
}

/// Lists the segment files of a log directory in position order.
pub(crate) fn list_segments(log_dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let entries = std::fs::read_dir(log_dir)
        .map_err(|e| StoreError::io(format!("listing {}", log_dir.display()), e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| StoreError::io(format!("listing {}", log_dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse_segment_file_name(name) {
            None => {}
            Some(Ok(first_position)) => segments.push((first_position, entry.path())),
            Some(Err(())) => {
                return Err(StoreError::Corrupt(Damage {
                    position: None,
                    file: Some(entry.path()),
                    offset: None,
                    reason: "segment file name is not 20 digits".into(),
                }));
            }
        }
    }
    segments.sort();
    Ok(segments)
}

/// Scans the log in `log_dir`, calling `visit` for every intact record in order. `visit` may
/// refuse a record with a reason (e.g. a stream revision out of sequence), which stops the
/// scan as damage at that record.
///
/// A reader thread reads each segment and checks its frames' CRCs while this thread checks
/// the order of the previous segment's records and visits them: the two halves take about
/// as long as each other, so open takes about half as long as doing both in turn.
pub(crate) fn scan(
    log_dir: &Path,
    options: &ScanOptions,
    visit: impl FnMut(RecordView<'_>) -> Result<(), String>,
) -> Result<ScanOutcome, StoreError> {
    scan_from(log_dir, options, None, visit)
}

/// [`scan`], resuming after what an earlier scan accepted when `resume` says where: the
/// segment it stopped in is read from where its intact records end (its header is not read
/// again), then every segment after it. The records are checked exactly as in a whole scan.
pub(crate) fn scan_from(
    log_dir: &Path,
    options: &ScanOptions,
    resume: Option<&Resume>,
    mut visit: impl FnMut(RecordView<'_>) -> Result<(), String>,
) -> Result<ScanOutcome, StoreError> {
    let mut files = list_segments(log_dir)?;
    let mut outcome = ScanOutcome {
        segments: Vec::with_capacity(files.len()),
        segment_base: 0,
        records_intact: 0,
        chain: GENESIS_CHAIN,
        stop: None,
    };
    let mut start_offset = 0;
    let mut start_position = 0;
    if let Some(resume) = resume {
        files.retain(|(first_position, _)| *first_position >= resume.first_position);
        if files.first().map(|(first, _)| *first) != Some(resume.first_position) {
            return Err(StoreError::Corrupt(Damage {
                position: Some(resume.records_intact),
                file: Some(resume.path.clone()),
                offset: None,
                reason: "a segment already read is gone from the log".into(),
            }));
        }
        outcome.segment_base = resume.segment_index;
        outcome.records_intact = resume.records_intact;
        outcome.chain = resume.chain;
        outcome.segments.push(ScannedSegment {
            path: resume.path.clone(),
            first_position: resume.first_position,
            valid_len: resume.valid_len,
        });
        start_offset = resume.valid_len;
        start_position = resume.records_intact;
    }
    let records_max = options.records_max.unwrap_or(u64::MAX);
    std::thread::scope(|scope| {
        // Bounded: at most three segment buffers exist at once (being read, waiting, being
        // visited), and spent buffers go back to the reader so that it does not fault in
        // fresh memory for every segment.
        let (framed_sender, framed_receiver) = mpsc::sync_channel(1);
        let (spent_sender, spent_receiver) = mpsc::channel::<Vec<u8>>();
        let file_count = files.len();
        scope.spawn(move || {
            for (segment_index, (named_first, path)) in files.into_iter().enumerate() {
                let segment = SegmentFile {
                    index: segment_index,
                    path,
                    named_first,
                    is_last: segment_index + 1 == file_count,
                    start_offset: if segment_index == 0 { start_offset } else { 0 },
                    start_position: if segment_index == 0 && start_offset > 0 {
                        start_position
                    } else {
                        named_first
                    },
                };
                let sent = frame_segment(&segment, &spent_receiver, |chunk| {
                    framed_sender.send(chunk).is_ok()
                });
                if !sent {
                    break;
                }
            }
        });
        for framed in framed_receiver {
            if outcome.records_intact >= records_max {
                break;
            }
            let framed = framed?;
            let stop = check_chunk(&framed, options, &mut outcome, &mut visit);
            if stop.is_some() {
                outcome.stop = stop;
                break;
            }
            let _ = spent_sender.send(framed.bytes);
        }
        Ok(outcome)
    })
}

/// Bytes the reader thread reads at a time. Small buffers, recycled, are cheaper than one
/// buffer per segment: fresh memory is page-faulted in and zeroed by the kernel, which costs
/// as much as the read itself.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// A segment file to read.
struct SegmentFile {
    /// Index in the scan's list (0: the first segment read).
    index: usize,
    path: PathBuf,
    named_first: u64,
    is_last: bool,
    /// Where to start reading: 0 (from the header), or past the records a resumed scan
    /// has already accepted.
    start_offset: u64,
    /// The position of the first record read from `start_offset`.
    start_position: u64,
}

/// A piece of a segment as the reader thread hands it over: whole frames, checked.
struct Framed {
    segment: usize,
    path: PathBuf,
    named_first: u64,
    /// The segment is the log's last one.
    is_last: bool,
    /// The chunk starts the segment (and holds its header).
    first: bool,
    /// Offset of `bytes[0]` in the segment file.
    file_offset: u64,
    bytes: Vec<u8>,
    /// Length of the file when it is shorter than a header (then nothing else is read).
    file_len: u64,
    /// Lengths of the intact frames, in order, from `frames_start` in `bytes`.
    frames_start: usize,
    frames: Vec<u32>,
    /// The broken frame after them, if any: what is wrong, and whether it is a torn tail
    /// (the last segment, and no valid frame follows).
    broken: Option<(String, bool)>,
}

/// Reads a segment in chunks, checks its frames (lengths and CRCs) and hands each chunk to
/// `send`; returns false once `send` refuses or reading failed (the error was sent).
fn frame_segment(
    segment: &SegmentFile,
    spent: &mpsc::Receiver<Vec<u8>>,
    mut send: impl FnMut(Result<Framed, StoreError>) -> bool,
) -> bool {
    let io_error = |e| StoreError::io(format!("reading {}", segment.path.display()), e);
    let mut file = match File::open(&segment.path) {
        Ok(file) => file,
        Err(e) => {
            send(Err(io_error(e)));
            return false;
        }
    };
    let file_len = match file.metadata() {
        Ok(metadata) => metadata.len(),
        Err(e) => {
            send(Err(io_error(e)));
            return false;
        }
    };
    if segment.start_offset > 0
        && let Err(e) = file.seek(SeekFrom::Start(segment.start_offset))
    {
        send(Err(io_error(e)));
        return false;
    }
    let mut carry: Vec<u8> = Vec::new();
    let mut file_offset = segment.start_offset;
    let mut first = segment.start_offset == 0;
    // Frames of the segment handed over in earlier chunks.
    let mut frames_before = 0u64;
    loop {
        let mut bytes = spent.try_recv().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(&carry);
        let chunk_offset = file_offset - carry.len() as u64;
        let want = CHUNK_BYTES.max(carry.len() + format::FRAME_BYTES + format::BODY_BYTES_MAX);
        bytes.reserve(want);
        let read = match (&mut file)
            .take((want - carry.len()) as u64)
            .read_to_end(&mut bytes)
        {
            Ok(read) => read,
            Err(e) => {
                send(Err(io_error(e)));
                return false;
            }
        };
        file_offset += read as u64;
        let at_end = file_offset >= file_len || read == 0;
        let frames_start = if first {
            HEADER_BYTES.min(bytes.len())
        } else {
            0
        };
        let mut frames = Vec::new();
        let mut broken = None;
        let mut offset = frames_start;
        carry.clear();
        while offset < bytes.len() {
            match check_frame(&bytes[offset..]) {
                Ok(frame_len) => {
                    frames.push(frame_len as u32);
                    offset += frame_len;
                }
                Err(_) if !at_end && frame_runs_past(&bytes[offset..]) => {
                    // The frame continues in the next chunk.
                    carry.extend_from_slice(&bytes[offset..]);
                    bytes.truncate(offset);
                    break;
                }
                Err(reason) => {
                    // A torn write leaves a broken frame at the very end. If a valid frame
                    // follows, the break is in the middle: that is damage, never cut off.
                    let torn_tail = segment.is_last && {
                        let mut rest = bytes[offset + 1..].to_vec();
                        if let Err(e) = file.read_to_end(&mut rest) {
                            {
                                send(Err(io_error(e)));
                                return false;
                            };
                        }
                        let position = segment.start_position + frames_before + frames.len() as u64;
                        !format::valid_frame_follows(&rest, position)
                    };
                    broken = Some((reason, torn_tail));
                    bytes.truncate(offset);
                    break;
                }
            }
        }
        let done = at_end || broken.is_some();
        frames_before += frames.len() as u64;
        let chunk = Framed {
            segment: segment.index,
            path: segment.path.clone(),
            named_first: segment.named_first,
            is_last: segment.is_last,
            first,
            file_offset: chunk_offset,
            bytes,
            file_len,
            frames_start,
            frames,
            broken,
        };
        if !send(Ok(chunk)) {
            return false;
        }
        if done {
            return true;
        }
        first = false;
    }
}

/// Whether the frame at the start of `bytes` is only cut short by the end of `bytes` (its
/// length is plausible but needs more bytes).
fn frame_runs_past(bytes: &[u8]) -> bool {
    if bytes.len() < format::FRAME_PREFIX_BYTES {
        return true;
    }
    let mut length = [0; 4];
    length.copy_from_slice(&bytes[0..4]);
    let body_len = u32::from_le_bytes(length) as usize;
    body_len <= format::BODY_BYTES_MAX && format::FRAME_BYTES + body_len > bytes.len()
}

/// Checks a chunk's header (if it starts a segment) and records in log order, visiting each
/// record; returns where the scan must stop, if it must.
fn check_chunk(
    framed: &Framed,
    options: &ScanOptions,
    outcome: &mut ScanOutcome,
    visit: &mut impl FnMut(RecordView<'_>) -> Result<(), String>,
) -> Option<Stop> {
    let records_max = options.records_max.unwrap_or(u64::MAX);
    let bytes = framed.bytes.as_slice();
    let named_first = framed.named_first;
    let path = &framed.path;
    let position = outcome.records_intact;
    let stop = |offset: usize, reason: String, torn_tail: bool| Stop {
        damage: Damage {
            position: Some(position),
            file: Some(path.clone()),
            offset: Some(framed.file_offset + offset as u64),
            reason,
        },
        torn_tail,
        segment: framed.segment,
    };
    if framed.first {
        // The header: a crash while creating the last segment can leave it incomplete, with
        // nothing after it; anything else wrong with a header is damage.
        let header = match SegmentHeader::decode(bytes) {
            Ok(header) => header,
            Err(reason) => {
                outcome.segments.push(ScannedSegment {
                    path: path.clone(),
                    first_position: named_first,
                    valid_len: 0,
                });
                let torn_tail = framed.is_last && framed.file_len <= HEADER_BYTES as u64;
                return Some(stop(0, reason, torn_tail));
            }
        };
        outcome.segments.push(ScannedSegment {
            path: path.clone(),
            first_position: named_first,
            valid_len: HEADER_BYTES as u64,
        });
        let problem = if header.first_position != named_first {
            Some(format!(
                "segment header says it starts at position {}, its file name says {named_first}",
                header.first_position
            ))
        } else if named_first != position {
            Some(format!(
                "segment starts at position {named_first}, expected {position} (a segment is missing or misplaced)"
            ))
        } else if header.carried_chain != outcome.chain {
            Some("chain value carried into the segment does not match the previous record".into())
        } else {
            None
        };
        if let Some(reason) = problem {
            return Some(stop(0, reason, false));
        }
    }
    let mut offset = framed.frames_start;
    for &frame_len in &framed.frames {
        if outcome.records_intact >= records_max {
            return None;
        }
        let position = outcome.records_intact;
        let frame_len = frame_len as usize;
        let frame = split_frame(&bytes[offset..offset + frame_len]);
        let problem = check_record(&frame, position, &outcome.chain, options)
            .and_then(|fields| {
                visit(RecordView {
                    segment: (outcome.segment_base + framed.segment) as u32,
                    offset: framed.file_offset + offset as u64,
                    frame_len: frame_len as u32,
                    fields,
                    body: frame.body,
                })
            })
            .err();
        if let Some(reason) = problem {
            let mut stop = stop(offset, reason, false);
            stop.damage.position = Some(position);
            return Some(stop);
        }
        outcome.chain = frame.chain;
        outcome.records_intact += 1;
        offset += frame_len;
        if let Some(segment) = outcome.segments.last_mut() {
            segment.valid_len = framed.file_offset + offset as u64;
        }
    }
    if outcome.records_intact >= records_max {
        return None;
    }
    framed.broken.as_ref().map(|(reason, torn_tail)| {
        let mut stop = stop(offset, reason.clone(), *torn_tail);
        stop.damage.position = Some(outcome.records_intact);
        stop
    })
}

/// Checks a record whose frame is intact: its position, and with `check_chain` its chain
/// value and that its body decodes.
fn check_record<'a>(
    frame: &format::Frame<'a>,
    position: u64,
    previous: &ChainValue,
    options: &ScanOptions,
) -> Result<format::BodyFields<'a>, String> {
    let fields = format::body_fields(frame.body)?;
    if fields.position != position {
        return Err(format!(
            "record holds position {}, expected {position} (out of sequence)",
            fields.position
        ));
    }
    if options.check_chain {
        if codec::chain_next(previous, frame.body) != frame.chain {
            return Err("chain value does not match the record and its predecessor".into());
        }
        codec::decode_body(frame.body)?;
    }
    Ok(fields)
}
