//! `twofactor status`: what is enrolled, backup codes left, the last
//! successful second factor, recent failures, and lockouts.
//!
//! It reports problems (no enrollment, an enrollment the module would
//! refuse, a login state that cannot be read) as part of the status rather
//! than failing: finding out what is wrong is what it is for.
//!
//! The JSON keeps one key per method under `methods`, so FIDO2 security
//! keys can be added as `methods.security_keys` without changing the rest.

use serde::Serialize;

use twofactor_core::config::{Config, StateBackend, UnenrolledPolicy};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::ratelimit::Locks;
use twofactor_core::state::{FailureKind, LoginState, StateStore};
use twofactor_core::verify::{clock_problem, remaining_backup_codes};

use crate::account::{self, Account};
use crate::cli::StatusArgs;
use crate::enrollment_file::{self, EnrollmentFile};
use crate::error::CliError;
use crate::login_state::StateView;
use crate::output;
use crate::system_config;
use twofactor_core::timefmt;

/// Failures older than this are not "recent".
const RECENT_SECONDS: u64 = 7 * 24 * 60 * 60;
/// Failures listed in the text output (JSON has them all).
const FAILURES_SHOWN: usize = 5;
/// At or below this many backup codes left, suggest new ones.
const FEW_BACKUP_CODES: usize = 3;

/// Run `twofactor status`.
pub fn run(args: &StatusArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let path = enrollment_file::path_of(&config, &account)?;
    let now = output::now()?;
    // Before the switch to the user: root sees the state even where an older
    // install left it readable only by root (or reads the Redis password).
    let state = StateView::read(&config, &account.state_name, now);

    account::become_user(&account)?;
    // Files that cannot even be looked at are reported by reading them.
    let file = EnrollmentFile::find(&path).unwrap_or_else(|_| EnrollmentFile::configured(&path));
    let enrollment = enrollment_file::load(&path, &account);

    let report = Report::build(
        &config,
        &account,
        &file,
        enrollment.map_err(|err| err.to_string()),
        &state,
        now,
    );
    if args.json {
        output::print(&output::json_line(&report)?)
    } else {
        output::print(&report.text(&config))
    }
}

/// Everything `status` reports; serialized as the JSON output.
#[derive(Debug, Serialize)]
pub struct Report {
    user: String,
    uid: u32,
    enrollment: EnrollmentReport,
    methods: Methods,
    state: StateReport,
    last_success: Option<Success>,
    recent_failures: Vec<Failure>,
    lockout: Option<Lockout>,
    /// `twofactor reset-lockout` runs, latest first.
    lockout_resets: Vec<Reset>,
    /// TOTP codes of a later time were accepted: the clock was ahead then,
    /// or is behind now.
    clock_problem: Option<ClockReport>,
    /// The state's clock (the shared server's with the Redis backend), which
    /// the times shown are relative to.
    #[serde(skip)]
    state_now: u64,
}

#[derive(Debug, Serialize)]
struct Reset {
    time: u64,
    time_utc: String,
    by: String,
    cleared_failures: usize,
}

#[derive(Debug, Serialize)]
struct ClockReport {
    /// How far after this host's clock the latest accepted TOTP step lies.
    seconds_ahead: u64,
    /// Current codes are refused too, until the clock passes that time.
    refuses_current_codes: bool,
}

#[derive(Debug, Serialize)]
struct EnrollmentReport {
    /// The file the enrollment is read from.
    path: String,
    /// "enrolled", "not-enrolled" or "unusable".
    status: &'static str,
    error: Option<String>,
    /// The `enrollment.toml` of older versions, when there is one beside
    /// the configured `enrollment.json`.
    legacy_file: Option<LegacyFileReport>,
}

#[derive(Debug, Serialize)]
struct LegacyFileReport {
    path: String,
    /// True: the enrollment is read from it (it is `path`), as
    /// `enrollment.json` does not exist. False: a leftover, ignored. The
    /// next change writes `enrollment.json` and removes it either way.
    in_use: bool,
}

#[derive(Debug, Serialize)]
struct Methods {
    totp: TotpReport,
    backup_codes: BackupCodesReport,
    security_keys: SecurityKeysReport,
}

#[derive(Debug, Serialize)]
struct SecurityKeysReport {
    enrolled: bool,
    keys: Vec<SecurityKeyReport>,
}

