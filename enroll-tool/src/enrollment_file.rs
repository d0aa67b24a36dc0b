//! The user's enrollment file: found through the configuration, read with
//! the module's own checks, replaced atomically (mode 0600), removed.
//!
//! Everything here runs after the switch to the user (see `account.rs`), so
//! the file is read and written with the user's rights only.
//!
//! Enrollments made before the default file became `enrollment.json` are in
//! `enrollment.toml` beside it (the legacy file). The rule is the module's:
//! the legacy file is read only when the configured file does not exist;
//! every change writes the configured file and then removes the legacy one,
//! so an enrollment moves at its next change.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::unistd::{self, AccessFlags};

use twofactor_core::config::Config;
use twofactor_core::enrollment::{
    expand_path, legacy_path, read_with_legacy, Enrollment, EnrollmentFormat,
};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{self, atomic_write, describe_io_error};

use crate::account::Account;
use crate::error::CliError;
use crate::output;

/// Where `account`'s enrollment lives under `config`.
pub fn path_of(config: &Config, account: &Account) -> Result<PathBuf, CliError> {
    Ok(expand_path(
        &config.enrollment_path,
        &account.name,
        &account.home,
    )?)
}

/// Read the enrollment the way the module does (owner, mode, every
/// directory from the home down, size, then parse), from the legacy file
/// when `path` does not exist. `Ok(None)`: there is none.
pub fn load(path: &Path, account: &Account) -> Result<Option<Enrollment>, twofactor_core::Error> {
    read_with_legacy(path, |file| read(file, account))
}

fn read(path: &Path, account: &Account) -> Result<Option<Enrollment>, twofactor_core::Error> {
    twofactor_core::enrollment::read_file(path, account.uid.as_raw(), &account.home)
}

/// Which of an enrollment's files exist: the configured one and the legacy
/// one beside it. For deciding whether there is an enrollment to replace,
/// and for naming the file that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentFile {
    /// The configured file: every change writes it.
    pub path: PathBuf,
    /// Something (even a dangling symlink) is at `path`.
    pub path_exists: bool,
    /// The legacy file, when one exists.
    pub legacy: Option<PathBuf>,
}

impl EnrollmentFile {
    /// Look at both files.
    pub fn find(path: &Path) -> Result<Self, CliError> {
        let path_exists = exists(path)?;
        let legacy = match legacy_path(path) {
            Some(legacy) if exists(&legacy)? => Some(legacy),
            _ => None,
        };
        Ok(EnrollmentFile {
            path: path.to_path_buf(),
            path_exists,
            legacy,
        })
    }

    /// The configured file alone: for reports when the files cannot even be
    /// looked at ([`load`] then reads `path` and says what is wrong), and
    /// after a change has been saved there.
    pub fn configured(path: &Path) -> Self {
        EnrollmentFile {
            path: path.to_path_buf(),
            path_exists: true,
            legacy: None,
        }
    }

    /// Is there an enrollment, in either file?
    pub fn exists(&self) -> bool {
        self.path_exists || self.legacy.is_some()
    }

    /// The file [`load`] reads: `path`, unless only the legacy file exists.
    pub fn source(&self) -> &Path {
        self.legacy_in_use().unwrap_or(&self.path)
    }

    /// The legacy file, when it holds the enrollment (`path` does not exist).
    pub fn legacy_in_use(&self) -> Option<&Path> {
        self.legacy.as_deref().filter(|_| !self.path_exists)
    }

