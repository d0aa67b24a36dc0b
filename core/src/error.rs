//! Errors of the core crate. Each variant names what went wrong precisely
//! enough for a syslog line; none of them carries a secret or a code.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::audit::{escape_control_chars, sanitize};

/// Why a file could not be used. Shown to administrators, so it is specific.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProblem {
    /// The file does not exist.
    Missing,
    /// The last path component is a symbolic link.
    Symlink,
    /// Not a regular file (directory, FIFO, device, socket).
    NotRegular(&'static str),
    /// Owned by someone other than the expected user.
    WrongOwner {
        /// uid found on the file
        found: u32,
        /// uid that must own it
        expected: u32,
    },
    /// Group or others may write to it (or read it, for files holding secrets).
    UnsafeMode(u32),
    /// Larger than the limit for this kind of file.
    TooLarge {
        /// the file's size in bytes
        size: u64,
        /// the limit in bytes
        limit: u64,
    },
    /// A directory on the way to the file may be changed by someone other
    /// than root or the file's owner (the text names it and says why).
    UnsafeParent(String),
    /// Any other I/O failure (permission denied, I/O error, disk full...).
    Io(String),
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Missing => write!(f, "does not exist"),
            FileProblem::Symlink => write!(f, "is a symbolic link (refused)"),
            FileProblem::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
            FileProblem::WrongOwner { found, expected } => {
                write!(f, "is owned by uid {found}, expected uid {expected}")
            }
            FileProblem::UnsafeMode(mode) => write!(
                f,
                "has unsafe permissions {:04o} (group/other access is not allowed)",
                mode & 0o7777
            ),
            FileProblem::TooLarge { size, limit } => {
                write!(f, "is too large ({size} bytes, limit {limit})")
            }
            FileProblem::UnsafeParent(why) => write!(f, "is in an unsafe directory: {why}"),
            FileProblem::Io(why) => write!(f, "cannot be used: {why}"),
        }
    }
}

/// Errors of the core crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A file failed the safety checks or could not be read or written.
    File {
        /// the path
        path: PathBuf,
        /// what is wrong with it
        problem: FileProblem,
    },
    /// A document (config, enrollment, state) did not parse or validate.
    Parse {
        /// which document, e.g. "enrollment file /home/a/.config/twofactor/enrollment.toml"
        what: String,
        /// what is wrong: for documents from users, the kind of error and
        /// its position only (see `redact_user_toml_error`)
        why: String,
    },
    /// A configuration value is out of range or unknown.
    Config(String),
    /// The user database could not be asked (an NSS or LDAP outage): not
    /// "no such user", and not the configuration's fault.
    Lookup(String),
    /// The fleet's shared login state (Redis) could not be used.
    SharedState(crate::shared_state::SharedStateError),
}

impl Error {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, problem: FileProblem) -> Self {
        Error::File {
            path: path.into(),
            problem,
        }
    }

    /// True when the shared state's server could not be reached (the case
    /// `redis_unavailable = "local"` falls back on).
    pub fn is_shared_state_unreachable(&self) -> bool {
        matches!(self, Error::SharedState(e) if e.is_unreachable())
    }

    /// True when the error only says that a file does not exist.
    pub fn is_missing_file(&self) -> bool {
        matches!(
            self,
            Error::File {
                problem: FileProblem::Missing,
                ..
            }
        )
    }
}

/// A path as it appears in messages: through [`sanitize`], since a home
/// directory or a file name may hold any byte but `/` and NUL.
pub fn shown_path(path: &Path) -> String {
    sanitize(&path.to_string_lossy())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::File { path, problem } => format!("{} {}", shown_path(path), problem),
            Error::Parse { what, why } => format!("{what} is invalid: {why}"),
            Error::Config(why) => format!("configuration error: {why}"),
            Error::Lookup(why) => format!("user database unavailable: {why}"),
            Error::SharedState(why) => format!("shared login state: {why}"),
        };
        // Values from users are escaped where they are put into a message;
        // this makes sure no path that forgot to can break a log line.
        f.write_str(&escape_control_chars(&text))
    }
}

impl std::error::Error for Error {}

