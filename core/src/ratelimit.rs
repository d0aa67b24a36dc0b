//! Rate limits on guessing: failures (not successes, so a user cannot lock
//! themselves out by logging in) within a sliding window, counted separately
//! for codes and for backup codes, optionally per remote host.
//!
//! Storage is sized by the limits, not by a fixed cap: a decision depends
//! only on the newest `max_failures` failures of a budget inside its window,
//! and once a budget holds that many nothing more is checked (so nothing
//! more is recorded) until the oldest leaves the window. Keeping the newest
//! failures of each kind up to the largest limit that applies to it is
//! therefore exact, and bounds the state by the configuration alone.
//! With `rate_limit_by_host`, every remote host has its own budget and all
//! hosts together share a second, larger one: rotating source addresses
//! buys at most that many guesses per window, and since that budget bounds
//! how many failures a window can hold, no host's failures are ever pushed
//! out by other hosts' failures.

use crate::state::{FailureKind, FailureRecord, LoginState};

/// Failure records kept of a kind whose limit is off (0): for `twofactor
/// status` only, they decide nothing.
pub const KEPT_WITHOUT_LIMIT: usize = 32;

/// One limit: at most `max_failures` within `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures that start a lockout (0 disables the limit).
    pub max_failures: u32,
    /// Length of the sliding window in seconds.
    pub window: u64,
    /// With `by_host`: failures from all hosts together that lock every
    /// host (at least `max_failures`). Unused without `by_host`, where
    /// `max_failures` already counts every host.
    pub max_failures_all_hosts: u32,
}

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TOTP codes (and malformed answers).
    pub code: Limit,
    /// Backup codes.
    pub backup_code: Limit,
    /// Count failures per remote host (and all hosts together against
    /// `max_failures_all_hosts`).
    pub by_host: bool,
}

impl Limits {
    /// The limit for `kind`.
    pub fn of(&self, kind: FailureKind) -> Limit {
        match kind {
            FailureKind::Code => self.code,
            FailureKind::BackupCode => self.backup_code,
        }
    }

    /// The longest window: older failure records can be forgotten.
    pub fn longest_window(&self) -> u64 {
        self.code.window.max(self.backup_code.window)
    }

    /// How many failures of `kind` a window can hold before every login is
    /// locked for that kind: the most records a decision can depend on.
    pub fn records_needed(&self, kind: FailureKind) -> usize {
        let limit = self.of(kind);
        if limit.max_failures == 0 {
            return 0;
        }
        let all = if self.by_host {
            limit.max_failures.max(limit.max_failures_all_hosts)
        } else {
            limit.max_failures
        };
        all as usize
    }
}

/// The most guesses of `kind` a day that the limits let through for one
/// user, from any number of hosts; `None` when the limit is off.
pub fn guesses_per_day(limits: &Limits, kind: FailureKind) -> Option<u64> {
    let per_window = limits.records_needed(kind) as u64;
    if per_window == 0 {
        return None;
    }
    let window = limits.of(kind).window;
    Some(per_window * 86_400u64.div_ceil(window))
}

/// Until when each kind is locked for one login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locks {
    /// TOTP codes (and malformed answers).
    pub code: Option<u64>,
    /// Backup codes.
    pub backup_code: Option<u64>,
}

impl Locks {
    /// The locks of a login from `host` (see [`locked_until`]).
    pub fn of_login(state: &LoginState, limits: &Limits, host: Option<&str>, now: u64) -> Self {
        Locks {
            code: locked_until(state, limits, FailureKind::Code, host, now),
            backup_code: locked_until(state, limits, FailureKind::BackupCode, host, now),
        }
    }

    /// The lock of `kind`.
    pub fn of(&self, kind: FailureKind) -> Option<u64> {
        match kind {
            FailureKind::Code => self.code,
            FailureKind::BackupCode => self.backup_code,
        }
    }
}

fn lock_end(mut times: Vec<u64>, max_failures: u32, window: u64) -> Option<u64> {
    let max = max_failures as usize;
    if max == 0 || times.len() < max {
        return None;
    }
    times.sort_unstable();
    // After the (len - max + 1) oldest leave the window, fewer than max remain.
    let pivot = times[times.len() - max];
    Some(pivot.saturating_add(window))
}

