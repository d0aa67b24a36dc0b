//! Reading `~/.google_authenticator`, the file of google-authenticator-libpam,
//! so a site can switch modules without re-enrolling every user.
//!
//! The format: the base32 secret on the first line; option lines starting
//! with `" ` (`" TOTP_AUTH`, `" HOTP_COUNTER 1`, `" STEP_SIZE 30`,
//! `" WINDOW_SIZE 3`, `" RATE_LIMIT 3 30 <times>`, `" DISALLOW_REUSE <steps>`,
//! `" TIME_SKEW n`, ...); then the scratch codes, eight digits each, one a
//! line. google-authenticator-libpam treats the file as TOTP only when
//! `" TOTP_AUTH` is present and as HOTP when `" HOTP_COUNTER` is.
//!
//! Parsing only: what is imported, refused or reported is decided by the
//! `twofactor import` command. Errors never quote a line (it may hold the
//! secret or a scratch code), only its number.

use zeroize::Zeroizing;

use crate::backup::normalize_legacy;
use crate::enrollment::decode_base32_secret;
use crate::secret::SecretBytes;

/// Largest file read (google-authenticator-libpam's own limit is 64 KiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The file name in a home directory.
pub const DEFAULT_FILE_NAME: &str = ".google_authenticator";
/// Step size google-authenticator uses when `STEP_SIZE` is absent.
pub const DEFAULT_STEP_SIZE: u64 = 30;
/// Window google-authenticator uses when `WINDOW_SIZE` is absent.
pub const DEFAULT_WINDOW_SIZE: u32 = 3;
const MAX_SCRATCH_CODES: usize = 100;

/// `" RATE_LIMIT n m`: at most `attempts` logins every `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// logins allowed
    pub attempts: u32,
    /// per this many seconds
    pub seconds: u64,
}

/// A parsed `~/.google_authenticator`. No `Debug`: it holds the secret and
/// the scratch codes.
pub struct GoogleAuthenticatorFile {
    /// The shared secret.
    pub secret: SecretBytes,
    /// `" TOTP_AUTH` is present: time-based codes.
    pub totp: bool,
    /// `" HOTP_COUNTER n`: counter-based codes, next counter `n`.
    pub hotp_counter: Option<u64>,
    /// `" STEP_SIZE s` (seconds), if present.
    pub step_size: Option<u64>,
    /// `" WINDOW_SIZE w`, if present: google-authenticator accepts the steps
    /// `-(w-1)/2 ..= w/2` around the current one.
    pub window_size: Option<u32>,
    /// `" RATE_LIMIT n m`, if present.
    pub rate_limit: Option<RateLimit>,
    /// `" DISALLOW_REUSE` is present (with the recently used steps).
    pub disallow_reuse: Option<Vec<u64>>,
    /// `" TIME_SKEW n` (steps), if present: a skew the module learned.
    pub time_skew: Option<i64>,
    /// The scratch codes, in file order, without duplicates.
    pub scratch_codes: Vec<Zeroizing<String>>,
    /// Names of option lines not listed above, in file order.
    pub other_options: Vec<String>,
}

/// Why a google-authenticator file cannot be imported. Its Display says
/// where, for the user who runs the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaFileError {
    /// No line at all.
    Empty,
    /// An option line where the secret belongs.
    OptionFirst,
    /// The first line is not a usable base32 secret.
    Secret(String),
    /// A line that is neither an option nor a scratch code.
    NotOptionOrCode {
        /// its number
        line: usize,
    },
    /// More scratch codes than are kept.
    TooManyScratchCodes {
        /// the line of the first one too many
        line: usize,
    },
    /// `"` alone.
    UnnamedOption {
        /// its number
        line: usize,
    },
    /// An option whose value is missing or unusable.
    BadOption {
        /// its number
        line: usize,
        /// the option's name
        option: String,
        /// what is wrong
        problem: OptionProblem,
    },
}

/// What is wrong with an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionProblem {
    /// No value.
    MissingValue,
    /// A value that is not a number.
    NotANumber,
    /// A number too large.
    TooLarge,
    /// A step (of DISALLOW_REUSE) that is not a number.
    StepNotANumber,
}

