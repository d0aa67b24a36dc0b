//! What the programs the module starts inherit from the process that loaded
//! it: a secret the host holds open without close-on-exec, and a script
//! that records the descriptors it was started with.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libtest_mimic::Failed;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use crate::checks::ensure;

/// The lowest number the copy of the secret gets.
pub const LEAKED_AT: RawFd = 77;

/// A root-only file the test process holds open the way a careless
/// application or another PAM module would: without close-on-exec, once
/// under the number `open` gave it and once as a copy numbered
/// [`LEAKED_AT`] or above.
pub struct LeakedSecret {
    /// The file's path, as `/proc/PID/fd` shows it.
    pub path: PathBuf,
    file: File,
    copy: OwnedFd,
}

impl LeakedSecret {
    /// Create `path` (mode 0600) and hold it open as described.
    pub fn open(path: &Path) -> Self {
        fs::write(path, "root's secret\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        let file = File::open(path).unwrap();
        fcntl(file.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        // F_DUPFD (unlike F_DUPFD_CLOEXEC) leaves the copy inheritable.
        let raw = fcntl(file.as_raw_fd(), FcntlArg::F_DUPFD(LEAKED_AT)).unwrap();
        // SAFETY: F_DUPFD just returned `raw`, a new descriptor nothing else
        // owns.
        let copy = unsafe { OwnedFd::from_raw_fd(raw) };
        LeakedSecret {
            path: path.to_path_buf(),
            file,
            copy,
        }
    }

    /// The two descriptor numbers.
    pub fn numbers(&self) -> [RawFd; 2] {
        [self.file.as_raw_fd(), self.copy.as_raw_fd()]
    }
}

/// Write an executable `/bin/sh` script at `script` that lists the
/// descriptors it was started with into `listing`, then runs `then`.
///
/// The listing is made by a subshell (`$$` stays the script's process), so
/// the shell does not move its standard output aside for the redirection:
/// it shows the standard streams as received, plus the shell's own
/// descriptor of the script.
pub fn write_listing_script(script: &Path, listing: &Path, then: &str) {
    fs::write(
        script,
        format!(
            "#!/bin/sh\n(ls -l /proc/$$/fd) > {}\n{then}\n",
            listing.display()
        ),
    )
    .unwrap();
    fs::set_permissions(script, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The listing written by a script of [`write_listing_script`]: each
/// descriptor and what it refers to.
pub fn read_listing(listing: &Path) -> Result<BTreeMap<RawFd, String>, Failed> {
    let text = fs::read_to_string(listing)
        .map_err(|e| format!("{} was not written: {e}", listing.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, target) = line.split_once(" -> ")?;
            let fd = left.rsplit(' ').next()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .collect())
}

/// The program held exactly its three standard streams, each accepted by
/// `standard[fd]`, and the shell's own descriptor of `script`: none of the
/// `secret`'s descriptors, and nothing else of the test process.
pub fn check_standard_streams_only(
    seen: &BTreeMap<RawFd, String>,
    standard: [&dyn Fn(&str) -> bool; 3],
    script: &Path,
    secret: &LeakedSecret,
) -> Result<(), Failed> {
    let secret_path = secret.path.to_string_lossy();
    ensure(!seen.values().any(|target| *target == secret_path), || {
        format!("the secret reached the program: {seen:?}")
    })?;
    for number in secret.numbers() {
        ensure(!seen.contains_key(&number), || {
            format!("descriptor {number} reached the program: {seen:?}")
        })?;
    }
    for (fd, accepted) in standard.iter().enumerate() {
        let target = seen.get(&(fd as RawFd));
        ensure(target.is_some_and(|t| accepted(t)), || {
            format!("standard stream {fd} is {target:?}: {seen:?}")
        })?;
    }
    let script = script.to_string_lossy();
    let others: Vec<(&RawFd, &String)> = seen.iter().filter(|(fd, _)| **fd > 2).collect();
    ensure(
        others.len() <= 1 && others.iter().all(|(_, target)| **target == script),
        || format!("the program held more than its standard streams: {seen:?}"),
    )
}
