//! `twofactor verify`: would a login accept this code?
//!
//! Read-only by construction: the code is judged by
//! `twofactor_core::verify::check_code`, the function the PAM module calls,
//! against the enrollment and the login state, but `record_success` is
//! never called and the state is only peeked at (no lock, no save). So it
//! spends no backup code and records no TOTP step: it cannot use up
//! anybody's codes. It does not count failures either, which gives nothing
//! away: the user can read their own enrollment file, secret included, and
//! so can compute every answer this command gives; rate limits protect the
//! login, which knows no more than that file.

use std::io::{self, BufRead, IsTerminal, Read};

use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::ratelimit::Locks;
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_core::verify::{check_code, Kinds, Verdict};

use crate::account;
use crate::cli::VerifyArgs;
use crate::enrollment_file;
use crate::error::{CliError, EXIT_REFUSED};
use crate::login_state::StateView;
use crate::output;
use crate::system_config;
use crate::terminal::{Answer, Terminal, NOTHING_CHANGED};
use twofactor_core::timefmt;

const MAX_CODE_BYTES: u64 = 1024;

#[derive(Serialize)]
struct VerifyReport<'a> {
    user: &'a str,
    /// "valid", "replayed", "spent" or "wrong".
    result: &'static str,
    valid: bool,
    /// "totp" or "backup-code" for valid, replayed and spent codes.
    method: Option<&'static str>,
    /// False when the login state could not be read: replays and spent
    /// backup codes were then not detected.
    state_checked: bool,
    /// When codes of this kind are locked out, until when (unix time).
    locked_until: Option<u64>,
}

/// Run `twofactor verify`; returns the exit code (0 valid, 1 not).
pub fn run(args: &VerifyArgs) -> Result<u8, CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let path = enrollment_file::path_of(&config, &account)?;
    // Before the switch to the user, as status: root reads every state.
    let asked_at = output::now()?;
    let state_view = StateView::read(&config, &account.state_name, asked_at);
    let mut terminal = if io::stdin().is_terminal() {
        Some(Terminal::open(
            "to read the code from",
            "pass the code on standard input instead",
            NOTHING_CHANGED,
        )?)
    } else {
        None
    };

    account::become_user(&account)?;
    let enrollment = match enrollment_file::load(&path, &account)? {
        Some(enrollment) if enrollment.has_any_method() => enrollment,
        _ => return Err(enrollment_file::not_enrolled(&path, &account)),
    };

    let code = match terminal.as_mut() {
        Some(terminal) => {
            match terminal.ask("Code to check (a login would not use it up): ", false)? {
                Answer::Line(line) => line,
                Answer::End => return Err(no_code()),
            }
        }
        None => read_stdin_line()?,
    };
    if code.trim().is_empty() {
        return Err(no_code());
    }

    let now = output::now()?;
    let state = state_view.state();
    let judged_state = state.clone().unwrap_or_default();
    // Judged as a login would if no kind were locked; a lock is reported
    // beside the verdict.
    let verdict = check_code(
        &enrollment,
        &judged_state,
        &code,
        now,
        config.window,
        Kinds::ALL,
    )
    .verdict;
    drop(code);

    let (result, valid, text) = match &verdict {
        Verdict::Totp { .. } => ("valid", true, "valid: a correct TOTP code, not used before"),
        Verdict::BackupCode { .. } => (
            "valid",
            true,
            "valid: an unused backup code (checking did not use it up)",
        ),
        Verdict::ReplayedTotp => (
            "replayed",
            false,
            "valid but already used: this TOTP code was accepted at a login before, so a \
             login refuses it (replay); wait for the next code",
        ),
        Verdict::TotpClockProblem { .. } => (
            "clock-problem",
            false,
            "valid, but a login refuses it: a code of a later time was accepted before, so \
             this host's clock is behind (or was ahead then); ask the administrator to check \
             the clock (twofactor status shows how far ahead)",
        ),
        Verdict::SpentBackupCode => (
            "spent",
            false,
            "valid but already spent: this backup code was used at a login before",
        ),
        Verdict::Wrong => (
            "wrong",
            false,
            "wrong: not a current TOTP code of your enrollment, nor one of your backup codes",
        ),
    };
    let method = match &verdict {
        Verdict::Totp { .. } | Verdict::ReplayedTotp | Verdict::TotpClockProblem { .. } => {
            Some("totp")
        }
        Verdict::BackupCode { .. } | Verdict::SpentBackupCode => Some("backup-code"),
        Verdict::Wrong => None,
    };
    // Lockouts run on the state's clock (the shared server's with Redis),
    // which moved on while the code was typed.
    let state_now = state_view.now + now.saturating_sub(asked_at);
    let lock = state
        .as_ref()
        .and_then(|state| lock_for(state, &config, method, state_now));

    if args.json {
        let report = VerifyReport {
            user: &account.name,
            result,
            valid,
            method,
            state_checked: state.is_some(),
            locked_until: lock,
        };
        output::print(&output::json_line(&report)?)?;
    } else {
        let mut out = format!("{text}.\n");
        if let Some(why) = state_view.problem() {
            out.push_str(&format!(
                "Note: the login state cannot be read ({why}), so whether the code was \
                 already used was not checked.\n"
            ));
        }
        if let Some(until) = lock {
            out.push_str(&format!(
                "Note: these codes are locked out until {} after too many failed logins; \
                 a login refuses every code of this kind until then.\n",
                timefmt::utc_and_relative(until, state_now)
            ));
        }
        output::print(&out)?;
    }
    Ok(if valid { 0 } else { EXIT_REFUSED })
}

fn no_code() -> CliError {
    CliError::Refused("no code was given".into())
}

/// The lock that applies to the kind of code entered (local logins; with
/// per-host counting, a remote host may be locked too).
fn lock_for(
    state: &LoginState,
    config: &twofactor_core::config::Config,
    method: Option<&str>,
    now: u64,
) -> Option<u64> {
    let kind = match method {
        Some("backup-code") => FailureKind::BackupCode,
        _ => FailureKind::Code,
    };
    Locks::of_login(state, &config.limits(), None, now).of(kind)
}

fn read_stdin_line() -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(Vec::new());
    io::stdin()
        .lock()
        .take(MAX_CODE_BYTES)
        .read_until(b'\n', &mut line)
        .map_err(|err| {
            CliError::System(format!(
                "cannot read the code from standard input: {}",
                twofactor_core::files::describe_io_error(&err)
            ))
        })?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(Zeroizing::new(String::from_utf8_lossy(&line).into_owned()))
}
