//! The user's enrollment file: found through the configuration, read with
//! the module's own checks, replaced atomically (mode 0600), removed.
//!
//! Everything here runs after the switch to the user (see `account.rs`), so
//! the file is read and written with the user's rights only.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::unistd::{self, AccessFlags};

use twofactor_core::config::Config;
use twofactor_core::enrollment::{expand_path, Enrollment, MAX_ENROLLMENT_BYTES};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{
    self, atomic_write, describe_io_error, read_checked_text, FileRequirements,
};

use crate::account::Account;
use crate::error::CliError;

/// Where `account`'s enrollment lives under `config`.
pub fn path_of(config: &Config, account: &Account) -> Result<PathBuf, CliError> {
    Ok(expand_path(
        &config.enrollment_path,
        &account.name,
        &account.home,
    )?)
}

fn requirements(account: &Account) -> FileRequirements {
    FileRequirements::secret_of(account.uid.as_raw(), MAX_ENROLLMENT_BYTES)
}

/// Read the enrollment the way the module does (owner, mode, parent
/// directory, size, then parse). `Ok(None)`: there is none.
pub fn load(path: &Path, account: &Account) -> Result<Option<Enrollment>, twofactor_core::Error> {
    match read_checked_text(path, &requirements(account)) {
        Ok(text) => Enrollment::parse(&text, &path.display().to_string()).map(Some),
        Err(err) if err.is_missing_file() => Ok(None),
        Err(err) => Err(err),
    }
}

/// [`load`], for commands that change an existing enrollment: a missing
/// one is a refusal that says what to do.
pub fn load_existing(path: &Path, account: &Account) -> Result<Enrollment, CliError> {
    match load(path, account)? {
        Some(enrollment) => Ok(enrollment),
        None => Err(not_enrolled(path, account)),
    }
}

/// The refusal for a command that needs an enrollment.
pub fn not_enrolled(path: &Path, account: &Account) -> CliError {
    CliError::Refused(format!(
        "{} has no enrollment ({} does not exist); run 'twofactor enroll' first",
        account.name,
        path.display()
    ))
}

/// Does anything (file, symlink, even a dangling one) exist at `path`?
pub fn exists(path: &Path) -> Result<bool, CliError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(CliError::System(format!(
            "cannot check {}: {}",
            path.display(),
            describe_io_error(&err)
        ))),
    }
}

/// Missing directories are created private (0700): the enrollment's
/// directory is the user's, and its listing is nobody else's business.
pub fn create_parent_dirs(path: &Path) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|err| {
            CliError::System(format!(
                "cannot create {}: {}",
                parent.display(),
                describe_io_error(&err)
            ))
        })
}

/// The module refuses an enrollment whose directory others could write to
/// (the file could be swapped under it); refuse to write one there, rather
/// than hand out codes that will never work. Same rule as the module's.
pub fn check_parent_dir(path: &Path, account: &Account) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    files::check_parent(path, account.uid.as_raw()).map_err(|problem| match problem {
        FileProblem::Missing | FileProblem::Io(_) => {
            CliError::System(format!("cannot use {}: {problem}", parent.display()))
        }
        _ => CliError::Refused(format!(
            "{} is not a safe place for an enrollment ({problem}): pam_twofactor requires \
             its directory to be owned by root or by {} and not writable by group or others",
            path.display(),
            account.name
        )),
    })?;
    // Checked now, before anything is generated, so the failure is reported
    // plainly rather than through the temporary file's name.
    unistd::access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|err| {
        CliError::System(format!(
            "cannot write to {} as {}: {}",
            parent.display(),
            account.name,
            err.desc()
        ))
    })
}

/// Replace the file with `enrollment` (atomically, mode 0600), then read it
/// back the way the module will, so a success here means the codes work at
/// the next login.
pub fn save(path: &Path, account: &Account, enrollment: &Enrollment) -> Result<(), CliError> {
    atomic_write(path, enrollment.to_toml().as_bytes(), 0o600)?;
    let reread = load(path, account)?;
    if reread.as_ref() != Some(enrollment) {
        return Err(CliError::System(format!(
            "{} changed while it was being written; run the command again",
            path.display()
        )));
    }
    Ok(())
}

/// Remove the file (a symlink is removed, never followed).
pub fn remove(path: &Path) -> Result<(), CliError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(CliError::System(format!(
                "cannot remove {}: {}",
                path.display(),
                describe_io_error(&err)
            )))
        }
    }
    if let Some(parent) = path.parent() {
        // The removal must survive a crash like a replacement does.
        let _ = fs::File::open(parent).and_then(|dir| dir.sync_all());
    }
    Ok(())
}
