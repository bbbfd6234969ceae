//! Throttling of guesses at a secret: a sign-in's password, change-password's current
//! password, an invitation link's token.
//!
//! Every attempt counts as a failure from the moment it starts (so that many attempts sent
//! at once are counted before any of them is checked) until it is shown to have succeeded.
//! A few failures are free; each failure past them makes the next attempt wait, twice as
//! long as the one before, up to a short bound (a minute by default). A success ends the
//! account's wait. This is throttling, not a lockout: nobody can keep the right password out
//! for longer than the bound.
//!
//! Two tables count failures:
//! - per account *and* client address, so that an attacker's failures make the attacker
//!   wait, not the account's owner signing in from elsewhere;
//! - per client address across all accounts, with a larger allowance, so that one address
//!   cannot spread its guesses over many accounts. A success refunds only its own attempt
//!   here: signing in to one's own account does not wipe one's failures on others. IPv6
//!   addresses are counted by their /64 network, the block one subscriber usually holds.
//!
//! An account is whatever the caller named (a sign-in's email, normalized, known or not),
//! so the limiter is no existence oracle. Time is read from a [`Monotonic`] clock, so that a
//! step of the wall clock neither lengthens nor cuts a wait, and so that tests move it by
//! hand. Both tables are bounded: when one fills, failures long forgotten are dropped, and
//! if it is still full, the entry failed longest ago goes (an attacker spraying keys loses
//! old counts, not memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A monotonic source of time for the limiter.
pub trait Monotonic: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemMonotonic;

impl Monotonic for SystemMonotonic {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A monotonic clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualMonotonic {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl Default for ManualMonotonic {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualMonotonic {
    /// A clock stopped at the moment it is made.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.lock() += by;
    }

    fn lock(&self) -> MutexGuard<'_, Duration> {
        // A plain value cannot be left half-written, so a poisoned lock is still usable.
        self.elapsed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Monotonic for ManualMonotonic {
    fn now(&self) -> Instant {
        self.start + *self.lock()
    }
}

/// How one table counts failures.
#[derive(Clone, Copy, Debug)]
pub struct BackoffConfig {
    /// Failures that cost no wait.
    pub failures_free: u32,
    /// The wait after the first failure past the free ones; each further failure doubles it.
    pub delay_initial: Duration,
    /// The longest wait.
    pub delay_max: Duration,
    /// Failures are forgotten after this long without another.
    pub forget_after: Duration,
    /// Most keys remembered at once.
    pub keys_max: usize,
}

/// The failures of one key.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt may start before this.
    wait_until: Instant,
}

/// One table of failures.
struct Backoff {
    entries: Mutex<HashMap<String, Failures>>,
    config: BackoffConfig,
}

impl Backoff {
    fn new(config: BackoffConfig) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Failures>> {
        // Plain counters: a poisoned map is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The wait `count` failures cause.
    fn delay(&self, count: u32) -> Duration {
        let Some(past_free) = count.checked_sub(self.config.failures_free + 1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(past_free).unwrap_or(u32::MAX);
        self.config
            .delay_initial
            .saturating_mul(factor)
            .min(self.config.delay_max)
    }

    fn forgotten(&self, failures: &Failures, now: Instant) -> bool {
        failures.wait_until <= now && now.duration_since(failures.last) >= self.config.forget_after
    }

    /// How long `key` must still wait, if at all.
    fn wait(
        &self,
        entries: &HashMap<String, Failures>,
        key: &str,
        now: Instant,
    ) -> Option<Duration> {
        entries
            .get(key)
            .filter(|failures| failures.wait_until > now)
            .map(|failures| failures.wait_until - now)
    }

    /// Counts a failure of `key`.
    fn charge(&self, entries: &mut HashMap<String, Failures>, key: &str, now: Instant) {
        if !entries.contains_key(key) && entries.len() >= self.config.keys_max {
            entries.retain(|_, failures| !self.forgotten(failures, now));
            if entries.len() >= self.config.keys_max
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, failures)| failures.last)
                    .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
        }
        let failures = entries.entry(key.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            wait_until: now,
        });
        if self.forgotten(failures, now) {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        failures.wait_until = now + self.delay(failures.count);
    }

