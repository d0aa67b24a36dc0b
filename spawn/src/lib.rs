//! Child processes that inherit their standard streams and nothing else.
//!
//! A program started with [`std::process::Command`] inherits every
//! descriptor of its parent that is not marked close-on-exec. The PAM module
//! runs inside sshd, login or su, next to other modules and application code
//! that may hold files open without that flag (`/etc/shadow`, sockets,
//! pipes); the `twofactor` command runs `notify_command` as the user it acts
//! for, who may ptrace that child and read through whatever it inherited.
//! [`StandardStreamsOnly::standard_streams_only`] marks every descriptor
//! from 3 up close-on-exec in the child, after std has set up its standard
//! streams and before the new program starts, so the program gets exactly
//! descriptors 0, 1 and 2. The parent's descriptors are not touched: the
//! child works on its own copy of the descriptor table.
//!
//! Why a crate of its own: this needs `CommandExt::pre_exec`, which is
//! `unsafe` (its closure runs in the forked copy of a possibly multithreaded
//! process, where another thread may have held any lock at the fork), and
//! raw system calls. `twofactor-core` is `#![forbid(unsafe_code)]`, which no
//! inner `allow` can lift, and the core (`notify_command`), the module (the
//! FIDO2 helper) and the `twofactor` command (`sshd -T`) all start
//! children. One small crate whose only job is this keeps that `unsafe`
//! code in a single place to review, as `pam_twofactor/src/pam/` does for
//! libpam; everything that uses it stays free of `unsafe`.
//!
//! Why mark rather than close: std reports a failed `exec` to the parent
//! through a close-on-exec pipe opened before the fork. Closing it would
//! turn a missing program into an apparently successful start; marked, it
//! stays open until the `exec` succeeds, and a failure is still a spawn
//! error.
//!
//! Why the raw `close_range` system call and not glibc's function: the
//! function exists since glibc 2.34 only, and linking it would keep the
//! module from loading on older systems, the very ones whose kernels lack
//! the call. Those kernels (before Linux 5.11: ENOSYS before 5.9, EINVAL for
//! the CLOSE_RANGE_CLOEXEC flag in 5.9 and 5.10), and a seccomp filter that
//! refuses the call, get the slower way: `fcntl(FD_CLOEXEC)` on each
//! descriptor from 3 up to the soft `RLIMIT_NOFILE` limit, above which no
//! descriptor can be opened. The one it could miss is a descriptor opened
//! before the process lowered that limit below it. When even that fails,
//! the closure returns the error and the spawn fails: no child starts with
//! more than it should have.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use libc::{c_int, c_long, c_uint};

/// The lowest descriptor that is not a standard stream.
const FIRST_AFTER_STANDARD_STREAMS: c_int = 3;

/// Starting a command with its standard streams as its only descriptors.
pub trait StandardStreamsOnly {
    /// Let the program inherit descriptors 0, 1 and 2 (as set with
    /// `stdin`, `stdout` and `stderr`) and no other. When that cannot be
    /// ensured, `spawn` fails with the reason instead of starting it.
    fn standard_streams_only(&mut self) -> &mut Self;
}

impl StandardStreamsOnly for Command {
    fn standard_streams_only(&mut self) -> &mut Command {
        fence(self, mark_all_after_standard_streams)
    }
}

/// Run `mark` in the child just before `exec`.
fn fence(command: &mut Command, mark: fn() -> io::Result<()>) -> &mut Command {
    // SAFETY: `mark` runs between fork and exec, where only async-signal-safe
    // work is sound. It is one of the functions below: they make system
    // calls (close_range, getrlimit, fcntl) on integers and a local
    // `rlimit`, allocate nothing, take no lock, and touch no memory shared
    // with the parent; errors come back as `io::Error::last_os_error()`,
    // which only reads errno.
    unsafe { command.pre_exec(mark) }
}

fn mark_all_after_standard_streams() -> io::Result<()> {
    // Any failure of close_range (old kernel, seccomp) leaves every flag as
    // it was, and the loop does the same job.
    mark_with_close_range().or_else(|_| mark_each_below_open_limit())
}

