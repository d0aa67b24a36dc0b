//! Deciding whether an answer typed at the prompt is a valid second factor,
//! and what that changes in the login state. Pure: no I/O, no clock.

use std::borrow::Cow;

use zeroize::Zeroizing;

use crate::backup::{self, BackupCheck};
use crate::enrollment::Enrollment;
use crate::ratelimit::Locks;
use crate::state::{FailureKind, LoginState, Method};
use crate::totp::TotpCheck;

/// The outcome of checking one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A TOTP code of a step not used before.
    Totp {
        /// the accepted step
        step: u64,
    },
    /// An unspent backup code.
    BackupCode {
        /// its id (salt)
        id: String,
    },
    /// A valid TOTP code whose step was already used.
    ReplayedTotp,
    /// A valid TOTP code refused because codes of a later time were accepted
    /// before, beyond this one: the clock was ahead then, or is behind now.
    /// A clock problem, not a guess.
    TotpClockProblem {
        /// How far the latest refused step lies after the current time.
        seconds_ahead: u64,
    },
    /// A backup code that was already spent.
    SpentBackupCode,
    /// Nothing matched.
    Wrong,
}

impl Verdict {
    /// True for the two accepting verdicts.
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Totp { .. } | Verdict::BackupCode { .. })
    }

    /// The method of an accepting verdict.
    pub fn method(&self) -> Option<Method> {
        match self {
            Verdict::Totp { .. } => Some(Method::Totp),
            Verdict::BackupCode { .. } => Some(Method::BackupCode),
            _ => None,
        }
    }

    /// Short reason for logs; never includes the code.
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Totp { .. } => "valid TOTP code",
            Verdict::BackupCode { .. } => "valid backup code",
            Verdict::ReplayedTotp => "TOTP code already used (replay refused)",
            Verdict::TotpClockProblem { .. } => {
                "clock problem: a TOTP code of a later time was accepted before \
                 (this host's clock is behind, or was ahead then)"
            }
            Verdict::SpentBackupCode => "backup code already used",
            Verdict::Wrong => "wrong code",
        }
    }
}

fn rank(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Totp { .. } | Verdict::BackupCode { .. } => 3,
        Verdict::ReplayedTotp | Verdict::SpentBackupCode | Verdict::TotpClockProblem { .. } => 2,
        Verdict::Wrong => 1,
    }
}

/// Kinds of code (the rate-limit budgets): which ones an answer had the
/// shape of, or was checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds {
    /// TOTP codes.
    pub code: bool,
    /// Backup codes.
    pub backup_code: bool,
}

impl Kinds {
    /// Both kinds.
    pub const ALL: Kinds = Kinds {
        code: true,
        backup_code: true,
    };

    /// True when `kind` is among them.
    pub fn contains(self, kind: FailureKind) -> bool {
        match kind {
            FailureKind::Code => self.code,
            FailureKind::BackupCode => self.backup_code,
        }
    }

    /// True when there is none.
    pub fn is_empty(self) -> bool {
        !self.code && !self.backup_code
    }

    /// The kinds in either.
    pub fn union(self, other: Kinds) -> Kinds {
        Kinds {
            code: self.code || other.code,
            backup_code: self.backup_code || other.backup_code,
        }
    }

    /// The kinds in turn (codes first).
    pub fn iter(self) -> impl Iterator<Item = FailureKind> {
        [FailureKind::Code, FailureKind::BackupCode]
            .into_iter()
            .filter(move |&kind| self.contains(kind))
    }

    /// The kinds not locked by `locks`.
    pub fn open_in(locks: &Locks) -> Kinds {
        Kinds {
            code: locks.code.is_none(),
            backup_code: locks.backup_code.is_none(),
        }
    }
}

/// What checking one answer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The verdict over the kinds that were checked.
    pub verdict: Verdict,
    /// Kinds the answer had the shape of (whether or not they were open).
    pub shaped: Kinds,
    /// Kinds it was compared against: every one of them counts a failure
    /// when the answer is refused.
    pub checked: Kinds,
    /// With password and code: the length of the password part in bytes.
    pub password_len: Option<usize>,
}

/// An answer of digits as apps show them (`123 456`, `123-456`): the digits
/// alone. Anything else (a backup code, which reads its own separators, or a
/// malformed answer) is left as it is.
fn digits_as_typed(answer: &str) -> Cow<'_, str> {
    let separated = answer.contains([' ', '-']);
    let digits_and_separators = answer
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-');
    if separated && digits_and_separators && answer.bytes().any(|b| b.is_ascii_digit()) {
        Cow::Owned(answer.chars().filter(char::is_ascii_digit).collect())
    } else {
        Cow::Borrowed(answer)
    }
}

