//! Running the administrator's `notify_command` on events (an enrollment
//! changed, a backup code was used, a lockout started).
//!
//! The command comes from the root-owned system configuration; the event
//! name and the user name are appended as two more arguments. It runs
//! without a shell (no quoting, no word splitting: the user name reaches it
//! as one argument whatever it contains), with no standard input or output
//! (it cannot read a password prompt's answer nor write into a PAM
//! conversation or a terminal), with no other descriptor of the caller's
//! (the host application's files and sockets stay out of its reach, also
//! when it runs as the user `twofactor --user` acts for), in `/` with a
//! minimal environment (nothing of the caller's `LD_PRELOAD`, `IFS` or
//! locale), and for a bounded time: a hung mail server must not hang a
//! login or the `twofactor` command.
//!
//! Waiting is a `try_wait` polling loop on the calling thread, so the PAM
//! module (loaded into sshd, login, su...) gets no helper thread, and the
//! child is always reaped, also after a timeout, so no zombie is left.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use twofactor_spawn::StandardStreamsOnly;

use crate::files::describe_io_error;

/// `PATH` of the command's environment (its only variable).
pub const NOTIFY_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Event: a user enrolled (TOTP and backup codes).
pub const EVENT_ENROLLED: &str = "enrolled";
/// Event: a method or the whole enrollment was disabled.
pub const EVENT_DISABLED: &str = "disabled";
/// Event: the backup codes were replaced.
pub const EVENT_BACKUP_CODES_REGENERATED: &str = "backup-codes-regenerated";
/// Event: a backup code was used to log in.
pub const EVENT_BACKUP_CODE_USED: &str = "backup-code-used";
/// Event: too many failures started a lockout.
pub const EVENT_LOCKOUT_STARTED: &str = "lockout-started";

const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(25);

