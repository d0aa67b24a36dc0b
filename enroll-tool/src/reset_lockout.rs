//! `twofactor reset-lockout --user NAME` (root only): forget the user's
//! failed attempts in the root-owned login state, under the same per-user
//! lock the module takes, so a concurrent login cannot lose the change.
//! Replay protection and spent backup codes are kept.
//!
//! With `state_backend = "redis"` the failures that count are the fleet's
//! (the shared state is their authority): they are cleared under the
//! account's lease as well as the host's lock, and the reset is written to
//! both, so it holds on every host at once. A shared state that cannot be
//! reached is an error even with `redis_unavailable = "local"`: clearing
//! only this host's copy would change nothing the fleet enforces.

use serde::Serialize;

use twofactor_core::config::StateBackend;
use twofactor_core::login_states::LoginStates;
use twofactor_core::shared_state::SharedStateError;

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
    let states = LoginStates::new(&config, 0);
    let store = states.local();
    let exists = |name: &str| store.state_path(name).exists();
    // The shared state may hold failures this host never saw.
    let shared = config.state_backend == StateBackend::Redis;
    let cleared = if shared || exists(state_name) || exists(&user.name) {
        // Read even a file grown too large for a login (failures recorded
        // with huge origins by earlier versions), so that it can be repaired
        // without losing the replay protection it holds.
        let mut locked = store.lock_for_repair(state_name, 0, Some(user.gid.as_raw()))?;
        if *state_name != user.name {
            store.absorb_alias(&mut locked, &user.name, 0)?;
        }
        let not_reached = |why: &dyn std::fmt::Display| {
            CliError::System(format!(
                "the fleet's shared login state cannot be reached ({why}), so {}'s \
                 failures cannot be cleared; nothing was changed",
                user.name
            ))
        };
        let mut held =
            states
                .hold(locked, state_name, output::now()?)
                .map_err(|err| match err {
                    twofactor_core::Error::SharedState(why) if why.is_unreachable() => {
                        not_reached(&why)
                    }
                    other => other.into(),
                })?;
        if let Some(why) = &held.fallback {
            return Err(not_reached(why));
        }
        // On the state's clock (the shared server's with Redis), as every
        // other time in it.
        let count = held.state.clear_failures(&account::caller_name(), held.now);
        if count > 0 {
            match held.save() {
                Ok(()) => {}
                // The save also brought this host's spent codes along, and
                // the replicas did not confirm those in time: the reset
                // itself is stored, so it is done; the shortfall is the
                // replicas' (twofactor doctor).
                Err(twofactor_core::Error::SharedState(
                    why @ SharedStateError::NotConfirmed { .. },
                )) => output::warn(&format!("the reset is stored, but {why}")),
                Err(err) => return Err(err.into()),
            }
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