/// Check an answer that is only a code (surrounding white space ignored,
/// and spaces or dashes between its digits) against the kinds in `open`; a
/// kind that is locked is never compared.
pub fn check_code(
    enrollment: &Enrollment,
    state: &LoginState,
    answer: &str,
    now: u64,
    window: u8,
    open: Kinds,
) -> Checked {
    let typed = Zeroizing::new(digits_as_typed(answer.trim()).into_owned());
    let candidate = check_candidate(enrollment, state, &typed, now, window, open);
    Checked {
        verdict: candidate.verdict,
        shaped: candidate.shaped,
        checked: candidate.checked,
        password_len: None,
    }
}

struct Candidate {
    verdict: Verdict,
    shaped: Kinds,
    checked: Kinds,
}

fn check_candidate(
    enrollment: &Enrollment,
    state: &LoginState,
    candidate: &str,
    now: u64,
    window: u8,
    open: Kinds,
) -> Candidate {
    let mut result = Candidate {
        verdict: Verdict::Wrong,
        shaped: Kinds::default(),
        checked: Kinds::default(),
    };
    if let Some(totp) = enrollment
        .totp
        .as_ref()
        .filter(|t| t.looks_like_code(candidate))
    {
        result.shaped.code = true;
        if open.code {
            result.checked.code = true;
            let replay = state.totp_replay(&totp.fingerprint());
            let current = totp.step_of(now);
            let latest_valid = current + u64::from(window);
            let refused = |step| replay.refuses(step, latest_valid);
            result.verdict = match totp.verify_unused(candidate, now, window, refused) {
                TotpCheck::Accepted { step } => Verdict::Totp { step },
                TotpCheck::Replayed { step }
                    if replay.refuses_by_future_floor(step, latest_valid) =>
                {
                    Verdict::TotpClockProblem {
                        seconds_ahead: (replay.floor - current).saturating_mul(totp.period),
                    }
                }
                TotpCheck::Replayed { .. } => Verdict::ReplayedTotp,
                TotpCheck::Rejected => Verdict::Wrong,
            };
            if result.verdict != Verdict::Wrong {
                return result;
            }
        }
    }
    // An 8-digit TOTP and imported 8-digit scratch codes share a shape: a
    // wrong TOTP code may still be a scratch code.
    if !enrollment.backup_codes.is_empty()
        && backup::looks_like_backup_code(candidate, &enrollment.backup_codes)
    {
        result.shaped.backup_code = true;
        if open.backup_code {
            result.checked.backup_code = true;
            result.verdict = match backup::verify(candidate, &enrollment.backup_codes, |id| {
                state.is_spent(id)
            }) {
                BackupCheck::Accepted { id } => Verdict::BackupCode { id },
                BackupCheck::AlreadyUsed => Verdict::SpentBackupCode,
                BackupCheck::Rejected => Verdict::Wrong,
            };
        }
    }
    result
}

/// Check an answer holding a password immediately followed by a code
/// (`forward_pass`, `try_first_pass`, `use_first_pass`) against the kinds
/// in `open`. Each way the answer can end in a code is tried: the TOTP
/// length, a dashed backup code, a plain backup code; a whole answer that
/// is a code counts too. Every kind any of these was compared against is
/// reported as checked.
pub fn check_password_and_code(
    enrollment: &Enrollment,
    state: &LoginState,
    answer: &str,
    now: u64,
    window: u8,
    open: Kinds,
) -> Checked {
    let mut suffix_lengths: Vec<usize> = Vec::with_capacity(3);
    if let Some(totp) = &enrollment.totp {
        suffix_lengths.push(usize::from(totp.digits));
    }
    if !enrollment.backup_codes.is_empty() {
        suffix_lengths.push(backup::CODE_CHARS + 3);
        suffix_lengths.push(backup::CODE_CHARS);
    }
    let has_legacy = enrollment
        .backup_codes
        .iter()
        .any(|c| c.kind == backup::BackupCodeKind::LegacyScratch);
    if has_legacy && !suffix_lengths.contains(&backup::LEGACY_CODE_DIGITS) {
        suffix_lengths.push(backup::LEGACY_CODE_DIGITS);
    }
    let mut best = Checked {
        verdict: Verdict::Wrong,
        shaped: Kinds::default(),
        checked: Kinds::default(),
        password_len: Some(answer.len()),
    };
    for suffix in suffix_lengths {
        let Some(split) = answer.len().checked_sub(suffix) else {
            continue;
        };
        if !answer.is_char_boundary(split) {
            continue;
        }
        let candidate = check_candidate(enrollment, state, &answer[split..], now, window, open);
        best.shaped = best.shaped.union(candidate.shaped);
        best.checked = best.checked.union(candidate.checked);
        if rank(&candidate.verdict) > rank(&best.verdict) {
            best.verdict = candidate.verdict;
            best.password_len = Some(split);
        }
    }
    best
}