/// Run `command` (program and leading arguments) with `event` and `user` as
/// its last two arguments, and wait at most `timeout` for it to finish.
///
/// `Ok(())` when it exited with status 0. Otherwise a one-line reason: the
/// program could not be started, exited with another status, was killed by
/// a signal, or did not finish in time (it is then killed and reaped). An
/// empty `command` is an error too; callers check for one first.
///
/// Why a notify_command did not succeed. Its Display is the one-line
/// reason for a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// No program is configured.
    Empty,
    /// The program could not be started.
    NotStarted {
        /// the program
        program: String,
        /// why
        why: String,
    },
    /// It exited with a non-zero status.
    Failed {
        /// the program
        program: String,
        /// its exit status
        status: i32,
    },
    /// A signal ended it.
    Killed {
        /// the program
        program: String,
        /// the signal
        signal: i32,
    },
    /// It did not finish in time; `cleanup` says what became of it.
    TimedOut {
        /// the program
        program: String,
        /// the time it had
        timeout: Duration,
        /// "was killed", or why killing or reaping it failed
        cleanup: String,
    },
    /// Waiting for it failed (it was then killed and reaped).
    Wait {
        /// the program
        program: String,
        /// why
        why: String,
    },
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::Empty => write!(f, "notify_command is empty"),
            NotifyError::NotStarted { program, why } => write!(f, "cannot run {program}: {why}"),
            NotifyError::Failed { program, status } => {
                write!(f, "{program} exited with status {status}")
            }
            NotifyError::Killed { program, signal } => {
                write!(f, "{program} was killed by signal {signal}")
            }
            NotifyError::TimedOut {
                program,
                timeout,
                cleanup,
            } => write!(
                f,
                "{program} did not finish within {} ms{cleanup}",
                timeout.as_millis()
            ),
            NotifyError::Wait { program, why } => write!(f, "cannot wait for {program}: {why}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// Only the program itself is killed on a timeout: anything it started in
/// the background lives on, but it inherited no descriptor of ours (its
/// standard streams are `/dev/null`), so it holds nothing of ours open.
pub fn run_notify_command(
    command: &[String],
    event: &str,
    user: &str,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let Some((program, leading_args)) = command.split_first() else {
        return Err(NotifyError::Empty);
    };
    let mut child = Command::new(program)
        .args(leading_args)
        .arg(event)
        .arg(user)
        .env_clear()
        .env("PATH", NOTIFY_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C typed at the terminal of the
        // login (or of `twofactor`) is not delivered to it as well.
        .process_group(0)
        // No other descriptor of the caller's: under `twofactor --user`
        // the command runs as that user, who could read through anything
        // of root's it inherited.
        .standard_streams_only()
        .spawn()
        .map_err(|e| NotifyError::NotStarted {
            program: program.clone(),
            why: describe_io_error(&e),
        })?;

    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return judge(program, status),
            Ok(None) => {}
            Err(e) => {
                let reason = describe_io_error(&e);
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotifyError::Wait {
                    program: program.clone(),
                    why: reason,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(kill_after_timeout(&mut child, program, timeout));
        }
        sleep(pause.min(deadline - now));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

fn kill_after_timeout(
    child: &mut std::process::Child,
    program: &str,
    timeout: Duration,
) -> NotifyError {
    let cleanup = match child.kill() {
        // It may have exited between the last poll and the kill; either way
        // the wait below reaps it.
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => None,
        Err(e) => Some(format!(
            " and could not be killed: {}",
            describe_io_error(&e)
        )),
    };
    let cleanup = cleanup.unwrap_or_else(|| match child.wait() {
        Ok(_) => " and was killed".to_string(),
        Err(e) => format!(
            "; it was killed but could not be reaped: {}",
            describe_io_error(&e)
        ),
    });
    NotifyError::TimedOut {
        program: program.to_string(),
        timeout,
        cleanup,
    }
}

fn judge(program: &str, status: ExitStatus) -> Result<(), NotifyError> {
    if status.success() {
        return Ok(());
    }
    let program = program.to_string();
    match (status.code(), status.signal()) {
        (Some(status), _) => Err(NotifyError::Failed { program, status }),
        (_, Some(signal)) => Err(NotifyError::Killed { program, signal }),
        // Neither an exit status nor a signal: not something wait reports.
        (None, None) => Err(NotifyError::Failed {
            program,
            status: -1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const BOUND: Duration = Duration::from_secs(5);

    #[test]
    fn exit_status_decides_the_result() {
        assert_eq!(
            run_notify_command(&strings(&["/bin/true"]), "enrolled", "alice", BOUND),
            Ok(())
        );
        let err =
            run_notify_command(&strings(&["/bin/false"]), "enrolled", "alice", BOUND).unwrap_err();
        assert_eq!(
            err,
            NotifyError::Failed {
                program: "/bin/false".into(),
                status: 1
            }
        );
        assert_eq!(err.to_string(), "/bin/false exited with status 1");
        let err = run_notify_command(
            &strings(&["/bin/sh", "-c", "exit 7"]),
            "enrolled",
            "alice",
            BOUND,
        )
        .unwrap_err()
        .to_string();
        assert!(err.ends_with("exited with status 7"), "{err}");
        let err = run_notify_command(
            &strings(&["/bin/sh", "-c", "kill -TERM $$"]),
            "enrolled",
            "alice",
            BOUND,
        )
        .unwrap_err()
        .to_string();
        assert!(err.ends_with("killed by signal 15"), "{err}");
    }

    #[test]
    fn timeout_kills_and_reaps_within_the_bound() {
        let started = Instant::now();
        // The event and user name are appended, so `sleep 10` runs through
        // a shell that ignores them (exec: the killed process is sleep).
        let err = run_notify_command(
            &strings(&["/bin/sh", "-c", "exec sleep 10", "sh"]),
            "lockout-started",
            "alice",
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?} {err}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(
            err.contains("/bin/sh did not finish within 300 ms"),
            "{err}"
        );
        assert!(err.ends_with("was killed"), "{err}");
    }

    #[test]
    fn arguments_arrive_verbatim_with_a_minimal_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        // The script writes each argument on its own line, then the
        // environment and the working directory.
        let script = format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {out}; env > {out}.env; pwd > {out}.pwd",
            out = out.display()
        );
        let marker = dir.path().join("expanded");
        let odd_user = format!(
            "d'Artagnan \"x\" $(touch {}) ; * -n\n\\tab\t",
            marker.display()
        );
        std::env::set_var("TWOFACTOR_NOTIFY_TEST_LEAK", "1");
        run_notify_command(
            &strings(&["/bin/sh", "-c", &script, "sh", "lead ing"]),
            "backup-code-used",
            &odd_user,
            BOUND,
        )
        .unwrap();
        assert!(!marker.exists(), "the user name was run through a shell");
        let written = fs::read_to_string(&out).unwrap();
        assert_eq!(
            written,
            format!("lead ing\nbackup-code-used\n{odd_user}\n"),
            "arguments changed on the way"
        );
        let env = fs::read_to_string(format!("{}.env", out.display())).unwrap();
        assert!(env.contains(&format!("PATH={NOTIFY_PATH}\n")), "{env}");
        assert!(!env.contains("TWOFACTOR_NOTIFY_TEST_LEAK"), "{env}");
        assert!(!env.contains("HOME="), "{env}");
        let pwd = fs::read_to_string(format!("{}.pwd", out.display())).unwrap();
        assert_eq!(pwd, "/\n");
    }

    #[test]
    fn missing_or_unusable_programs_are_errors() {
        let err = run_notify_command(
            &strings(&["/nonexistent/notify"]),
            "enrolled",
            "alice",
            BOUND,
        )
        .unwrap_err();
        assert!(matches!(err, NotifyError::NotStarted { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot run /nonexistent/notify: No such file or directory"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = run_notify_command(&strings(&[dir.path().to_str().unwrap()]), "e", "u", BOUND)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot run "), "{err}");
        assert!(!err.contains("os error"), "{err}");
        let err = run_notify_command(&[], "enrolled", "alice", BOUND).unwrap_err();
        assert_eq!(err, NotifyError::Empty);
        assert_eq!(err.to_string(), "notify_command is empty");
    }

    #[test]
    fn standard_streams_are_closed_to_the_command() {
        // Reading stdin gets end-of-file at once (not the caller's terminal),
        // so `cat` finishes immediately; writing goes nowhere.
        let started = Instant::now();
        run_notify_command(
            &strings(&["/bin/sh", "-c", "cat && echo out && echo err >&2"]),
            "e",
            "u",
            BOUND,
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
