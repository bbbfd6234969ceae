//! A read-only store beside a live writer: the index built by one scan, then kept up with
//! the writer by scans resumed where the previous one stopped.
//!
//! The follower takes no lock and writes nothing. It accepts only whole records whose CRC,
//! position, revision and carried chain check out, exactly as open does. What it sees at the
//! end of the last segment and cannot accept yet — a frame being written, a segment whose
//! header is being written — it leaves for the next look, never cuts off: only the writer
//! repairs the log. A record is visible to the follower once the writer has written it,
//! which is at most one group commit before the writer acknowledges it; a record written
//! but never synced is one the writer's next open keeps too, unless the machine loses power.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use store::{Damage, Position, StoreError};

use crate::index::{Index, SegmentHandle};
use crate::scan::{self, Resume, ScanOptions, Stop};
use crate::{Shared, lock_index};

/// Where the follower resumes, and what it last complained about.
pub(crate) struct Follower {
    log_dir: PathBuf,
    resume: Option<Resume>,
    /// The damage last reported, so that a follower stuck on it logs it once.
    reported: Option<Damage>,
    /// Whether the last look failed (logged once until a look succeeds again).
    failing: bool,
}

impl Follower {
    pub(crate) fn new(log_dir: PathBuf) -> Self {
        Self {
            log_dir,
            resume: None,
            reported: None,
            failing: false,
        }
    }

    /// Reads what was appended since the last step into `index`. Returns the damage that
    /// stops it, if any; a torn tail is not damage here (the writer may be writing it).
    pub(crate) fn step(&mut self, index: &mut Index) -> Result<Option<Damage>, StoreError> {
        let options = ScanOptions {
            check_chain: false,
            records_max: None,
        };
        let known_segments = index.segments.len();
        let outcome = scan::scan_from(&self.log_dir, &options, self.resume.as_ref(), |record| {
            index.push_scanned(&record)
        })?;
        // The segments read for the first time, each with a complete header.
        for (at, segment) in outcome.segments.iter().enumerate() {
            let log_index = outcome.segment_base + at;
            if log_index < known_segments || segment.valid_len == 0 {
                continue;
            }
            assert_eq!(
                log_index,
                index.segments.len(),
                "segments are read in order"
            );
            let file = File::open(&segment.path)
                .map_err(|e| StoreError::io(format!("opening {}", segment.path.display()), e))?;
            index.segments.push(Arc::new(SegmentHandle {
                path: segment.path.clone(),
                file,
            }));
        }
        if let Some(last) = index.segments.len().checked_sub(1) {
            let scanned = &outcome.segments[last - outcome.segment_base];
            self.resume = Some(Resume {
                segment_index: last,
                first_position: scanned.first_position,
                path: scanned.path.clone(),
                valid_len: scanned.valid_len,
                records_intact: outcome.records_intact,
                chain: outcome.chain,
            });
        }
        Ok(match outcome.stop {
            Some(Stop {
                torn_tail: true, ..
            })
            | None => None,
            Some(stop) => Some(stop.damage),
        })
    }

    /// Whether the log may hold more than the last step read: the segment it resumes in has
    /// grown, or another segment has appeared. Cheap enough to ask every few milliseconds.
    pub(crate) fn has_news(&self) -> Result<bool, StoreError> {
        let Some(resume) = &self.resume else {
            return Ok(true);
        };
        let length = std::fs::metadata(&resume.path)
            .map_err(|e| StoreError::io(format!("reading {}", resume.path.display()), e))?
            .len();
        if length > resume.valid_len {
            return Ok(true);
        }
        Ok(scan::list_segments(&self.log_dir)?
            .last()
            .is_some_and(|(first, _)| *first > resume.first_position))
    }

    /// Logs `damage` unless it is the one last logged.
    fn report(&mut self, damage: Option<Damage>) {
        if let Some(damage) = &damage
            && self.reported.as_ref() != Some(damage)
        {
            tracing::error!(
                %damage,
                "the log being followed is damaged: following stops before the damaged record"
            );
        }
        self.reported = damage;
    }
}

/// Follows the writer every `interval` until `stop` is dropped, publishing each new head.
pub(crate) fn run(
    mut follower: Follower,
    shared: Arc<Shared>,
    interval: Duration,
    stop: mpsc::Receiver<()>,
) {
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // Asked before taking the index's lock, so that readers wait only while there is
        // something to add.
        let stepped = follower.has_news().and_then(|news| {
            let mut index = lock_index(&shared);
            let damage = if news {
                Some(follower.step(&mut index)?)
            } else {
                None
            };
            Ok((damage, index.len()))
        });
        match stepped {
            Ok((damage, len)) => {
                follower.failing = false;
                if let Some(damage) = damage {
                    follower.report(damage);
                }
                let head = len.checked_sub(1).map(Position);
                if *shared.head.borrow() != head {
                    shared.head.send_replace(head);
                }
            }
            Err(error) => {
                if !follower.failing {
                    tracing::warn!(%error, "following the log failed; trying again until it works");
                }
                follower.failing = true;
            }
        }
    }
}

/// The log directory of `dir`, which must exist: a read-only store creates nothing.
pub(crate) fn existing_log_dir(dir: &Path) -> Result<PathBuf, StoreError> {
    let log_dir = crate::format::log_dir(dir);
    if log_dir.is_dir() {
        Ok(log_dir)
    } else {
        Err(StoreError::Invalid(format!(
            "no event log in {} to open read-only (nothing was ever recorded there)",
            dir.display()
        )))
    }
}