/// Until when (unix time) attempts of `kind` are locked for a login from
/// `host` (in its stored, bounded form: [`crate::origin::bounded`]), or
/// `None` when they are not.
///
/// Locked while the window holds `max_failures` or more failures (of this
/// host, with `by_host`; with `by_host`, also while all hosts together
/// hold `max_failures_all_hosts`); the lock lifts when the oldest failure
/// that keeps the count at the limit leaves the window.
pub fn locked_until(
    state: &LoginState,
    limits: &Limits,
    kind: FailureKind,
    host: Option<&str>,
    now: u64,
) -> Option<u64> {
    let limit = limits.of(kind);
    if limit.max_failures == 0 {
        return None;
    }
    let window_start = now.saturating_sub(limit.window);
    let in_window =
        |f: &&FailureRecord| f.kind == kind && !f.cleared && f.time > window_start && f.time <= now;
    if !limits.by_host {
        let times = state.failures.iter().filter(in_window).map(|f| f.time);
        return lock_end(times.collect(), limit.max_failures, limit.window);
    }
    let this_host = state
        .failures
        .iter()
        .filter(in_window)
        .filter(|f| f.host.as_deref() == host)
        .map(|f| f.time);
    let all_hosts = state.failures.iter().filter(in_window).map(|f| f.time);
    let host_lock = lock_end(this_host.collect(), limit.max_failures, limit.window);
    let all_lock = lock_end(
        all_hosts.collect(),
        limit.max_failures_all_hosts,
        limit.window,
    );
    host_lock.max(all_lock)
}

/// Record a failed attempt of `kind` from `host` (bounded form), forget
/// what no decision can depend on any more, and return until when `kind`
/// is now locked for that host, if it is.
pub fn record_failure(
    state: &mut LoginState,
    limits: &Limits,
    kind: FailureKind,
    host: Option<&str>,
    now: u64,
) -> Option<u64> {
    state.record_failure(kind, host, now);
    forget_unneeded_failures(state, limits, now);
    locked_until(state, limits, kind, host, now)
}

/// Drop failures outside their kind's window, then all but the newest
/// [`Limits::records_needed`] of each kind (at least
/// [`KEPT_WITHOUT_LIMIT`], so `twofactor status` can show recent ones).
/// Neither changes a decision: see the module documentation.
pub fn forget_unneeded_failures(state: &mut LoginState, limits: &Limits, now: u64) {
    state.failures.retain(|f| {
        let window = limits.of(f.kind).window;
        f.time > now.saturating_sub(window)
    });
    for kind in [FailureKind::Code, FailureKind::BackupCode] {
        let keep = limits.records_needed(kind).max(KEPT_WITHOUT_LIMIT);
        // Newest first; records from the future (the clock was stepped back)
        // and cleared ones count for nothing now, so they go first.
        let mut ranked: Vec<(u64, usize)> = state
            .failures
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == kind)
            .map(|(i, f)| (if f.time > now || f.cleared { 0 } else { f.time }, i))
            .collect();
        if ranked.len() <= keep {
            continue;
        }
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let mut dropped = vec![false; state.failures.len()];
        for &(_, i) in &ranked[keep..] {
            dropped[i] = true;
        }
        let mut index = 0;
        state.failures.retain(|_| {
            index += 1;
            !dropped[index - 1]
        });
    }
}

