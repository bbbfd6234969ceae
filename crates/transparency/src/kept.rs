//! The published checkpoints, kept beside the tiles: one JSON object a line in
//! `checkpoints.jsonl`, appended and synced before a checkpoint is served, so that every
//! checkpoint an auditor may hold stays provable against any later one.
//!
//! ```text
//! {"size":12,"root":"<base64>","last_position":11,"note":"<signed note>"}
//! ```
//!
//! `last_position` is the log position of leaf `size - 1` (`null` for size 0): when it is
//! `size - 1` the log's positions are the leaf indexes (the embedded log), which is what lets
//! the tree be reopened from its tiles without reading the log again.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tlog::Hash;

use crate::TransparencyError;

/// A checkpoint the ledger published: its size, root and signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The tree size.
    pub size: u64,
    /// The root at that size.
    pub root: Hash,
    /// The log position of the last leaf (`None` for the empty tree).
    pub last_position: Option<u64>,
    /// The C2SP signed note (`text/plain`).
    pub note: String,
}

impl Published {
    /// Whether the first `size` records have the positions `0..size`.
    pub fn dense(&self) -> bool {
        match self.last_position {
            None => self.size == 0,
            Some(last) => last.checked_add(1) == Some(self.size),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    size: u64,
    root: String,
    last_position: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    note: String,
}

/// Reads every kept checkpoint, in the order published. A last line cut short by a crash
/// (no newline) is dropped: it was never served, since serving waits for the sync.
pub fn read(path: &Path) -> Result<Vec<Published>, TransparencyError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TransparencyError::Io {
                context: format!("reading {}", path.display()),
                source,
            });
        }
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    read_lines(path, complete)
}

/// The checkpoints of complete lines of the file.
fn read_lines(path: &Path, complete: &str) -> Result<Vec<Published>, TransparencyError> {
    let bad = |number: usize, reason: String| TransparencyError::Checkpoints {
        path: path.display().to_string(),
        reason: format!("line {number}: {reason}"),
    };
    let mut kept: Vec<Published> = Vec::new();
    for (number, line) in complete.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let line: Line =
            serde_json::from_str(line).map_err(|error| bad(number, error.to_string()))?;
        let root = tlog::parse_hash(&line.root)
            .ok_or_else(|| bad(number, "root is not a base64 hash".into()))?;
        if kept.last().is_some_and(|last| last.size > line.size) {
            return Err(bad(number, "sizes go backwards".into()));
        }
        kept.push(Published {
            size: line.size,
            root,
            last_position: line.last_position,
            note: line.note,
        });
    }
    Ok(kept)
}

/// Reads the last kept checkpoint, from the end of the file: the file grows by a line a
/// publication for ever, and only its last line is needed at start.
pub fn read_last(path: &Path) -> Result<Option<Published>, TransparencyError> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let io_error = |source| TransparencyError::Io {
        context: format!("reading {}", path.display()),
        source,
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    let length = file.metadata().map_err(io_error)?.len();
    let mut chunk = TAIL_BYTES_INITIAL.min(length);
    loop {
        file.seek(SeekFrom::Start(length - chunk))
            .map_err(io_error)?;
        let mut tail = Vec::with_capacity(chunk as usize);
        (&file)
            .take(chunk)
            .read_to_end(&mut tail)
            .map_err(io_error)?;
        // The complete lines end at the last newline; a line after it was cut by a crash.
        let Some(end) = tail.iter().rposition(|byte| *byte == b'\n') else {
            if chunk == length {
                return Ok(None);
            }
            chunk = (chunk * 2).min(length);
            continue;
        };
        match tail[..end].iter().rposition(|byte| *byte == b'\n') {
            Some(start) => return parse_last(path, &tail[start + 1..end + 1]),
            None if chunk == length => return parse_last(path, &tail[..end + 1]),
            None => chunk = (chunk * 2).min(length),
        }
    }
}

/// Bytes read from the end of the checkpoints file first: a line is a few hundred.
const TAIL_BYTES_INITIAL: u64 = 4096;

fn parse_last(path: &Path, line: &[u8]) -> Result<Option<Published>, TransparencyError> {
    let text = std::str::from_utf8(line).map_err(|_| TransparencyError::Checkpoints {
        path: path.display().to_string(),
        reason: "the last line is not UTF-8".into(),
    })?;
    Ok(read_lines(path, text)?.pop())
}

/// Appends `published` to the file and syncs it.
pub fn append(path: &Path, published: &Published) -> Result<(), TransparencyError> {
    let line = Line {
        size: published.size,
        root: tlog::encode_hash(&published.root),
        last_position: published.last_position,
        note: published.note.clone(),
    };
    let io_error = |source| TransparencyError::Io {
        context: format!("appending to {}", path.display()),
        source,
    };
    let mut text =
        serde_json::to_string(&line).map_err(|error| TransparencyError::Checkpoints {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
    text.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.sync_data().map_err(io_error)
}

/// The tree state whose tiles were synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synced {
    /// The tree size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
    /// The log position of its last leaf.
    pub last_position: Option<u64>,
}

impl Synced {
    /// Whether its leaves are at positions `0..size`.
    pub fn dense(&self) -> bool {
        match self.last_position {
            None => self.size == 0,
            Some(last) => last.checked_add(1) == Some(self.size),
        }
    }
}

/// Reads the synced state (`None`: none recorded, or unreadable: the tree is rebuilt).
pub fn read_synced(path: &Path) -> Option<Synced> {
    let text = fs::read_to_string(path).ok()?;
    let line: Line = serde_json::from_str(&text).ok()?;
    Some(Synced {
        size: line.size,
        root: tlog::parse_hash(&line.root)?,
        last_position: line.last_position,
    })
}

/// Records the synced state, durably.
pub fn write_synced(path: &Path, synced: &Synced) -> Result<(), TransparencyError> {
    let line = Line {
        size: synced.size,
        root: tlog::encode_hash(&synced.root),
        last_position: synced.last_position,
        note: String::new(),
    };
    let text = serde_json::to_string(&line).unwrap_or_default();
    atomic_file::replace(path, text.as_bytes(), atomic_file::Access::Public).map_err(|source| {
        TransparencyError::Io {
            context: format!("writing {}", path.display()),
            source,
        }
    })
}

/// The files of the tree under its directory (`DATA/tlog`).
#[derive(Clone, Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory (the tiles are under its `tile/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kept checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints.jsonl")
    }

    /// The signing key generated at first start (mode 0600).
    pub fn key(&self) -> PathBuf {
        self.dir.join("checkpoint.key")
    }

    /// The state the tiles were last synced at (`{"size", "root", "last_position"}`): the
    /// tree is reopened from the tiles at that size; without it, rebuilt from the log.
    pub fn synced(&self) -> PathBuf {
        self.dir.join("tiles-synced.json")
    }

    /// The verifier key, public, written at every start for the command line.
    pub fn verifier_key(&self) -> PathBuf {
        self.dir.join("verifier-key")
    }
}
