//! What the user sees when something goes wrong: one line on stderr,
//! `twofactor: <message>`, and an exit code that tells scripts whose fault
//! it was.

use std::io::{self, Write};
use std::process::ExitCode;

/// The request was refused or malformed: bad usage, not allowed, would
/// destroy an existing enrollment. Retrying the same command will not help.
pub const EXIT_REFUSED: u8 = 1;
/// The system failed: I/O, an invalid configuration, a failed lookup.
pub const EXIT_SYSTEM: u8 = 2;

/// An error ready to be shown to the user. The message is complete on its
/// own: it names the path, user or option concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Exit code [`EXIT_REFUSED`].
    Refused(String),
    /// Exit code [`EXIT_SYSTEM`].
    System(String),
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
        }
    }

    /// The message, guaranteed to be a single line: scripts and log
    /// collectors read stderr line by line.
    pub fn message(&self) -> String {
        let (CliError::Refused(text) | CliError::System(text)) = self;
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Print the error to stderr and return the matching exit code.
    pub fn report(&self) -> ExitCode {
        // A closed or broken stderr must not turn an error into a panic.
        let _ = writeln!(io::stderr().lock(), "twofactor: {}", self.message());
        ExitCode::from(self.exit_code())
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
        assert_eq!(err.exit_code(), EXIT_SYSTEM);
        assert_eq!(CliError::Refused("x".into()).exit_code(), EXIT_REFUSED);
    }
}
