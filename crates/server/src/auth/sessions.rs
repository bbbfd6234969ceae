//! Bearer tokens of signed-in partner users, enrolling tenant admins and customer admins.
//!
//! Tokens are random (256 bits) and kept only as SHA-256 hashes. Sessions are indexed by
//! user too, so that a password change or reset ends all of that user's sessions at once.
//! The table is bounded; expired sessions are swept when it fills. Expiry is wall-clock time
//! from the command handler's clock, so that a session means the same before and after a
//! restart.
//!
//! With a file (`sessions.json` in the data directory, beside the credential store; never in
//! the log), every change is written through before the call returns, the whole file at
//! once through [`atomic_file::replace`] (mode 0600), so that sessions survive a
//! restart and a session ended stays ended. The file holds each session's token SHA-256,
//! principal and expiry, never a token. On start, expired sessions are dropped; a damaged
//! file is a warning and an empty table (everyone signs in again), not a failure to start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{SecretHash, UserId};
use handler::Clock;
use serde::{Deserialize, Serialize};

use super::{Principal, token_hash};

/// One signed-in session.
#[derive(Clone, Debug)]
struct Session {
    principal: Principal,
    expires_at: DateTime<Utc>,
}

/// The sessions, by token hash and by user.
#[derive(Default)]
struct Table {
    sessions: HashMap<[u8; 32], Session>,
    by_user: HashMap<UserId, HashSet<[u8; 32]>>,
    /// Counts changes, so that a slower writer never puts an older table on disk over a
    /// newer one.
    generation: u64,
}

impl Table {
    fn insert(&mut self, hash: [u8; 32], session: Session) {
        if let Some(user) = user_of(&session.principal) {
            self.by_user.entry(user).or_default().insert(hash);
        }
        self.sessions.insert(hash, session);
    }

    fn remove(&mut self, hash: &[u8; 32]) -> bool {
        let Some(session) = self.sessions.remove(hash) else {
            return false;
        };
        if let Some(user) = user_of(&session.principal)
            && let Some(hashes) = self.by_user.get_mut(&user)
        {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.by_user.remove(&user);
            }
        }
        true
    }

    fn sweep(&mut self, now: DateTime<Utc>) {
        let expired: Vec<[u8; 32]> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.expires_at <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in expired {
            self.remove(&hash);
        }
    }
}

/// The user a session acts as, for the index.
fn user_of(principal: &Principal) -> Option<UserId> {
    match principal {
        Principal::User { user_id, .. } => Some(*user_id),
        _ => None,
    }
}

/// Where the table is kept on disk.
struct SessionFile {
    path: PathBuf,
    /// The generation of the table last written.
    written: Mutex<u64>,
}

/// The session table.
pub struct Sessions {
    table: Mutex<Table>,
    ttl: Duration,
    sessions_max: usize,
    clock: Arc<dyn Clock>,
    file: Option<SessionFile>,
}

/// A token just issued: shown once.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("too many open sessions ({0}); try again later")]
pub struct SessionsFull(pub usize);

