//! The login flow: parse arguments and configuration, find what the user
//! enrolled, obtain an answer, verify it under the user's state lock, record
//! the outcome, and decide the PAM code. Written against [`Session`],
//! [`System`] and [`AuditLog`] so every branch runs in unit tests.
#![forbid(unsafe_code)]

use std::path::Path;

use twofactor_core::config::{
    Config, UnenrolledPolicy, DEFAULT_FORWARD_PASS_PROMPT, MAX_CONFIG_BYTES,
};
use twofactor_core::enrollment::{expand_path, read_with_legacy, Enrollment};
use twofactor_core::files::{self, FileRequirements};
use twofactor_core::secret::SecretString;
use twofactor_core::state::{FailureKind, LoginState, StateStore};
use twofactor_core::verify::{self, Verdict};
use twofactor_core::Error;
use twofactor_core::{notify, ratelimit};

use crate::args::{ModuleArgs, PassMode};
use crate::fido2_device::SecurityKeys;
use crate::fido2_login::{has_usable_method, KeyStep};
use crate::log::{sanitize, AuditLog, Severity};
use crate::session::{PamCode, Session};
use crate::system::{Account, System};

/// How long a login waits for the notify_command (a lockout or a backup code
/// used): short, since the user is waiting.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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
            } else if twofactor_core::backup::looks_like_backup_code(
                typed,
                &enrollment.backup_codes,
            ) {
                "backup-code"
            } else {
                "none (malformed answer)"
            }
        }
    }
}

/// Who is logging in from where: the identifying fields of log lines, the
/// remote host for per-host rate limits, and the origin for the grace period
/// (`host:NAME` for remote logins, `tty:NAME` for local ones).
pub(crate) struct LogContext {
    pub(crate) fields: String,
    pub(crate) host: Option<String>,
    pub(crate) origin: Option<String>,
}

impl LogContext {
    fn new(user: &str, session: &dyn Session) -> Self {
        let host = session.remote_host().filter(|h| !h.is_empty());
        let tty = session.tty().filter(|t| !t.is_empty());
        let origin = match (&host, &tty) {
            (Some(host), _) => Some(format!("host:{host}")),
            (None, Some(tty)) => Some(format!("tty:{tty}")),
            (None, None) => None,
        };
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
        LogContext {
            fields,
            host,
            origin,
        }
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
    /// Security keys (the FIDO2 helper process in production).
    pub keys: &'a mut dyn SecurityKeys,
}

enum AnswerForm {
    CodeOnly,
    PasswordAndCode,
}

struct Checked {
    verdict: Verdict,
    /// The answer was of a kind that is locked out: nothing was checked.
    refused_while_locked: Option<(FailureKind, u64)>,
    /// This failure reached a limit: the kind is locked until then.
    lockout_started: Option<(FailureKind, u64)>,
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

