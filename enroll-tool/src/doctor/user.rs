//! The user's side, under each configuration in use: an enrollment the
//! module accepts, second factors left, no lockout, and a clock that
//! accepts current codes. Reading the enrollment means becoming the user
//! for good, so this runs last.

use std::path::Path;

use twofactor_core::backup::BackupCodeKind;
use twofactor_core::config::UnenrolledPolicy;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::error::FileProblem;
use twofactor_core::ratelimit::Locks;
use twofactor_core::state::LoginState;
use twofactor_core::timefmt;
use twofactor_core::verify::{clock_problem, remaining_backup_codes};

use crate::account::{self, Account};
use crate::enrollment_file::{self, EnrollmentFile};
use crate::login_state::StateView;
use crate::output;

use super::config::LineConfig;
use super::findings::Findings;

/// The user under one configuration, and what the messages say of it.
struct Subject<'a> {
    account: &'a Account,
    line_config: &'a LineConfig,
    /// The services that use this configuration.
    service_list: &'a [String],
    /// They, joined: "login, sshd".
    services: String,
    /// "sshd refuses alice", "login, sshd refuse alice".
    refuse: &'static str,
}

/// Check `account` under each configuration in use (with the services that
/// use it).
pub(super) fn check_user(
    findings: &mut Findings,
    account: &Account,
    configs: &[(LineConfig, Vec<String>)],
) {
    if configs.is_empty() {
        return;
    }
    // The login state is root's (and so is the Redis password): read it
    // before becoming the user.
    let host_now = output::now().unwrap_or(0);
    let states: Vec<StateView> = configs
        .iter()
        .map(|(c, _)| StateView::read(&c.config, &account.state_name, host_now))
        .collect();
    if let Err(err) = account::become_user(account) {
        findings.problem(
            "user",
            format!(
                "cannot check {}'s enrollment: {}",
                account.name,
                err.message()
            ),
            "run twofactor doctor as root (sudo twofactor doctor)",
        );
        return;
    }
    for ((line_config, service_list), state) in configs.iter().zip(states) {
        let subject = Subject {
            account,
            line_config,
            service_list,
            services: service_list.join(", "),
            refuse: verb(service_list, "refuses", "refuse"),
        };
        check_under(findings, &subject, &state, host_now);
    }
}

/// One configuration: the enrollment, what is left of it, and, when the
/// login state could be read, lockouts (on the state's clock) and this
/// host's clock (`host_now`).
fn check_under(findings: &mut Findings, subject: &Subject, state: &StateView, host_now: u64) {
    let Some(enrollment) = usable_enrollment(findings, subject) else {
        return;
    };
    let view = state.state();
    let remaining = view
        .as_ref()
        .map(|s| remaining_backup_codes(&enrollment, s))
        .unwrap_or(enrollment.backup_codes.len());
    if !check_methods(findings, subject, &enrollment, remaining) {
        return;
    }
    check_backup_codes(findings, subject.account, &enrollment, remaining);
    if let Some(login_state) = &view {
        check_lockout(
            findings,
            subject,
            &enrollment,
            remaining,
            login_state,
            state.now,
        );
        check_clock(findings, subject, &enrollment, login_state, host_now);
    }
}

/// The enrollment the module reads, when it has a second factor; else
/// `None` and the finding (not enrolled, or refused).
fn usable_enrollment(findings: &mut Findings, subject: &Subject) -> Option<Enrollment> {
    let account = subject.account;
    let path = match enrollment_file::path_of(&subject.line_config.config, account) {
        Ok(path) => path,
        Err(err) => {
            findings.problem(
                "user",
                format!("{}: {}", account.name, err.message()),
                format!("correct enrollment_path in {}", subject.line_config.source),
            );
            return None;
        }
    };
    // Files that cannot even be looked at are reported by reading them.
    let file = EnrollmentFile::find(&path).unwrap_or_else(|_| EnrollmentFile::configured(&path));
    note_older_files(findings, account, &file, &path);
    match enrollment_file::load(&path, account) {
        Ok(Some(enrollment)) if enrollment.has_any_method() => Some(enrollment),
        Ok(_) => {
            not_enrolled(findings, subject, &path);
            None
        }
        Err(err) => {
            refused(findings, subject, &err);
            None
        }
    }
}