impl Sessions {
    /// An empty table kept in memory only, whose sessions last `ttl` by `clock`, holding at
    /// most `sessions_max`.
    pub fn new(ttl: Duration, sessions_max: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            ttl,
            sessions_max,
            clock,
            file: None,
        }
    }

    /// A table kept in the file at `path`: the live sessions found there (none if it does
    /// not exist or is damaged, with a warning), and every change written back.
    pub fn open(
        path: impl Into<PathBuf>,
        ttl: Duration,
        sessions_max: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let path = path.into();
        let mut sessions = Self::new(ttl, sessions_max, clock);
        let now = sessions.clock.now();
        // No session outlives the configured lifetime, even one issued under a longer one.
        let latest = now + sessions.ttl_chrono();
        match load(&path) {
            Ok(stored) => {
                let table = sessions.table.get_mut().unwrap_or_else(|p| p.into_inner());
                for entry in stored {
                    if table.sessions.len() >= sessions_max {
                        break;
                    }
                    if entry.expires_at > now {
                        table.insert(
                            entry.token_sha256.0,
                            Session {
                                principal: entry.principal,
                                expires_at: entry.expires_at.min(latest),
                            },
                        );
                    }
                }
                tracing::info!(
                    sessions = table.sessions.len(),
                    path = %path.display(),
                    "sessions loaded"
                );
            }
            Err(LoadError::Missing) => {}
            Err(LoadError::Damaged(reason)) => {
                tracing::warn!(
                    path = %path.display(),
                    %reason,
                    "the sessions file cannot be read; starting with no sessions (everyone signs in again)"
                );
            }
        }
        sessions.file = Some(SessionFile {
            path,
            written: Mutex::new(0),
        });
        sessions
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Entries are inserted and removed whole, so a poisoned table is still consistent.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ttl_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(1))
    }

    /// Opens a session for `principal` and returns its token. With a file, this writes it.
    pub fn issue(&self, principal: Principal) -> Result<IssuedToken, SessionsFull> {
        let token = credentials::generate_token();
        let now = self.clock.now();
        let expires_at = now + self.ttl_chrono();
        let mut table = self.lock();
        if table.sessions.len() >= self.sessions_max {
            table.sweep(now);
            if table.sessions.len() >= self.sessions_max {
                return Err(SessionsFull(self.sessions_max));
            }
        }
        table.insert(
            token_hash(&token),
            Session {
                principal,
                expires_at,
            },
        );
        self.changed(table, now);
        Ok(IssuedToken { token, expires_at })
    }

    /// The principal of a live session, if `token` names one.
    pub fn resolve(&self, token: &str) -> Option<Principal> {
        let hash = token_hash(token);
        let now = self.clock.now();
        let mut table = self.lock();
        match table.sessions.get(&hash) {
            Some(session) if session.expires_at > now => Some(session.principal.clone()),
            Some(_) => {
                // Not written: the file drops expired sessions on its own.
                table.remove(&hash);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`. With a file, this writes it.
    pub fn revoke(&self, token: &str) {
        let now = self.clock.now();
        let mut table = self.lock();
        if table.remove(&token_hash(token)) {
            self.changed(table, now);
        }
    }

    /// Ends every session of `user`; returns how many there were. With a file, this writes
    /// it.
    pub fn revoke_user(&self, user: UserId) -> usize {
        let now = self.clock.now();
        let mut table = self.lock();
        let hashes = table.by_user.remove(&user).unwrap_or_default();
        for hash in &hashes {
            table.sessions.remove(hash);
        }
        if !hashes.is_empty() {
            self.changed(table, now);
        }
        hashes.len()
    }

    /// How many sessions `user` has open (expired ones not yet swept included).
    pub fn count_of(&self, user: UserId) -> usize {
        self.lock().by_user.get(&user).map_or(0, HashSet::len)
    }

    /// Writes the table after a change, if there is a file. The snapshot is taken under the
    /// table's lock and written after it is released, so that requests resolving tokens do
    /// not wait for the disk; the generation keeps the writes in order. A failed write is
    /// logged: the table in memory stays right, and the next write carries it whole.
    fn changed(&self, mut table: MutexGuard<'_, Table>, now: DateTime<Utc>) {
        let Some(file) = &self.file else {
            return;
        };
        table.generation += 1;
        let generation = table.generation;
        let stored = StoredFile {
            format: FILE_FORMAT,
            sessions: table
                .sessions
                .iter()
                .filter(|(_, session)| session.expires_at > now && session.principal.is_session())
                .map(|(hash, session)| StoredSession {
                    token_sha256: SecretHash(*hash),
                    principal: session.principal.clone(),
                    expires_at: session.expires_at,
                })
                .collect(),
        };
        drop(table);
        let mut written = file
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *written >= generation {
            // A newer table is already on disk.
            return;
        }
        let result = serde_json::to_vec(&stored)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                atomic_file::replace(&file.path, &bytes, atomic_file::Access::Private)
            });
        match result {
            Ok(()) => *written = generation,
            Err(error) => tracing::error!(
                path = %file.path.display(),
                %error,
                "writing the sessions file failed; a restart would forget the latest sign-ins and sign-outs"
            ),
        }
    }
}

const FILE_FORMAT: u32 = 1;

/// The sessions file.
#[derive(Serialize, Deserialize)]
struct StoredFile {
    format: u32,
    sessions: Vec<StoredSession>,
}

/// One session on disk: the token's hash, never the token.
#[derive(Serialize, Deserialize)]
struct StoredSession {
    token_sha256: SecretHash,
    /// One of the principals a session can be for (see [`Principal::is_session`]).
    principal: Principal,
    expires_at: DateTime<Utc>,
}

/// Why the sessions file gave no sessions.
enum LoadError {
    /// There is none yet.
    Missing,
    /// It could not be read or parsed.
    Damaged(String),
}

fn load(path: &Path) -> Result<Vec<StoredSession>, LoadError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing);
        }
        Err(error) => return Err(LoadError::Damaged(error.to_string())),
    };
    let file: StoredFile =
        serde_json::from_slice(&bytes).map_err(|error| LoadError::Damaged(error.to_string()))?;
    if file.format != FILE_FORMAT {
        return Err(LoadError::Damaged(format!(
            "unknown format {}",
            file.format
        )));
    }
    Ok(file.sessions)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::{InvitationId, PartnerId, Proof, TenantId};
    use handler::ManualClock;
    use uuid::Uuid;

    const HOUR: Duration = Duration::from_secs(3600);

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
        ))
    }

    fn user(user: UserId) -> Principal {
        Principal::User {
            user_id: user,
            partner_id: PartnerId(Uuid::now_v7()),
            must_change_password: false,
        }
    }

    fn customer() -> Principal {
        Principal::Customer {
            tenant_id: TenantId(Uuid::now_v7()),
            token_hash: SecretHash::of(b"link token"),
            invitation_id: InvitationId(Uuid::now_v7()),
            proof: Proof::DirectoryToken {
                issuer: "https://issuer.example".into(),
                subject: "someone".into(),
            },
        }
    }

    #[test]
    fn a_user_s_sessions_end_together_and_no_one_else_s() {
        let sessions = Sessions::new(HOUR, 100, clock());
        let (alice, bob) = (UserId(Uuid::now_v7()), UserId(Uuid::now_v7()));
        let first = sessions.issue(user(alice)).unwrap();
        let second = sessions.issue(user(alice)).unwrap();
        let other = sessions.issue(user(bob)).unwrap();
        assert_eq!(sessions.count_of(alice), 2);
        assert_eq!(sessions.revoke_user(alice), 2);
        assert!(sessions.resolve(&first.token).is_none());
        assert!(sessions.resolve(&second.token).is_none());
        assert!(sessions.resolve(&other.token).is_some());
        assert_eq!(sessions.count_of(alice), 0);
        sessions.revoke(&other.token);
        assert_eq!(sessions.count_of(bob), 0);
    }

    #[test]
    fn sessions_survive_a_reopen_and_the_file_holds_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let clock = clock();
        let alice = UserId(Uuid::now_v7());
        let (kept, ended, customer_token) = {
            let sessions = Sessions::open(&path, HOUR, 100, clock.clone());
            let kept = sessions.issue(user(alice)).unwrap();
            let ended = sessions.issue(user(alice)).unwrap();
            let customer_token = sessions.issue(customer()).unwrap();
            sessions.revoke(&ended.token);
            (kept, ended, customer_token)
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for token in [&kept.token, &ended.token, &customer_token.token] {
            assert!(!text.contains(token.as_str()), "{text}");
        }
        assert!(text.contains(&SecretHash::of(kept.token.as_bytes()).to_string()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sessions = Sessions::open(&path, HOUR, 100, clock.clone());
        match sessions.resolve(&kept.token) {
            Some(Principal::User { user_id, .. }) => assert_eq!(user_id, alice),
            other => panic!("{other:?}"),
        }
        assert!(sessions.resolve(&ended.token).is_none());
        assert!(matches!(
            sessions.resolve(&customer_token.token),
            Some(Principal::Customer { .. })
        ));
        // The index is rebuilt too.
        assert_eq!(sessions.revoke_user(alice), 1);
    }

    #[test]
    fn expiry_is_honoured_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let clock = clock();
        let early = Sessions::open(&path, HOUR, 100, clock.clone())
            .issue(user(UserId(Uuid::now_v7())))
            .unwrap();
        clock.advance(chrono::Duration::minutes(30));
        let late = Sessions::open(&path, HOUR, 100, clock.clone())
            .issue(user(UserId(Uuid::now_v7())))
            .unwrap();
        clock.advance(chrono::Duration::minutes(31));
        let sessions = Sessions::open(&path, HOUR, 100, clock.clone());
        assert!(sessions.resolve(&early.token).is_none());
        assert!(sessions.resolve(&late.token).is_some());
        // A shorter lifetime at the next start cuts what was issued under the longer one.
        let sessions = Sessions::open(&path, Duration::from_secs(60), 100, clock.clone());
        clock.advance(chrono::Duration::minutes(2));
        assert!(sessions.resolve(&late.token).is_none());
    }

    #[test]
    fn a_damaged_file_is_an_empty_table_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        std::fs::write(&path, b"{not json").unwrap();
        let sessions = Sessions::open(&path, HOUR, 100, clock());
        assert!(sessions.resolve("anything").is_none());
        let issued = sessions.issue(user(UserId(Uuid::now_v7()))).unwrap();
        let sessions = Sessions::open(&path, HOUR, 100, clock());
        assert!(sessions.resolve(&issued.token).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let clock = clock();
        let sessions = Sessions::new(HOUR, 2, clock.clone());
        sessions.issue(user(UserId(Uuid::now_v7()))).unwrap();
        sessions.issue(user(UserId(Uuid::now_v7()))).unwrap();
        assert!(sessions.issue(user(UserId(Uuid::now_v7()))).is_err());
        clock.advance(chrono::Duration::hours(2));
        assert!(sessions.issue(user(UserId(Uuid::now_v7()))).is_ok());
    }
}