fn mark_with_close_range() -> io::Result<()> {
    // SAFETY: close_range(first, last, flags) takes integers only and, with
    // CLOSE_RANGE_CLOEXEC, sets a flag on this process's descriptors.
    // Arguments are passed as `c_long`, the width `syscall` reads them at.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            FIRST_AFTER_STANDARD_STREAMS as c_long,
            c_uint::MAX as c_long,
            libc::CLOSE_RANGE_CLOEXEC as c_long,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mark_each_below_open_limit() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the local it is given; in
    // glibc it is the prlimit64 system call and nothing more.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Linux keeps the limit at or below fs.nr_open (at most 2^31 - 64), so
    // the conversion only saturates for a value the kernel never reports.
    let end = c_int::try_from(limit.rlim_cur).unwrap_or(c_int::MAX);
    for fd in FIRST_AFTER_STANDARD_STREAMS..end {
        // SAFETY: F_GETFD takes no third argument and reads the flags of
        // `fd`; a number that is not an open descriptor gives EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: F_SETFD with an integer sets the flags of this process's
        // descriptor `fd`, which is open (F_GETFD just succeeded).
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::io::ErrorKind;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::process::Stdio;

    /// A copy of `file` numbered `at` or above, without close-on-exec:
    /// what a careless library leaves open in the host process.
    fn leak(file: &File, at: RawFd) -> OwnedFd {
        // SAFETY: F_DUPFD duplicates an open descriptor of ours onto the
        // lowest free number >= `at`; it clobbers nothing.
        let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD, at) };
        assert!(fd >= at, "F_DUPFD: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just returned by F_DUPFD and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn close_on_exec(fd: &OwnedFd) -> bool {
        // SAFETY: F_GETFD reads the flags of a descriptor `fd` keeps open.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert!(flags >= 0, "F_GETFD: {}", io::Error::last_os_error());
        flags & libc::FD_CLOEXEC != 0
    }

    /// The descriptors of a shell started by `command` and what each is
    /// (`ls -l /proc/PID/fd`). `; true` keeps the shell from replacing
    /// itself with `ls`, so the list is the shell's and not that of `ls`
    /// reading its own directory.
    fn descriptors_of_child(command: &mut Command) -> BTreeMap<RawFd, String> {
        let output = command
            .args(["-c", "ls -l /proc/$$/fd; true"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{:?}", output.status);
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| {
                let (left, target) = line.split_once(" -> ")?;
                let fd = left.rsplit(' ').next()?.parse().ok()?;
                Some((fd, target.to_string()))
            })
            .collect()
    }

    fn assert_only_standard_streams(seen: &BTreeMap<RawFd, String>, secret: &str, leaked: RawFd) {
        let numbers: Vec<RawFd> = seen.keys().copied().collect();
        assert_eq!(numbers, [0, 1, 2], "the child had {seen:?}");
        assert_eq!(seen[&0], "/dev/null", "{seen:?}");
        assert!(seen[&1].starts_with("pipe:"), "{seen:?}");
        assert_eq!(seen[&2], "/dev/null", "{seen:?}");
        assert!(!seen.contains_key(&leaked), "{seen:?}");
        assert!(!seen.values().any(|t| t == secret), "{seen:?}");
    }

    fn secret_file() -> (tempfile::NamedTempFile, String) {
        let secret = tempfile::NamedTempFile::new().unwrap();
        let path = secret.path().to_str().unwrap().to_string();
        (secret, path)
    }

    #[test]
    fn a_descriptor_without_close_on_exec_does_not_reach_the_child() {
        let (secret, path) = secret_file();
        let leaked = leak(secret.as_file(), 77);
        let seen = descriptors_of_child(Command::new("/bin/sh").standard_streams_only());
        assert_only_standard_streams(&seen, &path, leaked.as_raw_fd());
        // The host keeps its descriptor as it was: only the child's copy of
        // the table was marked.
        assert!(!close_on_exec(&leaked));
    }

    #[test]
    fn the_fallback_for_old_kernels_keeps_the_same_promise() {
        let (secret, path) = secret_file();
        let leaked = leak(secret.as_file(), 78);
        let mut command = Command::new("/bin/sh");
        fence(&mut command, mark_each_below_open_limit);
        let seen = descriptors_of_child(&mut command);
        assert_only_standard_streams(&seen, &path, leaked.as_raw_fd());
        assert!(!close_on_exec(&leaked));
    }

    #[test]
    fn a_program_that_cannot_start_is_still_a_spawn_error() {
        // std learns of a failed exec through a pipe inherited across the
        // fork: it must still be open after the descriptors are marked.
        type Mark = fn() -> io::Result<()>;
        let marks: [Mark; 2] = [mark_all_after_standard_streams, mark_each_below_open_limit];
        for mark in marks {
            let mut command = Command::new("/nonexistent/program");
            fence(&mut command, mark);
            let err = command.stdin(Stdio::null()).spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

            let dir = tempfile::tempdir().unwrap();
            let mut command = Command::new(dir.path());
            fence(&mut command, mark);
            let err = command.spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        }
    }
}