/// The older TOML file still in use, or left over beside the current one.
fn note_older_files(
    findings: &mut Findings,
    account: &Account,
    file: &EnrollmentFile,
    path: &Path,
) {
    if let Some(legacy) = file.legacy_in_use() {
        findings.note(
            "user",
            format!(
                "{}'s enrollment is in the older TOML file {}: the next change, such as \
                 'twofactor backup-codes', moves it to {}",
                account.name,
                legacy.display(),
                path.display()
            ),
        );
    }
    if let Some(leftover) = file.leftover() {
        findings.note(
            "user",
            format!(
                "{} is left over from an older version and ignored ({} is used): the next \
                 change removes it, or delete it",
                leftover.display(),
                path.display()
            ),
        );
    }
}

/// No second factor: refused or let in, as `unenrolled` says.
fn not_enrolled(findings: &mut Findings, subject: &Subject, path: &Path) {
    let (name, services) = (&subject.account.name, &subject.services);
    match subject.line_config.config.unenrolled {
        UnenrolledPolicy::Fail => findings.problem(
            "user",
            format!(
                "{name} has no second factor ({} does not exist): {services} {} {name} \
                 (unenrolled = \"fail\")",
                path.display(),
                subject.refuse,
            ),
            format!(
                "run 'twofactor enroll' as {name} (or 'twofactor enroll --user {name}' as \
                 root), or set unenrolled = \"ignore\" until users have enrolled"
            ),
        ),
        UnenrolledPolicy::Ignore => findings.note(
            "user",
            format!(
                "{name} has not enrolled: {services} {} {name} in without a second \
                 factor (unenrolled = \"ignore\")",
                verb(subject.service_list, "lets", "let"),
            ),
        ),
    }
}

/// An enrollment the module refuses to read, with the fix for why.
fn refused(findings: &mut Findings, subject: &Subject, err: &twofactor_core::Error) {
    let name = &subject.account.name;
    let fix = match err {
        twofactor_core::Error::File {
            problem: FileProblem::UnsafeParent(_),
            ..
        } => format!(
            "make each directory from the home (or from the first directory {0} \
             owns) down to the enrollment owned by {0} or root and not writable by \
             group or others (chmod go-w), and check that the enrollment is still \
             the one {0} made",
            name
        ),
        _ => format!(
            "fix the file's owner and mode (chmod 0600), or enroll again: \
             'twofactor enroll --force' as {}",
            name
        ),
    };
    findings.problem(
        "user",
        format!(
            "{name}'s enrollment is refused by the module ({err}): {} {} {name}",
            subject.services, subject.refuse
        ),
        fix,
    );
}

/// The methods left: a problem when there is none, else what they are.
/// Returns whether any is left.
fn check_methods(
    findings: &mut Findings,
    subject: &Subject,
    enrollment: &Enrollment,
    remaining: usize,
) -> bool {
    let name = &subject.account.name;
    if enrollment.totp.is_none() && remaining == 0 && enrollment.fido2.is_empty() {
        findings.problem(
            "user",
            format!(
                "{name} has no TOTP and every backup code is used: {} {} {name}",
                subject.services, subject.refuse
            ),
            format!("run 'twofactor enroll --force' as {name}"),
        );
        return false;
    }
    let mut methods = Vec::new();
    if let Some(totp) = &enrollment.totp {
        methods.push(format!("TOTP ({} digits)", totp.digits));
    }
    methods.push(format!("{remaining} backup codes left"));
    if !enrollment.fido2.is_empty() {
        methods.push(format!("{} security key(s)", enrollment.fido2.len()));
    }
    findings.ok(
        "user",
        format!(
            "{name} is enrolled for {}: {}",
            subject.services,
            methods.join(", ")
        ),
    );
    true
}

