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
use twofactor_core::ratelimit::{self, Locks};
use twofactor_core::secret::SecretString;
use twofactor_core::state::{FailureKind, LockedState, LoginState, StateStore};
use twofactor_core::verify::{self, Kinds, Verdict};
use twofactor_core::Error;
use twofactor_core::{notify, origin};

use crate::args::{ModuleArgs, PassMode};
use crate::fido2_device::SecurityKeys;
use crate::fido2_login::{has_usable_method, KeyStep};
use crate::log::{sanitize, AuditLog, Severity};
use crate::session::{PamCode, Session};
use crate::system::{Account, System};

/// How long a login waits for the notify_command (a lockout or a backup code
/// used): short, since the user is waiting.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// At or below this many backup codes the user is told to make new ones.
const LOW_BACKUP_CODES: usize = 3;

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

/// Which method a refused answer was an attempt at, for the log line (the
/// answer itself is never logged): the kinds it was compared against.
fn attempted_method(checked: Kinds) -> &'static str {
    match (checked.code, checked.backup_code) {
        (true, true) => "totp+backup-code",
        (true, false) => "totp",
        (false, true) => "backup-code",
        (false, false) => "none (malformed answer)",
    }
}

/// Who is logging in from where: the identifying fields of log lines, the
/// remote host for per-host rate limits (bounded: [`origin::bounded`]), and
/// the origin for the grace period, scoped by service and, for local
/// logins, by terminal session ([`origin::grace_origin`]).
pub(crate) struct LogContext {
    pub(crate) fields: String,
    pub(crate) host: Option<String>,
    pub(crate) origin: Option<String>,
}

