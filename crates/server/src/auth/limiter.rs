//! Sign-in attempts per account: after a few failures in a window, further attempts on that
//! account are refused until the window passes, whatever the password. Counted by the
//! normalized email as typed, known or not, so the limiter is no existence oracle either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within one window for one account.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    window_start: Instant,
}

/// The limiter. Bounded: when the table fills, expired windows are dropped; if it is still
/// full, the oldest window goes (an attacker spraying accounts loses old counts, not memory).
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, Failures>>,
    failures_max: u32,
    window: Duration,
    accounts_max: usize,
}

impl SignInLimiter {
    /// Allows `failures_max` failures per account per `window`.
    pub fn new(failures_max: u32, window: Duration, accounts_max: usize) -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
            failures_max,
            window,
            accounts_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // Plain counters: a poisoned map is still usable.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(seconds to wait)` when the account is locked out now.
    pub fn check(&self, account: &str) -> Result<(), u64> {
        let now = Instant::now();
        let failures = self.lock();
        match failures.get(account) {
            Some(entry)
                if entry.count >= self.failures_max
                    && now.duration_since(entry.window_start) < self.window =>
            {
                let left = self.window - now.duration_since(entry.window_start);
                Err(left.as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, account: &str) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= self.accounts_max && !failures.contains_key(account) {
            let window = self.window;
            failures.retain(|_, entry| now.duration_since(entry.window_start) < window);
            if failures.len() >= self.accounts_max
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, entry)| entry.window_start)
                    .map(|(key, _)| key.clone())
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(account.to_string()).or_insert(Failures {
            count: 0,
            window_start: now,
        });
        if now.duration_since(entry.window_start) >= self.window {
            *entry = Failures {
                count: 0,
                window_start: now,
            };
        }
        entry.count += 1;
    }

    /// Forgets the failures of an account after a successful sign-in.
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_forgets_on_success() {
        let limiter = SignInLimiter::new(3, Duration::from_secs(60), 10);
        for _ in 0..3 {
            assert!(limiter.check("a@x.example").is_ok());
            limiter.failed("a@x.example");
        }
        assert!(limiter.check("a@x.example").is_err());
        assert!(limiter.check("b@x.example").is_ok());
        limiter.succeeded("a@x.example");
        assert!(limiter.check("a@x.example").is_ok());
    }

    #[test]
    fn stays_bounded() {
        let limiter = SignInLimiter::new(3, Duration::from_secs(60), 4);
        for n in 0..100 {
            limiter.failed(&format!("{n}@x.example"));
        }
        assert!(limiter.lock().len() <= 4);
    }
}
