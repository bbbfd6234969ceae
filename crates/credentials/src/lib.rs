//! The credential store: passwords of partner users, hashed with Argon2id, kept in a small
//! mutable file beside the event log and never in it.
//!
//! The log records only that a temporary credential was issued and that it was changed;
//! this store holds the hashes that let a user sign in. It is keyed by an opaque subject
//! string (a user id), so it knows nothing of the domain.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// Shortest password a user may choose.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password accepted (bounds the hashing work an attacker can ask for).
pub const PASSWORD_BYTES_MAX: usize = 256;
/// Length of generated temporary passwords.
pub const TEMPORARY_PASSWORD_CHARS: usize = 20;
/// Random bytes in a generated link token (256 bits; the spec asks for at least 128).
pub const TOKEN_BYTES: usize = 32;

/// Characters of generated temporary passwords: no look-alikes (0/O, 1/l/I).
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Errors of the credential store.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The subject has no credential, or the password does not match. One case for both, so
    /// that a caller cannot tell which (no account-existence oracle).
    #[error("wrong credentials")]
    WrongCredentials,
    /// A chosen password breaks the policy.
    #[error("password refused: {0}")]
    PasswordRefused(String),
    /// The credential file could not be read or written.
    #[error("credential store i/o failed: {context}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The credential file is not valid.
    #[error("credential file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The hashing library failed (bad parameters).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// What a successful password check says about the credential.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Verified {
    /// The password is a temporary one: the user must change it before anything else.
    pub temporary: bool,
}

/// How expensive hashing is. Production uses OWASP's Argon2id recommendation; tests use the
/// cheapest valid parameters so that they stay fast.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HashCost {
    /// m = 19 MiB, t = 2, p = 1.
    Standard,
    /// m = 8 KiB, t = 1, p = 1. Only for tests.
    Minimal,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    /// PHC string of the Argon2id hash (algorithm, parameters, salt, hash).
    phc: String,
    temporary: bool,
    set_at: DateTime<Utc>,
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    format: u32,
    entries: BTreeMap<String, Entry>,
}

const FILE_FORMAT: u32 = 1;

/// The credential store. Cheap to share behind an `Arc`; every change is written to disk
/// (write to a temporary file, fsync, rename) before the call returns.
pub struct CredentialStore {
    path: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, Entry>>,
    hasher: Argon2<'static>,
    /// The PHC string of a random password hashed with this store's parameters: what
    /// [`CredentialStore::verify`] checks a password against when the subject has no
    /// credential, so that the work is the same. Made once, when the store opens, so that
    /// not even the first unknown subject takes longer.
    dummy_phc: String,
    /// Argon2 verifications run so far.
    verifications: AtomicU64,
}

