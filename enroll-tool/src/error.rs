//! What the user sees when something goes wrong: one line on stderr,
//! `twofactor: <message>`, and an exit code that tells scripts what to do
//! about it. One rule for every command (documented in twofactor(1), EXIT
//! STATUS; the text is `exit_status_rule!` in `cli.rs`):
//!
//! - [`CliError::Refused`], exit 1: the request cannot be done as asked,
//!   and asking differently can succeed: bad usage, not allowed, unknown
//!   user, a precondition (not enrolled, already enrolled, no such key, a
//!   named file that does not exist), content understood but not supported,
//!   not confirmed, cancelled.
//! - [`CliError::System`], exit 2: a file or the system is in the way: a
//!   file that cannot be read or written, fails a safety check (owner,
//!   mode, symlink, size, unsafe directory) or does not parse; I/O errors,
//!   failed lookups. Every `twofactor_core::Error` is one of these: a file
//!   the module would refuse is never "refused" here but "in the way".
//! - [`CliError::Interrupted`], exit 128 + N.

use std::io::{self, Write};
use std::process::ExitCode;

use twofactor_core::audit::escape_control_chars;

/// The request was refused as asked (see the module comment).
pub const EXIT_REFUSED: u8 = 1;
/// A file or the system is in the way (see the module comment).
pub const EXIT_SYSTEM: u8 = 2;
/// Added to the signal number when a signal (Ctrl-C: SIGINT, 2) ended an
/// interactive command, as shells report it: 130 for Ctrl-C.
pub const EXIT_SIGNAL_BASE: u8 = 128;

/// An error ready to be shown to the user. The message is complete on its
/// own: it names the path, user or option concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Exit code [`EXIT_REFUSED`].
    Refused(String),
    /// Exit code [`EXIT_SYSTEM`].
    System(String),
    /// A signal (Ctrl-C, hangup, termination) ended the command before it
    /// changed anything; exit code 128 + the signal number.
    Interrupted {
        /// the signal number
        signal: i32,
        /// what was (not) done, e.g. "nothing was written"
        outcome: &'static str,
    },
}

impl CliError {
    /// A command-line parse error from clap, reduced to its first line: the
    /// rest (usage, tips) is what `--help` shows anyway.
    pub fn from_clap(err: &clap::Error) -> Self {
        if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            return CliError::Refused("no command given (see 'twofactor --help')".into());
        }
        let rendered = err.to_string();
        let first_line = rendered.lines().next().unwrap_or_default();
        let message = first_line.strip_prefix("error: ").unwrap_or(first_line);
        CliError::Refused(format!("{message} (see 'twofactor --help')"))
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(_) => EXIT_REFUSED,
            CliError::System(_) => EXIT_SYSTEM,
            CliError::Interrupted { signal, .. } => u8::try_from(*signal)
                .ok()
                .and_then(|signal| EXIT_SIGNAL_BASE.checked_add(signal))
                .unwrap_or(EXIT_SIGNAL_BASE),
        }
    }

    /// The message, guaranteed to be a single line without control
    /// characters: scripts and log collectors read stderr line by line, and
    /// a path or a value from a user's file must not drive the terminal.
    pub fn message(&self) -> String {
        let text = match self {
            CliError::Refused(text) | CliError::System(text) => text.clone(),
            CliError::Interrupted { signal, outcome } => {
                format!("interrupted ({}); {outcome}", signal_name(*signal))
            }
        };
        one_line(&text)
    }

    /// Print the error to stderr and return the matching exit code.
    pub fn report(&self) -> ExitCode {
        // A closed or broken stderr must not turn an error into a panic.
        let _ = writeln!(io::stderr().lock(), "twofactor: {}", self.message());
        ExitCode::from(self.exit_code())
    }
}

/// `text` on one line (white space runs become one space) with every
/// other control character escaped: what goes to stderr.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    escape_control_chars(&joined).into_owned()
}

fn signal_name(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(nix::sys::signal::Signal::SIGINT) => "Ctrl-C".into(),
        Ok(known) => known.as_str().to_string(),
        Err(_) => format!("signal {signal}"),
    }
}

impl From<twofactor_core::Error> for CliError {
    fn from(err: twofactor_core::Error) -> Self {
        CliError::System(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let err = CliError::System("first\nsecond  third".into());
        assert_eq!(err.message(), "first second third");
        let err = CliError::System("a \u{1b}]0;title\u{7}b\u{9b}c".into());
        assert_eq!(err.message(), "a \\x1b]0;title\\x07b\\xc2\\x9bc");
        assert_eq!(err.exit_code(), EXIT_SYSTEM);
        assert_eq!(CliError::Refused("x".into()).exit_code(), EXIT_REFUSED);
        let interrupted = CliError::Interrupted {
            signal: 2,
            outcome: "nothing was written",
        };
        assert_eq!(interrupted.exit_code(), 130);
        assert_eq!(
            interrupted.message(),
            "interrupted (Ctrl-C); nothing was written"
        );
        let hangup = CliError::Interrupted {
            signal: 1,
            outcome: "nothing was written",
        };
        assert_eq!(hangup.exit_code(), 129);
        assert_eq!(
            hangup.message(),
            "interrupted (SIGHUP); nothing was written"
        );
    }
}
