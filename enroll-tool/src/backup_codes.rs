//! `twofactor backup-codes`: ten new backup codes replace the old ones
//! (which stop working at once), after confirmation.

use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::backup;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::notify::EVENT_BACKUP_CODES_REGENERATED;
use twofactor_core::verify::remaining_backup_codes;

use crate::account;
use crate::cli::BackupCodesArgs;
use crate::enrollment_file;
use crate::error::CliError;
use crate::events::{self, Event};
use crate::login_state::StateView;
use crate::output;
use crate::system_config;
use crate::terminal::{Terminal, NOTHING_CHANGED};

#[derive(Serialize)]
struct CodesReport<'a> {
    user: &'a str,
    enrollment_path: String,
    backup_codes: Vec<&'a str>,
}

/// Run `twofactor backup-codes`.
pub fn run(args: &BackupCodesArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let state = StateView::read(&config, &account.state_name, output::now()?).state();
    let mut terminal = if args.yes {
        None
    } else {
        Some(Terminal::open(
            "to ask for confirmation on",
            "add --yes to replace the backup codes without asking",
            NOTHING_CHANGED,
        )?)
    };

    account::become_user(&account)?;
    let old = enrollment_file::load_existing(&path, &account)?;

    if let Some(terminal) = terminal.as_mut() {
        let unused = match (&state, old.backup_codes.len()) {
            (_, 0) => "You have no backup codes now.".to_string(),
            (Some(state), total) => format!(
                "Your {total} current backup codes ({} not used yet) stop working.",
                remaining_backup_codes(&old, state)
            ),
            (None, total) => format!("Your {total} current backup codes stop working."),
        };
        terminal.say(&format!(
            "This makes {} new backup codes for {}. {unused}\n",
            backup::DEFAULT_COUNT,
            account.name
        ))?;
        if !terminal.confirm("Make new backup codes?")? {
            return Err(CliError::Refused(
                "not confirmed; the backup codes are unchanged".into(),
            ));
        }
        terminal.check_interrupted()?;
    }

    let codes = backup::generate(backup::DEFAULT_COUNT);
    let new = Enrollment {
        totp: old.totp.clone(),
        backup_codes: codes.iter().map(|code| code.stored.clone()).collect(),
        ..old.clone()
    };
    enrollment_file::check_parent_dir(&path, &account)?;
    enrollment_file::save(&path, &account, &new)?;

    let shown: Zeroizing<String> = if args.json {
        output::json_line(&CodesReport {
            user: &account.name,
            enrollment_path: path.to_string_lossy().into_owned(),
            backup_codes: codes.iter().map(|code| code.display.as_str()).collect(),
        })?
    } else {
        let mut text = Zeroizing::new(String::with_capacity(4096));
        text.push_str(&format!(
            "New backup codes for {} (the old ones no longer work). Each works once.\n\
             Store them somewhere safe now (a password manager, or on paper): they are not \
             shown again.\n",
            account.name
        ));
        for code in &codes {
            // Pieces, not format!: no unwiped temporary holds a code.
            text.push_str("  ");
            text.push_str(&code.display);
            text.push('\n');
        }
        text
    };
    output::print(&shown).map_err(|err| {
        CliError::System(format!(
            "new backup codes were written to {}, but could not be shown ({}); run the \
             command again",
            path.display(),
            err.message()
        ))
    })?;

    let event = Event {
        name: EVENT_BACKUP_CODES_REGENERATED,
        user: &account.name,
        by: &caller,
        details: format!("backup_codes={}", codes.len()),
        notify: true,
    };
    if let Some(warning) = events::announce(&config, &event) {
        output::warn(&warning);
    }
    Ok(())
}
