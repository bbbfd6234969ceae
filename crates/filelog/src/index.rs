//! The in-memory index of acknowledged records, rebuilt from the log at open.
//!
//! It maps a position to the bytes that hold it, and a stream revision to a position, so that
//! no read scans the log. Only the writer thread changes it, and only after the records it
//! adds are durable: whatever the index holds is acknowledged. In a store opened read-only,
//! the follower changes it instead, with the records the writer has written.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

/// An open segment file that readers read with `pread`.
pub(crate) struct SegmentHandle {
    /// Its path, for error reports.
    pub path: PathBuf,
    /// The file, opened for reading (the writer has its own handle).
    pub file: File,
}

/// Where the record at a position lies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Location {
    /// Byte offset of the frame in its segment.
    pub offset: u64,
    /// Length of the frame.
    pub frame_len: u32,
    /// Index of the segment in [`Index::segments`].
    pub segment: u32,
}

/// The index of everything acknowledged.
#[derive(Default)]
pub(crate) struct Index {
    /// Segment files in position order.
    pub segments: Vec<Arc<SegmentHandle>>,
    /// Where each record lies, by position (positions are dense from 0).
    pub locations: Vec<Location>,
    /// The event id of each record, by position, for idempotent retries.
    pub event_ids: Vec<Uuid>,
    /// The positions of each stream's events, by revision. Keyed by `str` so that the index
    /// rebuild at open allocates a key only for a new stream.
    pub streams: HashMap<Box<str>, Vec<u64>>,
}

impl Index {
    /// The number of acknowledged records.
    pub(crate) fn len(&self) -> u64 {
        self.locations.len() as u64
    }

    /// The positions of `stream`'s events by revision (empty: no such stream).
    pub(crate) fn stream(&self, stream: &str) -> &[u64] {
        self.streams.get(stream).map_or(&[], Vec::as_slice)
    }

    /// Records the next record; `revision` must be the stream's next one.
    pub(crate) fn push(&mut self, stream: &str, revision: u64, event_id: Uuid, location: Location) {
        let position = self.len();
        let positions = match self.streams.get_mut(stream) {
            Some(positions) => positions,
            None => self.streams.entry(Box::from(stream)).or_default(),
        };
        assert_eq!(positions.len() as u64, revision, "revisions are dense");
        positions.push(position);
        self.locations.push(location);
        self.event_ids.push(event_id);
    }

    /// Records a record a scan of the log accepted, refusing one out of its stream's
    /// sequence (the reason, for the scan to report as damage at that record).
    pub(crate) fn push_scanned(
        &mut self,
        record: &crate::scan::RecordView<'_>,
    ) -> Result<(), String> {
        let fields = &record.fields;
        let expected_revision = self.stream(fields.stream).len() as u64;
        if fields.revision != expected_revision {
            return Err(format!(
                "record holds revision {} of stream {:?}, expected {expected_revision} (out of sequence)",
                fields.revision, fields.stream
            ));
        }
        self.push(
            fields.stream,
            fields.revision,
            fields.event_id,
            Location {
                offset: record.offset,
                frame_len: record.frame_len,
                segment: record.segment,
            },
        );
        Ok(())
    }
}

/// The revisions (stream reads) or positions (log reads) a read visits, 0-based and dense over
/// `len` items, in read order. The same rules as `store::MemoryStore`.
pub(crate) fn select(
    len: u64,
    from: store::ReadFrom,
    direction: store::Direction,
    limit: usize,
) -> std::ops::Range<u64> {
    use store::{Direction, ReadFrom};
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    match direction {
        Direction::Forwards => {
            let start = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => len,
                ReadFrom::At(at) => at.min(len),
            };
            start..start.saturating_add(limit).min(len)
        }
        Direction::Backwards => {
            let end = match from {
                ReadFrom::Start => len.min(1),
                ReadFrom::End => len,
                ReadFrom::At(at) => at.saturating_add(1).min(len),
            };
            end.saturating_sub(limit)..end
        }
    }
}
