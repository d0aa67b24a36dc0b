//! What one answer is, and what it counts against: the lock decision and
//! the classification of an answer, as one pure function of the login
//! state, the limits, the origin and the time. The module takes it under
//! the user's state lock and then records what it says; nothing here does
//! I/O or reads the clock.

use crate::enrollment::Enrollment;
use crate::ratelimit::{Limits, Locks};
use crate::state::{FailureKind, LoginState};
use crate::verify::{self, Checked, Kinds, Verdict};

/// How the answer is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerForm {
    /// A code alone (the module's own prompt).
    CodeOnly,
    /// A password immediately followed by a code (`forward_pass`, and
    /// PAM_AUTHTOK under `try_first_pass` or `use_first_pass`).
    PasswordAndCode,
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// Typed at the module's prompt.
    Prompt,
    /// PAM_AUTHTOK under `try_first_pass`: usually a password alone, and the
    /// user is asked next.
    AuthtokTryFirst,
    /// PAM_AUTHTOK under `use_first_pass`: the only answer there will be.
    AuthtokOnly,
}

/// The decision about one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What checking found (with the open kinds only).
    pub answer: Checked,
    /// Kinds a refusal counts a failure against.
    pub counted: Kinds,
    /// The answer is of a kind that is locked: nothing was compared, and it
    /// is refused unchecked (the kind and until when).
    pub refused_while_locked: Option<(FailureKind, u64)>,
}

/// The two clocks of a decision, unix seconds. Codes are of this host's
/// time (the time the user's device and this host agree on); failure
/// windows and lockouts run on the state's clock: the shared server's on a
/// fleet, so a host whose clock is wrong cannot stretch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// This host's clock: which TOTP codes are current.
    pub codes: u64,
    /// The state's clock: failure windows and lockouts.
    pub windows: u64,
}

impl Clock {
    /// One clock for both (a host's own state).
    pub fn single(now: u64) -> Self {
        Clock {
            codes: now,
            windows: now,
        }
    }
}

/// Decide about `answer` of a login from `host` (bounded form) at `clock`.
///
/// A kind that is locked is never compared. A refused answer counts against
/// every kind it was compared with, except a right TOTP code refused for a
/// clock problem (no guess); an answer of no code's shape counts against
/// codes, except PAM_AUTHTOK under `try_first_pass` (a password alone:
/// nothing was guessed). An answer shaped only like locked kinds (or, of no
/// shape, while codes are locked) is refused unchecked.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    enrollment: &Enrollment,
    state: &LoginState,
    limits: &Limits,
    host: Option<&str>,
    answer: &str,
    form: AnswerForm,
    source: AnswerSource,
    clock: Clock,
    window: u8,
) -> Decision {
    let locks = Locks::of_login(state, limits, host, clock.windows);
    let open = Kinds::open_in(&locks);
    let now = clock.codes;
    let answered = match form {
        AnswerForm::CodeOnly => verify::check_code(enrollment, state, answer, now, window, open),
        AnswerForm::PasswordAndCode => {
            verify::check_password_and_code(enrollment, state, answer, now, window, open)
        }
    };
    let counted = counted_kinds(&answered, source);
    if answered.checked.is_empty() {
        let shaped = if answered.shaped.is_empty() {
            counted
        } else {
            answered.shaped
        };
        let lock = shaped
            .iter()
            .filter_map(|kind| locks.of(kind).map(|until| (kind, until)))
            .min_by_key(|&(_, until)| until);
        if lock.is_some() {
            return Decision {
                answer: answered,
                counted: Kinds::default(),
                refused_while_locked: lock,
            };
        }
    }
    Decision {
        answer: answered,
        counted,
        refused_while_locked: None,
    }
}

fn counted_kinds(answered: &Checked, source: AnswerSource) -> Kinds {
    if answered.verdict.is_success() {
        return Kinds::default();
    }
    if !answered.checked.is_empty() {
        let clock_problem = matches!(answered.verdict, Verdict::TotpClockProblem { .. });
        return Kinds {
            code: answered.checked.code && !clock_problem,
            ..answered.checked
        };
    }
    match source {
        AnswerSource::Prompt | AnswerSource::AuthtokOnly if answered.shaped.is_empty() => Kinds {
            code: true,
            backup_code: false,
        },
        _ => Kinds::default(),
    }
}