impl std::fmt::Display for GaFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GaFileError::Empty => write!(f, "the file is empty"),
            GaFileError::OptionFirst => {
                write!(f, "the first line must be the secret, not an option")
            }
            GaFileError::Secret(why) => write!(f, "line 1 is not a usable secret: {why}"),
            GaFileError::NotOptionOrCode { line } => write!(
                f,
                "line {line} is neither an option (\" NAME) nor a scratch code \
                 (eight digits, not starting with 0)"
            ),
            GaFileError::TooManyScratchCodes { line } => {
                write!(
                    f,
                    "more than {MAX_SCRATCH_CODES} scratch codes (line {line})"
                )
            }
            GaFileError::UnnamedOption { line } => {
                write!(f, "line {line} is an option line without a name")
            }
            GaFileError::BadOption {
                line,
                option,
                problem,
            } => {
                let what = match problem {
                    OptionProblem::MissingValue => "is missing a value",
                    OptionProblem::NotANumber => "has a value that is not a number",
                    OptionProblem::TooLarge => "is too large",
                    OptionProblem::StepNotANumber => "lists a step that is not a number",
                };
                write!(f, "line {line}: {option} {what}")
            }
        }
    }
}

impl std::error::Error for GaFileError {}

impl GoogleAuthenticatorFile {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Self, GaFileError> {
        let mut lines = text.lines().enumerate();
        let secret_line = loop {
            match lines.next() {
                Some((_, line)) if line.trim().is_empty() => continue,
                Some((_, line)) => break line.trim(),
                None => return Err(GaFileError::Empty),
            }
        };
        if secret_line.starts_with('"') {
            return Err(GaFileError::OptionFirst);
        }
        let secret = decode_base32_secret(secret_line).map_err(GaFileError::Secret)?;
        let mut file = GoogleAuthenticatorFile {
            secret,
            totp: false,
            hotp_counter: None,
            step_size: None,
            window_size: None,
            rate_limit: None,
            disallow_reuse: None,
            time_skew: None,
            scratch_codes: Vec::new(),
            other_options: Vec::new(),
        };
        for (index, line) in lines {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(option) = line.strip_prefix('"') {
                file.option(number, option)?;
                continue;
            }
            let Some(code) = normalize_legacy(line) else {
                return Err(GaFileError::NotOptionOrCode { line: number });
            };
            if !file.scratch_codes.iter().any(|known| **known == *code) {
                file.scratch_codes.push(code);
            }
            if file.scratch_codes.len() > MAX_SCRATCH_CODES {
                return Err(GaFileError::TooManyScratchCodes { line: number });
            }
        }
        Ok(file)
    }

    fn option(&mut self, number: usize, option: &str) -> Result<(), GaFileError> {
        let mut words = option.split_whitespace();
        let Some(name) = words.next() else {
            return Err(GaFileError::UnnamedOption { line: number });
        };
        let values: Vec<&str> = words.collect();
        let bad = |problem: OptionProblem| GaFileError::BadOption {
            line: number,
            option: name.to_string(),
            problem,
        };
        let number_at = |i: usize| -> Result<u64, GaFileError> {
            values
                .get(i)
                .ok_or_else(|| bad(OptionProblem::MissingValue))?
                .parse::<u64>()
                .map_err(|_| bad(OptionProblem::NotANumber))
        };
        match name {
            "TOTP_AUTH" => self.totp = true,
            "HOTP_COUNTER" => self.hotp_counter = Some(number_at(0)?),
            "STEP_SIZE" => self.step_size = Some(number_at(0)?),
            "WINDOW_SIZE" => {
                let size =
                    u32::try_from(number_at(0)?).map_err(|_| bad(OptionProblem::TooLarge))?;
                self.window_size = Some(size);
            }
            "RATE_LIMIT" => {
                let attempts =
                    u32::try_from(number_at(0)?).map_err(|_| bad(OptionProblem::TooLarge))?;
                let seconds = number_at(1)?;
                self.rate_limit = Some(RateLimit { attempts, seconds });
            }
            "DISALLOW_REUSE" => {
                let steps = values
                    .iter()
                    .map(|v| v.parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| bad(OptionProblem::StepNotANumber))?;
                self.disallow_reuse = Some(steps);
            }
            "TIME_SKEW" => {
                let skew = values
                    .first()
                    .ok_or_else(|| bad(OptionProblem::MissingValue))?
                    .parse::<i64>()
                    .map_err(|_| bad(OptionProblem::NotANumber))?;
                self.time_skew = Some(skew);
            }
            other => {
                let name: String = other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(40)
                    .collect();
                if !self.other_options.contains(&name) {
                    self.other_options.push(name);
                }
            }
        }
        Ok(())
    }

