//! The login flow: parse arguments and configuration, find what the user
//! enrolled, obtain an answer, verify it under the user's state lock, record
//! the outcome, and decide the PAM code. Written against [`Session`],
//! [`System`] and [`AuditLog`] so every branch runs in unit tests.
#![forbid(unsafe_code)]
//!
//! Modules: `login` holds what every part shares; `codes` decides and
//! records codes; `security_keys` runs a FIDO2 key. The flow here calls
//! them; they depend on `login` alone.

mod codes;
mod login;
mod security_keys;

use twofactor_core::attempt::AnswerForm;
use twofactor_core::config::{Config, UnenrolledPolicy, DEFAULT_FORWARD_PASS_PROMPT};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::enrollment::{expand_path, read_with_legacy};
use twofactor_core::login_states::StateView;
use twofactor_core::ratelimit::Locks;
use twofactor_core::state::LoginState;
use twofactor_core::verify::{self, Kinds};
use twofactor_core::Error;

use crate::args::{ModuleArgs, PassMode};
use crate::log::Severity;
use crate::session::{PamCode, Session};
use crate::system::System;

use codes::{AuthtokStep, Source};
pub use login::{decide_code, format_utc, LogContext, Login, Outcome};
use login::{Target, LOW_BACKUP_CODES};
use security_keys::KeyStep;
pub use security_keys::{has_usable_method, PIN_PROMPT, TOUCH_CUE};

/// "Only 2 backup codes left: ...", when a user who has backup codes is
/// running out of them (known before the answer, so said before asking).
fn low_backup_codes_reminder(
    enrollment: &Enrollment,
    state: Option<&LoginState>,
) -> Option<String> {
    if enrollment.backup_codes.is_empty() {
        return None;
    }
    let remaining =
        verify::remaining_backup_codes(enrollment, state.unwrap_or(&LoginState::default()));
    let left = match remaining {
        0 => "No backup codes left".to_string(),
        1 => "Only 1 backup code left".to_string(),
        n if n <= LOW_BACKUP_CODES => format!("Only {n} backup codes left"),
        _ => return None,
    };
    Some(format!(
        "{left}: make new ones with `twofactor backup-codes`."
    ))
}

/// The configuration of this login: the file (through the [`System`]: a
/// missing file at the default path means the secure defaults, a file
/// named with `config=` must exist; see [`twofactor_core::config::load`]),
/// then the module arguments over it.
pub fn load_config(system: &dyn System, args: &ModuleArgs) -> Result<Config, Error> {
    let mut config = system.configuration(&args.config_path(), args.config_is_explicit())?;
    args.apply(&mut config)?;
    Ok(config)
}