/// The method a refused answer was an attempt at, for log lines (the
/// answer itself is never logged): the kinds it was compared with.
pub fn attempted_method(checked: Kinds) -> &'static str {
    match (checked.code, checked.backup_code) {
        (true, true) => "totp+backup-code",
        (true, false) => "totp",
        (false, true) => "backup-code",
        (false, false) => "none (malformed answer)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    /// The default limits: 5 codes per 15 minutes, 10 backup codes an hour.
    fn limits() -> Limits {
        crate::config::Config::default().limits()
    }

    fn enrollment() -> (Enrollment, Vec<String>) {
        crate::verify::tests::enrollment_with_codes()
    }

    fn with_code_failures(count: u64) -> LoginState {
        let mut state = LoginState::default();
        for t in 0..count {
            state.record_failure(FailureKind::Code, None, NOW - 10 + t);
        }
        state
    }

    fn wrong(e: &Enrollment) -> &'static str {
        if e.totp.as_ref().unwrap().code_at(NOW).as_str() == "000000" {
            "111111"
        } else {
            "000000"
        }
    }

    #[test]
    fn a_wrong_code_counts_against_codes() {
        let (e, _) = enrollment();
        let state = LoginState::default();
        let d = decide(
            &e,
            &state,
            &limits(),
            None,
            wrong(&e),
            AnswerForm::CodeOnly,
            AnswerSource::Prompt,
            Clock::single(NOW),
            1,
        );
        assert_eq!(d.answer.verdict, Verdict::Wrong);
        assert_eq!(
            d.counted,
            Kinds {
                code: true,
                backup_code: false
            }
        );
        assert_eq!(attempted_method(d.answer.checked), "totp");
    }

    #[test]
    fn a_locked_kind_is_refused_unchecked_and_not_counted() {
        let (e, shown) = enrollment();
        let state = with_code_failures(5);
        let right = e.totp.as_ref().unwrap().code_at(NOW);
        let d = decide(
            &e,
            &state,
            &limits(),
            None,
            &right,
            AnswerForm::CodeOnly,
            AnswerSource::Prompt,
            Clock::single(NOW),
            1,
        );
        assert_eq!(
            d.refused_while_locked.map(|(k, _)| k),
            Some(FailureKind::Code)
        );
        assert!(d.counted.is_empty() && d.answer.checked.is_empty());
        // A backup code still works; malformed answers are refused unchecked.
        let d = decide(
            &e,
            &state,
            &limits(),
            None,
            &shown[0],
            AnswerForm::CodeOnly,
            AnswerSource::Prompt,
            Clock::single(NOW),
            1,
        );
        assert!(d.answer.verdict.is_success() && d.refused_while_locked.is_none());
        let d = decide(
            &e,
            &state,
            &limits(),
            None,
            "hello",
            AnswerForm::CodeOnly,
            AnswerSource::Prompt,
            Clock::single(NOW),
            1,
        );
        assert!(d.refused_while_locked.is_some());
    }

    #[test]
    fn what_a_token_counts_depends_on_the_pass_mode() {
        let (e, _) = enrollment();
        let state = LoginState::default();
        // A password alone: nothing guessed under try_first_pass; a
        // malformed answer under use_first_pass, the only answer there is.
        for (source, counted) in [
            (AnswerSource::AuthtokTryFirst, Kinds::default()),
            (
                AnswerSource::AuthtokOnly,
                Kinds {
                    code: true,
                    backup_code: false,
                },
            ),
        ] {
            let d = decide(
                &e,
                &state,
                &limits(),
                None,
                "hunter",
                AnswerForm::PasswordAndCode,
                source,
                Clock::single(NOW),
                1,
            );
            assert_eq!(d.counted, counted, "{source:?}");
        }
        // A password ending in a guess counts under either.
        let guess = format!("hunter{}", wrong(&e));
        let d = decide(
            &e,
            &state,
            &limits(),
            None,
            &guess,
            AnswerForm::PasswordAndCode,
            AnswerSource::AuthtokTryFirst,
            Clock::single(NOW),
            1,
        );
        assert!(d.counted.code);
    }
}