/// Record an accepting verdict in the state: the TOTP step becomes the last
/// accepted one, a backup code becomes spent. Returns the number of backup
/// codes still unspent afterwards.
pub fn record_success(
    verdict: &Verdict,
    enrollment: &Enrollment,
    state: &mut LoginState,
    now: u64,
) -> usize {
    match verdict {
        Verdict::Totp { step } => {
            if let Some(totp) = &enrollment.totp {
                state.record_totp_step(&totp.fingerprint(), *step);
            }
        }
        Verdict::BackupCode { id } => {
            state.forget_unknown_backup_codes(
                enrollment.backup_codes.iter().map(|c| c.salt.as_str()),
            );
            if !state.is_spent(id) {
                state.spent_backup_codes.push(id.clone());
            }
        }
        _ => {}
    }
    if let Some(method) = verdict.method() {
        state.record_success(method, now);
    }
    remaining_backup_codes(enrollment, state)
}

/// Codes of a later time than now were accepted for the enrollment's TOTP:
/// the clock was ahead then (a VM restored from a snapshot, a bad RTC, an
/// NTP mistake) or is behind now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockProblem {
    /// How far after now the latest accepted step lies.
    pub seconds_ahead: u64,
    /// Current codes are refused too (more steps were accepted while the
    /// clock was ahead than are kept exactly): until the clock passes that
    /// time, or a new enrollment.
    pub refuses_current_codes: bool,
}

/// The clock problem of `enrollment`'s TOTP at `now`, if any.
pub fn clock_problem(
    enrollment: &Enrollment,
    state: &LoginState,
    now: u64,
    window: u8,
) -> Option<ClockProblem> {
    let totp = enrollment.totp.as_ref()?;
    let replay = state.totp_replay(&totp.fingerprint());
    let latest_valid = totp.step_of(now) + u64::from(window);
    let newest = replay.newest()?;
    (newest > latest_valid).then(|| ClockProblem {
        seconds_ahead: (newest - totp.step_of(now)).saturating_mul(totp.period),
        refuses_current_codes: replay.floor > latest_valid,
    })
}

