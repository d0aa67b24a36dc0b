//! Errors of the core crate. Each variant names what went wrong precisely
//! enough for a syslog line; none of them carries a secret or a code.

use std::fmt;
use std::path::PathBuf;

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
    /// The containing directory may be changed by someone other than the owner.
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
        /// the parser's message (never contains secrets: see `redact_toml_error`)
        why: String,
    },
    /// A configuration value is out of range or unknown.
    Config(String),
}

impl Error {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, problem: FileProblem) -> Self {
        Error::File {
            path: path.into(),
            problem,
        }
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File { path, problem } => write!(f, "{} {}", path.display(), problem),
            Error::Parse { what, why } => write!(f, "{what} is invalid: {why}"),
            Error::Config(why) => write!(f, "configuration error: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The toml crate quotes the offending source line in its messages; in an
/// enrollment file that line may be the TOTP secret. Keep only the first line
/// of the message, which says what and where ("at line 3, column 10").
pub fn redact_toml_error(err: &toml::de::Error) -> String {
    let position = err
        .span()
        .map(|span| format!(" (byte offset {})", span.start))
        .unwrap_or_default();
    format!("{}{}", err.message().trim(), position)
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
        toml::from_str(text).map_err(|e| redact_toml_error(&e))
    }
}
