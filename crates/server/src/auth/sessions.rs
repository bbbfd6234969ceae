//! Bearer tokens of signed-in partner users, enrolling tenant admins and customer admins.
//!
//! Tokens are random (256 bits) and kept only as SHA-256 hashes, in memory: a restart signs
//! everyone out, which is the safe direction. The table is bounded; expired sessions are
//! swept when it fills.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Principal, token_hash};

/// One signed-in session.
#[derive(Clone, Debug)]
struct Session {
    principal: Principal,
    expires_at: Instant,
}

/// The session table.
pub struct Sessions {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
    sessions_max: usize,
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
    /// An empty table whose sessions last `ttl`, holding at most `sessions_max`.
    pub fn new(ttl: Duration, sessions_max: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            ttl,
            sessions_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // Entries are inserted and removed whole, so a poisoned table is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a session for `principal` and returns its token.
    pub fn issue(&self, principal: Principal) -> Result<IssuedToken, SessionsFull> {
        let token = credentials::generate_token();
        let now = Instant::now();
        let mut sessions = self.lock();
        if sessions.len() >= self.sessions_max {
            sessions.retain(|_, session| session.expires_at > now);
            if sessions.len() >= self.sessions_max {
                return Err(SessionsFull(self.sessions_max));
            }
        }
        sessions.insert(
            token_hash(&token),
            Session {
                principal,
                expires_at: now + self.ttl,
            },
        );
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(1));
        Ok(IssuedToken {
            token,
            expires_at: Utc::now() + ttl,
        })
    }

    /// The principal of a live session, if `token` names one.
    pub fn resolve(&self, token: &str) -> Option<Principal> {
        let hash = token_hash(token);
        let mut sessions = self.lock();
        match sessions.get(&hash) {
            Some(session) if session.expires_at > Instant::now() => Some(session.principal.clone()),
            Some(_) => {
                sessions.remove(&hash);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn revoke(&self, token: &str) {
        self.lock().remove(&token_hash(token));
    }
}