/// Backup codes of the enrollment that are not spent.
pub fn remaining_backup_codes(enrollment: &Enrollment, state: &LoginState) -> usize {
    enrollment
        .backup_codes
        .iter()
        .filter(|c| !state.is_spent(&c.salt))
        .count()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::secret::SecretBytes;
    use crate::state::MAX_KEPT_STEPS;
    use crate::totp::{Algorithm, TotpParams};

    /// TOTP (SHA1, 6 digits, 30 s, RFC 6238's secret) and three backup codes.
    pub(crate) fn enrollment_with_codes() -> (Enrollment, Vec<String>) {
        let codes = backup::generate(3);
        let shown = codes.iter().map(|c| c.display.to_string()).collect();
        let enrollment = Enrollment {
            totp: Some(TotpParams {
                secret: SecretBytes::new(b"12345678901234567890".to_vec()),
                algorithm: Algorithm::SHA1,
                digits: 6,
                period: 30,
            }),
            backup_codes: codes.into_iter().map(|c| c.stored).collect(),
            ..Enrollment::default()
        };
        (enrollment, shown)
    }

    #[test]
    fn totp_then_replay() {
        let (e, _) = enrollment_with_codes();
        let mut state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        let verdict = check_code(
            &e,
            &state,
            &format!(" {} ", code.as_str()),
            1000,
            1,
            Kinds::ALL,
        )
        .verdict;
        assert_eq!(verdict, Verdict::Totp { step: 33 });
        record_success(&verdict, &e, &mut state, 1000);
        assert_eq!(state.newest_totp_step(), Some(33));
        assert_eq!(
            check_code(&e, &state, &code, 1000, 1, Kinds::ALL).verdict,
            Verdict::ReplayedTotp
        );
    }

    #[test]
    fn backup_code_once_and_remaining_count() {
        let (e, shown) = enrollment_with_codes();
        let mut state = LoginState::default();
        let verdict = check_code(&e, &state, &shown[2], 1000, 1, Kinds::ALL).verdict;
        assert!(matches!(verdict, Verdict::BackupCode { .. }));
        assert_eq!(record_success(&verdict, &e, &mut state, 1000), 2);
        assert_eq!(
            check_code(&e, &state, &shown[2], 1001, 1, Kinds::ALL).verdict,
            Verdict::SpentBackupCode
        );
        assert_eq!(state.last_success_method, Some(Method::BackupCode));
    }

    #[test]
    fn password_and_code_are_split() {
        let (e, shown) = enrollment_with_codes();
        let state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        let answer = format!("hunter2{}", code.as_str());
        let checked = check_password_and_code(&e, &state, &answer, 1000, 1, Kinds::ALL);
        let (verdict, split) = (checked.verdict, checked.password_len.unwrap());
        assert!(verdict.is_success());
        assert_eq!(&answer[..split], "hunter2");

        for backup in [shown[0].clone(), shown[0].replace('-', "")] {
            let answer = format!("pass word{backup}");
            let checked = check_password_and_code(&e, &state, &answer, 1000, 1, Kinds::ALL);
            let (verdict, split) = (checked.verdict, checked.password_len.unwrap());
            assert!(matches!(verdict, Verdict::BackupCode { .. }), "{answer}");
            assert_eq!(&answer[..split], "pass word");
        }

        let checked = check_password_and_code(&e, &state, code.as_str(), 1000, 1, Kinds::ALL);
        let (verdict, split) = (checked.verdict, checked.password_len.unwrap());
        assert!(verdict.is_success());
        assert_eq!(split, 0);

        let checked = check_password_and_code(&e, &state, "hunter2000000", 1000, 1, Kinds::ALL);
        let (verdict, _) = (checked.verdict, checked.password_len.unwrap());
        assert_eq!(verdict, Verdict::Wrong);
        let checked = check_password_and_code(&e, &state, "ü", 1000, 1, Kinds::ALL);
        let (verdict, _) = (checked.verdict, checked.password_len.unwrap());
        assert_eq!(verdict, Verdict::Wrong);
    }

    #[test]
    fn legacy_scratch_codes_alone_and_after_a_password() {
        let (mut e, _) = enrollment_with_codes();
        e.backup_codes
            .push(backup::hash_legacy("60808409").unwrap());
        let mut state = LoginState::default();
        let verdict = check_code(&e, &state, "60808409", 1000, 1, Kinds::ALL).verdict;
        assert!(matches!(verdict, Verdict::BackupCode { .. }), "{verdict:?}");
        assert_eq!(record_success(&verdict, &e, &mut state, 1000), 3);
        assert_eq!(
            check_code(&e, &state, "60808409", 1000, 1, Kinds::ALL).verdict,
            Verdict::SpentBackupCode
        );
        let state = LoginState::default();
        let checked = check_password_and_code(&e, &state, "hunter260808409", 1000, 1, Kinds::ALL);
        let (verdict, split) = (checked.verdict, checked.password_len.unwrap());
        assert!(matches!(verdict, Verdict::BackupCode { .. }), "{verdict:?}");
        assert_eq!(split, "hunter2".len());

        // An 8-digit TOTP enrollment still accepts its codes and the scratch codes.
        if let Some(totp) = e.totp.as_mut() {
            totp.digits = 8;
        }
        let code = e.totp.as_ref().unwrap().code_at(1000);
        assert!(matches!(
            check_code(&e, &state, &code, 1000, 1, Kinds::ALL).verdict,
            Verdict::Totp { .. }
        ));
        assert!(matches!(
            check_code(&e, &state, "60808409", 1000, 1, Kinds::ALL).verdict,
            Verdict::BackupCode { .. }
        ));
    }

    #[test]
    fn every_kind_compared_is_reported_and_locked_kinds_are_not_compared() {
        let (mut e, shown) = enrollment_with_codes();
        e.backup_codes
            .push(backup::hash_legacy("60808409").unwrap());
        if let Some(totp) = e.totp.as_mut() {
            totp.digits = 8;
        }
        let state = LoginState::default();
        let both = Kinds::ALL;
        // A wrong 8-digit answer is a TOTP guess and a scratch-code guess.
        let wrong = check_code(&e, &state, "12345678", 1000, 1, Kinds::ALL);
        assert_eq!(
            (wrong.verdict, wrong.checked, wrong.shaped),
            (Verdict::Wrong, both, both)
        );
        // With codes locked, a scratch code is still checked, the TOTP never.
        let codes_locked = Kinds {
            code: false,
            backup_code: true,
        };
        let scratch = check_code(&e, &state, "60808409", 1000, 1, codes_locked);
        assert!(matches!(scratch.verdict, Verdict::BackupCode { .. }));
        assert_eq!(scratch.checked, codes_locked);
        let totp = e.totp.as_ref().unwrap().code_at(1000);
        let refused = check_code(&e, &state, &totp, 1000, 1, codes_locked);
        assert_eq!(refused.verdict, Verdict::Wrong);
        assert_eq!((refused.checked, refused.shaped), (codes_locked, both));
        // Nothing open: nothing compared, even the right code.
        let closed = check_code(&e, &state, &totp, 1000, 1, Kinds::default());
        assert_eq!(
            (closed.verdict, closed.checked),
            (Verdict::Wrong, Kinds::default())
        );
        // A password and a wrong code: every suffix's kind counts.
        let answer = format!("correct-horse-{}x{}", "7".repeat(8), "a".repeat(15));
        let guessed = check_password_and_code(&e, &state, &answer, 1000, 1, Kinds::ALL);
        assert_eq!(guessed.verdict, Verdict::Wrong);
        assert!(guessed.checked.backup_code, "{guessed:?}");
        let guessed = check_password_and_code(&e, &state, "hunter212345678", 1000, 1, Kinds::ALL);
        assert_eq!(guessed.checked, both);
        // A standard backup code typed alone is a backup-code attempt only.
        let typed = check_code(&e, &state, &shown[0].replace('-', ""), 1000, 1, Kinds::ALL);
        assert!(matches!(typed.verdict, Verdict::BackupCode { .. }));
        assert_eq!(
            typed.checked,
            Kinds {
                code: false,
                backup_code: true
            }
        );
        // A malformed answer has no shape and is compared with nothing.
        let malformed = check_code(&e, &state, "hello", 1000, 1, Kinds::ALL);
        assert!(malformed.shaped.is_empty() && malformed.checked.is_empty());
    }

    #[test]
    fn replay_protection_follows_the_enrollment() {
        let (e, _) = enrollment_with_codes();
        let mut state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        let verdict = check_code(&e, &state, &code, 1000, 1, Kinds::ALL).verdict;
        record_success(&verdict, &e, &mut state, 1000);
        // A new secret, or the same secret with another period: fresh.
        let mut new_secret = e.clone();
        new_secret.totp.as_mut().unwrap().secret = SecretBytes::new(vec![7; 20]);
        let mut new_period = e.clone();
        new_period.totp.as_mut().unwrap().period = 60;
        for other in [&new_secret, &new_period] {
            let code = other.totp.as_ref().unwrap().code_at(1000);
            assert!(matches!(
                check_code(other, &state, &code, 1000, 1, Kinds::ALL).verdict,
                Verdict::Totp { .. }
            ));
        }
        // Going back to the old secret: its used step stays used.
        assert_eq!(
            check_code(&e, &state, &code, 1000, 1, Kinds::ALL).verdict,
            Verdict::ReplayedTotp
        );
    }

    #[test]
    fn codes_are_accepted_in_order() {
        let (e, _) = enrollment_with_codes();
        let totp = e.totp.as_ref().unwrap();
        let mut state = LoginState::default();
        // The next step's code (within the window) first: the current one,
        // never used, is refused after it.
        let next = check_code(&e, &state, &totp.code_at(1030), 1000, 1, Kinds::ALL).verdict;
        assert_eq!(next, Verdict::Totp { step: 1030 / 30 });
        record_success(&next, &e, &mut state, 1000);
        assert_eq!(
            check_code(&e, &state, &totp.code_at(1000), 1001, 1, Kinds::ALL).verdict,
            Verdict::ReplayedTotp
        );
    }

    #[test]
    fn a_clock_that_ran_ahead_refuses_only_what_it_accepted() {
        let (e, _) = enrollment_with_codes();
        let totp = e.totp.as_ref().unwrap();
        let mut state = LoginState::default();
        let real = 1_800_000_000;
        let ahead = real + 30 * 86_400;
        for t in [real - 600, ahead, ahead + 3600] {
            let verdict = check_code(&e, &state, &totp.code_at(t), t, 1, Kinds::ALL).verdict;
            assert!(matches!(verdict, Verdict::Totp { .. }), "{verdict:?}");
            record_success(&verdict, &e, &mut state, t);
        }
        // The clock is right again: today's code works, and the problem shows.
        let problem = clock_problem(&e, &state, real, 1).unwrap();
        assert!(!problem.refuses_current_codes);
        assert_eq!(
            problem.seconds_ahead,
            (ahead + 3600) / 30 * 30 - real / 30 * 30
        );
        let verdict = check_code(&e, &state, &totp.code_at(real), real, 1, Kinds::ALL).verdict;
        assert!(matches!(verdict, Verdict::Totp { .. }));
        record_success(&verdict, &e, &mut state, real);
        // Each accepted code stays refused, also when its time comes again.
        for t in [real, ahead, ahead + 3600] {
            assert_eq!(
                check_code(&e, &state, &totp.code_at(t), t, 1, Kinds::ALL).verdict,
                Verdict::ReplayedTotp,
                "{t}"
            );
        }
        // More ahead logins than are kept exactly: the floor lies in the
        // future, and current codes are refused as a clock problem.
        for i in 0..MAX_KEPT_STEPS as u64 + 1 {
            let t = ahead + 7200 + i * 30;
            let verdict = check_code(&e, &state, &totp.code_at(t), t, 1, Kinds::ALL).verdict;
            record_success(&verdict, &e, &mut state, t);
        }
        let now = real + 60;
        assert!(
            clock_problem(&e, &state, now, 1)
                .unwrap()
                .refuses_current_codes
        );
        assert!(matches!(
            check_code(&e, &state, &totp.code_at(now), now, 1, Kinds::ALL).verdict,
            Verdict::TotpClockProblem { .. }
        ));
        assert_eq!(clock_problem(&e, &state, ahead + 86_400, 1), None);
    }

    #[test]
    fn a_step_kept_by_an_earlier_version_is_the_first_enrollments_floor() {
        let (e, _) = enrollment_with_codes();
        let totp = e.totp.as_ref().unwrap();
        let state = LoginState {
            last_totp_step: Some(1000 / 30),
            ..LoginState::default()
        };
        assert_eq!(
            check_code(&e, &state, &totp.code_at(1000), 1000, 1, Kinds::ALL).verdict,
            Verdict::ReplayedTotp
        );
        let verdict = check_code(&e, &state, &totp.code_at(1030), 1030, 1, Kinds::ALL).verdict;
        assert_eq!(verdict, Verdict::Totp { step: 1030 / 30 });
        let mut state = state;
        record_success(&verdict, &e, &mut state, 1030);
        assert_eq!(state.last_totp_step, None);
        assert_eq!(state.newest_totp_step(), Some(1030 / 30));
        assert_eq!(
            check_code(&e, &state, &totp.code_at(1000), 1000, 1, Kinds::ALL).verdict,
            Verdict::ReplayedTotp
        );
    }

    #[test]
    fn codes_typed_as_apps_show_them() {
        let (e, shown) = enrollment_with_codes();
        let state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        for typed in [
            format!("{} {}", &code[..3], &code[3..]),
            format!("{}-{}", &code[..3], &code[3..]),
            format!(" {} - {} ", &code[..3], &code[3..]),
        ] {
            assert_eq!(
                check_code(&e, &state, &typed, 1000, 1, Kinds::ALL).verdict,
                Verdict::Totp { step: 33 },
                "{typed:?}"
            );
        }
        // Backup codes keep their own separators; letters are never dropped.
        assert!(matches!(
            check_code(&e, &state, &shown[0].replace('-', " "), 1000, 1, Kinds::ALL).verdict,
            Verdict::BackupCode { .. }
        ));
        let mixed = format!("{}x{}", &code[..3], &code[3..]);
        let refused = check_code(&e, &state, &mixed, 1000, 1, Kinds::ALL);
        assert_eq!(refused.verdict, Verdict::Wrong);
        assert!(refused.shaped.is_empty());
        assert!(check_code(&e, &state, "- -", 1000, 1, Kinds::ALL)
            .shaped
            .is_empty());
    }

    #[test]
    fn regenerated_codes_drop_old_spent_ids() {
        let (e, shown) = enrollment_with_codes();
        let mut state = LoginState::default();
        state.spent_backup_codes.push("stale".into());
        let verdict = check_code(&e, &state, &shown[0], 5, 1, Kinds::ALL).verdict;
        record_success(&verdict, &e, &mut state, 5);
        assert_eq!(
            state.spent_backup_codes,
            vec![e.backup_codes[0].salt.clone()]
        );
    }
}
