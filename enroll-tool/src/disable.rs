//! `twofactor disable totp|backup-codes|all`, after confirmation. Removing
//! the last method (or "all") removes the enrollment file.

use serde::Serialize;

use twofactor_core::config::UnenrolledPolicy;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::notify::EVENT_DISABLED;

use crate::account;
use crate::cli::{DisableArgs, DisableWhat};
use crate::enrollment_file::{self, EnrollmentFile};
use crate::error::CliError;
use crate::events::{self, Event};
use crate::output;
use crate::system_config;
use crate::terminal::{Terminal, NOTHING_CHANGED};

#[derive(Serialize)]
struct DisableReport<'a> {
    user: &'a str,
    enrollment_path: String,
    /// What was turned off: some of "totp", "backup-codes"; empty when
    /// there was nothing to turn off.
    disabled: Vec<&'static str>,
    /// Methods still enrolled.
    remaining: Vec<&'static str>,
    /// True when the enrollment file was removed.
    removed: bool,
}

fn methods(enrollment: &Enrollment) -> Vec<&'static str> {
    let mut names = Vec::new();
    if enrollment.totp.is_some() {
        names.push("totp");
    }
    if !enrollment.backup_codes.is_empty() {
        names.push("backup-codes");
    }
    names
}

/// What an enrollment holds, for the question before removing it all.
fn enrolled_methods(enrollment: &Enrollment) -> String {
    let mut parts = Vec::new();
    if enrollment.totp.is_some() {
        parts.push("TOTP (the authenticator app entry)".to_string());
    }
    if !enrollment.backup_codes.is_empty() {
        parts.push("the backup codes".to_string());
    }
    match enrollment.fido2.len() {
        0 => {}
        1 => parts.push("1 security key".to_string()),
        n => parts.push(format!("{n} security keys")),
    }
    match parts.len() {
        // An enrollment file that cannot be read: all of what it holds.
        0 => "whatever the enrollment holds".to_string(),
        1 => parts.remove(0),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// Run `twofactor disable`.
pub fn run(args: &DisableArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let mut terminal = if args.yes {
        None
    } else {
        Some(Terminal::open(
            "to ask for confirmation on",
            "add --yes to disable without asking",
            NOTHING_CHANGED,
        )?)
    };

    account::become_user(&account)?;

    let existing = EnrollmentFile::find(&path)?;
    if !existing.exists() {
        return finish(
            args,
            &account.name,
            &existing,
            Vec::new(),
            Vec::new(),
            false,
        );
    }
    let current = match args.what {
        // "all" removes the file even when it is unusable (a bad mode, a
        // damaged document): that is one way out of such a state.
        DisableWhat::All => enrollment_file::load(&path, &account)
            .ok()
            .flatten()
            .unwrap_or_default(),
        _ => enrollment_file::load_existing(&path, &account)?,
    };

    let mut remaining = current.clone();
    let mut disabled = Vec::new();
    if matches!(args.what, DisableWhat::Totp | DisableWhat::All) && remaining.totp.take().is_some()
    {
        disabled.push("totp");
    }
    if matches!(args.what, DisableWhat::BackupCodes | DisableWhat::All)
        && !remaining.backup_codes.is_empty()
    {
        remaining.backup_codes.clear();
        disabled.push("backup-codes");
    }
    let remove = args.what == DisableWhat::All || !remaining.has_any_method();
    if disabled.is_empty() && !remove {
        return finish(
            args,
            &account.name,
            &existing,
            Vec::new(),
            methods(&remaining),
            false,
        );
    }

    if let Some(terminal) = terminal.as_mut() {
        let consequence = if remove {
            match config.unenrolled {
                UnenrolledPolicy::Fail => {
                    "Nothing will be enrolled: this system requires a second factor, so \
                     logins through pam_twofactor will be refused until you enroll again."
                }
                UnenrolledPolicy::Ignore => {
                    "Nothing will be enrolled: logins will no longer ask for a second factor."
                }
            }
            .to_string()
        } else if remaining.totp.is_none() {
            "Only the backup codes will be left, each usable once.".to_string()
        } else {
            "Only TOTP codes from the app will be left; keep the phone safe.".to_string()
        };
        let user = &account.name;
        let (removed, question) = match args.what {
            DisableWhat::Totp => (
                format!(
                    "This removes the TOTP secret of {user}: the authenticator app entry \
                     stops working for good."
                ),
                format!("Disable TOTP for {user}?"),
            ),
            DisableWhat::BackupCodes => (
                format!("This removes the backup codes of {user}: none of them works any more."),
                format!("Disable the backup codes of {user}?"),
            ),
            DisableWhat::All => (
                format!(
                    "This removes every second factor of {user}: {}; {} is deleted.",
                    enrolled_methods(&current),
                    existing.source().display()
                ),
                format!("Remove all second factors of {user}?"),
            ),
        };
        terminal.say(&format!(
            "{removed} This cannot be undone.\n{consequence}\n"
        ))?;
        if !terminal.confirm(&question)? {
            return Err(CliError::Refused(
                "not confirmed; nothing was changed".into(),
            ));
        }
        terminal.check_interrupted()?;
    }

    if remove {
        enrollment_file::remove_all(&path)?;
    } else {
        enrollment_file::check_parent_dir(&path, &account)?;
        enrollment_file::save(&path, &account, &remaining)?;
    }
    let left = if remove {
        Vec::new()
    } else {
        methods(&remaining)
    };
    let reported = if remove {
        existing
    } else {
        // Saved: the enrollment is in the configured file now, whichever
        // file it was read from.
        EnrollmentFile::configured(&path)
    };
    finish(
        args,
        &account.name,
        &reported,
        disabled.clone(),
        left,
        remove,
    )?;

    let event = Event {
        name: EVENT_DISABLED,
        user: &account.name,
        by: &caller,
        details: format!(
            "what={} removed={}",
            if disabled.is_empty() {
                "none".to_string()
            } else {
                disabled.join(",")
            },
            if remove { "yes" } else { "no" }
        ),
        notify: true,
    };
    if let Some(warning) = events::announce(&config, &event) {
        output::warn(&warning);
    }
    Ok(())
}

/// `file`: the enrollment as it is now, or as it was when it was removed.
fn finish(
    args: &DisableArgs,
    user: &str,
    file: &EnrollmentFile,
    disabled: Vec<&'static str>,
    remaining: Vec<&'static str>,
    removed: bool,
) -> Result<(), CliError> {
    if args.json {
        return output::print(&output::json_line(&DisableReport {
            user,
            enrollment_path: file.source().to_string_lossy().into_owned(),
            disabled,
            remaining,
            removed,
        })?);
    }
    let text = if removed {
        let files = match file.leftover() {
            Some(leftover) => format!("{} and {}", file.path.display(), leftover.display()),
            None => file.source().display().to_string(),
        };
        format!("Disabled: {user} has no second factor enrolled any more ({files} removed).\n")
    } else if disabled.is_empty() {
        let what = match args.what {
            DisableWhat::Totp => "TOTP is",
            DisableWhat::BackupCodes => "backup codes are",
            DisableWhat::All => "nothing is",
        };
        format!("Nothing to disable: {what} not enrolled for {user}.\n")
    } else {
        format!(
            "Disabled {} for {user}; still enrolled: {}.\n",
            disabled.join(" and "),
            remaining.join(" and ")
        )
    };
    output::print(&text)
}