    /// Takes back one failure of `key`: the attempt it was charged for succeeded.
    fn refund(&self, entries: &mut HashMap<String, Failures>, key: &str) {
        let Some(failures) = entries.get_mut(key) else {
            return;
        };
        failures.count = failures.count.saturating_sub(1);
        if failures.count == 0 {
            entries.remove(key);
        } else {
            failures.wait_until = failures
                .wait_until
                .min(failures.last + self.delay(failures.count));
        }
    }
}

/// The limiter of guesses at secrets, per account and client address and per address.
pub struct AttemptLimiter {
    accounts: Backoff,
    addresses: Backoff,
    clock: Arc<dyn Monotonic>,
}

/// An attempt under way: counted as failed unless [`Attempt::succeeded`] says otherwise, so
/// that an attempt that ends in any other way (an error, a dropped request) costs as a
/// wrong guess does.
#[must_use = "an attempt counts as failed unless it is marked as succeeded"]
pub struct Attempt<'a> {
    limiter: &'a AttemptLimiter,
    account: String,
    address: String,
}

impl Attempt<'_> {
    /// The secret was right: the account's failures from this address are forgotten, and
    /// this attempt is refunded to the address.
    pub fn succeeded(self) {
        let mut accounts = self.limiter.accounts.lock();
        let mut addresses = self.limiter.addresses.lock();
        accounts.remove(&self.account);
        self.limiter.addresses.refund(&mut addresses, &self.address);
    }
}

impl AttemptLimiter {
    /// A limiter counting accounts (per address) by `accounts` and addresses by `addresses`,
    /// reading time from `clock`.
    pub fn new(
        accounts: BackoffConfig,
        addresses: BackoffConfig,
        clock: Arc<dyn Monotonic>,
    ) -> Self {
        Self {
            accounts: Backoff::new(accounts),
            addresses: Backoff::new(addresses),
            clock,
        }
    }