impl LogContext {
    fn new(user: &str, session: &dyn Session, system: &dyn System) -> Self {
        let raw_host = session.remote_host().filter(|h| !h.is_empty());
        let tty = session.tty().filter(|t| !t.is_empty());
        let terminal_session = if raw_host.is_none() && tty.is_some() {
            system.terminal_session()
        } else {
            None
        };
        let origin = origin::grace_origin(
            session.service().as_deref().unwrap_or("?"),
            raw_host.as_deref(),
            tty.as_deref(),
            terminal_session,
        );
        let host = raw_host.as_deref().map(origin::bounded);
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

/// Where an answer came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Typed at this module's prompt. A success takes back the failures
    /// `withdraw` that PAM_AUTHTOK counted in this same login under
    /// `try_first_pass` (a password that ends in digits, not a guess).
    Prompt { withdraw: Kinds },
    /// PAM_AUTHTOK, set by an earlier module.
    Authtok { try_first: bool },
}

/// What PAM_AUTHTOK settled.
enum AuthtokStep {
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
        let context = LogContext::new(&user, session, self.system);
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
            let peeked = StateStore::new(Path::new(&config.state_dir))
                .peek(&account.state_name, self.system.state_owner())
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
            low_codes_reminder = low_backup_codes_reminder(enrollment, peeked.as_ref());
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
        let locks = Locks::of_login(state, &config.limits(), context.host.as_deref(), self.now);
        match (locks.code, locks.backup_code) {
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

    /// PAM_AUTHTOK from an earlier module, as password and code.
    ///
    /// Every code it holds that is compared counts as a failure when wrong,
    /// whichever pass mode brought it: under `try_first_pass` the failure is
    /// recorded before the user is asked, so cancelling the prompt cannot
    /// erase it. A user whose password merely ends in digits loses nothing:
    /// the failure is taken back when they then give a right code (see
    /// [`Source::Prompt`]); only when they do not does it stand.
    fn try_authtok(
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

    /// Lock and load the user's state under the name every alias of the
    /// account shares, taking in what was kept under the account's other
    /// names before (this login's name always; the local aliases once).
    pub(crate) fn lock_state(
        &self,
        config: &Config,
        account: &Account,
    ) -> Result<LockedState, Error> {
        let store = StateStore::new(Path::new(&config.state_dir));
        let owner = self.system.state_owner();
        let mut locked = store.lock(&account.state_name, owner, Some(account.gid))?;
        let mut others = vec![account.name.clone()];
        if !locked.state.aliases_merged {
            locked.state.aliases_merged = true;
            others.extend(self.system.local_names_of_uid(account.uid));
        }
        for other in others.iter().filter(|name| **name != account.state_name) {
            store.absorb_alias(&mut locked, other, owner)?;
        }
        Ok(locked)
    }

    /// Verify `answer` under the user's state lock and record the result.
    /// `None` when the state could not be loaded or saved (already logged);
    /// otherwise the outcome and the kinds a refusal counted against.
    #[allow(clippy::too_many_arguments)]
    fn check_and_record(
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
                    context.fields
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
        let Some(method) = checked.answer.verdict.method() else {
            if !checked.counted.is_empty() {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: {}{from}: {} method={}",
                        checked.answer.verdict.reason(),
                        context.fields,
                        attempted_method(checked.answer.checked)
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
        let limits = config.limits();
        let host = context.host.as_deref();
        // Decided under the lock, so concurrent guesses cannot all slip in
        // before the failure that reaches the limit is recorded; a kind that
        // is locked is never compared.
        let locks = Locks::of_login(&locked.state, &limits, host, self.now);
        let open = Kinds::open_in(&locks);
        let answered = match form {
            AnswerForm::CodeOnly => verify::check_code(
                enrollment,
                &locked.state,
                answer.expose(),
                self.now,
                config.window,
                open,
            ),
            AnswerForm::PasswordAndCode => verify::check_password_and_code(
                enrollment,
                &locked.state,
                answer.expose(),
                self.now,
                config.window,
                open,
            ),
        };
        let counted = counted_kinds(&answered, source);
        if answered.checked.is_empty() {
            // Shaped only like kinds that are locked (or, typed at the
            // prompt, shaped like nothing while codes are locked).
            let shaped = if answered.shaped.is_empty() {
                counted
            } else {
                answered.shaped
            };
            let lock = shaped
                .iter()
                .filter_map(|kind| locks.of(kind).map(|until| (kind, until)))
                .min_by_key(|&(_, until)| until);
            if let Some(lock) = lock {
                return Ok(Checked {
                    answer: answered,
                    counted: Kinds::default(),
                    refused_while_locked: Some(lock),
                    lockout_started: None,
                    remaining_backup_codes: 0,
                });
            }
        }
        let mut remaining_backup_codes = 0;
        let mut lockout_started = None;
        if answered.verdict.is_success() {
            remaining_backup_codes =
                verify::record_success(&answered.verdict, enrollment, &mut locked.state, self.now);
            if let Source::Prompt { withdraw } = source {
                for kind in withdraw.iter() {
                    ratelimit::withdraw_failure(&mut locked.state, kind, host, self.now);
                }
            }
            if config.grace_period > 0 {
                if let Some(origin) = context.origin.as_deref() {
                    locked.state.record_grace(origin, self.now);
                }
            }
            // The code counts as used only once this is on disk: if saving
            // fails the login fails too, so no code can be used twice.
            locked.save()?;
        } else if !counted.is_empty() {
            for kind in counted.iter() {
                let until =
                    ratelimit::record_failure(&mut locked.state, &limits, kind, host, self.now);
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
        })
    }
}

/// What a refused answer counts against: every kind it was compared with;
/// an answer that has the shape of no code counts against codes (so
/// malformed answers are limited too), except PAM_AUTHTOK under
/// `try_first_pass`, which is usually a password alone: nothing was
/// guessed, and the user is asked next.
fn counted_kinds(answered: &verify::Checked, source: Source) -> Kinds {
    if answered.verdict.is_success() {
        return Kinds::default();
    }
    if !answered.checked.is_empty() {
        return answered.checked;
    }
    match source {
        Source::Prompt { .. } | Source::Authtok { try_first: false }
            if answered.shaped.is_empty() =>
        {
            Kinds {
                code: true,
                backup_code: false,
            }
        }
        _ => Kinds::default(),
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