    /// The legacy file, when `path` exists too: a leftover, ignored.
    pub fn leftover(&self) -> Option<&Path> {
        self.legacy.as_deref().filter(|_| self.path_exists)
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

/// The module refuses an enrollment in a directory that others could
/// change, from the home down (the file could be swapped or moved away);
/// refuse to write one there, rather than hand out codes that will never
/// work. Same rule as the module's, through the same function.
pub fn check_parent_dir(path: &Path, account: &Account) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    unsafe_directory(path, account)?;
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

/// The refusal for an enrollment path whose directories the module would
/// not accept ([`files::open_user_dir`]); `Ok` also when a directory is
/// missing, as long as the ones above it are safe: it can be created.
pub fn unsafe_directory(path: &Path, account: &Account) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match files::open_user_dir(parent, &account.home, account.uid.as_raw()) {
        Ok(_) | Err(FileProblem::Missing) => Ok(()),
        Err(problem) => Err(refusal(path, parent, account, problem)),
    }
}

fn refusal(path: &Path, parent: &Path, account: &Account, problem: FileProblem) -> CliError {
    match problem {
        FileProblem::Missing | FileProblem::Io(_) => {
            CliError::System(format!("cannot use {}: {problem}", parent.display()))
        }
        // Like every file that fails a safety check: a system error (exit
        // 2), fixed on the system (chmod, chown), not by asking differently.
        _ => CliError::System(format!(
            "{} is not a safe place for an enrollment ({problem}): pam_twofactor requires \
             every directory from the home (or from the first directory {} owns) down to \
             it to be owned by root or by {} and not writable by group or others",
            path.display(),
            account.name,
            account.name
        )),
    }
}

/// Replace the file with `enrollment` (atomically, mode 0600, in the format
/// its name calls for), then read it back the way the module will, so a
/// success here means the codes work at the next login. A legacy file is
/// removed afterwards: ignored from now on, it would only keep old secrets.
pub fn save(path: &Path, account: &Account, enrollment: &Enrollment) -> Result<(), CliError> {
    let text = enrollment.to_text(EnrollmentFormat::for_path(path));
    atomic_write(path, text.as_bytes(), 0o600)?;
    let reread = read(path, account)?;
    if reread.as_ref() != Some(enrollment) {
        return Err(CliError::System(format!(
            "{} changed while it was being written; run the command again",
            path.display()
        )));
    }
    if let Some(legacy) = legacy_path(path) {
        // A warning, not an error: the change is made and in use, and
        // failing now would hide what the command has to show (new codes).
        if let Err(err) = remove(&legacy) {
            output::warn(&format!(
                "{}; the enrollment was written to {}, which is the one used, so {} is \
                 ignored: delete it",
                err.message(),
                path.display(),
                legacy.display()
            ));
        }
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

/// Remove the enrollment: the file and a legacy one beside it.
pub fn remove_all(path: &Path) -> Result<(), CliError> {
    remove(path)?;
    match legacy_path(path) {
        Some(legacy) => remove(&legacy),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_file_is_used_only_without_the_configured_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrollment.json");
        let legacy = dir.path().join("enrollment.toml");

        let none = EnrollmentFile::find(&path).unwrap();
        assert!(!none.exists());
        assert_eq!(none.source(), path);

        fs::write(&legacy, "").unwrap();
        let old = EnrollmentFile::find(&path).unwrap();
        assert!(old.exists());
        assert_eq!(old.source(), legacy);
        assert_eq!(old.legacy_in_use(), Some(legacy.as_path()));
        assert_eq!(old.leftover(), None);

        fs::write(&path, "").unwrap();
        let both = EnrollmentFile::find(&path).unwrap();
        assert_eq!(both.source(), path);
        assert_eq!(both.legacy_in_use(), None);
        assert_eq!(both.leftover(), Some(legacy.as_path()));

        remove_all(&path).unwrap();
        assert!(!EnrollmentFile::find(&path).unwrap().exists());
    }

    #[test]
    fn only_the_default_file_name_has_a_legacy_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.json");
        fs::write(dir.path().join("enrollment.toml"), "").unwrap();
        fs::write(dir.path().join("alice.toml"), "").unwrap();
        let found = EnrollmentFile::find(&path).unwrap();
        assert!(!found.exists());
        assert_eq!(found.legacy, None);
    }
}
