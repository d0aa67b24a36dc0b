//! Codes: a TOTP or backup code typed at the prompt or carried in
//! PAM_AUTHTOK, decided under the user's state lock by
//! [`twofactor_core::attempt::decide`] and recorded.
#![forbid(unsafe_code)]

use twofactor_core::attempt::{self, AnswerForm, AnswerSource, Clock};
use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::notify;
use twofactor_core::ratelimit;
use twofactor_core::secret::SecretString;
use twofactor_core::shared_state::SharedStateError;
use twofactor_core::state::FailureKind;
use twofactor_core::verify::{self, Kinds, Verdict};
use twofactor_core::Error;

use crate::args::{ModuleArgs, PassMode};
use crate::log::Severity;
use crate::session::Session;
use crate::system::Account;

use super::login::{
    format_utc, kind_name, locked_message, LogContext, Login, Outcome, Target, LOW_BACKUP_CODES,
};

/// Where an answer came from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Typed at this module's prompt. A success takes back the failures
    /// `withdraw` that PAM_AUTHTOK counted in this same login under
    /// `try_first_pass` (a password that ends in digits, not a guess).
    Prompt { withdraw: Kinds },
    /// PAM_AUTHTOK, set by an earlier module.
    Authtok { try_first: bool },
}

impl Source {
    fn answer_source(self) -> AnswerSource {
        match self {
            Source::Prompt { .. } => AnswerSource::Prompt,
            Source::Authtok { try_first: true } => AnswerSource::AuthtokTryFirst,
            Source::Authtok { try_first: false } => AnswerSource::AuthtokOnly,
        }
    }
}

/// What PAM_AUTHTOK settled.
pub enum AuthtokStep {
    /// The login is decided.
    Done(Outcome),
    /// Ask the user; `counted` failures stand unless they then succeed.
    Ask { counted: Kinds },
}

struct Checked {
    answer: verify::Checked,
    /// Kinds a refusal counted a failure against.
    counted: Kinds,
    /// The answer was of a kind that is locked out: nothing was checked.
    refused_while_locked: Option<(FailureKind, u64)>,
    /// This failure reached a limit: the kind is locked until then.
    lockout_started: Option<(FailureKind, u64)>,
    remaining_backup_codes: usize,
    /// The shared state was unreachable and this host's stood in: why.
    fallback: Option<SharedStateError>,
}

