//! Rate limits on guessing: failures (not successes, so a user cannot lock
//! themselves out by logging in) within a sliding window, counted separately
//! for codes and for backup codes, optionally per remote host.

use crate::state::{FailureKind, LoginState};

/// One limit: at most `max_failures` within `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures that start a lockout (0 disables the limit).
    pub max_failures: u32,
    /// Length of the sliding window in seconds.
    pub window: u64,
}

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TOTP codes (and malformed answers).
    pub code: Limit,
    /// Backup codes.
    pub backup_code: Limit,
    /// Count only failures from the same remote host.
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
}

/// Until when (unix time) attempts of `kind` are locked for a login from
/// `host`, or `None` when they are not.
///
/// Locked while the window holds `max_failures` or more failures; the lock
/// lifts when the oldest failure that keeps the count at the limit leaves the
/// window.
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
    let mut times: Vec<u64> = state
        .failures
        .iter()
        .filter(|f| f.kind == kind && f.time > window_start && f.time <= now)
        .filter(|f| !limits.by_host || f.host.as_deref() == host)
        .map(|f| f.time)
        .collect();
    let max = limit.max_failures as usize;
    if times.len() < max {
        return None;
    }
    times.sort_unstable();
    // After the (len - max + 1) oldest leave the window, fewer than max remain.
    let pivot = times[times.len() - max];
    Some(pivot.saturating_add(limit.window))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        code: Limit {
            max_failures: 5,
            window: 900,
        },
        backup_code: Limit {
            max_failures: 10,
            window: 3600,
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
            },
            ..LIMITS
        };
        assert_eq!(locked_until(&state, &off, FailureKind::Code, None, 8), None);
    }
}
