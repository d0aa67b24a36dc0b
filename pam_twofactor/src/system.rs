//! The system around the flow: user accounts and reading enrollments. Behind
//! a trait so the flow can be tested without root or real accounts.
#![forbid(unsafe_code)]

use std::path::Path;

use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::error::FileProblem;
use twofactor_core::origin::{session_from_stat, start_time_from_stat, TerminalSession};
use twofactor_core::state::local_names_of_uid;
use twofactor_core::Error;

use crate::identity::FsIdentity;

/// A local account (looked up as `twofactor` looks it up).
pub use twofactor_core::account::Account;

/// What the flow needs from the operating system.
pub trait System {
    /// Look up an account by name (None: no such user).
    fn account(&self, name: &str) -> Result<Option<Account>, Error>;
    /// Read and parse the enrollment at `path` as `account`.
    /// `Ok(None)` means there is none.
    fn enrollment(&self, account: &Account, path: &Path) -> Result<Option<Enrollment>, Error>;
    /// uid that must own the state directory and files (the process's euid).
    fn state_owner(&self) -> u32;
    /// The configuration file at `path` (`explicit`: named with `config=`).
    fn configuration(&self, path: &Path, explicit: bool) -> Result<Config, Error>;
    /// The terminal session this login runs in (for the grace period of
    /// local logins); `None` when it cannot be told.
    fn terminal_session(&self) -> Option<TerminalSession>;
    /// The names the local account files give `uid` (its aliases).
    fn local_names_of_uid(&self, uid: u32) -> Vec<String>;
    /// This machine's name (local logins' grace is scoped by it, since a
    /// fleet shares the state).
    fn host_name(&self) -> String;
}

/// The real operating system.
pub struct HostSystem;

impl System for HostSystem {
    fn account(&self, name: &str) -> Result<Option<Account>, Error> {
        twofactor_core::account::by_name(name)
    }

    fn enrollment(&self, account: &Account, path: &Path) -> Result<Option<Enrollment>, Error> {
        let _identity = FsIdentity::switch(account.uid, account.gid).map_err(|_| {
            Error::file(
                path,
                FileProblem::Io("cannot take the user's file-system identity".into()),
            )
        })?;
        // Every directory from the home down is checked: one that others can
        // write fails the login even when the file is not there.
        twofactor_core::enrollment::read_file(path, account.uid, &account.home)
    }

    fn state_owner(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn configuration(&self, path: &Path, explicit: bool) -> Result<Config, Error> {
        twofactor_core::config::load(path, !explicit)
    }

    fn local_names_of_uid(&self, uid: u32) -> Vec<String> {
        std::fs::read_to_string("/etc/passwd")
            .map(|passwd| local_names_of_uid(&passwd, uid))
            .unwrap_or_default()
    }

    fn host_name(&self) -> String {
        twofactor_core::account::host_name()
    }

    fn terminal_session(&self) -> Option<TerminalSession> {
        // Both numbers come from /proc, not getsid(2): /proc may belong to
        // another PID namespace than this process, and its own view is the
        // one its /proc/PID paths are named in.
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let id = session_from_stat(&own)?;
        let leader = std::fs::read_to_string(format!("/proc/{id}/stat")).ok()?;
        Some(TerminalSession {
            id,
            leader_start: start_time_from_stat(&leader)?,
        })
    }
}
