//! The login flow: parse arguments and configuration, find what the user
//! enrolled, obtain an answer, verify it under the user's state lock, record
//! the outcome, and decide the PAM code. Written against [`Session`],
//! [`System`] and [`AuditLog`] so every branch runs in unit tests.
#![forbid(unsafe_code)]

use std::path::Path;

use twofactor_core::config::{
    Config, UnenrolledPolicy, DEFAULT_FORWARD_PASS_PROMPT, MAX_CONFIG_BYTES,
};
use twofactor_core::enrollment::{expand_path, Enrollment};
use twofactor_core::files::{self, FileRequirements};
use twofactor_core::secret::SecretString;
use twofactor_core::state::StateStore;
use twofactor_core::verify::{self, Verdict};
use twofactor_core::Error;

use crate::args::{ModuleArgs, PassMode};
use crate::log::{sanitize, AuditLog, Severity};
use crate::session::{PamCode, Session};
use crate::system::{Account, System};

/// How a login ended; [`decide_code`] maps it to the PAM return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A factor was verified.
    Verified,
    /// The answer was wrong, replayed or spent.
    Refused,
    /// The user has no factor and the policy is to fail.
    NotEnrolled,
    /// No such user.
    UnknownUser,
    /// The user is not enrolled and the policy is `ignore`.
    Ignored,
    /// The enrollment or the state could not be used (fail closed).
    Unavailable,
    /// Bad module arguments or configuration (fail closed).
    Misconfigured,
    /// The conversation failed or gave no answer.
    NoAnswer,
}

/// The one place where outcomes become PAM codes. Only `Verified` is success.
pub fn decide_code(outcome: &Outcome) -> PamCode {
    match outcome {
        Outcome::Verified => PamCode::Success,
        Outcome::Refused | Outcome::NotEnrolled => PamCode::AuthError,
        Outcome::UnknownUser => PamCode::UserUnknown,
        Outcome::Ignored => PamCode::Ignore,
        Outcome::Unavailable => PamCode::AuthInfoUnavailable,
        Outcome::Misconfigured => PamCode::ServiceError,
        Outcome::NoAnswer => PamCode::ConversationError,
    }
}

/// Read the configuration: a missing file at the default path means the
/// (secure) defaults; a file named with `config=` must exist. Either way it
/// must be root-owned and not writable by group or others.
pub fn load_config(args: &ModuleArgs) -> Result<Config, Error> {
    let path = args.config_path();
    let mut config =
        match files::read_checked_text(&path, &FileRequirements::root_policy(MAX_CONFIG_BYTES)) {
            Ok(text) => Config::parse(&text, &path.display().to_string())?,
            Err(e) if e.is_missing_file() && !args.config_is_explicit() => Config::default(),
            Err(e) => return Err(e),
        };
    args.apply(&mut config)?;
    Ok(config)
}

/// What the flow found out about the user before asking anything.
enum Target {
    Enrolled(Account, Enrollment),
    NotEnrolled,
    Unknown,
    Broken(Error),
}

/// Which method a refused answer was an attempt at, judged by its shape,
/// for the log line (the answer itself is never logged).
fn attempted_method(
    verdict: &Verdict,
    enrollment: &Enrollment,
    answer: &SecretString,
    form: &AnswerForm,
) -> &'static str {
    match (verdict, form) {
        (Verdict::ReplayedTotp, _) => "totp",
        (Verdict::SpentBackupCode, _) => "backup-code",
        (_, AnswerForm::PasswordAndCode) => "unknown",
        (_, AnswerForm::CodeOnly) => {
            let typed = answer.expose().trim();
            if enrollment
                .totp
                .as_ref()
                .is_some_and(|t| t.looks_like_code(typed))
            {
                "totp"
            } else if twofactor_core::backup::normalize(typed).is_some() {
                "backup-code"
            } else {
                "none (malformed answer)"
            }
        }
    }
}

/// Identifying fields of a log line.
struct LogContext {
    fields: String,
}