/// Legacy scratch codes kept, or no backup code left beside TOTP.
fn check_backup_codes(
    findings: &mut Findings,
    account: &Account,
    enrollment: &Enrollment,
    remaining: usize,
) {
    let legacy = enrollment
        .backup_codes
        .iter()
        .filter(|c| c.kind == BackupCodeKind::LegacyScratch)
        .count();
    if legacy > 0 {
        findings.note(
            "user",
            format!(
                "{} has {legacy} legacy scratch code(s) imported from google-authenticator \
                 (8 digits, guessable from a stolen enrollment file): 'twofactor \
                 backup-codes' replaces them",
                account.name
            ),
        );
    }
    if remaining == 0 && enrollment.totp.is_some() {
        findings.note(
            "user",
            format!(
                "{} has no backup codes left: if the phone is lost, only root can help \
                 ('twofactor backup-codes' makes new ones)",
                account.name
            ),
        );
    }
}

/// Locks as the module computes them: both kinds (or the only one enrolled)
/// is a lockout, one kind while the other works is a note.
fn check_lockout(
    findings: &mut Findings,
    subject: &Subject,
    enrollment: &Enrollment,
    remaining: usize,
    state: &LoginState,
    now: u64,
) {
    let name = &subject.account.name;
    let local = Locks::of_login(state, &subject.line_config.config.limits(), None, now);
    let reset = format!("twofactor reset-lockout --user {name} (as root)");
    // A kind locked while the other still works is a partial lockout: the
    // user gets in, but should know which to use.
    let (codes_work, backup_codes_work) = (enrollment.totp.is_some(), remaining > 0);
    match (local.code, local.backup_code) {
        (Some(until), None) if backup_codes_work => findings.note(
            "user",
            format!(
                "{name}'s codes from the app are locked until {} after too many failed \
                 codes; backup codes still work. '{reset}' lifts it",
                timefmt::rfc3339(until)
            ),
        ),
        (None, Some(until)) if codes_work => findings.note(
            "user",
            format!(
                "{name}'s backup codes are locked until {} after too many failed backup \
                 codes; codes from the app still work. '{reset}' lifts it",
                timefmt::rfc3339(until)
            ),
        ),
        (None, None) => {}
        (code_until, backup_until) => findings.problem(
            "user",
            format!(
                "{name} is locked out until {} after too many failed codes",
                timefmt::rfc3339(
                    code_until
                        .into_iter()
                        .chain(backup_until)
                        .min()
                        .unwrap_or(now)
                )
            ),
            reset,
        ),
    }
}

/// A TOTP code from the future was accepted: the clock was ahead then, or
/// is behind now.
fn check_clock(
    findings: &mut Findings,
    subject: &Subject,
    enrollment: &Enrollment,
    state: &LoginState,
    now: u64,
) {
    let name = &subject.account.name;
    let window = subject.line_config.config.window;
    let Some(clock) = clock_problem(enrollment, state, now, window) else {
        return;
    };
    let message = format!(
        "{name}: a TOTP code of a time {} ahead of this host's clock was accepted: the \
         clock was ahead then (a restored snapshot, a bad RTC, NTP) or is behind now",
        timefmt::duration(clock.seconds_ahead)
    );
    if clock.refuses_current_codes {
        findings.problem(
            "clock",
            format!("{message}; current TOTP codes are refused until the clock passes that time"),
            format!(
                "check the clock; backup codes still work, and 'twofactor enroll --force' \
                 (as {name}) starts afresh"
            ),
        );
    } else {
        findings.note(
            "clock",
            format!("{message}; those codes stay used, current codes work"),
        );
    }
}

/// The verb for `services` as its subject: one service or several.
fn verb<'a>(services: &[String], one: &'a str, several: &'a str) -> &'a str {
    if services.len() == 1 {
        one
    } else {
        several
    }
}