#[derive(Debug, Serialize)]
struct SecurityKeyReport {
    name: String,
    algorithm: &'static str,
    rp_id: String,
    user_verification: bool,
}

#[derive(Debug, Serialize)]
struct TotpReport {
    enrolled: bool,
    algorithm: Option<&'static str>,
    digits: Option<u8>,
    period: Option<u64>,
}

#[derive(Debug, Serialize)]
struct BackupCodesReport {
    enrolled: bool,
    total: usize,
    /// Unknown (null) when the login state cannot be read.
    remaining: Option<usize>,
    /// Of `total`, the 8-digit scratch codes imported from
    /// google-authenticator (`twofactor import`).
    legacy: usize,
    /// Of `remaining`, the legacy scratch codes (null like `remaining`).
    legacy_remaining: Option<usize>,
}

#[derive(Debug, Serialize)]
struct StateReport {
    /// "local": this host's state file (`path`); "redis": the fleet's
    /// shared state, with this host's file's replay defences taken in.
    backend: &'static str,
    path: String,
    readable: bool,
    /// False when no login was recorded yet (no state file).
    recorded: bool,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Success {
    time: u64,
    time_utc: String,
    method: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Failure {
    time: u64,
    time_utc: String,
    kind: &'static str,
    host: Option<String>,
    /// A lockout reset ended what it counted towards.
    cleared: bool,
}

#[derive(Debug, Serialize)]
struct Lockout {
    /// Failures are counted per remote host (`rate_limit_by_host`); `codes`
    /// and `backup_codes` then describe logins without a remote host, and
    /// `hosts` the remote hosts that are locked out.
    by_host: bool,
    codes: Lock,
    backup_codes: Lock,
    hosts: Vec<HostLock>,
}

#[derive(Debug, Serialize)]
struct Lock {
    locked: bool,
    until: Option<u64>,
    until_utc: Option<String>,
}

#[derive(Debug, Serialize)]
struct HostLock {
    host: String,
    kind: &'static str,
    until: u64,
    until_utc: String,
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Code => "code",
        FailureKind::BackupCode => "backup-code",
    }
}

fn lock(until: Option<u64>) -> Lock {
    Lock {
        locked: until.is_some(),
        until,
        until_utc: until.map(timefmt::rfc3339),
    }
}

fn lockout(config: &Config, state: &LoginState, now: u64) -> Lockout {
    let limits = config.limits();
    let mut hosts = Vec::new();
    if limits.by_host {
        let mut seen: Vec<&str> = Vec::new();
        for failure in &state.failures {
            if let Some(host) = failure.host.as_deref() {
                if !seen.contains(&host) {
                    seen.push(host);
                }
            }
        }
        for host in seen {
            let locks = Locks::of_login(state, &limits, Some(host), now);
            for kind in [FailureKind::Code, FailureKind::BackupCode] {
                if let Some(until) = locks.of(kind) {
                    hosts.push(HostLock {
                        host: host.to_string(),
                        kind: kind_name(kind),
                        until,
                        until_utc: timefmt::rfc3339(until),
                    });
                }
            }
        }
    }
    let local = Locks::of_login(state, &limits, None, now);
    Lockout {
        by_host: limits.by_host,
        codes: lock(local.code),
        backup_codes: lock(local.backup_code),
        hosts,
    }
}

impl Report {
    /// `host_now` is this host's clock (which TOTP codes are current);
    /// windows and lockouts run on the state's (`state_view.now`).
    fn build(
        config: &Config,
        account: &Account,
        file: &EnrollmentFile,
        enrollment: Result<Option<Enrollment>, String>,
        state_view: &StateView,
        host_now: u64,
    ) -> Report {
        let now = state_view.now;
        let (status, error, enrollment) = match enrollment {
            Ok(Some(enrollment)) if enrollment.has_any_method() => {
                ("enrolled", None, Some(enrollment))
            }
            Ok(_) => ("not-enrolled", None, None),
            Err(why) => ("unusable", Some(why), None),
        };
        let state = state_view.state();
        let totp = enrollment.as_ref().and_then(|e| e.totp.as_ref());
        let codes_total = enrollment.as_ref().map_or(0, |e| e.backup_codes.len());
        let remaining = match (&enrollment, &state) {
            (Some(enrollment), Some(state)) => Some(remaining_backup_codes(enrollment, state)),
            (None, _) => Some(0),
            (Some(_), None) => None,
        };
        let is_legacy = |c: &&twofactor_core::backup::BackupCodeHash| {
            c.kind == twofactor_core::backup::BackupCodeKind::LegacyScratch
        };
        let legacy = enrollment
            .as_ref()
            .map_or(0, |e| e.backup_codes.iter().filter(is_legacy).count());
        let legacy_remaining = match (&enrollment, &state) {
            (Some(enrollment), Some(state)) => Some(
                enrollment
                    .backup_codes
                    .iter()
                    .filter(is_legacy)
                    .filter(|c| !state.is_spent(&c.salt))
                    .count(),
            ),
            (None, _) => Some(0),
            (Some(_), None) => None,
        };
        let mut recent_failures: Vec<Failure> = state
            .iter()
            .flat_map(|s| s.failures.iter())
            .filter(|f| f.time <= now && now - f.time < RECENT_SECONDS)
            .map(|f| Failure {
                time: f.time,
                time_utc: timefmt::rfc3339(f.time),
                kind: kind_name(f.kind),
                host: f.host.clone(),
                cleared: f.cleared,
            })
            .collect();
        recent_failures.sort_by_key(|f| std::cmp::Reverse(f.time));
        let store = StateStore::new(&config.state_dir);
        Report {
            user: account.name.clone(),
            uid: account.uid.as_raw(),
            enrollment: EnrollmentReport {
                path: file.source().to_string_lossy().into_owned(),
                status,
                error,
                legacy_file: file.legacy.as_ref().map(|legacy| LegacyFileReport {
                    path: legacy.to_string_lossy().into_owned(),
                    in_use: file.legacy_in_use().is_some(),
                }),
            },
            methods: Methods {
                totp: TotpReport {
                    enrolled: totp.is_some(),
                    algorithm: totp.map(|t| t.algorithm.name()),
                    digits: totp.map(|t| t.digits),
                    period: totp.map(|t| t.period),
                },
                backup_codes: BackupCodesReport {
                    enrolled: codes_total > 0,
                    total: codes_total,
                    remaining,
                    legacy,
                    legacy_remaining,
                },
                security_keys: SecurityKeysReport {
                    enrolled: enrollment.as_ref().is_some_and(|e| !e.fido2.is_empty()),
                    keys: enrollment
                        .as_ref()
                        .map(|e| {
                            e.fido2
                                .iter()
                                .map(|k| SecurityKeyReport {
                                    name: k.name.clone(),
                                    algorithm: k.public_key.algorithm().name(),
                                    rp_id: k.rp_id.clone(),
                                    user_verification: k.user_verification,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            },
            state: StateReport {
                backend: match config.state_backend {
                    StateBackend::Local => "local",
                    StateBackend::Redis => "redis",
                },
                path: store
                    .state_path(&account.state_name)
                    .to_string_lossy()
                    .into_owned(),
                readable: state.is_some(),
                recorded: state_view.is_recorded(),
                error: state_view.problem().map(str::to_string),
            },
            last_success: state.as_ref().and_then(|s| {
                s.last_success.map(|time| Success {
                    time,
                    time_utc: timefmt::rfc3339(time),
                    method: s.last_success_method.map(|m| m.name()),
                })
            }),
            recent_failures,
            lockout: state.as_ref().map(|s| lockout(config, s, now)),
            lockout_resets: state
                .iter()
                .flat_map(|s| s.lockout_resets.iter().rev())
                .map(|r| Reset {
                    time: r.time,
                    time_utc: timefmt::rfc3339(r.time),
                    by: r.by.clone(),
                    cleared_failures: r.cleared,
                })
                .collect(),
            clock_problem: match (&enrollment, &state) {
                (Some(enrollment), Some(state)) => {
                    clock_problem(enrollment, state, host_now, config.window).map(|p| ClockReport {
                        seconds_ahead: p.seconds_ahead,
                        refuses_current_codes: p.refuses_current_codes,
                    })
                }
                _ => None,
            },
            state_now: now,
        }
    }

    fn text(&self, config: &Config) -> String {
        let now = self.state_now;
        let mut out = format!("Two-factor login for {} (uid {})\n", self.user, self.uid);
        let mut row = |label: &str, value: &str| {
            let mut lines = value.lines();
            out.push_str(&format!(
                "  {label:<14}{}\n",
                lines.next().unwrap_or_default()
            ));
            for more in lines {
                out.push_str(&format!("  {:<14}{more}\n", ""));
            }
        };
        let enrolled = self.enrollment.status == "enrolled";
        match self.enrollment.status {
            "enrolled" => row("Enrollment", &self.enrollment.path),
            "unusable" => row(
                "Enrollment",
                &format!(
                    "UNUSABLE: {}\nLogins through pam_twofactor fail until this is fixed \
                     ('twofactor enroll --force' starts over).",
                    self.enrollment
                        .error
                        .as_deref()
                        .unwrap_or("unknown problem")
                ),
            ),
            _ => {
                let consequence = match config.unenrolled {
                    UnenrolledPolicy::Fail => {
                        "This system requires a second factor: logins through \
                         pam_twofactor are refused until you enroll."
                    }
                    UnenrolledPolicy::Ignore => {
                        "Logins do not ask for a second factor until you enroll."
                    }
                };
                row(
                    "Enrollment",
                    &format!(
                        "none ({} does not exist): run 'twofactor enroll'.\n{consequence}",
                        self.enrollment.path
                    ),
                );
            }
        }
        if let Some(legacy) = &self.enrollment.legacy_file {
            if legacy.in_use {
                row(
                    "",
                    "(the older TOML file: the next change, such as 'twofactor backup-codes', \
                     moves it to enrollment.json)",
                );
            } else {
                row(
                    "",
                    &format!(
                        "({} is left over from an older version and ignored: the next change \
                         removes it, or delete it)",
                        legacy.path
                    ),
                );
            }
        }
        if enrolled {
            let totp = &self.methods.totp;
            match (totp.algorithm, totp.digits, totp.period) {
                (Some(algorithm), Some(digits), Some(period)) => row(
                    "TOTP",
                    &format!("enrolled ({algorithm}, {digits} digits, every {period} seconds)"),
                ),
                _ => row("TOTP", "not enrolled"),
            }
            let keys = &self.methods.security_keys.keys;
            if !keys.is_empty() {
                let names: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{} ({})", k.name, k.algorithm))
                    .collect();
                row("Security keys", &names.join(", "));
            }
            let codes = &self.methods.backup_codes;
            let codes_text = match (codes.total, codes.remaining) {
                (0, _) => "none".to_string(),
                (total, Some(remaining)) if remaining <= FEW_BACKUP_CODES => format!(
                    "{remaining} of {total} left: make new ones with 'twofactor backup-codes'"
                ),
                (total, Some(remaining)) => format!("{remaining} of {total} left"),
                (total, None) => format!(
                    "{total} stored (how many are used is in the login state, which \
                     cannot be read)"
                ),
            };
            let codes_text = match (codes.legacy, codes.legacy_remaining) {
                (0, _) => codes_text,
                (_, Some(0)) => format!(
                    "{codes_text}\n(the legacy scratch codes imported from google-authenticator \
                     are all used)"
                ),
                (legacy, legacy_remaining) => format!(
                    "{codes_text}\n{} of them: legacy scratch codes imported from \
                     google-authenticator (8 digits, guessable from a stolen enrollment \
                     file): replace them with 'twofactor backup-codes'",
                    legacy_remaining.map_or(format!("{legacy} stored"), |n| n.to_string())
                ),
            };
            row("Backup codes", &codes_text);
        }
        if let Some(why) = &self.state.error {
            row(
                "Login state",
                &format!("cannot be read: {why}.\nLast login, failures and lockouts are unknown."),
            );
            return out;
        }
        if self.state.backend == "redis" {
            row(
                "Login state",
                "the fleet's shared state (Redis); times are on its server's clock",
            );
        }
        match &self.last_success {
            Some(success) => {
                let method = match success.method {
                    Some("totp") => ", with a TOTP code",
                    Some("backup-code") => ", with a backup code",
                    Some("security-key") => ", with a security key",
                    _ => "",
                };
                row(
                    "Last login",
                    &format!("{}{method}", timefmt::utc_and_relative(success.time, now)),
                );
            }
            None => row("Last login", "none recorded yet"),
        }
        if self.recent_failures.is_empty() {
            row("Failures", "none in the last 7 days");
        } else {
            let mut text = format!(
                "{} in the last 7 days{}",
                self.recent_failures.len(),
                if self.recent_failures.len() > FAILURES_SHOWN {
                    format!(", the latest {FAILURES_SHOWN}:")
                } else {
                    ":".to_string()
                }
            );
            for failure in self.recent_failures.iter().take(FAILURES_SHOWN) {
                let what = if failure.kind == "backup-code" {
                    "wrong backup code"
                } else {
                    "wrong code"
                };
                let from = failure
                    .host
                    .as_deref()
                    .map(|h| format!(" from {h}"))
                    .unwrap_or_default();
                let cleared = if failure.cleared {
                    " (cleared by a lockout reset)"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "\n{}: {what}{from}{cleared}",
                    timefmt::utc_and_relative(failure.time, now)
                ));
            }
            row("Failures", &text);
        }
        if let Some(reset) = self.lockout_resets.first() {
            row(
                "Lockout reset",
                &format!(
                    "{} by {} ({} failure{} cleared)",
                    timefmt::utc_and_relative(reset.time, now),
                    reset.by,
                    reset.cleared_failures,
                    if reset.cleared_failures == 1 { "" } else { "s" }
                ),
            );
        }
        if let Some(clock) = &self.clock_problem {
            let consequence = if clock.refuses_current_codes {
                "TOTP codes are refused until this host's clock passes that time (backup codes \
                 and security keys still work; 'twofactor enroll --force' starts afresh)"
            } else {
                "those codes stay used; current codes work"
            };
            row(
                "Clock",
                &format!(
                    "a TOTP code of a time {} ahead of this host's clock was accepted (the clock \
                     was ahead then, or is behind now): {consequence}",
                    timefmt::duration(clock.seconds_ahead)
                ),
            );
        }
        if let Some(lockout) = &self.lockout {
            row("Lockout", &lockout_text(lockout, &self.user, config, now));
        }
        out
    }
}

fn lockout_text(lockout: &Lockout, user: &str, config: &Config, now: u64) -> String {
    let mut lines = Vec::new();
    let describe = |what: &str, lock: &Lock, limit: u32, window: u64| {
        lock.until.map(|until| {
            format!(
                "{what} locked until {} after {limit} failures within {} minutes",
                timefmt::utc_and_relative(until, now),
                window / 60
            )
        })
    };
    let scope = if lockout.by_host {
        " (logins without a remote host)"
    } else {
        ""
    };
    if let Some(line) = describe(
        &format!("codes{scope}"),
        &lockout.codes,
        config.max_code_failures,
        config.code_failure_window,
    ) {
        lines.push(line);
    }
    if let Some(line) = describe(
        &format!("backup codes{scope}"),
        &lockout.backup_codes,
        config.max_backup_code_failures,
        config.backup_code_failure_window,
    ) {
        lines.push(line);
    }
    for host in &lockout.hosts {
        let what = if host.kind == "backup-code" {
            "backup codes"
        } else {
            "codes"
        };
        lines.push(format!(
            "{what} from {} locked until {}",
            host.host,
            timefmt::utc_and_relative(host.until, now)
        ));
    }
    if lines.is_empty() {
        lines.push("none".into());
    } else {
        lines.push(format!(
            "An administrator can lift it: twofactor reset-lockout --user {user}"
        ));
    }
    if lockout.by_host {
        lines.push("(failures are counted per remote host: rate_limit_by_host)".into());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login_state::Found;
    use std::path::Path;
    use twofactor_core::state::Method;

    fn view(found: Found, now: u64) -> StateView {
        StateView { found, now }
    }

    fn account() -> Account {
        Account {
            name: "alice".into(),
            uid: nix::unistd::Uid::from_raw(1000),
            gid: nix::unistd::Gid::from_raw(1000),
            home: "/home/alice".into(),
            state_name: "alice".into(),
        }
    }

    fn enrollment() -> Enrollment {
        let codes = twofactor_core::backup::generate(4);
        Enrollment {
            totp: Some(twofactor_core::totp::TotpParams {
                secret: twofactor_core::secret::SecretBytes::new(vec![7; 20]),
                algorithm: twofactor_core::totp::Algorithm::SHA1,
                digits: 6,
                period: 30,
            }),
            backup_codes: codes.into_iter().map(|c| c.stored).collect(),
            ..Enrollment::default()
        }
    }

    #[test]
    fn locked_state_is_reported_with_its_end() {
        let config = Config::default();
        let e = enrollment();
        let mut state = LoginState::default();
        state
            .spent_backup_codes
            .push(e.backup_codes[0].salt.clone());
        state.record_success(Method::BackupCode, 1_000);
        for t in 0..5 {
            state.record_failure(FailureKind::Code, Some("192.0.2.7"), 2_000 + t);
        }
        let report = Report::build(
            &config,
            &account(),
            &EnrollmentFile::configured(Path::new("/home/alice/e.toml")),
            Ok(Some(e)),
            &view(Found::Read(state), 2_100),
            2_100,
        );
        assert_eq!(report.methods.backup_codes.remaining, Some(3));
        let lockout = report.lockout.as_ref().unwrap();
        assert_eq!(lockout.codes.until, Some(2_000 + 900));
        assert!(!lockout.backup_codes.locked);
        assert_eq!(report.recent_failures.len(), 5);
        assert_eq!(report.recent_failures[0].time, 2_004);
        let text = report.text(&config);
        assert!(
            text.contains("codes locked until 1970-01-01 00:48:20 UTC (in 14 minutes)"),
            "{text}"
        );
        assert!(text.contains("3 of 4 left: make new ones"), "{text}");
        assert!(text.contains("with a backup code"), "{text}");
        assert!(text.contains("from 192.0.2.7"), "{text}");
    }

    #[test]
    fn per_host_locks_are_listed() {
        let config = Config {
            rate_limit_by_host: true,
            ..Config::default()
        };
        let mut state = LoginState::default();
        for t in 0..5 {
            state.record_failure(FailureKind::Code, Some("198.51.100.1"), 100 + t);
        }
        let report = Report::build(
            &config,
            &account(),
            &EnrollmentFile::configured(Path::new("/e")),
            Ok(Some(enrollment())),
            &view(Found::Read(state), 200),
            200,
        );
        let lockout = report.lockout.as_ref().unwrap();
        assert!(!lockout.codes.locked);
        assert_eq!(lockout.hosts.len(), 1);
        assert_eq!(lockout.hosts[0].host, "198.51.100.1");
        let text = report.text(&config);
        assert!(
            text.contains("codes from 198.51.100.1 locked until"),
            "{text}"
        );
        assert!(text.contains("rate_limit_by_host"), "{text}");
    }

    #[test]
    fn unreadable_state_and_missing_enrollment_are_explained() {
        let config = Config::default();
        let report = Report::build(
            &config,
            &account(),
            &EnrollmentFile::configured(Path::new("/e")),
            Ok(Some(enrollment())),
            &view(
                Found::Unreadable("the state directory is not accessible".into()),
                200,
            ),
            200,
        );
        assert_eq!(report.methods.backup_codes.remaining, None);
        assert!(report.lockout.is_none());
        let text = report.text(&config);
        assert!(
            text.contains("cannot be read: the state directory"),
            "{text}"
        );
        assert!(text.contains("4 stored"), "{text}");

        let report = Report::build(
            &config,
            &account(),
            &EnrollmentFile::configured(Path::new("/e")),
            Ok(None),
            &view(Found::Empty, 200),
            200,
        );
        let text = report.text(&config);
        assert!(text.contains("none (/e does not exist)"), "{text}");
        assert!(text.contains("refused until you enroll"), "{text}");
        assert!(text.contains("Lockout       none"), "{text}");
    }

    #[test]
    fn windows_run_on_the_state_clock_and_codes_on_the_host_clock() {
        // The shared server's clock is an hour ahead of this host's: the
        // lockout it enforces is shown as the fleet sees it.
        let config = Config {
            state_backend: StateBackend::Redis,
            ..Config::default()
        };
        let server_now = 10_000;
        let mut state = LoginState::default();
        for t in 0..5 {
            state.record_failure(FailureKind::Code, None, server_now - 60 + t);
        }
        let report = Report::build(
            &config,
            &account(),
            &EnrollmentFile::configured(Path::new("/e")),
            Ok(Some(enrollment())),
            &view(Found::Read(state), server_now),
            server_now - 3_600,
        );
        let lockout = report.lockout.as_ref().unwrap();
        assert_eq!(lockout.codes.until, Some(server_now - 60 + 900));
        assert_eq!(report.recent_failures.len(), 5);
        assert!(report.clock_problem.is_none());
        let text = report.text(&config);
        assert!(text.contains("(in 14 minutes)"), "{text}");
        assert!(text.contains("the fleet's shared state (Redis)"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["state"]["backend"], "redis");
    }
}