impl Login<'_> {
    /// PAM_AUTHTOK from an earlier module, as password and code.
    ///
    /// Every code it holds that is compared counts as a failure when wrong,
    /// whichever pass mode brought it: under `try_first_pass` the failure is
    /// recorded before the user is asked, so cancelling the prompt cannot
    /// erase it. A user whose password merely ends in digits loses nothing:
    /// the failure is taken back when they then give a right code (see
    /// [`Source::Prompt`]); only when they do not does it stand.
    pub fn try_authtok(
        &mut self,
        session: &mut dyn Session,
        args: &ModuleArgs,
        config: &Config,
        target: &Target,
        context: &LogContext,
    ) -> AuthtokStep {
        let nothing = AuthtokStep::Ask {
            counted: Kinds::default(),
        };
        let Target::Enrolled(account, enrollment) = target else {
            return nothing;
        };
        let Some(token) = session.authtok().filter(|t| !t.expose().is_empty()) else {
            return nothing;
        };
        let try_first = args.pass_mode == PassMode::TryFirstPass;
        let source = Source::Authtok { try_first };
        match self.check_and_record(
            session,
            config,
            account,
            enrollment,
            &token,
            AnswerForm::PasswordAndCode,
            source,
            context,
        ) {
            Some((Outcome::Verified, _)) => AuthtokStep::Done(Outcome::Verified),
            Some((_, counted)) if try_first => AuthtokStep::Ask { counted },
            Some((outcome, _)) => AuthtokStep::Done(outcome),
            None => AuthtokStep::Done(Outcome::Unavailable),
        }
    }

    /// Verify `answer` under the user's state lock and record the result.
    /// `None` when the state could not be loaded or saved (already logged);
    /// otherwise the outcome and the kinds a refusal counted against.
    #[allow(clippy::too_many_arguments)]
    pub fn check_and_record(
        &mut self,
        session: &mut dyn Session,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        answer: &SecretString,
        form: AnswerForm,
        source: Source,
        context: &LogContext,
    ) -> Option<(Outcome, Kinds)> {
        let checked =
            match self.check_locked(config, account, enrollment, answer, &form, source, context) {
                Ok(checked) => checked,
                Err(e) => {
                    self.state_unusable(&e, context);
                    return None;
                }
            };
        if let Some(why) = &checked.fallback {
            self.log_fallback(config, why, context);
        }
        let from = match source {
            Source::Prompt { .. } => "",
            Source::Authtok { try_first: true } => {
                " (code in PAM_AUTHTOK, try_first_pass: asking next)"
            }
            Source::Authtok { try_first: false } => " (code in PAM_AUTHTOK)",
        };
        if let Some((kind, until)) = checked.refused_while_locked {
            self.log.record(
                Severity::Warning,
                &format!(
                    "second factor refused: {} locked out until {} (too many failures), not checked{from}: {}",
                    kind_name(kind),
                    format_utc(until),
                    context.fields()
                ),
            );
            // Under try_first_pass the user is asked next, and was told of
            // the lockout before.
            if !matches!(source, Source::Authtok { try_first: true }) {
                self.tell(session, &locked_message(kind, until));
            }
            return Some((Outcome::Refused, Kinds::default()));
        }
        if let Some((kind, until)) = checked.lockout_started {
            self.log.record(
                Severity::Warning,
                &format!(
                    "lockout started: {} locked until {} after too many failures: {}",
                    kind_name(kind),
                    format_utc(until),
                    context.fields()
                ),
            );
            self.tell(session, &locked_message(kind, until));
            self.notify(
                config,
                notify::EVENT_LOCKOUT_STARTED,
                &account.name,
                context,
            );
        }
        let Some(method) = checked.answer.verdict.method() else {
            if let Verdict::TotpClockProblem { seconds_ahead } = checked.answer.verdict {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: clock problem: a TOTP code of a time {seconds_ahead} s \
                         after this host's clock was accepted before (the clock is behind, or was \
                         ahead then); not counted as a failure{from}: {}",
                        context.fields()
                    ),
                );
            } else if !checked.counted.is_empty() {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: {}{from}: {} method={}",
                        checked.answer.verdict.reason(),
                        context.fields(),
                        attempt::attempted_method(checked.answer.checked)
                    ),
                );
            }
            // Under try_first_pass, PAM_AUTHTOK holding no code is the usual
            // case (a password alone): nothing was guessed, nothing is logged.
            return Some((Outcome::Refused, checked.counted));
        };
        if let Some(password_len) = checked.answer.password_len {
            let password = &answer.expose()[..password_len];
            let password = (!password.is_empty()).then_some(password);
            if session.set_authtok(password).is_err() {
                self.log.record(
                    Severity::Error,
                    &format!(
                        "could not pass the password on as PAM_AUTHTOK: {}",
                        context.fields()
                    ),
                );
            }
        }
        self.log.record(
            Severity::Info,
            &format!(
                "second factor accepted: {} method={}",
                context.fields(),
                method.name()
            ),
        );
        if matches!(checked.answer.verdict, Verdict::BackupCode { .. }) {
            self.notify(
                config,
                notify::EVENT_BACKUP_CODE_USED,
                &account.name,
                context,
            );
        }
        if matches!(checked.answer.verdict, Verdict::BackupCode { .. }) && !self.silent {
            let remaining = checked.remaining_backup_codes;
            let mut message = format!(
                "Backup code accepted. {remaining} backup code{} left.",
                if remaining == 1 { "" } else { "s" }
            );
            if remaining <= LOW_BACKUP_CODES {
                message.push_str(" Make new ones with `twofactor backup-codes`.");
            }
            session.info(&message);
        }
        Some((Outcome::Verified, Kinds::default()))
    }

    #[allow(clippy::too_many_arguments)]
    fn check_locked(
        &self,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        answer: &SecretString,
        form: &AnswerForm,
        source: Source,
        context: &LogContext,
    ) -> Result<Checked, Error> {
        let mut locked = self.lock_state(config, account)?;
        // Without the shared state, backup codes are refused unless the
        // administrator accepts that one spent elsewhere meanwhile works.
        let without_backup_codes;
        let enrollment = if locked.fallback.is_some() && !config.redis_fallback_backup_codes {
            without_backup_codes = Enrollment {
                backup_codes: Vec::new(),
                ..enrollment.clone()
            };
            &without_backup_codes
        } else {
            enrollment
        };
        let fallback = locked.fallback.clone();
        let clock = Clock {
            codes: self.now,
            windows: locked.now,
        };
        let limits = config.limits();
        let host = context.host();
        // Decided under the lock, so concurrent guesses cannot all slip in
        // before the failure that reaches the limit is recorded.
        let decision = attempt::decide(
            enrollment,
            &locked.state,
            &limits,
            host,
            answer.expose(),
            *form,
            source.answer_source(),
            clock,
            config.window,
        );
        let (answered, counted) = (decision.answer, decision.counted);
        if decision.refused_while_locked.is_some() {
            return Ok(Checked {
                answer: answered,
                counted,
                refused_while_locked: decision.refused_while_locked,
                lockout_started: None,
                remaining_backup_codes: 0,
                fallback,
            });
        }
        let mut remaining_backup_codes = 0;
        let mut lockout_started = None;
        if answered.verdict.is_success() {
            remaining_backup_codes = verify::record_success(
                &answered.verdict,
                enrollment,
                &mut locked.state,
                clock.windows,
            );
            if let Source::Prompt { withdraw } = source {
                for kind in withdraw.iter() {
                    ratelimit::withdraw_failure(&mut locked.state, kind, host, clock.windows);
                }
            }
            if config.grace_period > 0 {
                if let Some(origin) = context.origin() {
                    locked.state.record_grace(origin, clock.windows);
                }
            }
            // The code counts as used only once this is on disk: if saving
            // fails the login fails too, so no code can be used twice.
            locked.save()?;
        } else if !counted.is_empty() {
            for kind in counted.iter() {
                let until = ratelimit::record_failure(
                    &mut locked.state,
                    &limits,
                    kind,
                    host,
                    clock.windows,
                );
                if let (Some(until), None) = (until, lockout_started) {
                    lockout_started = Some((kind, until));
                }
            }
            locked.save()?;
        }
        Ok(Checked {
            answer: answered,
            counted,
            refused_while_locked: None,
            lockout_started,
            remaining_backup_codes,
            fallback,
        })
    }
}
