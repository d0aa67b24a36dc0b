//! What every part of a login shares: the [`Login`] itself, who logs in
//! from where ([`LogContext`]), how it ended ([`Outcome`]), and the helpers
//! the code and security-key steps use alike (telling the user, running
//! `notify_command`, locking the state). The flow (`auth/mod.rs`) and the
//! steps (`codes.rs`, `security_keys.rs`) depend on this module; it depends
//! on none of them.
#![forbid(unsafe_code)]

use std::cell::OnceCell;

use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::login_states::{HeldState, LoginStates, StateView};
use twofactor_core::notify;
use twofactor_core::origin;
use twofactor_core::shared_state::SharedStateError;
use twofactor_core::state::FailureKind;
use twofactor_core::Error;

use crate::fido2_device::SecurityKeys;
use crate::log::{sanitize, AuditLog, Severity};
use crate::session::{PamCode, Session};
use crate::system::{Account, System};

/// How long a login waits for the notify_command (a lockout or a backup code
/// used): short, since the user is waiting.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// At or below this many backup codes the user is told to make new ones.
pub const LOW_BACKUP_CODES: usize = 3;

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

/// What the flow found out about the user before asking anything.
pub enum Target {
    Enrolled(Account, Enrollment),
    NotEnrolled,
    Unknown,
    Broken(Error),
}

/// Who is logging in from where: the identifying fields of log lines, the
/// remote host for per-host rate limits (bounded: [`origin::bounded`]), and
/// the origin for the grace period, scoped by service and, for local
/// logins, by terminal session ([`origin::grace_origin`]).
pub struct LogContext {
    fields: String,
    host: Option<String>,
    origin: Option<String>,
}

impl LogContext {
    /// `grace`: a grace period is configured, so the origin is needed (for
    /// local logins it costs a look at the terminal session's leader).
    pub fn new(user: &str, session: &dyn Session, system: &dyn System, grace: bool) -> Self {
        let raw_host = session.remote_host().filter(|h| !h.is_empty());
        let tty = session.tty().filter(|t| !t.is_empty());
        let origin = if grace {
            let terminal_session = if raw_host.is_none() && tty.is_some() {
                system.terminal_session()
            } else {
                None
            };
            origin::grace_origin(
                session.service().as_deref().unwrap_or("?"),
                raw_host.as_deref(),
                tty.as_deref(),
                terminal_session,
                &system.host_name(),
            )
        } else {
            None
        };
        let host = raw_host.as_deref().map(origin::bounded);
        let mut fields = format!("user={}", sanitize(user));
        if let Some(rhost) = &raw_host {
            fields.push_str(&format!(" rhost={}", sanitize(rhost)));
        }
        if let Some(ruser) = session.remote_user().filter(|u| !u.is_empty()) {
            fields.push_str(&format!(" ruser={}", sanitize(&ruser)));
        }
        if let Some(tty) = &tty {
            fields.push_str(&format!(" tty={}", sanitize(tty)));
        }
        LogContext {
            fields,
            host,
            origin,
        }
    }

    /// `user=… rhost=… ruser=… tty=…`, escaped, for log lines.
    pub fn fields(&self) -> &str {
        &self.fields
    }

    /// The remote host, bounded, for per-host limits.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The grace-period origin, when a grace period is configured.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
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
    /// Where the login state lives, set up from the configuration on first
    /// use (one Redis connection per login with the shared backend).
    pub states: OnceCell<LoginStates>,
}

impl Login<'_> {
    /// Run the administrator's notify_command, after the state is saved and
    /// outside its lock, for at most NOTIFY_TIMEOUT; a failure is logged and
    /// changes nothing about the login.
    pub fn notify(&mut self, config: &Config, event: &str, user: &str, context: &LogContext) {
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
                    sanitize(&why.to_string()),
                    context.fields()
                ),
            );
        }
    }

    /// An error message to the user, unless the application asked for silence.
    pub fn tell(&self, session: &mut dyn Session, text: &str) {
        if !self.silent {
            session.error(text);
        }
    }

    /// Lock and load the user's state under the name every alias of the
    /// account shares, taking in what was kept under the account's other
    /// names before (this login's name always; the local aliases once).
    /// Log that the login state cannot be used (the login then fails
    /// closed).
    pub fn state_unusable(&mut self, error: &Error, context: &LogContext) {
        self.log.record(
            Severity::Error,
            &format!(
                "second factor refused: login state unusable: {error}: {}",
                context.fields()
            ),
        );
    }

    pub fn lock_state(&self, config: &Config, account: &Account) -> Result<HeldState, Error> {
        let states = self.states(config);
        let store = states.local();
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
        states.hold(locked, &account.state_name, self.now)
    }

    /// The login's states, as `config` places them.
    pub fn states(&self, config: &Config) -> &LoginStates {
        self.states
            .get_or_init(|| LoginStates::new(config, self.system.state_owner()))
    }

    /// `account`'s state without a lock (advisory: the binding decisions
    /// are taken under the lock). `Ok(None)` when this host's state cannot
    /// be read, which the decision under the lock then reports; an error
    /// when the shared state cannot be used, so that the login fails
    /// before asking for a code it could not check.
    pub fn peek_state(
        &mut self,
        config: &Config,
        account: &Account,
        context: &LogContext,
    ) -> Result<Option<StateView>, Error> {
        let view = match self.states(config).peek(&account.state_name, self.now) {
            Ok(view) => view,
            Err(e @ Error::SharedState(_)) => return Err(e),
            Err(_) => return Ok(None),
        };
        if let Some(why) = &view.fallback {
            self.log_fallback(config, why, context);
        }
        Ok(Some(view))
    }

    /// The shared state is unreachable and `redis_unavailable = "local"`
    /// lets this host's state stand in. Said once per login, although the
    /// read before the prompt and the decision both meet it.
    pub fn log_fallback(&mut self, config: &Config, why: &SharedStateError, context: &LogContext) {
        if !self.states(config).first_report_of_fallback() {
            return;
        }
        let backup = if config.redis_fallback_backup_codes {
            "backup codes allowed"
        } else {
            "backup codes refused"
        };
        self.log.record(
            Severity::Warning,
            &format!(
                "shared login state unreachable, deciding on this host's state alone \
                 (redis_unavailable = local, {backup}): {why}: {}",
                context.fields()
            ),
        );
    }
}

/// What a user is told when a kind of code is locked.
pub fn locked_message(kind: FailureKind, until: u64) -> String {
    format!(
        "Too many failed attempts: {} locked until {}.",
        kind_name(kind),
        format_utc(until)
    )
}

pub fn kind_name(kind: FailureKind) -> &'static str {
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
