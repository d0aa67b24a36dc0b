//! The system around the flow: user accounts and reading enrollments. Behind
//! a trait so the flow can be tested without root or real accounts.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use nix::unistd::User;
use twofactor_core::enrollment::{Enrollment, MAX_ENROLLMENT_BYTES};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{self, FileRequirements};
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
}

/// The real operating system.
pub struct HostSystem;

impl System for HostSystem {
    fn account(&self, name: &str) -> Result<Option<Account>, Error> {
        match User::from_name(name) {
            Ok(Some(user)) => Ok(Some(Account {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                home: user.dir,
            })),
            Ok(None) => Ok(None),
            Err(errno) => Err(Error::Config(format!(
                "looking up the user failed: {}",
                errno.desc()
            ))),
        }
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
}
