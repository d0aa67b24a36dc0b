//! The system around the flow: user accounts and reading enrollments. Behind
//! a trait so the flow can be tested without root or real accounts.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use nix::unistd::User;
use twofactor_core::enrollment::{Enrollment, MAX_ENROLLMENT_BYTES};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{self, FileRequirements};
use twofactor_core::origin::{start_time_from_stat, TerminalSession};
use twofactor_core::state::{local_names_of_uid, state_name};
use twofactor_core::Error;

use crate::identity::FsIdentity;

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// The name the login state is kept under: the first name the system
    /// gives the uid, so that every alias of an account (`useradd -o`)
    /// shares one replay and failure state with it.
    pub state_name: String,
}

/// What the flow needs from the operating system.
pub trait System {
    /// Look up an account by name (None: no such user).
    fn account(&self, name: &str) -> Result<Option<Account>, Error>;
    /// Read and parse the enrollment at `path` as `account`.
    /// `Ok(None)` means there is none.
    fn enrollment(&self, account: &Account, path: &Path) -> Result<Option<Enrollment>, Error>;
    /// uid that must own the state directory and files (the process's euid).
    fn state_owner(&self) -> u32;
    /// The terminal session this login runs in (for the grace period of
    /// local logins); `None` when it cannot be told.
    fn terminal_session(&self) -> Option<TerminalSession>;
    /// The names the local account files give `uid` (its aliases).
    fn local_names_of_uid(&self, uid: u32) -> Vec<String>;
}

/// The real operating system.
pub struct HostSystem;

impl System for HostSystem {
    fn account(&self, name: &str) -> Result<Option<Account>, Error> {
        let failed = |errno: nix::Error| {
            Error::Config(format!("looking up the user failed: {}", errno.desc()))
        };
        let Some(user) = User::from_name(name).map_err(failed)? else {
            return Ok(None);
        };
        // An alias resolves to the uid's first name; a uid the system cannot
        // name back (odd NSS setups) keeps the name it was found by.
        let name_of_uid = User::from_uid(user.uid).map_err(failed)?.map(|u| u.name);
        let state_name = state_name(&user.name, name_of_uid);
        Ok(Some(Account {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            state_name,
        }))
    }

    fn enrollment(&self, account: &Account, path: &Path) -> Result<Option<Enrollment>, Error> {
        let text = {
            let _identity = FsIdentity::switch(account.uid, account.gid).map_err(|_| {
                Error::file(
                    path,
                    FileProblem::Io("cannot take the user's file-system identity".into()),
                )
            })?;
            let requirements = FileRequirements::secret_of(account.uid, MAX_ENROLLMENT_BYTES);
            // Every directory from the home down is checked: one that others
            // can write fails the login even when the file is not there.
            match files::read_user_file_text(path, &account.home, &requirements) {
                Ok(text) => text,
                Err(e) if e.is_missing_file() => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        Enrollment::parse(&text, &path.display().to_string()).map(Some)
    }

    fn state_owner(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn local_names_of_uid(&self, uid: u32) -> Vec<String> {
        std::fs::read_to_string("/etc/passwd")
            .map(|passwd| local_names_of_uid(&passwd, uid))
            .unwrap_or_default()
    }

    fn terminal_session(&self) -> Option<TerminalSession> {
        let id = nix::unistd::getsid(None).ok()?.as_raw();
        let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).ok()?;
        Some(TerminalSession {
            id: u32::try_from(id).ok()?,
            leader_start: start_time_from_stat(&stat)?,
        })
    }
}