    /// Starts an attempt at `account`'s secret from `address` (`None`: unknown, all such
    /// callers counted as one address). `Err` is how long to wait first: the attempt is
    /// refused and costs nothing, so that a wait never grows past its bound.
    pub fn begin(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        let (account, address) = keys(account, address);
        let now = self.clock.now();
        // Both tables are checked, then both charged, under both locks (always taken in this
        // order), so that attempts racing each other are each counted.
        let mut accounts = self.accounts.lock();
        let mut addresses = self.addresses.lock();
        let wait = [
            self.accounts.wait(&accounts, &account, now),
            self.addresses.wait(&addresses, &address, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.accounts.charge(&mut accounts, &account, now);
        self.addresses.charge(&mut addresses, &address, now);
        drop((accounts, addresses));
        Ok(Attempt {
            limiter: self,
            account,
            address,
        })
    }

    /// How long an attempt would have to wait now, without starting one.
    #[cfg(test)]
    fn pending(&self, account: &str, address: Option<IpAddr>) -> Duration {
        let (account, address) = keys(account, address);
        let now = self.clock.now();
        let accounts = self.accounts.lock();
        let addresses = self.addresses.lock();
        [
            self.accounts.wait(&accounts, &account, now),
            self.addresses.wait(&addresses, &address, now),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Duration::ZERO)
    }
}

/// The keys of an attempt in the two tables: the account from the address, and the address.
fn keys(account: &str, address: Option<IpAddr>) -> (String, String) {
    let address = address_key(address);
    (format!("{account} from {address}"), address)
}

/// The key of a client address: IPv4 as is (an IPv4-mapped IPv6 address too), IPv6 by its
/// /64 network.
fn address_key(address: Option<IpAddr>) -> String {
    match address.map(|address| address.to_canonical()) {
        None => "unknown".to_string(),
        Some(IpAddr::V4(address)) => address.to_string(),
        Some(IpAddr::V6(address)) => {
            let network = u128::from(address) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7)));

    fn config(failures_free: u32, keys_max: usize) -> BackoffConfig {
        BackoffConfig {
            failures_free,
            delay_initial: Duration::from_secs(1),
            delay_max: Duration::from_secs(60),
            forget_after: Duration::from_secs(15 * 60),
            keys_max,
        }
    }

    fn limiter(account_free: u32, address_free: u32) -> (AttemptLimiter, Arc<ManualMonotonic>) {
        let clock = Arc::new(ManualMonotonic::new());
        let limiter = AttemptLimiter::new(
            config(account_free, 100),
            config(address_free, 100),
            clock.clone(),
        );
        (limiter, clock)
    }

    /// Fails once (the attempt is dropped); returns the wait the next attempt meets.
    fn fail(limiter: &AttemptLimiter, account: &str, address: Option<IpAddr>) -> Duration {
        assert!(limiter.begin(account, address).is_ok(), "not waiting");
        limiter.pending(account, address)
    }

    #[test]
    fn each_failure_past_the_free_ones_doubles_the_wait_up_to_the_bound() {
        let (limiter, clock) = limiter(3, 1000);
        let mut waits = Vec::new();
        for _ in 0..12 {
            let wait = fail(&limiter, "a@x.example", A);
            waits.push(wait.as_secs());
            // Whatever the wait was, it ends, and the next attempt is allowed.
            clock.advance(wait);
        }
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn an_attempt_refused_while_waiting_costs_nothing() {
        let (limiter, clock) = limiter(0, 1000);
        let wait = fail(&limiter, "a@x.example", A);
        assert_eq!(wait, Duration::from_secs(1));
        for _ in 0..100 {
            assert!(limiter.begin("a@x.example", A).is_err());
        }
        clock.advance(wait);
        assert!(limiter.begin("a@x.example", A).is_ok());
    }

    #[test]
    fn a_success_ends_the_wait_and_the_right_password_gets_through_after_the_backoff() {
        let (limiter, clock) = limiter(2, 1000);
        let mut wait = Duration::ZERO;
        for _ in 0..8 {
            clock.advance(wait);
            wait = fail(&limiter, "a@x.example", A);
        }
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        clock.advance(wait);
        let Ok(attempt) = limiter.begin("a@x.example", A) else {
            panic!("the wait ended");
        };
        attempt.succeeded();
        // Failures start from nothing again.
        assert_eq!(fail(&limiter, "a@x.example", A), Duration::ZERO);
    }

    #[test]
    fn attempts_under_way_are_counted_before_they_end() {
        let (limiter, _) = limiter(2, 1000);
        let first = limiter.begin("a@x.example", A);
        let second = limiter.begin("a@x.example", A);
        let third = limiter.begin("a@x.example", A);
        assert!(first.is_ok() && second.is_ok() && third.is_ok());
        assert!(limiter.begin("a@x.example", A).is_err());
    }

    #[test]
    fn an_account_is_counted_per_address() {
        let (limiter, _) = limiter(1, 1000);
        fail(&limiter, "a@x.example", A);
        assert!(fail(&limiter, "a@x.example", A) > Duration::ZERO);
        // The owner at another address is not held up by the attacker's failures.
        assert!(limiter.begin("a@x.example", B).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_accounts_independently_of_each_account() {
        let (limiter, _) = limiter(1000, 3);
        for n in 0..3 {
            drop(limiter.begin(&format!("{n}@x.example"), A));
        }
        // A success refunds its own attempt to the address, and no other.
        let Ok(attempt) = limiter.begin("mine@x.example", A) else {
            panic!("the address has failures to spare");
        };
        attempt.succeeded();
        assert!(limiter.begin("other@x.example", A).is_ok());
        // An account never tried waits from that address, and not from another.
        assert_eq!(limiter.pending("new@x.example", A), Duration::from_secs(1));
        assert!(limiter.begin("new@x.example", B).is_ok());
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_spell() {
        let (limiter, clock) = limiter(1, 1000);
        fail(&limiter, "a@x.example", A);
        let wait = fail(&limiter, "a@x.example", A);
        assert!(wait > Duration::ZERO);
        clock.advance(Duration::from_secs(15 * 60));
        assert_eq!(fail(&limiter, "a@x.example", A), Duration::ZERO);
    }

    #[test]
    fn tables_stay_bounded() {
        let clock = Arc::new(ManualMonotonic::new());
        let limiter = AttemptLimiter::new(config(3, 4), config(1_000_000, 4), clock.clone());
        for n in 0..100u8 {
            let address = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, n)));
            drop(limiter.begin(&format!("{n}@x.example"), address));
            clock.advance(Duration::from_millis(10));
        }
        assert!(limiter.accounts.lock().len() <= 4);
        assert!(limiter.addresses.lock().len() <= 4);
    }

    #[test]
    fn ipv6_addresses_are_counted_by_network() {
        let one = "2001:db8:1:2::1".parse().ok();
        let other = "2001:db8:1:2:ffff::9".parse().ok();
        let elsewhere = "2001:db8:1:3::1".parse().ok();
        assert_eq!(address_key(one), address_key(other));
        assert_ne!(address_key(one), address_key(elsewhere));
        let mapped = "::ffff:192.0.2.1".parse().ok();
        assert_eq!(address_key(mapped), address_key(A));
    }
}
