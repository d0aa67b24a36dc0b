//! `twofactor reset-lockout --user NAME` (root only): forget the user's
//! failed attempts in the root-owned login state, under the same per-user
//! lock the module takes, so a concurrent login cannot lose the change.
//! Replay protection and spent backup codes are kept.

use serde::Serialize;

use twofactor_core::state::StateStore;

use crate::account;
use crate::cli::ResetLockoutArgs;
use crate::error::CliError;
use crate::events::{self, Event};
use crate::output;
use crate::system_config;

#[derive(Serialize)]
struct ResetReport<'a> {
    user: &'a str,
    /// Failure records removed (0: there were none).
    cleared_failures: usize,
}

/// Run `twofactor reset-lockout`.
pub fn run(args: &ResetLockoutArgs) -> Result<(), CliError> {
    account::require_root("reset a lockout")?;
    let config = system_config::load(args.config.as_deref())?;
    let user = account::by_name(&args.user)?;
    let state_name = &user.state_name;
    let store = StateStore::new(&config.state_dir);
    let exists = |name: &str| store.state_path(name).exists();
    let cleared = if exists(state_name) || exists(&user.name) {
        // Read even a file grown too large for a login (failures recorded
        // with huge origins by earlier versions), so that it can be repaired
        // without losing the replay protection it holds.
        let mut locked = store.lock_for_repair(state_name, 0, Some(user.gid.as_raw()))?;
        if *state_name != user.name {
            store.absorb_alias(&mut locked, &user.name, 0)?;
        }
        let count = locked
            .state
            .clear_failures(&account::caller_name(), output::now()?);
        if count > 0 {
            locked.save()?;
        }
        count
    } else {
        0
    };

    if args.json {
        output::print(&output::json_line(&ResetReport {
            user: &user.name,
            cleared_failures: cleared,
        })?)?;
    } else if cleared == 0 {
        output::print(&format!(
            "No failed attempts recorded for {}; nothing to reset.\n",
            user.name
        ))?;
    } else {
        output::print(&format!(
            "Cleared {cleared} failed attempt{} of {}: codes and backup codes are accepted \
             again.\n",
            if cleared == 1 { "" } else { "s" },
            user.name
        ))?;
    }
    if cleared > 0 {
        let caller = account::caller_name();
        let event = Event {
            name: "lockout-reset",
            user: &user.name,
            by: &caller,
            details: format!("cleared_failures={cleared}"),
            notify: false,
        };
        events::announce(&config, &event);
    }
    Ok(())
}