        if let Target::Enrolled(account, enrollment) = &target {
            // Only where the module asks for the code alone: with
            // forward_pass or use_first_pass the next module expects the
            // password this module would have split off.
            let asks_code_alone = !args.forward_pass && args.pass_mode != PassMode::UseFirstPass;
            // Read once for the grace period and the lockout notice; both are
            // advisory here, the binding decisions are taken under the lock.
            let peeked = StateStore::new(Path::new(&config.state_dir))
                .peek(&account.name, self.system.state_owner())
                .ok();
            if asks_code_alone && self.within_grace_period(&config, peeked.as_ref(), &context) {
                return Outcome::Verified;
            }
            // A registered security key comes first (fido2_login.rs); it is
            // not subject to the code lockouts.
            if let KeyStep::Done(outcome) =
                self.security_key_step(session, &args, &config, account, enrollment, &context)
            {
                return outcome;
            }
            if self.announce_lockout(session, &config, peeked.as_ref(), &context) {
                return Outcome::Refused;
            }
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

    /// The optional grace period: the same origin verified a factor less than
    /// `grace_period` seconds ago. Counts from that verification, not from
    /// logins it let through, so it cannot be extended without a factor.
    fn within_grace_period(
        &mut self,
        config: &Config,
        state: Option<&LoginState>,
        context: &LogContext,
    ) -> bool {
        let (Some(origin), Some(state)) = (context.origin.as_deref(), state) else {
            return false;
        };
        if config.grace_period == 0 {
            return false;
        }
        if !state.within_grace(origin, self.now, config.grace_period) {
            return false;
        }
        self.log.record(
            Severity::Info,
            &format!(
                "second factor not asked: within the grace period of {} s for this origin: {}",
                config.grace_period, context.fields
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
        state: Option<&LoginState>,
        context: &LogContext,
    ) -> bool {
        let Some(state) = state else {
            return false;
        };
        let limits = config.limits();
        let host = context.host.as_deref();
        let code_lock = ratelimit::locked_until(state, &limits, FailureKind::Code, host, self.now);
        let backup_lock =
            ratelimit::locked_until(state, &limits, FailureKind::BackupCode, host, self.now);
        match (code_lock, backup_lock) {
            (Some(code_until), Some(backup_until)) => {
                let until = code_until.min(backup_until);
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: locked out until {} (too many failures), nothing checked: {}",
                        format_utc(until),
                        context.fields
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
                self.tell(
                    session,
                    &format!(
                        "Too many failed attempts: verification codes are locked until {}. A backup code still works.",
                        format_utc(code_until)
                    ),
                );
                false
            }
            _ => false,
        }
    }

    /// Run the administrator's notify_command, after the state is saved and
    /// outside its lock, for at most NOTIFY_TIMEOUT; a failure is logged and
    /// changes nothing about the login.
    fn notify(&mut self, config: &Config, event: &str, user: &str, context: &LogContext) {
        if config.notify_command.is_empty() {
            return;
        }
        if let Err(why) =
            notify::run_notify_command(&config.notify_command, event, user, NOTIFY_TIMEOUT)
        {
            self.log.record(
                Severity::Warning,
                &format!(
                    "notify_command for {event} failed: {}: {}",
                    sanitize(&why),
                    context.fields
                ),
            );
        }
    }

    /// An error message to the user, unless the application asked for silence.
    pub(crate) fn tell(&self, session: &mut dyn Session, text: &str) {
        if !self.silent {
            session.error(text);
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
        let checked = match self.check_locked(
            config,
            account,
            enrollment,
            answer,
            &form,
            count_failure,
            context,
        ) {
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
        if let Some((kind, until)) = checked.refused_while_locked {
            self.log.record(
                Severity::Warning,
                &format!(
                    "second factor refused: {} locked out until {} (too many failures), not checked: {}",
                    kind_name(kind),
                    format_utc(until),
                    context.fields
                ),
            );
            self.tell(session, &locked_message(kind, until));
            return Some(Outcome::Refused);
        }
        if let Some((kind, until)) = checked.lockout_started {
            self.log.record(
                Severity::Warning,
                &format!(
                    "lockout started: {} locked until {} after too many failures: {}",
                    kind_name(kind),
                    format_utc(until),
                    context.fields
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
        if matches!(checked.verdict, Verdict::BackupCode { .. }) {
            self.notify(
                config,
                notify::EVENT_BACKUP_CODE_USED,
                &account.name,
                context,
            );
        }
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

    #[allow(clippy::too_many_arguments)]
    fn check_locked(
        &self,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        answer: &SecretString,
        form: &AnswerForm,
        count_failure: bool,
        context: &LogContext,
    ) -> Result<Checked, Error> {
        let store = StateStore::new(Path::new(&config.state_dir));
        let mut locked = store.lock(&account.name, self.system.state_owner(), Some(account.gid))?;
        let limits = config.limits();
        let host = context.host.as_deref();
        // Decided under the lock, so concurrent guesses cannot all slip in
        // before the failure that reaches the limit is recorded.
        let code_lock =
            ratelimit::locked_until(&locked.state, &limits, FailureKind::Code, host, self.now);
        let backup_lock = ratelimit::locked_until(
            &locked.state,
            &limits,
            FailureKind::BackupCode,
            host,
            self.now,
        );
        let attempted = attempted_kind(enrollment, answer, form);
        let lock_of_attempt = match attempted {
            Some(FailureKind::Code) => code_lock,
            Some(FailureKind::BackupCode) => backup_lock,
            // Password and code: refused unchecked only when no enrolled
            // method is open.
            None => {
                let totp_open = enrollment.totp.is_some() && code_lock.is_none();
                let backup_open = !enrollment.backup_codes.is_empty() && backup_lock.is_none();
                if totp_open || backup_open {
                    None
                } else {
                    [code_lock, backup_lock].into_iter().flatten().min()
                }
            }
        };
        if let Some(until) = lock_of_attempt {
            return Ok(Checked {
                verdict: Verdict::Wrong,
                refused_while_locked: Some((attempted.unwrap_or(FailureKind::Code), until)),
                lockout_started: None,
                password_len: None,
                remaining_backup_codes: 0,
            });
        }
        // Locked methods are left out of the enrollment, so an answer that
        // could be either (password + code) is never checked against them.
        let mut usable = enrollment.clone();
        if code_lock.is_some() {
            usable.totp = None;
        }
        if backup_lock.is_some() {
            usable.backup_codes.clear();
        }
        let (verdict, password_len) = match form {
            AnswerForm::CodeOnly => (
                verify::check_code(
                    &usable,
                    &locked.state,
                    answer.expose(),
                    self.now,
                    config.window,
                ),
                None,
            ),
            AnswerForm::PasswordAndCode => {
                let (verdict, split) = verify::check_password_and_code(
                    &usable,
                    &locked.state,
                    answer.expose(),
                    self.now,
                    config.window,
                );
                (verdict, Some(split))
            }
        };
        let mut remaining_backup_codes = 0;
        let mut lockout_started = None;
        if verdict.is_success() {
            remaining_backup_codes =
                verify::record_success(&verdict, enrollment, &mut locked.state, self.now);
            if config.grace_period > 0 {
                if let Some(origin) = context.origin.as_deref() {
                    locked.state.record_grace(origin, self.now);
                }
            }
            // The code counts as used only once this is on disk: if saving
            // fails the login fails too, so no code can be used twice.
            locked.save()?;
        } else if count_failure {
            let kind = failure_kind(&verdict, attempted);
            locked
                .state
                .forget_failures_before(self.now, limits.longest_window());
            locked.state.record_failure(kind, host, self.now);
            lockout_started = ratelimit::locked_until(&locked.state, &limits, kind, host, self.now)
                .map(|until| (kind, until));
            locked.save()?;
        }
        Ok(Checked {
            verdict,
            refused_while_locked: None,
            lockout_started,
            password_len,
            remaining_backup_codes,
        })
    }
}

/// What an answer is an attempt at, by its shape: `None` for password and
/// code together, where it cannot be told.
fn attempted_kind(
    enrollment: &Enrollment,
    answer: &SecretString,
    form: &AnswerForm,
) -> Option<FailureKind> {
    match form {
        AnswerForm::PasswordAndCode => None,
        AnswerForm::CodeOnly => {
            let typed = answer.expose().trim();
            let totp_shaped = enrollment
                .totp
                .as_ref()
                .is_some_and(|t| t.looks_like_code(typed));
            if !totp_shaped
                && twofactor_core::backup::looks_like_backup_code(typed, &enrollment.backup_codes)
            {
                Some(FailureKind::BackupCode)
            } else {
                Some(FailureKind::Code)
            }
        }
    }
}

/// The budget a failure counts against.
fn failure_kind(verdict: &Verdict, attempted: Option<FailureKind>) -> FailureKind {
    match (verdict, attempted) {
        (Verdict::SpentBackupCode, _) => FailureKind::BackupCode,
        (Verdict::ReplayedTotp, _) => FailureKind::Code,
        (_, Some(kind)) => kind,
        (_, None) => FailureKind::Code,
    }
}

/// What a user is told when a kind of code is locked.
fn locked_message(kind: FailureKind, until: u64) -> String {
    format!(
        "Too many failed attempts: {} locked until {}.",
        kind_name(kind),
        format_utc(until)
    )
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Code => "verification codes",
        FailureKind::BackupCode => "backup codes",
    }
}

/// `2026-11-28 14:05:09 UTC`: lockout ends are told in UTC, the one zone
/// the module can name without reading the system's time zone files.
pub fn format_utc(unix_time: u64) -> String {
    twofactor_core::timefmt::utc(unix_time)
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_800_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
