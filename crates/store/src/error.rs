//! Errors of the store, grouped by who must act on them.

use std::path::PathBuf;

use crate::{ExpectedRevision, LogTail, StreamName};

/// Where a log is damaged, as precisely as the backend can say.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Damage {
    /// The global position of the first bad record, when the damage is inside a record whose
    /// position is known (or of the record that should have come next).
    pub position: Option<u64>,
    /// The file (segment) that holds the damage, for file backends.
    pub file: Option<PathBuf>,
    /// The byte offset of the damaged record within `file`.
    pub offset: Option<u64>,
    /// What is wrong, in words.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        if let Some(position) = self.position {
            write!(f, " (at position {position}")?;
        } else {
            f.write_str(" (")?;
        }
        if let Some(file) = &self.file {
            write!(f, " in {}", file.display())?;
        }
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        f.write_str(")")
    }
}

/// Everything that can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not where the writer expected it.
    #[error("wrong expected revision on stream {stream}: expected {expected}, actual {}", match .actual { Some(r) => format!("revision {r}"), None => "no stream".to_string() })]
    WrongExpectedRevision {
        /// The stream appended to.
        stream: StreamName,
        /// What the writer expected.
        expected: ExpectedRevision,
        /// The stream's actual last revision (`None`: the stream does not exist).
        actual: Option<u64>,
    },
    /// A pipelined append's turn came and the log did not end as its writer expected (an
    /// append queued before it failed, or another writer's came first); nothing was written.
    #[error("the log ends with {actual}, not {expected} as the append expected")]
    TailMoved {
        /// What the writer expected.
        expected: LogTail,
        /// What the log ended with.
        actual: LogTail,
    },
    /// The request itself is invalid (bad name, over a limit, duplicate ids); nothing was written.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The stored data is damaged; nothing is dropped silently.
    #[error("corrupt log: {0}")]
    Corrupt(Damage),
    /// The operating system refused an operation.
    #[error("storage i/o failed: {context}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory for writing.
    #[error("data directory {0} is locked by another process (is another csp-ledger running?)")]
    Locked(PathBuf),
    /// A remote backend could not be reached or did not answer in time; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// This process may not write to a store that several processes share: another one
    /// holds the writer lease, or this one lost it; nothing was appended. Retry against the
    /// writer the message names.
    #[error("not the writer: {0}")]
    NotWriter(String),
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Wraps an I/O error with what the store was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
