//! `twofactor fleet push` (root only): bring every account's replay
//! defences kept on this host (spent backup codes, accepted TOTP steps,
//! security-key counters) into the fleet's shared state at once, rather
//! than at each account's next login on this host. Until then a code spent
//! here could still be accepted on another host of the fleet.
//!
//! Each account goes through what a login does: the host's file is locked
//! (its aliases' files taken in), the account's lease is taken, the host's
//! defences are merged into the shared state (they only grow, so pushing
//! twice is harmless), and both are written. Failures, grace and resets are
//! not pushed: the shared state is their authority, and a host's stale copy
//! must not undo a reset made elsewhere.

use std::collections::BTreeMap;

use serde::Serialize;

use twofactor_core::config::StateBackend;
use twofactor_core::login_states::LoginStates;
use twofactor_core::shared_state::SharedStateError;
use twofactor_core::Error;

use crate::account;
use crate::cli::{FleetArgs, FleetCommand, FleetPushArgs};
use crate::error::{CliError, EXIT_SYSTEM};
use crate::output;
use crate::system_config;

/// Run `twofactor fleet ...`; returns the exit code.
pub fn run(args: &FleetArgs) -> Result<u8, CliError> {
    match &args.command {
        FleetCommand::Push(push_args) => push(push_args),
    }
}

#[derive(Serialize)]
struct PushReport {
    state_dir: String,
    /// Accounts whose defences are now in the shared state.
    pushed: usize,
    /// Of those, the ones whose newly pushed backup-code spends fewer
    /// replicas than `redis_wait_replicas` acknowledged (stored on the
    /// primary; a failover before they replicate loses them there).
    unconfirmed: Vec<Failed>,
    /// Accounts not pushed, and why.
    failed: Vec<Failed>,
    /// `.state` files that no user name encodes to: not this tool's, left
    /// alone.
    skipped_files: Vec<String>,
}

#[derive(Serialize)]
struct Failed {
    user: String,
    error: String,
}

/// One account to push: the name its state is kept under, the group that
/// may read its file, and the other names it was kept under on this host.
struct Target {
    reader_gid: Option<u32>,
    aliases: Vec<String>,
}

fn push(args: &FleetPushArgs) -> Result<u8, CliError> {
    account::require_root("push the login states to the fleet")?;
    let config = system_config::load(args.config.as_deref())?;
    if config.state_backend != StateBackend::Redis {
        return Err(CliError::Refused(format!(
            "the login state is this host's alone (state_backend = \"local\" in {}): there \
             is no fleet state to push to; set state_backend = \"redis\" first",
            shown_config(args)
        )));
    }
    let states = LoginStates::new(&config, 0);
    let (names, skipped_files) = states.local().stored_users()?;
    let mut report = PushReport {
        state_dir: config.state_dir.clone(),
        pushed: 0,
        unconfirmed: Vec::new(),
        failed: Vec::new(),
        skipped_files,
    };

    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    for name in names {
        match twofactor_core::account::by_name(&name) {
            Ok(Some(user)) => {
                let target = targets.entry(user.state_name.clone()).or_insert(Target {
                    reader_gid: Some(user.gid),
                    aliases: Vec::new(),
                });
                if name != user.state_name {
                    target.aliases.push(name);
                }
            }
            // A removed account's file is pushed under its own name: its
            // defences are harmless to keep, and the name may come back
            // (or be served by a directory that is down right now).
            Ok(None) => {
                targets.entry(name).or_insert(Target {
                    reader_gid: None,
                    aliases: Vec::new(),
                });
            }
            Err(err) => report.failed.push(Failed {
                user: name,
                error: err.to_string(),
            }),
        }
    }

    for (name, target) in &targets {
        match push_one(&states, name, target) {
            Ok(()) => report.pushed += 1,
            Err(Error::SharedState(why @ SharedStateError::NotConfirmed { .. })) => {
                report.pushed += 1;
                report.unconfirmed.push(Failed {
                    user: name.clone(),
                    error: why.to_string(),
                });
            }
            // No server: every other account would wait for it in vain.
            Err(Error::SharedState(why)) if why.is_unreachable() => {
                return Err(CliError::System(format!(
                    "the fleet's shared state cannot be reached ({why}): {} of {} accounts \
                     pushed before {} (pushing again is harmless)",
                    report.pushed,
                    targets.len(),
                    shown(name)
                )));
            }
            Err(err) => report.failed.push(Failed {
                user: name.clone(),
                error: err.to_string(),
            }),
        }
    }

    if args.json {
        output::print(&output::json_line(&report)?)?;
    } else {
        output::print(&report.text())?;
    }
    Ok(
        if report.failed.is_empty() && report.unconfirmed.is_empty() {
            0
        } else {
            EXIT_SYSTEM
        },
    )
}

fn shown_config(args: &FleetPushArgs) -> String {
    args.config.as_deref().map_or_else(
        || twofactor_core::config::DEFAULT_CONFIG_PATH.to_string(),
        |p| p.display().to_string(),
    )
}

/// Push one account as a login would store it: host lock, aliases, lease.
fn push_one(states: &LoginStates, name: &str, target: &Target) -> Result<(), Error> {
    let store = states.local();
    let mut locked = store.lock_for_repair(name, 0, target.reader_gid)?;
    for alias in &target.aliases {
        store.absorb_alias(&mut locked, alias, 0)?;
    }
    let mut held = states.hold(locked, name, output::now().unwrap_or(0))?;
    if let Some(why) = held.fallback.take() {
        // `redis_unavailable = "local"` let the host's state stand in:
        // nothing would reach the fleet.
        return Err(why.into());
    }
    held.save()
}

/// A user name as the text shows it: one taken from a file name may hold
/// any character, and must not start a line of its own or reach the
/// terminal as a control sequence.
fn shown(user: &str) -> String {
    twofactor_core::audit::escape_control_chars(user).into_owned()
}

impl PushReport {
    fn text(&self) -> String {
        let mut out = format!(
            "Pushed the replay defences of {} account{} from {} to the fleet's shared state.\n",
            self.pushed,
            if self.pushed == 1 { "" } else { "s" },
            self.state_dir
        );
        for entry in &self.unconfirmed {
            out.push_str(&format!(
                "  {}: pushed, not confirmed: {}\n",
                shown(&entry.user),
                entry.error
            ));
        }
        for entry in &self.failed {
            out.push_str(&format!(
                "  {}: NOT pushed: {}\n",
                shown(&entry.user),
                entry.error
            ));
        }
        for file in &self.skipped_files {
            out.push_str(&format!(
                "  {file}: skipped (no user name is stored under that file name)\n"
            ));
        }
        if !self.unconfirmed.is_empty() {
            out.push_str(
                "Unconfirmed spends are on the primary only until its replicas catch up: a \
                 failover before then loses them there (this host's files keep them); \
                 'twofactor doctor' checks the replicas.\n",
            );
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(
                "{} account{} not pushed: each still pushes itself at its next login on \
                 this host; fix the cause and run 'twofactor fleet push' again.\n",
                self.failed.len(),
                if self.failed.len() == 1 { "" } else { "s" }
            ));
        }
        out
    }
}