impl CredentialStore {
    /// Opens (or creates on first write) the credential file at `path`.
    pub fn open(path: impl Into<PathBuf>, cost: HashCost) -> Result<Self, CredentialError> {
        let path = path.into();
        let entries = match fs::read(&path) {
            Ok(bytes) => {
                let file: File =
                    serde_json::from_slice(&bytes).map_err(|error| CredentialError::Corrupt {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                if file.format != FILE_FORMAT {
                    return Err(CredentialError::Corrupt {
                        path,
                        reason: format!("unknown format {}", file.format),
                    });
                }
                file.entries
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(CredentialError::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        Self::with_entries(Some(path), entries, cost)
    }

    /// A store that keeps nothing on disk (tests, demos).
    pub fn in_memory(cost: HashCost) -> Result<Self, CredentialError> {
        Self::with_entries(None, BTreeMap::new(), cost)
    }

    fn with_entries(
        path: Option<PathBuf>,
        entries: BTreeMap<String, Entry>,
        cost: HashCost,
    ) -> Result<Self, CredentialError> {
        let hasher = hasher(cost)?;
        let dummy_phc = hash(&hasher, &generate_password())?;
        Ok(Self {
            path,
            entries: Mutex::new(entries),
            hasher,
            dummy_phc,
            verifications: AtomicU64::new(0),
        })
    }

    /// Generates a temporary password for `subject`, stores its hash and returns it. This is
    /// the only time the password exists in clear.
    pub fn issue_temporary(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<String, CredentialError> {
        let password = generate_password();
        self.store(subject, &password, true, now)?;
        Ok(password)
    }

    /// Sets a password the user chose (for example the enrolling global admin's).
    pub fn set_password(
        &self,
        subject: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        check_policy(password)?;
        self.store(subject, password, false, now)
    }

    /// Replaces the password after checking the current one; the new one is permanent.
    pub fn change_password(
        &self,
        subject: &str,
        current: &str,
        new: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        self.verify(subject, current)?;
        if current == new {
            return Err(CredentialError::PasswordRefused(
                "the new password must differ from the current one".into(),
            ));
        }
        self.set_password(subject, new, now)
    }

    /// Checks a password.
    ///
    /// Whatever the case (unknown subject, password too long, wrong or right password),
    /// exactly one Argon2 verification of at most [`PASSWORD_BYTES_MAX`] bytes runs: against
    /// the subject's hash, or else against a dummy hash made with the same parameters. The
    /// time a check takes therefore says nothing about whether the subject exists.
    pub fn verify(&self, subject: &str, password: &str) -> Result<Verified, CredentialError> {
        let entry = self.lock().get(subject).cloned();
        // An over-long password cannot be anyone's, but is checked (cut to the bound) against
        // the dummy all the same, so that refusing it takes the usual time.
        let candidate = entry
            .as_ref()
            .filter(|_| password.len() <= PASSWORD_BYTES_MAX);
        let phc = candidate.map_or(self.dummy_phc.as_str(), |entry| entry.phc.as_str());
        let hash = PasswordHash::new(phc).map_err(|error| CredentialError::Corrupt {
            path: self.path.clone().unwrap_or_default(),
            reason: format!("hash of {subject}: {error}"),
        })?;
        let bytes = password.as_bytes();
        let attempt = &bytes[..bytes.len().min(PASSWORD_BYTES_MAX)];
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matched = self.hasher.verify_password(attempt, &hash).is_ok();
        match candidate {
            Some(entry) if matched => Ok(Verified {
                temporary: entry.temporary,
            }),
            _ => Err(CredentialError::WrongCredentials),
        }
    }

    /// How many Argon2 verifications [`CredentialStore::verify`] has run: one per call,
    /// whatever the answer. A measure of the work done, which lets tests show that an
    /// unknown subject costs what a known one does without timing anything.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Forgets a subject's credential (the user was removed).
    pub fn remove(&self, subject: &str) -> Result<(), CredentialError> {
        let mut entries = self.lock();
        if entries.remove(subject).is_some() {
            self.persist(&entries)?;
        }
        Ok(())
    }

    /// Whether `subject` has a credential.
    pub fn contains(&self, subject: &str) -> bool {
        self.lock().contains_key(subject)
    }

    fn store(
        &self,
        subject: &str,
        password: &str,
        temporary: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CredentialError> {
        let phc = hash(&self.hasher, password)?;
        let mut entries = self.lock();
        let previous = entries.insert(
            subject.to_string(),
            Entry {
                phc,
                temporary,
                set_at: now,
            },
        );
        if let Err(error) = self.persist(&entries) {
            // Keep memory and disk in agreement: what was not written did not happen.
            match previous {
                Some(previous) => entries.insert(subject.to_string(), previous),
                None => entries.remove(subject),
            };
            return Err(error);
        }
        Ok(())
    }

    fn persist(&self, entries: &BTreeMap<String, Entry>) -> Result<(), CredentialError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = File {
            format: FILE_FORMAT,
            entries: entries.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|error| CredentialError::Corrupt {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        atomic_file::replace(path, &bytes, atomic_file::Access::Private).map_err(|source| {
            CredentialError::Io {
                context: format!("writing {}", path.display()),
                source,
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Entries are replaced whole, so a poisoned lock still guards a consistent map.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A random link token (hex of [`TOKEN_BYTES`] random bytes), for invitation and
/// verification links. The ledger stores only its SHA-256.
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn generate_password() -> String {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % PASSWORD_ALPHABET.len());
    let mut password = String::with_capacity(TEMPORARY_PASSWORD_CHARS);
    let mut byte = [0u8; 1];
    while password.len() < TEMPORARY_PASSWORD_CHARS {
        OsRng.fill_bytes(&mut byte);
        let value = usize::from(byte[0]);
        if value < limit {
            password.push(char::from(
                PASSWORD_ALPHABET[value % PASSWORD_ALPHABET.len()],
            ));
        }
    }
    password
}

fn check_policy(password: &str) -> Result<(), CredentialError> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(CredentialError::PasswordRefused(format!(
            "a password needs at least {PASSWORD_CHARS_MIN} characters"
        )));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(CredentialError::PasswordRefused(format!(
            "a password has at most {PASSWORD_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// The PHC string of `password` hashed with a fresh random salt.
fn hash(hasher: &Argon2<'static>, password: &str) -> Result<String, CredentialError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| CredentialError::Hashing(error.to_string()))?
        .to_string())
}

fn hasher(cost: HashCost) -> Result<Argon2<'static>, CredentialError> {
    let params = match cost {
        HashCost::Standard => Params::new(19 * 1024, 2, 1, None),
        HashCost::Minimal => Params::new(8, 1, 1, None),
    }
    .map_err(|error| CredentialError::Hashing(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn temporary_password_works_once_changed_it_is_permanent() -> Result<(), CredentialError> {
        let store = CredentialStore::in_memory(HashCost::Minimal)?;
        let temporary = store.issue_temporary("u1", now())?;
        assert_eq!(temporary.len(), TEMPORARY_PASSWORD_CHARS);
        assert_eq!(
            store.verify("u1", &temporary)?,
            Verified { temporary: true }
        );
        store.change_password("u1", &temporary, "a much better password", now())?;
        assert_eq!(
            store.verify("u1", "a much better password")?,
            Verified { temporary: false }
        );
        assert!(matches!(
            store.verify("u1", &temporary),
            Err(CredentialError::WrongCredentials)
        ));
        Ok(())
    }

    #[test]
    fn unknown_subject_and_wrong_password_look_alike() -> Result<(), CredentialError> {
        let store = CredentialStore::in_memory(HashCost::Minimal)?;
        store.set_password("u1", "correct horse battery", now())?;
        let unknown = store.verify("nobody", "x").map_err(|e| e.to_string());
        let wrong = store.verify("u1", "x").map_err(|e| e.to_string());
        assert_eq!(unknown, wrong);
        Ok(())
    }

    #[test]
    fn every_check_runs_one_verification_of_the_same_cost() -> Result<(), Box<dyn std::error::Error>>
    {
        let store = CredentialStore::in_memory(HashCost::Minimal)?;
        store.set_password("u1", "correct horse battery", now())?;
        let long = "x".repeat(PASSWORD_BYTES_MAX * 4);
        for (subject, password) in [
            ("u1", "correct horse battery"),
            ("u1", "wrong"),
            ("u1", long.as_str()),
            ("nobody", "wrong"),
            ("nobody", long.as_str()),
        ] {
            let before = store.verifications();
            let _ = store.verify(subject, password);
            assert_eq!(store.verifications(), before + 1, "{subject}");
        }
        // The dummy an unknown subject is checked against costs what a real hash does.
        let entries = store.lock();
        let real = PasswordHash::new(&entries["u1"].phc)?;
        let dummy = PasswordHash::new(&store.dummy_phc)?;
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        Ok(())
    }

    #[test]
    fn a_password_too_long_is_wrong_even_if_its_prefix_is_right() -> Result<(), CredentialError> {
        let store = CredentialStore::in_memory(HashCost::Minimal)?;
        let password = "p".repeat(PASSWORD_BYTES_MAX);
        store.set_password("u1", &password, now())?;
        assert!(store.verify("u1", &password).is_ok());
        assert!(matches!(
            store.verify("u1", &format!("{password}!")),
            Err(CredentialError::WrongCredentials)
        ));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_to_their_owner() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("credentials.json");
        // A temporary file left readable by an older version or a crash.
        fs::write(path.with_extension("tmp"), b"")?;
        fs::set_permissions(
            path.with_extension("tmp"),
            fs::Permissions::from_mode(0o644),
        )?;
        let store = CredentialStore::open(&path, HashCost::Minimal)?;
        store.set_password("u1", "correct horse battery", now())?;
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn weak_or_unchanged_passwords_are_refused() -> Result<(), CredentialError> {
        let store = CredentialStore::in_memory(HashCost::Minimal)?;
        assert!(matches!(
            store.set_password("u1", "short", now()),
            Err(CredentialError::PasswordRefused(_))
        ));
        let temporary = store.issue_temporary("u1", now())?;
        assert!(matches!(
            store.change_password("u1", &temporary, &temporary, now()),
            Err(CredentialError::PasswordRefused(_))
        ));
        Ok(())
    }

    #[test]
    fn survives_reopen_and_stores_no_clear_password() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("credentials.json");
        let temporary = {
            let store = CredentialStore::open(&path, HashCost::Minimal)?;
            store.set_password("u1", "correct horse battery", now())?;
            store.issue_temporary("u2", now())?
        };
        let text = fs::read_to_string(&path)?;
        assert!(!text.contains("correct horse battery"));
        assert!(!text.contains(&temporary));
        assert!(text.contains("$argon2id$"));
        let store = CredentialStore::open(&path, HashCost::Minimal)?;
        assert_eq!(
            store.verify("u1", "correct horse battery")?,
            Verified { temporary: false }
        );
        assert_eq!(
            store.verify("u2", &temporary)?,
            Verified { temporary: true }
        );
        store.remove("u2")?;
        let store = CredentialStore::open(&path, HashCost::Minimal)?;
        assert!(!store.contains("u2"));
        Ok(())
    }

    #[test]
    fn damaged_file_is_an_error_not_an_empty_store() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("credentials.json");
        fs::write(&path, b"{not json")?;
        assert!(matches!(
            CredentialStore::open(&path, HashCost::Minimal),
            Err(CredentialError::Corrupt { .. })
        ));
        Ok(())
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_eq!(a.len(), TOKEN_BYTES * 2);
        assert_ne!(a, b);
    }
}