/// The configuration's parse errors: the toml crate's message alone
/// (`message()`, which may quote a key or a value: the configuration is
/// root's, so that is kept, escaped so it cannot break a log line) and the
/// byte offset it applies to. Not the error's `Display`, which adds a
/// line and column and quotes the offending source line under them.
pub fn redact_toml_error(err: &toml::de::Error) -> String {
    let position = err
        .span()
        .map(|span| format!(" (byte offset {})", span.start))
        .unwrap_or_default();
    format!("{}{}", escape_control_chars(err.message().trim()), position)
}

/// Parse errors of TOML documents that users write (the enrollment) or that
/// hold values from users (the login state): the kind of error and its
/// position only, as for JSON. The toml crate's message quotes keys and
/// values: a key can hold a line break that forges a log line, a value can
/// be the TOTP secret.
pub fn redact_user_toml_error(err: &toml::de::Error, text: &str) -> String {
    // The parser and the deserializer report through one error type; a
    // document that parses as a table has its syntax right.
    let kind = if text.parse::<toml::Table>().is_err() {
        "TOML syntax error"
    } else {
        "unexpected field or value"
    };
    match err.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("{kind} at line {line}, column {column}")
        }
        None => kind.to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// serde_json's messages may quote the input (`invalid type: string "..."`),
/// which in an enrollment file may be the TOTP secret: keep the kind of
/// error and its position only.
pub fn redact_json_error(err: &serde_json::Error) -> String {
    format!(
        "{} at line {}, column {}",
        match err.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "JSON syntax error",
            serde_json::error::Category::Data => "unexpected field or value",
            serde_json::error::Category::Eof => "unexpected end of the document",
        },
        err.line(),
        err.column()
    )
}

/// Deserialize a document written as JSON or as TOML: JSON when it starts
/// with `{`, which no TOML document can. Errors are redacted as above.
pub(crate) fn parse_json_or_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| redact_json_error(&e))
    } else {
        toml::from_str(text).map_err(|e| redact_user_toml_error(&e, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Document {
        version: u32,
        secret: Option<String>,
    }

    fn user_toml_error(text: &str) -> String {
        parse_json_or_toml::<Document>(text).unwrap_err()
    }

    #[test]
    fn user_toml_errors_keep_the_kind_and_the_position_only() {
        let forged = "version = 1\n\"x\\nsecond factor accepted: user=root\" = 1\n";
        assert_eq!(
            user_toml_error(forged),
            "unexpected field or value at line 2, column 1"
        );
        let controls = "version = 1\n\"a\\u001b[31m\\u0007\\r\" = 1\n";
        assert_eq!(
            user_toml_error(controls),
            "unexpected field or value at line 2, column 1"
        );
        let wrong_type = "version = 1\nsecret = 1234567890123456\n";
        assert_eq!(
            user_toml_error(wrong_type),
            "unexpected field or value at line 2, column 10"
        );
        let syntax = "version = 1\nsecret = \"JBSWY3DPEHPK3PXP\" junk\n";
        assert_eq!(
            user_toml_error(syntax),
            "TOML syntax error at line 2, column 29"
        );
        assert_eq!(line_and_column("é\né", 5), (2, 2));
        assert_eq!(line_and_column("é\né", 4), (2, 1));
        assert_eq!(line_and_column("é", 1), (1, 1));
    }

    #[test]
    fn messages_carry_no_control_character() {
        let err = Error::file("/home/a\nb c/f", FileProblem::Missing);
        assert_eq!(err.to_string(), "/home/a\\x0ab\\x20c/f does not exist");
        let err = Error::Parse {
            what: "file\u{1b}[2J".into(),
            why: "bad\rvalue".into(),
        };
        assert_eq!(err.to_string(), "file\\x1b[2J is invalid: bad\\x0dvalue");
        let err = Error::Config("a\u{7}b".into());
        assert_eq!(err.to_string(), "configuration error: a\\x07b");
    }

    #[test]
    fn an_unavailable_user_database_is_its_own_error() {
        let err = Error::Lookup("looking up user alice failed: Connection refused".into());
        assert_eq!(
            err.to_string(),
            "user database unavailable: looking up user alice failed: Connection refused"
        );
    }
}