/// Take back a failure recorded by [`record_failure`] in this same login
/// (same time, kind and host): a code taken from `PAM_AUTHTOK` under
/// `try_first_pass` that turned out to be a password ending in digits, once
/// the user has proved the second factor at the prompt.
pub fn withdraw_failure(state: &mut LoginState, kind: FailureKind, host: Option<&str>, now: u64) {
    if let Some(index) = state
        .failures
        .iter()
        .rposition(|f| f.kind == kind && !f.cleared && f.time == now && f.host.as_deref() == host)
    {
        state.failures.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        code: Limit {
            max_failures: 5,
            window: 900,
            max_failures_all_hosts: 20,
        },
        backup_code: Limit {
            max_failures: 10,
            window: 3600,
            max_failures_all_hosts: 40,
        },
        by_host: false,
    };

    fn with_failures(kind: FailureKind, times: &[u64], host: Option<&str>) -> LoginState {
        let mut state = LoginState::default();
        for t in times {
            state.record_failure(kind, host, *t);
        }
        state
    }

    #[test]
    fn four_failures_do_not_lock_five_do() {
        let state = with_failures(FailureKind::Code, &[100, 200, 300, 400], None);
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::Code, None, 500),
            None
        );
        let state = with_failures(FailureKind::Code, &[100, 200, 300, 400, 500], None);
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::Code, None, 500),
            Some(1000)
        );
        // Backup codes are a separate budget.
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::BackupCode, None, 500),
            None
        );
    }

    #[test]
    fn lock_lifts_when_failures_leave_the_window() {
        let state = with_failures(FailureKind::Code, &[100, 200, 300, 400, 500, 600], None);
        // Six failures: the lock lasts until the second-oldest leaves.
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::Code, None, 600),
            Some(1100)
        );
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::Code, None, 1099),
            Some(1100)
        );
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::Code, None, 1100),
            None
        );
    }

    #[test]
    fn backup_code_limit() {
        let times: Vec<u64> = (1..=10).map(|i| i * 100).collect();
        let state = with_failures(FailureKind::BackupCode, &times[..9], None);
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::BackupCode, None, 1000),
            None
        );
        let state = with_failures(FailureKind::BackupCode, &times, None);
        assert_eq!(
            locked_until(&state, &LIMITS, FailureKind::BackupCode, None, 1000),
            Some(3700)
        );
    }

    #[test]
    fn per_host_counting() {
        let mut state = with_failures(FailureKind::Code, &[1, 2, 3, 4, 5], Some("198.51.100.9"));
        state.record_failure(FailureKind::Code, None, 6);
        let by_host = Limits {
            by_host: true,
            ..LIMITS
        };
        assert!(locked_until(
            &state,
            &by_host,
            FailureKind::Code,
            Some("198.51.100.9"),
            10
        )
        .is_some());
        assert_eq!(
            locked_until(&state, &by_host, FailureKind::Code, Some("203.0.113.1"), 10),
            None
        );
        assert_eq!(
            locked_until(&state, &by_host, FailureKind::Code, None, 10),
            None
        );
        assert!(
            locked_until(&state, &LIMITS, FailureKind::Code, Some("203.0.113.1"), 10).is_some()
        );
    }

    #[test]
    fn disabled_limit_never_locks() {
        let state = with_failures(FailureKind::Code, &[1, 2, 3, 4, 5, 6, 7], None);
        let off = Limits {
            code: Limit {
                max_failures: 0,
                window: 900,
                max_failures_all_hosts: 0,
            },
            ..LIMITS
        };
        assert_eq!(locked_until(&state, &off, FailureKind::Code, None, 8), None);
    }

    fn host(i: usize) -> String {
        format!("198.51.100.{i}")
    }

    #[test]
    fn other_hosts_never_push_out_a_locked_host() {
        let limits = Limits {
            by_host: true,
            code: Limit {
                max_failures_all_hosts: 1000,
                ..LIMITS.code
            },
            ..LIMITS
        };
        let mut state = LoginState::default();
        for _ in 0..5 {
            record_failure(&mut state, &limits, FailureKind::Code, Some(&host(1)), 100);
        }
        assert_eq!(
            locked_until(&state, &limits, FailureKind::Code, Some(&host(1)), 101),
            Some(1000)
        );
        // 150 other addresses, each up to its own limit.
        for i in 2..152 {
            for _ in 0..5 {
                assert_eq!(
                    locked_until(&state, &limits, FailureKind::Code, Some(&host(i)), 200),
                    None
                );
                record_failure(&mut state, &limits, FailureKind::Code, Some(&host(i)), 200);
            }
        }
        assert_eq!(
            locked_until(&state, &limits, FailureKind::Code, Some(&host(1)), 300),
            Some(1000)
        );
    }

    #[test]
    fn rotating_hosts_meets_the_all_hosts_limit() {
        let limits = Limits {
            by_host: true,
            ..LIMITS
        };
        let mut state = LoginState::default();
        let mut checked = 0;
        // One guess per address: only the all-hosts budget stops it.
        for i in 0..100 {
            if locked_until(&state, &limits, FailureKind::Code, Some(&host(i)), 500).is_some() {
                continue;
            }
            checked += 1;
            record_failure(&mut state, &limits, FailureKind::Code, Some(&host(i)), 500);
        }
        assert_eq!(checked, 20);
        assert_eq!(
            locked_until(&state, &limits, FailureKind::Code, None, 501),
            Some(1400)
        );
        // The state holds what decisions need and no more.
        assert_eq!(state.failures.len(), 20);
    }

    #[test]
    fn large_limits_are_exact() {
        let limits = Limits {
            code: Limit {
                max_failures: 300,
                window: 3600,
                max_failures_all_hosts: 300,
            },
            backup_code: Limit {
                max_failures: 300,
                window: 3600,
                max_failures_all_hosts: 300,
            },
            by_host: false,
        };
        let mut state = LoginState::default();
        // Alternating kinds: 299 of each is not a lockout, the 300th is.
        for t in 0..299 {
            for kind in [FailureKind::Code, FailureKind::BackupCode] {
                assert_eq!(
                    record_failure(&mut state, &limits, kind, None, 1000 + t),
                    None
                );
            }
        }
        assert_eq!(state.failures.len(), 598);
        assert!(record_failure(&mut state, &limits, FailureKind::Code, None, 1299).is_some());
        assert!(record_failure(&mut state, &limits, FailureKind::BackupCode, None, 1299).is_some());
    }

    #[test]
    fn old_and_surplus_failures_are_forgotten() {
        let mut state = LoginState::default();
        for t in 0..1000 {
            state.record_failure(FailureKind::Code, None, t);
        }
        state.record_failure(FailureKind::BackupCode, None, 10);
        forget_unneeded_failures(&mut state, &LIMITS, 1000);
        // Codes: the newest KEPT_WITHOUT_LIMIT (the limit of 5 needs fewer);
        // the backup code failure is inside its hour.
        assert_eq!(state.failures.len(), KEPT_WITHOUT_LIMIT + 1);
        assert!(state
            .failures
            .iter()
            .all(|f| f.time >= 1000 - 32 || f.time == 10));
        forget_unneeded_failures(&mut state, &LIMITS, 100_000);
        assert!(state.failures.is_empty());
        // A record from the future (the clock went back) is dropped first.
        for t in 0..KEPT_WITHOUT_LIMIT as u64 {
            state.record_failure(FailureKind::Code, None, 500 + t);
        }
        state.record_failure(FailureKind::Code, None, 9_999);
        state.record_failure(FailureKind::Code, None, 600);
        forget_unneeded_failures(&mut state, &LIMITS, 700);
        assert!(state.failures.iter().all(|f| f.time != 9_999));
        assert_eq!(state.failures.len(), KEPT_WITHOUT_LIMIT);
    }

    #[test]
    fn daily_budgets() {
        assert_eq!(guesses_per_day(&LIMITS, FailureKind::Code), Some(480));
        assert_eq!(guesses_per_day(&LIMITS, FailureKind::BackupCode), Some(240));
        let by_host = Limits {
            by_host: true,
            ..LIMITS
        };
        assert_eq!(guesses_per_day(&by_host, FailureKind::Code), Some(1920));
        assert_eq!(
            guesses_per_day(&by_host, FailureKind::BackupCode),
            Some(960)
        );
        let off = Limits {
            code: Limit {
                max_failures: 0,
                ..LIMITS.code
            },
            ..LIMITS
        };
        assert_eq!(guesses_per_day(&off, FailureKind::Code), None);
    }

    #[test]
    fn a_withdrawn_failure_is_this_logins_own() {
        let mut state = LoginState::default();
        record_failure(&mut state, &LIMITS, FailureKind::Code, Some("a"), 5);
        record_failure(&mut state, &LIMITS, FailureKind::Code, Some("b"), 6);
        withdraw_failure(&mut state, FailureKind::Code, Some("b"), 6);
        withdraw_failure(&mut state, FailureKind::Code, Some("a"), 6);
        assert_eq!(state.failures.len(), 1);
        assert_eq!(state.failures[0].host.as_deref(), Some("a"));
    }
}