impl LogContext {
    fn new(user: &str, session: &dyn Session) -> Self {
        let mut fields = format!("user={}", sanitize(user));
        if let Some(rhost) = session.remote_host().filter(|h| !h.is_empty()) {
            fields.push_str(&format!(" rhost={}", sanitize(&rhost)));
        }
        if let Some(ruser) = session.remote_user().filter(|u| !u.is_empty()) {
            fields.push_str(&format!(" ruser={}", sanitize(&ruser)));
        }
        if let Some(tty) = session.tty().filter(|t| !t.is_empty()) {
            fields.push_str(&format!(" tty={}", sanitize(&tty)));
        }
        LogContext { fields }
    }
}

/// Everything one call of `pam_sm_authenticate` needs besides the session.
pub struct Login<'a> {
    /// Accounts and files.
    pub system: &'a dyn System,
    /// Where audit lines go.
    pub log: &'a mut dyn AuditLog,
    /// Unix time of this login.
    pub now: u64,
    /// PAM_SILENT: no informational messages.
    pub silent: bool,
}

enum AnswerForm {
    CodeOnly,
    PasswordAndCode,
}

struct Checked {
    verdict: Verdict,
    password_len: Option<usize>,
    remaining_backup_codes: usize,
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
        let config = match load_config(&args) {
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
        let context = LogContext::new(&user, session);
        let target = self.resolve(&config, &user);
        if matches!(target, Target::NotEnrolled) && config.unenrolled == UnenrolledPolicy::Ignore {
            self.log.record(
                Severity::Notice,
                &format!(
                    "no second factor enrolled, passing on (unenrolled = ignore): {}",
                    context.fields
                ),
            );
            return Outcome::Ignored;
        }

        if args.pass_mode != PassMode::Prompt {
            if let Some(outcome) = self.try_authtok(session, &args, &config, &target, &context) {
                return outcome;
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
        let answer = match session.prompt_hidden(prompt) {
            Ok(answer) => answer,
            Err(_) => {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "no answer to the prompt (conversation failed): {}",
                        context.fields
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
            Target::Enrolled(account, enrollment) => self
                .check_and_record(
                    session, &config, account, enrollment, &answer, form, true, &context,
                )
                .unwrap_or(Outcome::Unavailable),
            _ => self.refuse_without_answer(&target, &context, ""),
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
        match self.system.enrollment(&account, &path) {
            Ok(Some(enrollment)) if enrollment.has_any_method() => {
                Target::Enrolled(account, enrollment)
            }
            Ok(_) => Target::NotEnrolled,
            Err(e) => Target::Broken(e),
        }
    }

    /// PAM_AUTHTOK from an earlier module, as password and code. `None` means
    /// "not settled, ask" (try_first_pass) or "nothing there" (use_first_pass).
    fn try_authtok(
        &mut self,
        session: &mut dyn Session,
        args: &ModuleArgs,
        config: &Config,
        target: &Target,
        context: &LogContext,
    ) -> Option<Outcome> {
        let Target::Enrolled(account, enrollment) = target else {
            return None;
        };
        let token = session.authtok().filter(|t| !t.expose().is_empty())?;
        // Under try_first_pass the token is usually just a password: a
        // mismatch is not an attempt at a code, so it is neither logged nor
        // counted, and the user is asked.
        let count_failure = args.pass_mode == PassMode::UseFirstPass;
        match self.check_and_record(
            session,
            config,
            account,
            enrollment,
            &token,
            AnswerForm::PasswordAndCode,
            count_failure,
            context,
        ) {
            Some(Outcome::Verified) => Some(Outcome::Verified),
            Some(Outcome::Refused) if count_failure => Some(Outcome::Refused),
            None => Some(Outcome::Unavailable),
            Some(_) => None,
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
                        context.fields
                    ),
                );
                Outcome::UnknownUser
            }
            Target::NotEnrolled => {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: no second factor enrolled (unenrolled = fail){detail}: {}",
                        context.fields
                    ),
                );
                Outcome::NotEnrolled
            }
            Target::Broken(e) => {
                self.log.record(
                    Severity::Error,
                    &format!("second factor refused: {e}: {}", context.fields),
                );
                Outcome::Unavailable
            }
            Target::Enrolled(..) => {
                self.log.record(
                    Severity::Warning,
                    &format!("second factor refused{detail}: {}", context.fields),
                );
                Outcome::Refused
            }
        }
    }

    /// Verify `answer` under the user's state lock and record the result.
    /// `None` when the state could not be loaded or saved (already logged).
    #[allow(clippy::too_many_arguments)]
    fn check_and_record(
        &mut self,
        session: &mut dyn Session,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        answer: &SecretString,
        form: AnswerForm,
        count_failure: bool,
        context: &LogContext,
    ) -> Option<Outcome> {
        let checked =
            match self.check_locked(config, account, enrollment, answer, &form, count_failure) {
                Ok(checked) => checked,
                Err(e) => {
                    self.log.record(
                        Severity::Error,
                        &format!(
                            "second factor refused: login state unusable: {e}: {}",
                            context.fields
                        ),
                    );
                    return None;
                }
            };
        let Some(method) = checked.verdict.method() else {
            if count_failure {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: {}: {} method={}",
                        checked.verdict.reason(),
                        context.fields,
                        attempted_method(&checked.verdict, enrollment, answer, &form)
                    ),
                );
            }
            return Some(Outcome::Refused);
        };
        if let Some(password_len) = checked.password_len {
            let password = &answer.expose()[..password_len];
            let password = (!password.is_empty()).then_some(password);
            if session.set_authtok(password).is_err() {
                self.log.record(
                    Severity::Error,
                    &format!(
                        "could not pass the password on as PAM_AUTHTOK: {}",
                        context.fields
                    ),
                );
            }
        }
        self.log.record(
            Severity::Info,
            &format!(
                "second factor accepted: {} method={}",
                context.fields,
                method.name()
            ),
        );
        if matches!(checked.verdict, Verdict::BackupCode { .. }) && !self.silent {
            let remaining = checked.remaining_backup_codes;
            let mut message = format!(
                "Backup code accepted. {remaining} backup code{} left.",
                if remaining == 1 { "" } else { "s" }
            );
            if remaining <= 3 {
                message.push_str(" Make new ones with `twofactor backup-codes`.");
            }
            session.info(&message);
        }
        Some(Outcome::Verified)
    }

    fn check_locked(
        &self,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        answer: &SecretString,
        form: &AnswerForm,
        count_failure: bool,
    ) -> Result<Checked, Error> {
        let store = StateStore::new(Path::new(&config.state_dir));
        let mut locked = store.lock(&account.name, self.system.state_owner(), Some(account.gid))?;
        let (verdict, password_len) = match form {
            AnswerForm::CodeOnly => (
                verify::check_code(
                    enrollment,
                    &locked.state,
                    answer.expose(),
                    self.now,
                    config.window,
                ),
                None,
            ),
            AnswerForm::PasswordAndCode => {
                let (verdict, split) = verify::check_password_and_code(
                    enrollment,
                    &locked.state,
                    answer.expose(),
                    self.now,
                    config.window,
                );
                (verdict, Some(split))
            }
        };
        let mut remaining_backup_codes = 0;
        if verdict.is_success() {
            remaining_backup_codes =
                verify::record_success(&verdict, enrollment, &mut locked.state, self.now);
            // The code counts as used only once this is on disk: if saving
            // fails the login fails too, so no code can be used twice.
            locked.save()?;
        } else if count_failure {
            locked
                .state
                .record_failure(twofactor_core::state::FailureKind::Code, None, self.now);
            locked.save()?;
        }
        Ok(Checked {
            verdict,
            password_len,
            remaining_backup_codes,
        })
    }
}
