//! Auditor and service keys, issued and revoked by the operator.
//!
//! A key is 256 random bits, shown once at issue; the file beside the log keeps only its
//! SHA-256 (a random key needs no slow hash: there is nothing to guess from its hash). The
//! file is rewritten whole through a temporary file, fsync and rename, so a crash leaves the
//! old or the new version, never half of one. Keys are not facts of the CSP program, so
//! they are not in the event log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{hex, token_hash};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Read-only: every query, history, verify, export and the event feed.
    Auditor,
    /// Subscriptions (the event feed) and queries.
    Service,
}

/// A key as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id.
    pub id: Uuid,
    /// What it may do.
    pub kind: KeyKind,
    /// Who it is for, as the operator named it.
    pub name: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    info: KeyInfo,
    /// Hex SHA-256 of the key.
    hash: String,
}

#[derive(Default, Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    keys: Vec<Entry>,
}

const FILE_FORMAT: u32 = 1;
/// Most keys kept (revoked ones included, for the audit trail).
pub const KEYS_MAX: usize = 10_000;
/// Longest key name, in bytes.
pub const KEY_NAME_BYTES_MAX: usize = 200;

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("api key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("api key file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A limit was reached or a name is unusable.
    #[error("{0}")]
    Refused(String),
}

/// The key store.
pub struct ApiKeys {
    path: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl ApiKeys {
    /// Opens (or creates on first issue) the key file at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KeyError> {
        let path = path.into();
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeyFile =
                    serde_json::from_slice(&bytes).map_err(|error| KeyError::Corrupt {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                if file.format != FILE_FORMAT {
                    return Err(KeyError::Corrupt {
                        path,
                        reason: format!("unknown format {}", file.format),
                    });
                }
                file.keys
                    .into_iter()
                    .map(|entry| (entry.hash.clone(), entry))
                    .collect()
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(KeyError::Io { path, source }),
        };
        Ok(Self {
            path: Some(path),
            entries: Mutex::new(entries),
        })
    }

    /// A store that keeps nothing on disk (tests).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // Entries are replaced whole, so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Issues a key; returns its info and the key itself (shown once).
    pub fn issue(&self, kind: KeyKind, name: &str) -> Result<(KeyInfo, String), KeyError> {
        let name = name.trim();
        if name.is_empty() || name.len() > KEY_NAME_BYTES_MAX {
            return Err(KeyError::Refused(format!(
                "a key name is 1 to {KEY_NAME_BYTES_MAX} bytes"
            )));
        }
        let key = format!("csk_{}", credentials::generate_token());
        let info = KeyInfo {
            id: Uuid::now_v7(),
            kind,
            name: name.to_string(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        let hash = hex(&token_hash(&key));
        let mut entries = self.lock();
        if entries.len() >= KEYS_MAX {
            return Err(KeyError::Refused(format!("at most {KEYS_MAX} keys")));
        }
        entries.insert(
            hash.clone(),
            Entry {
                info: info.clone(),
                hash: hash.clone(),
            },
        );
        if let Err(error) = self.persist(&entries) {
            entries.remove(&hash);
            return Err(error);
        }
        Ok((info, key))
    }

    /// Revokes a key; `Ok(false)` when no such key.
    pub fn revoke(&self, id: Uuid) -> Result<bool, KeyError> {
        let mut entries = self.lock();
        let Some(hash) = entries
            .values()
            .find(|entry| entry.info.id == id)
            .map(|entry| entry.hash.clone())
        else {
            return Ok(false);
        };
        let previous = entries.get(&hash).cloned();
        if let Some(entry) = entries.get_mut(&hash)
            && entry.info.revoked_at.is_none()
        {
            entry.info.revoked_at = Some(Utc::now());
        }
        if let Err(error) = self.persist(&entries) {
            if let Some(previous) = previous {
                entries.insert(hash, previous);
            }
            return Err(error);
        }
        Ok(true)
    }

    /// The live (not revoked) key matching `key`.
    pub fn resolve(&self, key: &str) -> Option<KeyInfo> {
        let hash = hex(&token_hash(key));
        self.lock()
            .get(&hash)
            .filter(|entry| entry.info.revoked_at.is_none())
            .map(|entry| entry.info.clone())
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut keys: Vec<KeyInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        keys.sort_by_key(|info| info.id);
        keys
    }

    fn persist(&self, entries: &BTreeMap<String, Entry>) -> Result<(), KeyError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = KeyFile {
            format: FILE_FORMAT,
            keys: entries.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|error| KeyError::Corrupt {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        atomic_file::replace(path, &bytes, atomic_file::Access::Private).map_err(|source| {
            KeyError::Io {
                path: path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_resolve_revoke_and_reopen() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|source| KeyError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let path = dir.path().join("api-keys.json");
        let keys = ApiKeys::open(&path)?;
        let (info, key) = keys.issue(KeyKind::Auditor, "audit firm")?;
        assert_eq!(keys.resolve(&key).map(|i| i.id), Some(info.id));
        assert!(keys.resolve("csk_wrong").is_none());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains(&key), "the key itself is never stored");
        assert!(keys.revoke(info.id)?);
        assert!(keys.resolve(&key).is_none());
        let reopened = ApiKeys::open(&path)?;
        assert!(reopened.resolve(&key).is_none());
        assert_eq!(reopened.list().len(), 1);
        Ok(())
    }
}