    /// The steps google-authenticator accepted either side of the current
    /// one: (before, after), from `WINDOW_SIZE` (default 3: one each side).
    pub fn window_steps(&self) -> (u32, u32) {
        let size = self.window_size.unwrap_or(DEFAULT_WINDOW_SIZE).max(1);
        ((size - 1) / 2, size / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by `google-authenticator -t -d -f -r 3 -R 30 -w 3 -q -C`
    // (libpam-google-authenticator 20191231).
    const TOTP_FILE: &str = "YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" RATE_LIMIT 3 30\n\
        \" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n19317516\n21858389\n\
        60808409\n23952935\n10168740\n";
    // `google-authenticator -c -f -u -w 17 -e 3 -q -C`, then used twice.
    const HOTP_FILE: &str = "N6SUTWYR537QDGVBK6UECQFAJI\n\" WINDOW_SIZE 17\n\
        \" HOTP_COUNTER 3\n66235904\n20470648\n92039026\n";

    #[test]
    fn reads_a_totp_file() {
        let file = GoogleAuthenticatorFile::parse(TOTP_FILE).unwrap();
        assert_eq!(file.secret.len(), 16);
        assert!(file.totp);
        assert_eq!(file.hotp_counter, None);
        assert_eq!(file.step_size, None);
        assert_eq!(file.window_size, Some(3));
        assert_eq!(file.window_steps(), (1, 1));
        assert_eq!(
            file.rate_limit,
            Some(RateLimit {
                attempts: 3,
                seconds: 30
            })
        );
        assert_eq!(file.disallow_reuse, Some(vec![]));
        let codes: Vec<&str> = file.scratch_codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes,
            ["19317516", "21858389", "60808409", "23952935", "10168740"]
        );
    }

    #[test]
    fn reads_a_hotp_file_and_options_with_values() {
        let file = GoogleAuthenticatorFile::parse(HOTP_FILE).unwrap();
        assert!(!file.totp);
        assert_eq!(file.hotp_counter, Some(3));
        assert_eq!(file.window_steps(), (8, 8));
        let text = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" STEP_SIZE 60\n\
            \" DISALLOW_REUSE 28333333 28333334\n\" TIME_SKEW -2\n\
            \" RATE_LIMIT 3 30 1700000000 1700000005\n\" WINDOW_SIZE 4\n\
            \" RESETTING_TIME_SKEW 1 2\n\" TOTP_AUTH\n\n12345678\n12345678\n";
        let file = GoogleAuthenticatorFile::parse(text).unwrap();
        assert_eq!(file.step_size, Some(60));
        assert_eq!(file.disallow_reuse, Some(vec![28333333, 28333334]));
        assert_eq!(file.time_skew, Some(-2));
        assert_eq!(file.window_steps(), (1, 2));
        assert_eq!(file.other_options, ["RESETTING_TIME_SKEW"]);
        assert_eq!(file.scratch_codes.len(), 1, "duplicates are dropped");
    }

    #[test]
    fn refuses_malformed_files_without_quoting_them() {
        for (text, expected) in [
            ("", "empty"),
            ("\" TOTP_AUTH\n", "first line must be the secret"),
            ("not base32 !!\n", "not a usable secret"),
            ("GEZDGNBV\n", "too short"),
            ("YQGZRSZWZ37QUXVQIOKA3HNRWI\n98765\n", "line 2 is neither"),
            (
                "YQGZRSZWZ37QUXVQIOKA3HNRWI\n01234567\n",
                "line 2 is neither",
            ),
            (
                "YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" STEP_SIZE x\n",
                "not a number",
            ),
            (
                "YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" HOTP_COUNTER\n",
                "missing a value",
            ),
            ("YQGZRSZWZ37QUXVQIOKA3HNRWI\n\"\n", "without a name"),
        ] {
            let err = GoogleAuthenticatorFile::parse(text)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("YQGZ") && !err.contains("98765"), "{err}");
        }
    }

    #[test]
    fn errors_say_what_and_where_as_values() {
        assert_eq!(
            GoogleAuthenticatorFile::parse("").err(),
            Some(GaFileError::Empty)
        );
        assert_eq!(
            GoogleAuthenticatorFile::parse("YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" STEP_SIZE x\n").err(),
            Some(GaFileError::BadOption {
                line: 2,
                option: "STEP_SIZE".into(),
                problem: OptionProblem::NotANumber
            })
        );
    }
}