impl Login<'_> {
    /// Run the flow and return the PAM code.
    pub fn authenticate(&mut self, session: &mut dyn Session, raw_args: &[String]) -> PamCode {
        let outcome = self.run(session, raw_args);
        decide_code(&outcome)
    }

    fn run(&mut self, session: &mut dyn Session, raw_args: &[String]) -> Outcome {
        let args = match ModuleArgs::parse(raw_args) {
            Ok(args) => args,
            Err(e) => {
                self.log
                    .record(Severity::Error, &format!("refusing all logins: {e}"));
                return Outcome::Misconfigured;
            }
        };
        let config = match load_config(self.system, &args) {
            Ok(config) => config,
            Err(e) => {
                self.log
                    .record(Severity::Error, &format!("refusing all logins: {e}"));
                return Outcome::Misconfigured;
            }
        };
        let Some(user) = session.user() else {
            self.log
                .record(Severity::Error, "could not obtain the user name from PAM");
            return Outcome::NoAnswer;
        };
        let context = LogContext::new(&user, session, self.system, config.grace_period > 0);
        let target = self.resolve(&config, &user);
        if matches!(target, Target::NotEnrolled) && config.unenrolled == UnenrolledPolicy::Ignore {
            self.log.record(
                Severity::Notice,
                &format!(
                    "no second factor enrolled, passing on (unenrolled = ignore): {}",
                    context.fields()
                ),
            );
            return Outcome::Ignored;
        }

        // Said before the prompt: a message after the last prompt reaches
        // no OpenSSH client that runs quietly (-q, LogLevel error), while
        // sshd puts messages before a prompt into the prompt itself.
        let mut low_codes_reminder = None;
        if let Target::Enrolled(account, enrollment) = &target {
            // Only where the module asks for the code alone: with
            // forward_pass or use_first_pass the next module expects the
            // password this module would have split off.
            let asks_code_alone = !args.forward_pass && args.pass_mode != PassMode::UseFirstPass;
            // Read once for the grace period and the lockout notice; both are
            // advisory here, the binding decisions are taken under the lock.
            let peeked = match self.peek_state(&config, account, &context) {
                Ok(peeked) => peeked,
                Err(e) => {
                    self.state_unusable(&e, &context);
                    return Outcome::Unavailable;
                }
            };
            if asks_code_alone && self.within_grace_period(&config, peeked.as_ref(), &context) {
                return Outcome::Verified;
            }
            // A registered security key comes first (security_keys.rs); it is
            // not subject to the code lockouts.
            if let KeyStep::Done(outcome) =
                self.security_key_step(session, &args, &config, account, enrollment, &context)
            {
                return outcome;
            }
            if self.announce_lockout(session, &config, peeked.as_ref(), &context) {
                return Outcome::Refused;
            }
            low_codes_reminder =
                low_backup_codes_reminder(enrollment, peeked.as_ref().map(|v| &v.state));
        }

        // Failures a code in PAM_AUTHTOK counted under try_first_pass: taken
        // back only if the user then proves the second factor at the prompt.
        let mut provisional = Kinds::default();
        if args.pass_mode != PassMode::Prompt {
            match self.try_authtok(session, &args, &config, &target, &context) {
                AuthtokStep::Done(outcome) => return outcome,
                AuthtokStep::Ask { counted } => provisional = counted,
            }
            if args.pass_mode == PassMode::UseFirstPass {
                return self.refuse_without_answer(
                    &target,
                    &context,
                    "no usable code in PAM_AUTHTOK (use_first_pass)",
                );
            }
        }

        let prompt = if args.forward_pass && config.prompt == twofactor_core::config::DEFAULT_PROMPT
        {
            DEFAULT_FORWARD_PASS_PROMPT
        } else {
            config.prompt.as_str()
        };
        if let Some(reminder) = low_codes_reminder.filter(|_| !self.silent) {
            session.info(&reminder);
        }
        let answer = match session.prompt_hidden(prompt) {
            Ok(answer) => answer,
            Err(_) => {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "no answer to the prompt (conversation failed): {}",
                        context.fields()
                    ),
                );
                return Outcome::NoAnswer;
            }
        };
        let form = if args.forward_pass {
            AnswerForm::PasswordAndCode
        } else {
            AnswerForm::CodeOnly
        };
        match &target {
            Target::Enrolled(account, enrollment) => {
                let source = Source::Prompt {
                    withdraw: provisional,
                };
                self.check_and_record(
                    session, &config, account, enrollment, &answer, form, source, &context,
                )
                .map_or(Outcome::Unavailable, |(outcome, _)| outcome)
            }
            _ => self.refuse_without_answer(&target, &context, ""),
        }
    }

    /// The optional grace period: the same origin verified a factor less than
    /// `grace_period` seconds ago. Counts from that verification, not from
    /// logins it let through, so it cannot be extended without a factor.
    fn within_grace_period(
        &mut self,
        config: &Config,
        view: Option<&StateView>,
        context: &LogContext,
    ) -> bool {
        if config.grace_period == 0 {
            return false;
        }
        let Some(origin) = context.origin() else {
            self.log.record(
                Severity::Info,
                &format!(
                    "grace period not applied: no origin to scope it by (no remote host, \
                     no terminal, or the terminal session's leader is not visible from \
                     this PID namespace): {}",
                    context.fields()
                ),
            );
            return false;
        };
        let Some(view) = view else {
            return false;
        };
        if !view
            .state
            .within_grace(origin, view.now, config.grace_period)
        {
            return false;
        }
        self.log.record(
            Severity::Info,
            &format!(
                "second factor not asked: within the grace period of {} s for this origin: {}",
                config.grace_period,
                context.fields()
            ),
        );
        true
    }

    /// Tell a locked-out user before asking. Returns true when every method
    /// is locked (nothing worth asking for). The binding decision is taken
    /// again under the state lock in `check_locked`.
    fn announce_lockout(
        &mut self,
        session: &mut dyn Session,
        config: &Config,
        view: Option<&StateView>,
        context: &LogContext,
    ) -> bool {
        let Some(view) = view else {
            return false;
        };
        let locks = Locks::of_login(&view.state, &config.limits(), context.host(), view.now);
        let backup_codes_refused = view.fallback.is_some() && !config.redis_fallback_backup_codes;
        match (locks.code, locks.backup_code) {
            (Some(code_until), Some(backup_until)) => {
                let until = code_until.min(backup_until);
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: locked out until {} (too many failures), nothing checked: {}",
                        format_utc(until),
                        context.fields()
                    ),
                );
                self.tell(
                    session,
                    &format!(
                        "Too many failed attempts: this account is locked until {}.",
                        format_utc(until)
                    ),
                );
                true
            }
            (Some(code_until), None) => {
                let still = if backup_codes_refused {
                    ""
                } else {
                    " A backup code still works."
                };
                self.tell(
                    session,
                    &format!(
                        "Too many failed attempts: verification codes are locked until {}.{still}",
                        format_utc(code_until)
                    ),
                );
                false
            }
            _ => false,
        }
    }

    fn resolve(&mut self, config: &Config, user: &str) -> Target {
        let account = match self.system.account(user) {
            Ok(Some(account)) => account,
            Ok(None) => return Target::Unknown,
            Err(e) => return Target::Broken(e),
        };
        let path = match expand_path(&config.enrollment_path, &account.name, &account.home) {
            Ok(path) => path,
            Err(e) => return Target::Broken(e),
        };
        // An enrollment written before the default file became JSON is
        // read from its old name until the next change moves it.
        let found = read_with_legacy(&path, |p| self.system.enrollment(&account, p));
        match found {
            Ok(Some(enrollment)) if has_usable_method(config, &enrollment) => {
                Target::Enrolled(account, enrollment)
            }
            Ok(_) => Target::NotEnrolled,
            Err(e) => Target::Broken(e),
        }
    }

    fn refuse_without_answer(
        &mut self,
        target: &Target,
        context: &LogContext,
        detail: &str,
    ) -> Outcome {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        match target {
            Target::Unknown => {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: unknown user{detail}: {}",
                        context.fields()
                    ),
                );
                Outcome::UnknownUser
            }
            Target::NotEnrolled => {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: no second factor enrolled (unenrolled = fail){detail}: {}",
                        context.fields()
                    ),
                );
                Outcome::NotEnrolled
            }
            Target::Broken(e) => {
                self.log.record(
                    Severity::Error,
                    &format!("second factor refused: {e}: {}", context.fields()),
                );
                Outcome::Unavailable
            }
            Target::Enrolled(..) => {
                self.log.record(
                    Severity::Warning,
                    &format!("second factor refused{detail}: {}", context.fields()),
                );
                Outcome::Refused
            }
        }
    }
}
