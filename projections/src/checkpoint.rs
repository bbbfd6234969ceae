//! Checkpoints: the read models saved with their position, to resume without a full replay.
//!
//! File format (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CSPPROJ\n` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 8 | position of the last event applied, `u64::MAX` for none |
//! | 16 | id of the last event applied (zero for none) |
//! | 8 | payload length in bytes |
//! | 4 | CRC-32C of the payload |
//! | n | payload: the read models as MessagePack (rmp-serde, positional) |
//!
//! A checkpoint is written to a temporary file, fsynced and renamed into place, so a crash
//! leaves the old checkpoint or the new one, never half of one. On reading, anything that
//! does not check out — magic, version, length, checksum, decoding, the tables' own
//! invariants, the header's position and id against the state's — makes the checkpoint
//! worthless: the caller logs why and rebuilds from the log. A checkpoint is also checked
//! against the log itself by the runner (the event at its position must have its id).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::model::Projections;

/// The checkpoint format version. Bump it whenever the read models' layout or the meaning
/// of any field changes: an older checkpoint is then discarded and rebuilt, never misread.
pub const FORMAT_VERSION: u32 = 2;

const MAGIC: &[u8; 8] = b"CSPPROJ\n";
const HEADER_BYTES: usize = 8 + 4 + 8 + 16 + 8 + 4;
/// The largest payload read back: a checkpoint is the read models of one log, and a
/// length field beyond this is damage, not data.
pub const CHECKPOINT_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Why a checkpoint was not written or not used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint, is damaged, or is of another format version.
    #[error("checkpoint {path} is unusable: {reason}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What did not check out.
        reason: String,
    },
    /// The read models could not be encoded (a bug).
    #[error("cannot encode the read models: {0}")]
    Encode(String),
}

/// Encodes the read models as a checkpoint image (header and payload).
pub fn encode(projections: &Projections) -> Result<Vec<u8>, CheckpointError> {
    let payload = rmp_serde::to_vec(projections)
        .map_err(|error| CheckpointError::Encode(error.to_string()))?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&projections.position().unwrap_or(u64::MAX).to_le_bytes());
    bytes.extend_from_slice(
        projections
            .last_event_id()
            .unwrap_or(Uuid::nil())
            .as_bytes(),
    );
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// Decodes a checkpoint image, checking everything; `Err` holds the reason it is unusable.
pub fn decode(bytes: &[u8]) -> Result<Projections, String> {
    if bytes.len() < HEADER_BYTES {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    let (header, payload) = bytes.split_at(HEADER_BYTES);
    if &header[..8] != MAGIC {
        return Err("not a projections checkpoint (bad magic)".into());
    }
    let field = |from: usize, to: usize| -> &[u8] { &header[from..to] };
    let u32_at =
        |from: usize| u32::from_le_bytes(field(from, from + 4).try_into().unwrap_or_default());
    let u64_at =
        |from: usize| u64::from_le_bytes(field(from, from + 8).try_into().unwrap_or_default());
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this program reads version {FORMAT_VERSION}"
        ));
    }
    let position = u64_at(12);
    let event_id = Uuid::from_slice(field(20, 36)).map_err(|error| error.to_string())?;
    let length = u64_at(36);
    let checksum = u32_at(44);
    if length != payload.len() as u64 {
        return Err(format!(
            "payload is {} bytes, the header says {length}",
            payload.len()
        ));
    }
    if crc32c::crc32c(payload) != checksum {
        return Err("payload checksum mismatch".into());
    }
    let mut projections: Projections = rmp_serde::from_slice(payload)
        .map_err(|error| format!("payload does not decode: {error}"))?;
    if !projections.rebuild_indexes() || !projections.consistent() {
        return Err("payload decodes but its tables disagree".into());
    }
    if projections.position().unwrap_or(u64::MAX) != position
        || projections.last_event_id().unwrap_or(Uuid::nil()) != event_id
    {
        return Err("header position or event id disagree with the payload".into());
    }
    Ok(projections)
}

/// Writes a checkpoint image to `path` atomically (temporary file, fsync, rename, fsync
/// of the directory).
pub fn write_image(path: &Path, image: &[u8]) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        let mut file = File::create(&temporary).map_err(io)?;
        file.write_all(image).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    fs::rename(&temporary, path).map_err(io)?;
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        File::open(directory)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Saves the read models to `path` (see [`write_image`]).
pub fn save(projections: &Projections, path: &Path) -> Result<(), CheckpointError> {
    write_image(path, &encode(projections)?)
}

/// Loads a checkpoint. `Ok(None)` when there is no file; `Err(Unusable)` when there is one
/// that does not check out (the caller discards it and rebuilds).
pub fn load(path: &Path) -> Result<Option<Projections>, CheckpointError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let unusable = |reason: String| CheckpointError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let length = file
        .metadata()
        .map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if length > CHECKPOINT_BYTES_MAX {
        return Err(unusable(format!("{length} bytes is beyond the limit")));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    file.read_to_end(&mut bytes)
        .map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    decode(&bytes).map(Some).map_err(unusable)
}

/// Loads a checkpoint if there is a usable one; a damaged or version-mismatched one is
/// reported with a warning and treated as absent, so the caller rebuilds.
pub fn load_or_discard(path: &Path) -> Option<Projections> {
    match load(path) {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "discarding the projections checkpoint; rebuilding from the log");
            None
        }
    }
}
